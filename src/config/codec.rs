//! One codec per field type: how a raw value (a TOML value from a file or the
//! text of an environment variable) becomes a typed field, and how a field is
//! written back as TOML. The file loader, the environment overlay,
//! [`PoolConfig::to_toml_string`](super::PoolConfig::to_toml_string) and the
//! serde impls all go through these codecs, so they accept and produce the
//! same spellings.

use std::time::Duration;

use serde::Serialize as _;
use toml::Value;

use super::duration;
use super::error::BoxError;

/// A setting's value before decoding.
#[derive(Debug, Clone)]
pub(crate) enum Raw {
    /// A value from a TOML document.
    Toml(Value),
    /// The text of an environment variable.
    Text(String),
}

impl Raw {
    /// The value as the user wrote it: a TOML literal for file values, the
    /// raw text for environment variables.
    pub(crate) fn shown(&self) -> String {
        match self {
            Raw::Toml(value) => literal(value),
            Raw::Text(text) => text.clone(),
        }
    }
}

/// Renders a TOML value as it would appear on the right of `key = `.
pub(crate) fn literal(value: &Value) -> String {
    let mut out = String::new();
    match value.serialize(toml::ser::ValueSerializer::new(&mut out)) {
        Ok(_) => out,
        Err(_) => format!("{value:?}"),
    }
}

/// Why a raw value could not be decoded.
pub(crate) struct Mismatch {
    /// What a valid value looks like.
    pub(crate) expected: String,
    /// The underlying parse error, if any.
    pub(crate) source: Option<BoxError>,
}

/// A type a setting can have.
pub(crate) trait SettingValue: Sized {
    /// What a valid value looks like, for error messages.
    fn expected() -> String;

    /// Decodes the text of an environment variable (and, for string-like
    /// types, a TOML string).
    fn from_text(text: &str) -> Result<Self, Option<BoxError>>;

    /// Decodes a TOML value. By default only strings are accepted, through
    /// [`SettingValue::from_text`].
    fn from_toml(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::String(text) => Self::from_text(text),
            _ => Err(None),
        }
    }

    /// Encodes the value as TOML; [`SettingValue::from_toml`] gives it back.
    fn to_toml(&self) -> Value;

    /// Decodes a raw value from either source.
    fn decode(raw: &Raw) -> Result<Self, Mismatch> {
        match raw {
            Raw::Toml(value) => Self::from_toml(value),
            Raw::Text(text) => Self::from_text(text),
        }
        .map_err(|source| Mismatch {
            expected: Self::expected(),
            source,
        })
    }
}

macro_rules! integer_codec {
    ($($ty:ty),* $(,)?) => {$(
        impl SettingValue for $ty {
            fn expected() -> String {
                format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX)
            }

            fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
                text.trim().parse().map_err(|e| Some(BoxError::from(e)))
            }

            fn from_toml(value: &Value) -> Result<Self, Option<BoxError>> {
                match value {
                    Value::Integer(int) => Self::try_from(*int).map_err(|e| Some(BoxError::from(e))),
                    _ => Err(None),
                }
            }

            fn to_toml(&self) -> Value {
                // TOML integers are i64; anything larger (only possible for
                // an invalid u64) is written as a string so nothing is lost.
                i64::try_from(*self).map_or_else(|_| Value::String(self.to_string()), Value::Integer)
            }
        }
    )*};
}

integer_codec!(u32, u64);

impl SettingValue for i64 {
    fn expected() -> String {
        format!("an integer from {} to {}", i64::MIN, i64::MAX)
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        text.trim().parse().map_err(|e| Some(BoxError::from(e)))
    }

    fn from_toml(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::Integer(int) => Ok(*int),
            _ => Err(None),
        }
    }

    fn to_toml(&self) -> Value {
        Value::Integer(*self)
    }
}

impl SettingValue for f64 {
    fn expected() -> String {
        "a number such as 0.025".to_owned()
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        text.trim().parse().map_err(|e| Some(BoxError::from(e)))
    }

    fn from_toml(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::Float(float) => Ok(*float),
            // Exact for the small integers (0, 1) this is meant for.
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(int) => Ok(*int as f64),
            _ => Err(None),
        }
    }

    fn to_toml(&self) -> Value {
        Value::Float(*self)
    }
}

impl SettingValue for bool {
    fn expected() -> String {
        "a boolean (true or false)".to_owned()
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        const TRUE: [&str; 4] = ["true", "1", "yes", "on"];
        const FALSE: [&str; 4] = ["false", "0", "no", "off"];
        let text = text.trim();
        if TRUE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
            Ok(true)
        } else if FALSE.iter().any(|word| text.eq_ignore_ascii_case(word)) {
            Ok(false)
        } else {
            Err(None)
        }
    }

    fn from_toml(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::Boolean(flag) => Ok(*flag),
            _ => Err(None),
        }
    }

    fn to_toml(&self) -> Value {
        Value::Boolean(*self)
    }
}

impl SettingValue for String {
    fn expected() -> String {
        "a string".to_owned()
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        Ok(text.to_owned())
    }

    fn to_toml(&self) -> Value {
        Value::String(self.clone())
    }
}

impl SettingValue for Duration {
    fn expected() -> String {
        r#"a duration such as "30s", "500ms" or "1h 30m""#.to_owned()
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        duration::parse(text).map_err(|e| Some(BoxError::from(e)))
    }

    fn to_toml(&self) -> Value {
        Value::String(duration::format(*self))
    }
}

impl SettingValue for Option<Duration> {
    fn expected() -> String {
        format!(
            r#"a duration such as "30s" or "10m", or one of {} to disable"#,
            quoted_list(&duration::OFF_WORDS)
        )
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        duration::parse_optional(text).map_err(|e| Some(BoxError::from(e)))
    }

    fn to_toml(&self) -> Value {
        Value::String(duration::format_optional(*self))
    }
}

/// How an unset `capacity` is written.
const AUTO: &str = "auto";

/// `capacity`: an integer, or `"auto"` for the derived default.
impl SettingValue for Option<u32> {
    fn expected() -> String {
        format!("{} or \"{AUTO}\"", u32::expected())
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        if text.trim().eq_ignore_ascii_case(AUTO) {
            Ok(None)
        } else {
            u32::from_text(text).map(Some)
        }
    }

    fn from_toml(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::String(text) if text.trim().eq_ignore_ascii_case(AUTO) => Ok(None),
            _ => u32::from_toml(value).map(Some),
        }
    }

    fn to_toml(&self) -> Value {
        self.map_or_else(|| Value::String(AUTO.to_owned()), |n| n.to_toml())
    }
}

/// `"a", "b" or "c"`.
pub(crate) fn quoted_list(words: &[&str]) -> String {
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == words.len() { " or " } else { ", " });
        }
        out.push('"');
        out.push_str(word);
        out.push('"');
    }
    out
}

/// `#[serde(with = "codec::serde_via")]`: serialises a field through its
/// [`SettingValue`] codec, so serde and the loader agree on spellings.
pub(crate) mod serde_via {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};

    use super::{SettingValue, literal};

    /// Serialises `value` as its TOML encoding.
    pub(crate) fn serialize<T: SettingValue, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.to_toml().serialize(serializer)
    }

    /// Deserialises a value written in its TOML encoding.
    pub(crate) fn deserialize<'de, T: SettingValue, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        let value = toml::Value::deserialize(deserializer)?;
        T::from_toml(&value).map_err(|source| {
            let mut message = format!(
                "invalid value {}: expected {}",
                literal(&value),
                T::expected()
            );
            if let Some(source) = source {
                message.push_str(&format!(" ({source})"));
            }
            D::Error::custom(message)
        })
    }
}
