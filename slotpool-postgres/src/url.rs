//! [`ConnectionString`]: the type of the `postgres.url` setting, a libpq
//! connection string whose password never prints.
//!
//! Owns: how the setting is shown (`Debug`, serialised, in validation
//! messages): with every password replaced by the redaction marker, and in
//! full only through [`ConnectionString::expose`]. It may not interpret the
//! parameters (`conn_string.rs` reads them, `target.rs` applies them).

use std::fmt;

use slotpool::config::BoxError;
use slotpool::config::schema::{SettingValue, Value};

use crate::conn_string::ConnString;
use crate::secret::{REDACTED, redacted_value_error};

/// Shown in place of a connection string that cannot be read, since its
/// password cannot be found to redact.
const UNREADABLE: &str = "[unreadable connection string, not shown]";

/// A libpq connection string, `key=value ...` or
/// `postgresql://user:password@host:port/dbname?key=value`. Empty means
/// unset. `Debug` and the setting's written form redact the password.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool_postgres::ConnectionString;

let url = ConnectionString::new("postgres://app:hunter2@db.internal/app");
assert_eq!(format!("{url:?}"), "\"postgres://app:[redacted]@db.internal/app\"");
```
"#
)]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ConnectionString(String);

impl ConnectionString {
    /// Wraps `text` (it is read when the configuration is validated).
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The full text, password included. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (unset).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The text with every password replaced by the redaction marker; the
    /// whole text is withheld if it cannot be read.
    #[must_use]
    pub fn redacted(&self) -> String {
        ConnString::parse(&self.0).map_or_else(|_| UNREADABLE.to_owned(), |s| s.redacted())
    }

    /// The redacted text as a TOML literal, for messages.
    pub(crate) fn redacted_literal(&self) -> String {
        Value::String(self.redacted()).literal()
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.redacted(), f)
    }
}

impl From<&str> for ConnectionString {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl SettingValue for ConnectionString {
    fn expected() -> String {
        format!(
            "a libpq connection string (\"host=... user=...\" or \"postgresql://...\"), or \"\" \
             for none; \"{REDACTED}\" is the redaction marker written in place of a password, \
             not a password"
        )
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        if text.contains(REDACTED) {
            return Err(Some(redacted_value_error("the url's password")));
        }
        Ok(Self::new(text))
    }

    fn to_value(&self) -> Value {
        Value::String(if self.0.is_empty() {
            String::new()
        } else {
            self.redacted()
        })
    }
}
