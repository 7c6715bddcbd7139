//! Channel names: which are accepted, and how one is written into a
//! `LISTEN`/`UNLISTEN` statement.
//!
//! Owns: the rules a channel name must meet and its quoting as an SQL
//! identifier. It may not send anything.
//!
//! A channel name is any text: it is always sent as a double-quoted
//! identifier with each `"` doubled, so case, spaces, quotes and unicode
//! reach the server as written (and match what `pg_notify('name', ..)`
//! sends). It is never formatted into SQL raw.

use super::error::ListenerError;

/// The longest channel name the server keeps whole, in bytes (a stock
/// build's `NAMEDATALEN` less one). A longer identifier would be truncated
/// by the server (with only a NOTICE), so notifications would arrive under
/// a name the listener never asked for.
pub const MAX_CHANNEL_LEN: usize = 63;

/// Checks `channel` against the rules above.
pub(super) fn check(channel: &str) -> Result<(), ListenerError> {
    let invalid = |reason: &'static str| ListenerError::InvalidChannel {
        channel: channel.to_owned(),
        reason,
    };
    if channel.is_empty() {
        return Err(invalid("a channel name cannot be empty"));
    }
    if channel.contains('\0') {
        return Err(invalid("a channel name cannot contain a NUL character"));
    }
    if channel.len() > MAX_CHANNEL_LEN {
        return Err(invalid(
            "a channel name is at most 63 bytes (the server truncates longer identifiers)",
        ));
    }
    Ok(())
}

/// `channel` as a quoted identifier: `"` + the name with `"` doubled + `"`.
pub(super) fn quoted(channel: &str) -> String {
    let mut sql = String::with_capacity(channel.len() + 2);
    sql.push('"');
    for c in channel.chars() {
        if c == '"' {
            sql.push('"');
        }
        sql.push(c);
    }
    sql.push('"');
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled_and_the_rest_kept() {
        assert_eq!(quoted("orders"), "\"orders\"");
        assert_eq!(quoted("Mixed Case"), "\"Mixed Case\"");
        assert_eq!(
            quoted("a\"; DROP TABLE x; --"),
            "\"a\"\"; DROP TABLE x; --\""
        );
        assert_eq!(quoted("ünï\"cødé ✓"), "\"ünï\"\"cødé ✓\"");
    }

    #[test]
    fn empty_nul_and_long_names_are_refused() {
        assert!(check("").is_err());
        assert!(check("a\0b").is_err());
        assert!(check(&"x".repeat(63)).is_ok());
        assert!(check(&"x".repeat(64)).is_err());
        // 21 three-byte characters: 63 bytes.
        assert!(check(&"✓".repeat(21)).is_ok());
        assert!(check(&"✓".repeat(22)).is_err());
    }
}
