//! Connection strings, both libpq forms (`key=value ...` and
//! `postgresql://user:password@host:port/dbname?key=value`), read the way
//! tokio-postgres reads them, so that parameters tokio-postgres does not
//! know (`sslmode=verify-full`, `sslrootcert`) and the password can be
//! taken out before it sees the text.
//!
//! Owns: the tokenizer, taking parameters and the password out, and the
//! redacted form of a string. It may not decide what a parameter means, and
//! its errors never quote the text (a password with a stray space would
//! otherwise be printed).

use std::ops::Range;

use crate::secret::REDACTED;

/// Why a connection string could not be read. Messages give byte offsets,
/// never the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConnStringError(String);

/// The two libpq forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    KeyValue,
    Url,
}

/// One `key=value` parameter: its decoded key and value, and where the
/// whole `key=value` text sits.
#[derive(Debug, Clone)]
struct Param {
    key: String,
    value: String,
    span: Range<usize>,
}

/// A tokenized connection string.
#[derive(Debug, Clone)]
pub(crate) struct ConnString<'a> {
    text: &'a str,
    format: Format,
    params: Vec<Param>,
    /// URL form: where the query string starts (after `?`), if any.
    query_start: Option<usize>,
    /// URL form: the `:password` part of the user info (with its colon),
    /// and the decoded password.
    url_password: Option<(Range<usize>, String)>,
}

impl<'a> ConnString<'a> {
    /// Tokenizes `text` as tokio-postgres would: a URL if it starts with
    /// `postgres://` or `postgresql://`, else `key=value` pairs.
    pub(crate) fn parse(text: &'a str) -> Result<Self, ConnStringError> {
        if ["postgres://", "postgresql://"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
        {
            parse_url(text)
        } else {
            Ok(Self {
                text,
                format: Format::KeyValue,
                params: parse_key_values(text)?,
                query_start: None,
                url_password: None,
            })
        }
    }

    /// The value of the last `key` parameter (the one tokio-postgres keeps),
    /// or, for `password`, the URL's user-info password.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let param = self
            .params
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str());
        match (param, key) {
            (None, "password") => self.url_password.as_ref().map(|(_, pw)| pw.as_str()),
            (param, _) => param,
        }
    }

    /// Whether any `key` parameter is present.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The text without the `keys` parameters (and without the URL's
    /// user-info password when `keys` holds `password`).
    pub(crate) fn without(&self, keys: &[&str]) -> String {
        let drop_password = keys.contains(&"password");
        let mut removed: Vec<Range<usize>> = self
            .params
            .iter()
            .filter(|p| keys.contains(&p.key.as_str()))
            .map(|p| p.span.clone())
            .collect();
        if drop_password {
            if let Some((span, _)) = &self.url_password {
                removed.push(span.clone());
            }
        }
        match self.format {
            Format::KeyValue => {
                // Each removed parameter takes the blanks after it along.
                let widened: Vec<Range<usize>> = removed
                    .iter()
                    .map(|r| {
                        let rest = &self.text[r.end..];
                        r.start..r.end + (rest.len() - rest.trim_start().len())
                    })
                    .collect();
                cut(self.text, &widened)
            }
            Format::Url => self.rebuild_url(&removed),
        }
    }

    /// The text with every password replaced by [`REDACTED`].
    pub(crate) fn redacted(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        let mut spans: Vec<(Range<usize>, String)> = self
            .params
            .iter()
            .filter(|p| p.key == "password")
            .map(|p| (p.span.clone(), format!("password={REDACTED}")))
            .collect();
        if let Some((span, _)) = &self.url_password {
            spans.push((span.clone(), format!(":{REDACTED}")));
        }
        spans.sort_by_key(|(span, _)| span.start);
        let mut at = 0;
        for (span, replacement) in spans {
            out.push_str(&self.text[at..span.start]);
            out.push_str(&replacement);
            at = span.end;
        }
        out.push_str(&self.text[at..]);
        out
    }

    /// A URL without the `removed` spans; query parameters are re-joined
    /// with `&` and an empty query loses its `?`.
    fn rebuild_url(&self, removed: &[Range<usize>]) -> String {
        let is_removed = |span: &Range<usize>| removed.iter().any(|r| r == span);
        let head_end = self.query_start.map_or(self.text.len(), |q| q - 1);
        let head_cuts: Vec<Range<usize>> = removed
            .iter()
            .filter(|r| r.end <= head_end)
            .cloned()
            .collect();
        let mut out = cut(&self.text[..head_end], &head_cuts);
        let kept: Vec<&str> = self
            .params
            .iter()
            .filter(|p| !is_removed(&p.span))
            .map(|p| &self.text[p.span.clone()])
            .collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        out
    }
}

/// `text` without the `removed` byte ranges.
fn cut(text: &str, removed: &[Range<usize>]) -> String {
    let mut sorted = removed.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for range in sorted {
        out.push_str(&text[at..range.start]);
        at = range.end;
    }
    out.push_str(&text[at..]);
    out.trim().to_owned()
}

/// `key = value` pairs separated by whitespace; values may be single-quoted,
/// and a backslash takes the next character literally (libpq's rules, as
/// tokio-postgres implements them).
fn parse_key_values(text: &str) -> Result<Vec<Param>, ConnStringError> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end = text.len();
    let at = |i: usize| chars.get(i).map_or(end, |&(pos, _)| pos);
    let mut params = Vec::new();
    let mut i = 0;
    loop {
        while chars.get(i).is_some_and(|(_, c)| c.is_whitespace()) {
            i += 1;
        }
        let start = i;
        while chars
            .get(i)
            .is_some_and(|&(_, c)| !c.is_whitespace() && c != '=')
        {
            i += 1;
        }
        if i == start {
            if i < chars.len() {
                return Err(ConnStringError(format!(
                    "expected a keyword at byte {}",
                    at(i)
                )));
            }
            return Ok(params);
        }
        let key = text[at(start)..at(i)].to_owned();
        while chars.get(i).is_some_and(|(_, c)| c.is_whitespace()) {
            i += 1;
        }
        if chars.get(i).map(|&(_, c)| c) != Some('=') {
            return Err(ConnStringError(format!(
                "expected `=` after the keyword ending at byte {} (a value with spaces \
                 must be single-quoted)",
                at(start) + key.len()
            )));
        }
        i += 1;
        while chars.get(i).is_some_and(|(_, c)| c.is_whitespace()) {
            i += 1;
        }
        let mut value = String::new();
        if chars.get(i).map(|&(_, c)| c) == Some('\'') {
            i += 1;
            loop {
                match chars.get(i).map(|&(_, c)| c) {
                    None => {
                        return Err(ConnStringError(format!(
                            "unterminated quoted value for the keyword at byte {}",
                            at(start)
                        )));
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        if let Some(&(_, next)) = chars.get(i + 1) {
                            value.push(next);
                        }
                        i += 2;
                    }
                    Some(c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(&(_, c)) = chars.get(i) {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    if let Some(&(_, next)) = chars.get(i + 1) {
                        value.push(next);
                    }
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
            if value.is_empty() {
                return Err(ConnStringError(format!(
                    "missing value for the keyword at byte {}",
                    at(start)
                )));
            }
        }
        params.push(Param {
            key,
            value,
            span: at(start)..at(i.min(chars.len())),
        });
    }
}

/// `postgres[ql]://[user[:password]@][hosts][/dbname][?key=value&...]`, as
/// tokio-postgres splits it: the user info ends at the first `@`, the query
/// starts at the first `?` after it.
fn parse_url(text: &str) -> Result<ConnString<'_>, ConnStringError> {
    let scheme_end = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[scheme_end..];
    let (url_password, after_creds) = match rest.find('@') {
        Some(at) => {
            let creds = &rest[..at];
            let password = creds.find(':').map(|colon| {
                let span = scheme_end + colon..scheme_end + at;
                let decoded = percent_decode(&creds[colon + 1..]);
                (span, decoded)
            });
            (password, scheme_end + at + 1)
        }
        None => (None, scheme_end),
    };
    let password = match url_password {
        Some((span, decoded)) => Some((span, decoded?)),
        None => None,
    };
    let query_start = text[after_creds..].find('?').map(|q| after_creds + q + 1);
    let mut params = Vec::new();
    if let Some(start) = query_start {
        let mut at = start;
        for piece in text[start..].split('&') {
            let span = at..at + piece.len();
            at += piece.len() + 1;
            if piece.is_empty() {
                continue;
            }
            let Some((key, value)) = piece.split_once('=') else {
                return Err(ConnStringError(format!(
                    "unterminated parameter at byte {} (expected `key=value`)",
                    span.start
                )));
            };
            params.push(Param {
                key: percent_decode(key)?,
                value: percent_decode(value)?,
                span,
            });
        }
    }
    Ok(ConnString {
        text,
        format: Format::Url,
        params,
        query_start,
        url_password: password,
    })
}

/// `%XX` decoding to UTF-8.
fn percent_decode(text: &str) -> Result<String, ConnStringError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ConnStringError("a percent-encoded part is not valid UTF-8".to_owned()))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn key_values_read_as_tokio_postgres_reads_them() {
        let s = ConnString::parse(
            "host=db port = 5432 password='a b\\'c' sslmode=verify-full  user=me\\ you",
        )
        .unwrap();
        assert_eq!(s.get("host"), Some("db"));
        assert_eq!(s.get("port"), Some("5432"));
        assert_eq!(s.get("password"), Some("a b'c"));
        assert_eq!(s.get("sslmode"), Some("verify-full"));
        assert_eq!(s.get("user"), Some("me you"));
        assert_eq!(
            s.without(&["sslmode", "password"]),
            "host=db port = 5432 user=me\\ you"
        );
        assert_eq!(
            s.redacted(),
            "host=db port = 5432 password=[redacted] sslmode=verify-full  user=me\\ you"
        );
    }

    #[test]
    fn urls_split_user_info_and_query_as_tokio_postgres_does() {
        let s = ConnString::parse(
            "postgresql://me:p%40ss?w@h1:5433,h2/db?sslmode=verify-ca&application_name=x&password=q",
        )
        .unwrap();
        assert_eq!(s.get("sslmode"), Some("verify-ca"));
        assert_eq!(s.get("application_name"), Some("x"));
        // The query's password is the last one, as tokio-postgres keeps it.
        assert_eq!(s.get("password"), Some("q"));
        assert_eq!(
            s.without(&["sslmode", "password"]),
            "postgresql://me@h1:5433,h2/db?application_name=x"
        );
        assert_eq!(
            s.redacted(),
            "postgresql://me:[redacted]@h1:5433,h2/db?sslmode=verify-ca&application_name=x&password=[redacted]"
        );
        let only = ConnString::parse("postgres://me:secret@h/db").unwrap();
        assert_eq!(only.get("password"), Some("secret"));
        assert_eq!(only.without(&["password"]), "postgres://me@h/db");
        let plain = ConnString::parse("postgres://h/db?sslmode=require").unwrap();
        assert_eq!(plain.without(&["sslmode"]), "postgres://h/db");
    }

    #[test]
    fn errors_never_quote_the_text() {
        for bad in [
            "password=hunter2 oops",
            "password='hunter2",
            "password= ",
            "postgres://h/db?hunter2",
        ] {
            let error = ConnString::parse(bad).unwrap_err().to_string();
            assert!(!error.contains("hunter2"), "{error}");
            assert!(!error.contains("oops"), "{error}");
        }
        assert!(ConnString::parse("").unwrap().params.is_empty());
    }
}
