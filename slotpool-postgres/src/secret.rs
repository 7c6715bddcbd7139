//! [`Secret`]: a password or token that never prints.
//!
//! Owns: the one place a secret's text can be read ([`Secret::expose`]), the
//! redaction marker, and how a secret is written as a setting (redacted).
//! It may not log, and it has no `Display`: the only way to print one is to
//! call `expose` on purpose.

use std::fmt;

use slotpool::config::BoxError;
use slotpool::config::schema::{SettingValue, Value};

/// What a secret is written as wherever it would otherwise be shown:
/// `Debug` output, serialised configuration, `config show`, validation
/// messages and the connection strings in errors.
pub const REDACTED: &str = "[redacted]";

/// A password or access token. `Debug` prints [`REDACTED`]; there is no
/// `Display`. An empty secret means "no password".
///
/// As a setting (`postgres.password`) it is written redacted, so a
/// serialised configuration never holds the password; reading the marker
/// back is an error naming the setting, so a redacted dump cannot turn into
/// a wrong password silently. Set the password from the environment
/// (`SLOTPOOL_POSTGRES_PASSWORD`) or a secret store instead of a file.
///
/// The text is not zeroed on drop: tokio-postgres keeps its own copy in the
/// `tokio_postgres::Config` of each connect, so zeroing one copy would
/// promise more than it gives.
///
#[cfg_attr(
    not(feature = "loom"),
    doc = r#"
```
use slotpool_postgres::Secret;

let secret = Secret::new("hunter2");
assert_eq!(format!("{secret:?}"), "Secret([redacted])");
assert_eq!(secret.expose(), "hunter2");
```
"#
)]
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret's text, for handing to the server. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty (no password).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            write!(f, "Secret({REDACTED})")
        }
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Self {
        Self(text)
    }
}

/// The error for a redaction marker read back as a value.
pub(crate) fn redacted_value_error(what: &str) -> BoxError {
    format!(
        "{REDACTED} is the redaction marker written in place of {what}, not a value; \
         set the real value (e.g. from an environment variable)"
    )
    .into()
}

impl SettingValue for Secret {
    fn expected() -> String {
        format!(
            "a password string (\"{REDACTED}\" is the redaction marker written in place of one, \
             not a password: set the real one, e.g. with SLOTPOOL_POSTGRES_PASSWORD)"
        )
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        if text == REDACTED {
            return Err(Some(redacted_value_error("a password")));
        }
        Ok(Self::new(text))
    }

    /// Any scalar: a password written unquoted in TOML (`password = 1234`)
    /// is taken as its literal text, so no decoding error can echo it.
    fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::String(text) => Self::from_text(text),
            other => Ok(Self::new(other.literal())),
        }
    }

    fn to_value(&self) -> Value {
        if self.0.is_empty() {
            Value::String(String::new())
        } else {
            Value::String(REDACTED.to_owned())
        }
    }
}
