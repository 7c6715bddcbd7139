//! The keyword-valued settings of the `[postgres]` section: [`SslMode`] and
//! [`Recycling`].
//!
//! Owns: the words and what each one promises. It may not build TLS
//! configurations or run statements (`tls.rs` and `reset.rs` do).

slotpool::keyword_enum! {
    /// `postgres.sslmode`: libpq's five modes, all through rustls. Default:
    /// [`SslMode::Prefer`], libpq's and tokio-postgres's default.
    pub enum SslMode {
        /// Never TLS.
        Disable = "disable",
        /// TLS if the server offers it (no certificate check, as libpq),
        /// else plain text. A failed TLS handshake fails the connect; it is
        /// not retried in plain text (tokio-postgres's rule).
        #[default]
        Prefer = "prefer",
        /// TLS, with any certificate (the handshake signatures are still
        /// checked). With `sslrootcert` set it verifies the chain as
        /// `verify-ca` does, libpq's rule for `require`.
        Require = "require",
        /// TLS, and the certificate must chain to a trusted root; the host
        /// name is not checked.
        VerifyCa = "verify-ca",
        /// TLS, the certificate must chain to a trusted root and name the
        /// host connected to.
        VerifyFull = "verify-full",
    }
}

impl SslMode {
    /// Whether this mode checks the certificate chain (given the root file
    /// setting, for `require`).
    #[must_use]
    pub const fn verifies_chain(self, has_root_file: bool) -> bool {
        match self {
            Self::Disable | Self::Prefer => false,
            Self::Require => has_root_file,
            Self::VerifyCa | Self::VerifyFull => true,
        }
    }
}

slotpool::keyword_enum! {
    /// `postgres.recycling`: how much work keeps a pooled connection honest,
    /// with deadpool-postgres's names. Default: [`Recycling::Verified`].
    ///
    /// | mode | a stale checkout (`is_valid`) | on return (`needs_reset`, `reset`) |
    /// |---|---|---|
    /// | `fast` | `is_closed()` only, no I/O | a reset only for what the connection saw a borrower leave dirty |
    /// | `verified` | `is_closed()`, then one round trip (`check_connection`: a protocol Sync) | as `fast` |
    /// | `clean` | as `verified` | always: a transaction check and the clean-up batch, on every return |
    ///
    /// slotpool runs `is_valid` only for a connection idle longer than
    /// `validation_idle_window` (500 ms by default) or due for a keepalive,
    /// never on a hot checkout, so `verified`'s round trip is paid at most
    /// once per stale checkout. That is why it is the default here, while
    /// deadpool (which recycles on every checkout) defaults to `fast`: for
    /// one round trip after half a second of idleness, a connection the
    /// server or a middlebox dropped without a FIN is caught before a
    /// borrower gets it, which `is_closed()` alone cannot see.
    pub enum Recycling {
        /// No round trip at checkout: `is_valid` checks `is_closed()` only.
        Fast = "fast",
        /// A round trip for stale connections. Default.
        #[default]
        Verified = "verified",
        /// As `verified`, and every return runs the clean-up batch
        /// (`CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL;
        /// UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP;
        /// DISCARD SEQUENCES;` and deallocating SQL-level prepared
        /// statements), whatever the connection saw: for borrowers that
        /// change session state in ways the tracking cannot see (functions
        /// that call `set_config`, statements sent through `Deref` to the
        /// client's streaming methods). The statement cache survives: the
        /// batch leaves protocol-level prepared statements alone.
        Clean = "clean",
    }
}
