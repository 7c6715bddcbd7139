//! The keyword-valued pool settings: [`StartupMode`]. Each is written in
//! files and variables as a lowercase word (`"wait_for_min_idle"`),
//! case-insensitively on input.
//!
//! Owns: the pool's keyword types. It may not hold backend keywords (those
//! live with their backend).

crate::keyword_enum! {
    /// What building a pool waits for. Default: [`StartupMode::Background`].
    pub enum StartupMode {
        /// Building returns at once; `min_idle` connections are opened in the
        /// background and connection errors surface on `get()`. Default.
        #[default]
        Background = "background",
        /// Building waits until `min_idle` connections are open (bounded by
        /// `connection_timeout`) and fails if they cannot be opened.
        WaitForMinIdle = "wait_for_min_idle",
    }
}
