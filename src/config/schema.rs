//! The settings schema: how a configuration type names its settings, how
//! each value is decoded from text and written back, and how backends add
//! their own sections.
//!
//! Owns: [`Value`], [`SettingValue`], [`Setting`] and [`Settings`]. It
//! depends on nothing outside `std`, so the core keeps one description of
//! every setting whether or not the TOML loader (feature `config`) or serde
//! (feature `serde`) is compiled in; both are driven by this table, as are
//! the validation messages. It may not read files or the environment.
//!
//! A backend crate describes its section with [`Setting::new`] (or the
//! [`settings!`](crate::settings) macro) and composes it with the pool's
//! settings with [`Setting::nest`]:
//!
//! ```
//! use slotpool::config::schema::{Setting, Settings};
//! use slotpool::{ConfigError, PoolConfig};
//!
//! #[derive(Debug, Clone, Default, PartialEq)]
//! struct CacheConfig { entries: u32 }
//!
//! #[derive(Debug, Clone, Default, PartialEq)]
//! struct Config { pool: PoolConfig, cache: CacheConfig }
//!
//! impl Settings for Config {
//!     fn settings() -> Vec<Setting<Self>> {
//!         let pool = PoolConfig::settings()
//!             .into_iter()
//!             .map(|s| s.nest(None, |c: &Config| &c.pool, |c| &mut c.pool));
//!         let cache = slotpool::settings![CacheConfig; entries]
//!             .into_iter()
//!             .map(|s| s.nest(Some("cache"), |c: &Config| &c.cache, |c| &mut c.cache));
//!         pool.chain(cache).collect()
//!     }
//!     fn problems(&self) -> Vec<ConfigError> {
//!         self.pool.problems()
//!     }
//! }
//!
//! let names: Vec<String> = Config::settings().iter().map(|s| s.name().to_owned()).collect();
//! assert!(names.contains(&"max_size".to_owned()));
//! assert!(names.contains(&"cache.entries".to_owned()));
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::duration;
use super::error::{BoxError, ConfigError};

/// Prefix of every environment variable that overrides a setting.
pub const ENV_PREFIX: &str = "SLOTPOOL_";

/// A setting's value in a form every layer understands: what a TOML file
/// holds for a scalar, and what the text of an environment variable decodes
/// to.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// `true` or `false`.
    Boolean(bool),
    /// A signed integer.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// A string (durations, keywords, paths).
    String(String),
}

impl Value {
    /// The value as a TOML literal, as it appears right of `key = `: `10`,
    /// `"30s"`, `0.025`, `true`.
    #[must_use]
    pub fn literal(&self) -> String {
        match self {
            Value::Boolean(flag) => flag.to_string(),
            Value::Integer(int) => int.to_string(),
            Value::Float(float) => float_literal(*float),
            Value::String(text) => string_literal(text),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.literal())
    }
}

/// A TOML float: always with a fraction or exponent, `inf`/`nan` spelled
/// as TOML spells them.
fn float_literal(float: f64) -> String {
    if float.is_nan() {
        return "nan".to_owned();
    }
    if float.is_infinite() {
        return if float > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    // `{:?}` prints the shortest text that reads back exactly, and always
    // with a `.` or an exponent ("1.0", "0.025", "1e300").
    format!("{float:?}")
}

/// A TOML basic string with the escapes TOML requires.
fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A type a setting can have: how it is decoded from a [`Value`] or the
/// text of an environment variable, and written back so that decoding gives
/// it back.
pub trait SettingValue: Sized {
    /// What a valid value looks like, for error messages.
    fn expected() -> String;

    /// Decodes the text of an environment variable (and, for string-like
    /// types, a string value). `Err(Some(cause))` carries a parse error.
    fn from_text(text: &str) -> Result<Self, Option<BoxError>>;

    /// Decodes a value from a file. By default only strings are accepted,
    /// through [`from_text`](Self::from_text).
    fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::String(text) => Self::from_text(text),
            _ => Err(None),
        }
    }

    /// Encodes the value; [`from_value`](Self::from_value) gives it back.
    fn to_value(&self) -> Value;

    /// The value as a TOML literal, for messages (`"30s"`, `10`).
    fn shown(&self) -> String {
        self.to_value().literal()
    }
}

macro_rules! integer_setting_value {
    ($($ty:ty),* $(,)?) => {$(
        impl SettingValue for $ty {
            fn expected() -> String {
                format!("an integer from {} to {}", <$ty>::MIN, <$ty>::MAX)
            }

            fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
                text.trim().parse().map_err(|e| Some(BoxError::from(e)))
            }

            fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
                match value {
                    Value::Integer(int) => Self::try_from(*int).map_err(|e| Some(BoxError::from(e))),
                    _ => Err(None),
                }
            }

            fn to_value(&self) -> Value {
                // Integers are i64 in a file; anything larger (only possible
                // for an invalid u64) is written as a string so nothing is lost.
                i64::try_from(*self).map_or_else(|_| Value::String(self.to_string()), Value::Integer)
            }
        }
    )*};
}

integer_setting_value!(u32, u64);

impl SettingValue for i64 {
    fn expected() -> String {
        format!("an integer from {} to {}", i64::MIN, i64::MAX)
    }

    fn from_text(text: &str) -> Result<Self, Option<BoxError>> {
        text.trim().parse().map_err(|e| Some(BoxError::from(e)))
    }

    fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::Integer(int) => Ok(*int),
            _ => Err(None),
        }
    }

    fn to_value(&self) -> Value {
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

    fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::Float(float) => Ok(*float),
            // Exact for the small integers (0, 1) this is meant for.
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(int) => Ok(*int as f64),
            _ => Err(None),
        }
    }

    fn to_value(&self) -> Value {
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

    fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::Boolean(flag) => Ok(*flag),
            _ => Err(None),
        }
    }

    fn to_value(&self) -> Value {
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

    fn to_value(&self) -> Value {
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

    fn to_value(&self) -> Value {
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

    fn to_value(&self) -> Value {
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

    fn from_value(value: &Value) -> Result<Self, Option<BoxError>> {
        match value {
            Value::String(text) if text.trim().eq_ignore_ascii_case(AUTO) => Ok(None),
            _ => u32::from_value(value).map(Some),
        }
    }

    fn to_value(&self) -> Value {
        self.map_or_else(|| Value::String(AUTO.to_owned()), |n| n.to_value())
    }
}

/// `"a", "b" or "c"`: a list of keywords for an [`SettingValue::expected`]
/// text.
#[must_use]
pub fn quoted_list(words: &[&str]) -> String {
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

/// A setting's value before decoding (only the loader and serde decode).
#[derive(Debug, Clone)]
#[cfg_attr(not(any(feature = "config", feature = "serde")), allow(dead_code))]
pub(crate) enum Raw {
    /// A scalar from a file.
    Value(Value),
    /// The text of an environment variable.
    #[cfg_attr(not(feature = "config"), allow(dead_code))]
    Text(String),
    /// A file value no setting can hold (a table, an array, a date).
    Other,
}

/// Why a raw value could not be decoded.
#[cfg_attr(not(any(feature = "config", feature = "serde")), allow(dead_code))]
pub(crate) struct Mismatch {
    /// What a valid value looks like.
    pub(crate) expected: String,
    /// The underlying parse error, if any.
    pub(crate) source: Option<BoxError>,
}

type Apply<T> = Arc<dyn Fn(&mut T, &Raw) -> Result<(), Mismatch> + Send + Sync>;
type Render<T> = Arc<dyn Fn(&T) -> Value + Send + Sync>;

/// One setting of a configuration type `T`: its dotted name and how its
/// value is read from and written to a `T`.
pub struct Setting<T> {
    name: Cow<'static, str>,
    apply: Apply<T>,
    render: Render<T>,
}

impl<T> Clone for Setting<T> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            apply: self.apply.clone(),
            render: self.render.clone(),
        }
    }
}

impl<T> fmt::Debug for Setting<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Setting").field("name", &self.name).finish()
    }
}

impl<T: 'static> Setting<T> {
    /// The setting `name` (dotted inside `T`, e.g. `max_size`), stored in
    /// the field `field` / `field_mut` reach.
    pub fn new<V: SettingValue + 'static>(
        name: &'static str,
        field: fn(&T) -> &V,
        field_mut: fn(&mut T) -> &mut V,
    ) -> Self {
        Self {
            name: Cow::Borrowed(name),
            apply: Arc::new(move |config, raw| {
                let decoded = match raw {
                    Raw::Value(value) => V::from_value(value),
                    Raw::Text(text) => V::from_text(text),
                    Raw::Other => Err(None),
                };
                *field_mut(config) = decoded.map_err(|source| Mismatch {
                    expected: V::expected(),
                    source,
                })?;
                Ok(())
            }),
            render: Arc::new(move |config| field(config).to_value()),
        }
    }

    /// This setting as one of an enclosing configuration `O` that holds a
    /// `T` (in `field`), under `section` (`Some("sqlite")` makes `path`
    /// `sqlite.path`; `None` keeps the name at top level).
    pub fn nest<O: 'static>(
        self,
        section: Option<&'static str>,
        field: fn(&O) -> &T,
        field_mut: fn(&mut O) -> &mut T,
    ) -> Setting<O> {
        let name = match section {
            Some(section) => Cow::Owned(format!("{section}.{}", self.name)),
            None => self.name,
        };
        let (apply, render) = (self.apply, self.render);
        Setting {
            name,
            apply: Arc::new(move |outer, raw| apply(field_mut(outer), raw)),
            render: Arc::new(move |outer| render(field(outer))),
        }
    }
}

impl<T> Setting<T> {
    /// The dotted name, e.g. `max_size` or `sqlite.path`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The setting's current value in `config`.
    #[must_use]
    pub fn value(&self, config: &T) -> Value {
        (self.render)(config)
    }

    /// Decodes `raw` and stores it in `config`.
    #[cfg_attr(not(any(feature = "config", feature = "serde")), allow(dead_code))]
    pub(crate) fn apply(&self, config: &mut T, raw: &Raw) -> Result<(), Mismatch> {
        (self.apply)(config, raw)
    }

    /// The table the setting lives in (`Some("sqlite")`), or `None` at top level.
    #[must_use]
    pub fn section(&self) -> Option<&str> {
        self.name.rsplit_once('.').map(|(section, _)| section)
    }

    /// The last component of the name (`path` for `sqlite.path`).
    #[must_use]
    pub fn leaf(&self) -> &str {
        self.name
            .rsplit_once('.')
            .map_or(&*self.name, |(_, leaf)| leaf)
    }

    /// The environment variable overriding it, e.g. `SLOTPOOL_SQLITE_PATH`.
    #[must_use]
    pub fn env_var(&self) -> String {
        format!(
            "{ENV_PREFIX}{}",
            self.name.replace('.', "_").to_ascii_uppercase()
        )
    }
}

/// A configuration type described by a table of [`Setting`]s: the pool's
/// [`PoolConfig`](super::PoolConfig), or a backend's configuration that
/// nests it. The loader (feature `config`), serde (feature `serde`) and the
/// command line's `config show` all work from this table.
pub trait Settings: Default + Clone + Send + Sync + 'static {
    /// Every setting, in the order they are shown.
    fn settings() -> Vec<Setting<Self>>;

    /// Every broken rule (empty when valid), each a
    /// [`ConfigError::Invalid`] naming the setting, its value and the rule.
    fn problems(&self) -> Vec<ConfigError>;

    /// Fills in the derived defaults the user did not set (`is_set` names
    /// the settings they did) and says which changed and why; see
    /// [`PoolConfig::derive_defaults`](super::PoolConfig::derive_defaults).
    /// Default: nothing is derived.
    fn derive_defaults(&mut self, is_set: &dyn Fn(&str) -> bool) -> Vec<super::Derived> {
        let _ = is_set;
        Vec::new()
    }

    /// The first broken rule, if any.
    fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }
}

/// The settings named by their field paths in `T`: `settings![T; a, b.c]`
/// gives `Setting::new("a", ...)` and `Setting::new("b.c", ...)`.
#[macro_export]
macro_rules! settings {
    ($ty:ty; $($head:ident $(. $tail:ident)*),* $(,)?) => {
        vec![$(
            $crate::config::schema::Setting::<$ty>::new(
                concat!(stringify!($head) $(, ".", stringify!($tail))*),
                |config: &$ty| &config.$head$(.$tail)*,
                |config: &mut $ty| &mut config.$head$(.$tail)*,
            ),
        )*]
    };
}

/// What a backend's section adds to the pool's settings it is composed
/// with in [`pool_and_section!`]: rules that span both parts, and pool
/// defaults derived from the section (slotpool-postgres's pooler mode keeps
/// the pool's lifetimes below the pooler's timeouts). Both default to none.
pub trait SectionRules {
    /// Broken rules that involve the pool's settings and this section.
    fn pool_problems(&self, _pool: &crate::PoolConfig) -> Vec<ConfigError> {
        Vec::new()
    }

    /// Derives pool settings the user did not set (`is_set` says which
    /// they did) from this section, before the pool's own derivation runs;
    /// returns what it derived.
    fn derive_pool_defaults(
        &self,
        _pool: &mut crate::PoolConfig,
        _is_set: &dyn Fn(&str) -> bool,
    ) -> Vec<super::Derived> {
        Vec::new()
    }
}

/// The names of the settings of `config` whose value differs from the
/// built-in default: what a configuration built in code set.
pub fn differs_from_default<T: Settings>(config: &T) -> Vec<String> {
    super::derive::differs_from_default(config)
}

/// A backend's whole configuration, `$config { pool, $section }`: the
/// pool's [`PoolConfig`](crate::PoolConfig) at the top level of a profile
/// and the backend's settings (a [`Settings`] type) in the `[$section]`
/// table. Implements [`Settings`] for it (the pool's settings, then the
/// section's; the rules that span both parts, then each part's problems;
/// the section's derived pool defaults, then the pool's own) and writes its
/// inherent `problems`, `validate` and `derive_unset_defaults`. The section
/// type implements [`SectionRules`] (an empty impl takes no cross-part
/// rule).
///
/// ```
/// use slotpool::PoolConfig;
/// use slotpool::config::schema::{SectionRules, Setting, Settings};
///
/// #[derive(Debug, Clone, Default, PartialEq)]
/// struct CacheConfig { entries: u32 }
///
/// impl Settings for CacheConfig {
///     fn settings() -> Vec<Setting<Self>> {
///         slotpool::settings![CacheConfig; entries]
///     }
///     fn problems(&self) -> Vec<slotpool::ConfigError> {
///         Vec::new()
///     }
/// }
///
/// impl SectionRules for CacheConfig {}
///
/// #[derive(Debug, Clone, Default, PartialEq)]
/// struct Config { pool: PoolConfig, cache: CacheConfig }
///
/// slotpool::pool_and_section!(Config { pool, cache: CacheConfig });
///
/// assert!(Config::settings().iter().any(|s| s.name() == "cache.entries"));
/// assert!(Config::default().problems().is_empty());
/// ```
#[macro_export]
macro_rules! pool_and_section {
    ($config:ty { pool, $section:ident: $section_ty:ty $(,)? }) => {
        impl $config {
            /// Every broken rule of both parts (empty when valid).
            #[must_use]
            pub fn problems(&self) -> ::std::vec::Vec<$crate::ConfigError> {
                <Self as $crate::config::schema::Settings>::problems(self)
            }

            /// The first broken rule, if any.
            pub fn validate(&self) -> ::std::result::Result<(), $crate::ConfigError> {
                <Self as $crate::config::schema::Settings>::validate(self)
            }

            /// Fills in the derived defaults of a configuration built in
            /// code, where a pool setting counts as set when it differs
            /// from its built-in default (as
            /// `PoolConfig::derive_unset_defaults`). `load` does this
            /// itself, knowing what the file and environment set. Returns
            /// what was derived.
            pub fn derive_unset_defaults(&mut self) -> ::std::vec::Vec<$crate::config::Derived> {
                let set = $crate::config::schema::differs_from_default(&self.pool);
                <Self as $crate::config::schema::Settings>::derive_defaults(self, &|name| {
                    set.iter().any(|set| set == name)
                })
            }
        }

        impl $crate::config::schema::Settings for $config {
            fn settings() -> ::std::vec::Vec<$crate::config::schema::Setting<Self>> {
                let pool = <$crate::PoolConfig as $crate::config::schema::Settings>::settings()
                    .into_iter()
                    .map(|s| s.nest(None, |c: &$config| &c.pool, |c| &mut c.pool));
                let section = <$section_ty as $crate::config::schema::Settings>::settings()
                    .into_iter()
                    .map(|s| {
                        s.nest(
                            Some(stringify!($section)),
                            |c: &$config| &c.$section,
                            |c| &mut c.$section,
                        )
                    });
                pool.chain(section).collect()
            }

            fn problems(&self) -> ::std::vec::Vec<$crate::ConfigError> {
                // The rules across both parts first: a pool setting the
                // user set against the section is the cause when a derived
                // one then conflicts with it.
                let mut problems =
                    $crate::config::schema::SectionRules::pool_problems(&self.$section, &self.pool);
                problems.extend($crate::config::schema::Settings::problems(&self.pool));
                problems.extend($crate::config::schema::Settings::problems(&self.$section));
                problems
            }

            fn derive_defaults(
                &mut self,
                is_set: &dyn Fn(&str) -> bool,
            ) -> ::std::vec::Vec<$crate::config::Derived> {
                // The section's bounds first, so the pool's own rules see
                // them; what the section derived then counts as set. The
                // pool's settings keep their names at the top level.
                let mut derived = $crate::config::schema::SectionRules::derive_pool_defaults(
                    &self.$section,
                    &mut self.pool,
                    is_set,
                );
                let by_section: ::std::vec::Vec<&'static str> =
                    derived.iter().map(|derived| derived.setting).collect();
                derived.extend($crate::config::schema::Settings::derive_defaults(
                    &mut self.pool,
                    &|name| is_set(name) || by_section.contains(&name),
                ));
                derived
            }
        }
    };
}

/// Collects rule violations for [`Settings::problems`].
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    /// Records that `setting` (holding `value`) breaks `rule` unless `ok`.
    pub fn require<V: SettingValue>(
        &mut self,
        ok: bool,
        setting: &'static str,
        value: &V,
        rule: impl FnOnce() -> String,
    ) {
        if !ok {
            self.0.push(ConfigError::Invalid {
                setting,
                value: value.shown(),
                rule: rule(),
            });
        }
    }

    /// Adds problems found elsewhere (a nested section's).
    pub fn extend(&mut self, problems: impl IntoIterator<Item = ConfigError>) {
        self.0.extend(problems);
    }

    /// The violations, in the order found.
    #[must_use]
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }
}

/// Defines a keyword-valued setting type: the enum, `ALL`, `as_str`,
/// `Display` and its [`SettingValue`] codec, from one list. Words are
/// matched case-insensitively on input.
#[macro_export]
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
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub enum $name {
            $(
                $(#[$variant_meta])*
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

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::config::schema::SettingValue for $name {
            fn expected() -> String {
                format!("one of {}", $crate::config::schema::quoted_list(&[$($word),+]))
            }

            fn from_text(text: &str) -> Result<Self, Option<$crate::config::BoxError>> {
                let text = text.trim();
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(text))
                    .ok_or(None)
            }

            fn to_value(&self) -> $crate::config::schema::Value {
                $crate::config::schema::Value::String(self.as_str().to_owned())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_read_back_as_toml_would_write_them() {
        assert_eq!(Value::Integer(10).literal(), "10");
        assert_eq!(Value::Float(0.025).literal(), "0.025");
        assert_eq!(Value::Float(1.0).literal(), "1.0");
        assert_eq!(Value::Float(f64::NAN).literal(), "nan");
        assert_eq!(
            Value::String("a\"b\\c\n".into()).literal(),
            r#""a\"b\\c\n""#
        );
        assert_eq!(Value::String(String::new()).literal(), r#""""#);
        assert_eq!(Value::String("a\0b".into()).literal(), r#""a\u0000b""#);
    }

    #[test]
    fn nesting_prefixes_the_name_and_reaches_the_field() {
        #[derive(Default)]
        struct Inner {
            size: u32,
        }
        #[derive(Default)]
        struct Outer {
            inner: Inner,
        }
        let setting = Setting::<Inner>::new("size", |c| &c.size, |c| &mut c.size).nest(
            Some("inner"),
            |o: &Outer| &o.inner,
            |o| &mut o.inner,
        );
        assert_eq!(setting.name(), "inner.size");
        assert_eq!(setting.env_var(), "SLOTPOOL_INNER_SIZE");
        let mut outer = Outer::default();
        assert!(setting.apply(&mut outer, &Raw::Text("7".into())).is_ok());
        assert_eq!(outer.inner.size, 7);
        assert_eq!(setting.value(&outer), Value::Integer(7));
    }
}
