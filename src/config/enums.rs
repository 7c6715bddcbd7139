//! The keyword-valued settings: [`StartupMode`], [`JournalMode`],
//! [`Synchronous`], [`TempStore`] and [`Locking`]. Each is written in files and variables
//! as a lowercase word (`"wal"`, `"wait_for_min_idle"`), case-insensitively on
//! input.

use std::fmt;

use toml::Value;

use super::codec::{SettingValue, quoted_list};
use super::error::BoxError;

/// Defines a keyword enum: the enum itself with serde names, `ALL`,
/// `as_str`, `Display` and its [`SettingValue`] codec, from one list.
macro_rules! keyword_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $word:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, Default,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                #[serde(rename = $word)]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The word used in configuration files and variables.
#[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl SettingValue for $name {
            fn expected() -> String {
                format!("one of {}", quoted_list(&[$($word),+]))
            }

            fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
                let text = text.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(text))
                    .ok_or(None)
            }

            fn to_toml(&self) -> Value {
                Value::String(self.as_str().to_owned())
            }
        }
    };
}

keyword_enum! {
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

keyword_enum! {
    /// SQLite `PRAGMA journal_mode`. Default: [`JournalMode::Wal`].
    pub enum JournalMode {
        /// Delete the rollback journal after each transaction (SQLite's default).
        Delete = "delete",
        /// Truncate the rollback journal instead of deleting it.
        Truncate = "truncate",
        /// Keep the rollback journal and zero its header.
        Persist = "persist",
        /// Keep the rollback journal in memory (what in-memory databases use).
        Memory = "memory",
        /// Write-ahead log: readers do not block the writer. Default.
        #[default]
        Wal = "wal",
        /// No journal: a crash mid-transaction can corrupt the database.
        Off = "off",
    }
}

keyword_enum! {
    /// SQLite `PRAGMA synchronous`. Default: [`Synchronous::Normal`].
    pub enum Synchronous {
        /// Never fsync: fastest, not durable across OS crashes or power loss.
        Off = "off",
        /// Fsync at checkpoints: safe from corruption in WAL mode, may lose the
        /// last transactions on power loss. Default.
        #[default]
        Normal = "normal",
        /// Fsync at every commit (SQLite's default).
        Full = "full",
        /// Like `full`, and also fsync the directory after unlinking a journal.
        Extra = "extra",
    }
}

keyword_enum! {
    /// SQLite `PRAGMA temp_store`. Default: [`TempStore::Memory`].
    pub enum TempStore {
        /// Use the compile-time default (SQLite's default, usually file).
        Default = "default",
        /// Temporary tables and indices live in files.
        File = "file",
        /// Temporary tables and indices live in memory. Default.
        #[default]
        Memory = "memory",
    }
}

keyword_enum! {
    /// How SQLite locks a database file against other processes (the VFS it
    /// is opened with). Default: [`Locking::Shared`].
    pub enum Locking {
        /// SQLite's normal `unix` VFS: other processes may open the file at
        /// the same time. In WAL mode every read transaction takes a lock on
        /// the `-shm` file with `fcntl()`. Default.
        #[default]
        Shared = "shared",
        /// SQLite's `unix-excl` VFS: the connections of this process share
        /// the file freely, and while one of its read-write connections is
        /// open every other process is locked out (`SQLITE_BUSY`). The WAL
        /// index lives in heap memory (no `-shm` file, no `fcntl()` per
        /// read). The lock goes away with the process. Unix only.
        Process = "process",
    }
}

impl Locking {
    /// The SQLite VFS a file database is opened with: `None` for SQLite's
    /// default VFS (`unix` on unix), `Some("unix-excl")` for
    /// [`Locking::Process`].
    #[must_use]
    pub const fn vfs(self) -> Option<&'static str> {
        match self {
            Self::Shared => None,
            Self::Process => Some("unix-excl"),
        }
    }
}

impl JournalMode {
    /// The value for `PRAGMA journal_mode = ...`.
    #[must_use]
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::Persist => "PERSIST",
            Self::Memory => "MEMORY",
            Self::Wal => "WAL",
            Self::Off => "OFF",
        }
    }
}

impl Synchronous {
    /// The value for `PRAGMA synchronous = ...`.
    #[must_use]
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Off => "OFF",
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
            Self::Extra => "EXTRA",
        }
    }
}

impl TempStore {
    /// The value for `PRAGMA temp_store = ...`.
    #[must_use]
    pub const fn as_pragma(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::File => "FILE",
            Self::Memory => "MEMORY",
        }
    }
}
