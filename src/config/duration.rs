//! Human-readable durations (`"30s"`, `"500ms"`, `"1h 30m"`) via `humantime`,
//! and the words that switch an optional duration off.
//!
//! Owns: the duration spellings every layer shares. It may not know which
//! setting a duration belongs to.

use std::time::Duration;

/// Words (case-insensitive) that set an optional duration to `None`.
pub(crate) const OFF_WORDS: [&str; 3] = ["off", "none", "disabled"];

/// How an unset optional duration is written back.
pub(crate) const OFF: &str = "off";

/// Parses a humantime duration such as `"30s"` or `"1h 30m"`.
pub(crate) fn parse(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text.trim())
}

/// Parses a duration or one of [`OFF_WORDS`].
pub(crate) fn parse_optional(text: &str) -> Result<Option<Duration>, humantime::DurationError> {
    let text = text.trim();
    if OFF_WORDS.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        Ok(None)
    } else {
        parse(text).map(Some)
    }
}

/// Formats a duration so that [`parse`] gives it back exactly.
pub(crate) fn format(duration: Duration) -> String {
    humantime::format_duration(duration).to_string()
}

/// Formats an optional duration; `None` becomes [`OFF`].
pub(crate) fn format_optional(duration: Option<Duration>) -> String {
    duration.map_or_else(|| OFF.to_owned(), format)
}
