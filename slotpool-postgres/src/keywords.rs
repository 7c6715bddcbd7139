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

slotpool::keyword_enum! {
    /// `postgres.pooler`: what sits between the pool and PostgreSQL.
    /// Default: [`PoolerMode::None`].
    ///
    /// With `transaction` (PgBouncer `pool_mode = transaction`, pgcat,
    /// PgDog, Supavisor in transaction mode) each transaction, and each
    /// statement outside one, may run on a different server connection, so
    /// nothing may be kept in a session:
    ///
    /// | what | with `transaction` |
    /// |---|---|
    /// | `prepare`, `prepare_cached` (named protocol-level statements) | refused (a [`PoolerViolation`](crate::PoolerViolation) error, nothing sent): a statement prepared on one server connection is not on the next (`prepared statement "s3" does not exist`), and two processes' `s3` collide (`already exists`) |
    /// | `query`/`execute`/... with SQL text | sent as one unnamed Parse/Bind/Execute/Sync (tokio-postgres's `query_typed`): one round trip, nothing left on the server. With parameters, their types are learnt once per SQL text and connection inside a `BEGIN`/`COMMIT` that pins one server connection, and kept in the statement cache (`statement_cache_capacity` entries) |
    /// | `query_typed`, `execute_typed` | unchanged: already unnamed |
    /// | `SET` (not `SET LOCAL`), `LISTEN`, session advisory locks, temporary tables, `WITH HOLD` cursors, `LOAD`, SQL `PREPARE`, `DISCARD ALL` | refused before they are sent: they would stay on a server connection that other clients get next |
    /// | `statement_timeout`, `idle_in_transaction_session_timeout` settings | rejected at validation: they are startup options, which PgBouncer refuses (`unsupported startup parameter: options`); set them per role (`ALTER ROLE app SET statement_timeout = '5s'`) or `SET LOCAL` them in a transaction |
    /// | `recycling = "clean"` | rejected at validation: its clean-up batch would run on whichever server connection the pooler picks |
    /// | reset on return | only `ROLLBACK` of a transaction left open (the pooler would pin the server connection to this client otherwise); never `DISCARD ALL` or the clean-up batch |
    pub enum PoolerMode {
        /// Connections go straight to PostgreSQL, or through a pooler in
        /// session mode: every session feature works.
        #[default]
        None = "none",
        /// Through a pooler in transaction mode: no named prepared
        /// statements and no session state (see the table above).
        Transaction = "transaction",
    }
}
