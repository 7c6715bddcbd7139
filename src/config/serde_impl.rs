//! serde for configuration types (feature `serde`), driven by the settings
//! table, so serde, the TOML loader and `config show` accept and write the
//! same spellings (`"30s"`, `"off"`, `"auto"`).
//!
//! Owns: [`serialize`] and [`deserialize`] for any [`Settings`] type, and the
//! impls for [`PoolConfig`]. A backend's configuration implements serde by
//! calling the same two functions. Missing fields take their defaults;
//! unknown fields are errors, as in the loader. It may not validate: serde
//! gives a value, `validate` judges it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize as _;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};

use super::schema::{Raw, Setting, Settings, Value};
use super::settings::PoolConfig;

/// Serialises `config` as a map: top-level settings, then one nested map
/// per section.
pub fn serialize<T: Settings, S: Serializer>(config: &T, serializer: S) -> Result<S::Ok, S::Error> {
    let table = T::settings();
    let mut top: Vec<(&str, Node)> = Vec::new();
    for setting in &table {
        let value = Node::Scalar(setting.value(config));
        match setting.section() {
            None => top.push((setting.leaf(), value)),
            Some(section) => {
                if let Some((_, Node::Table(body))) = top.iter_mut().find(|(k, _)| *k == section) {
                    body.insert(setting.leaf().to_owned(), value);
                } else {
                    let body = BTreeMap::from([(setting.leaf().to_owned(), value)]);
                    top.push((section, Node::Table(body)));
                }
            }
        }
    }
    let mut map = serializer.serialize_map(Some(top.len()))?;
    for (key, value) in &top {
        map.serialize_entry(key, value)?;
    }
    map.end()
}

/// Deserialises a map written as [`serialize`] writes it; missing settings
/// keep `T`'s defaults.
pub fn deserialize<'de, T: Settings, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    let Node::Table(fields) = Node::deserialize(deserializer)? else {
        return Err(de::Error::custom("expected a table of settings"));
    };
    let table = T::settings();
    let mut config = T::default();
    apply(&table, &mut config, "", fields)?;
    Ok(config)
}

fn apply<T, E: de::Error>(
    table: &[Setting<T>],
    config: &mut T,
    prefix: &str,
    fields: BTreeMap<String, Node>,
) -> Result<(), E> {
    for (key, node) in fields {
        let name = format!("{prefix}{key}");
        let setting = table.iter().find(|s| s.name() == name);
        match (setting, node) {
            (Some(setting), node) => {
                let (raw, shown) = match node {
                    Node::Scalar(value) => (Raw::Value(value.clone()), value.literal()),
                    Node::Table(_) => (Raw::Other, "a table".to_owned()),
                    Node::Other => (Raw::Other, "a list".to_owned()),
                };
                setting.apply(config, &raw).map_err(|mismatch| {
                    let mut message = format!(
                        "invalid value {shown} for `{name}`: expected {}",
                        mismatch.expected
                    );
                    if let Some(source) = mismatch.source {
                        message.push_str(&format!(" ({source})"));
                    }
                    E::custom(message)
                })?;
            }
            (None, Node::Table(inner)) if table.iter().any(|s| s.section() == Some(&*name)) => {
                apply(table, config, &format!("{name}."), inner)?;
            }
            (None, _) => return Err(E::custom(format!("unknown field `{name}`"))),
        }
    }
    Ok(())
}

/// A parsed value: a setting's scalar, a table, or something no setting
/// holds.
enum Node {
    Scalar(Value),
    Table(BTreeMap<String, Node>),
    Other,
}

impl serde::Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Scalar(Value::Boolean(flag)) => serializer.serialize_bool(*flag),
            Node::Scalar(Value::Integer(int)) => serializer.serialize_i64(*int),
            Node::Scalar(Value::Float(float)) => serializer.serialize_f64(*float),
            Node::Scalar(Value::String(text)) => serializer.serialize_str(text),
            Node::Table(body) => body.serialize(serializer),
            Node::Other => serializer.serialize_unit(),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a setting value or a table of settings")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Boolean(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Integer(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(i64::try_from(v).map_or_else(
            |_| Value::String(v.to_string()),
            Value::Integer,
        )))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Value::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Value::String(v.to_owned())))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Other)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Node::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut body = BTreeMap::new();
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            body.insert(key, value);
        }
        Ok(Node::Table(body))
    }
}

/// Implements serde's `Serialize` and `Deserialize` for configuration
/// types (each a [`Settings`] type) through [`serialize`] and
/// [`deserialize`]; doc comments written before the types go on each
/// `serialize`.
///
/// ```
/// use slotpool::PoolConfig;
/// use slotpool::config::schema::{Setting, Settings};
///
/// #[derive(Debug, Clone, Default, PartialEq)]
/// struct Config { pool: PoolConfig }
///
/// impl Settings for Config {
///     fn settings() -> Vec<Setting<Self>> {
///         PoolConfig::settings()
///             .into_iter()
///             .map(|s| s.nest(None, |c: &Config| &c.pool, |c| &mut c.pool))
///             .collect()
///     }
///     fn problems(&self) -> Vec<slotpool::ConfigError> {
///         self.pool.problems()
///     }
/// }
///
/// slotpool::serde_via_settings!(Config);
///
/// let json = serde_json::to_string(&Config::default()).unwrap();
/// assert_eq!(serde_json::from_str::<Config>(&json).unwrap(), Config::default());
/// ```
#[macro_export]
macro_rules! serde_via_settings {
    (@one $config:ty, $(#[$doc:meta])*) => {
        impl $crate::config::__serde::Serialize for $config {
            $(#[$doc])*
            fn serialize<S: $crate::config::__serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::config::serialize(self, serializer)
            }
        }

        impl<'de> $crate::config::__serde::Deserialize<'de> for $config {
            fn deserialize<D: $crate::config::__serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                $crate::config::deserialize(deserializer)
            }
        }
    };
    ($(#[$doc:meta])*) => {};
    ($(#[$doc:meta])* $config:ty $(, $rest:ty)* $(,)?) => {
        $crate::serde_via_settings!(@one $config, $(#[$doc])*);
        $crate::serde_via_settings!($(#[$doc])* $($rest),*);
    };
}

/// Implements serde's `Serialize` and `Deserialize` for keyword types
/// (made with [`keyword_enum!`](crate::keyword_enum)) as their words, read
/// as the settings read them (any case).
#[macro_export]
macro_rules! serde_via_keyword {
    ($($keyword:ty),+ $(,)?) => {$(
        impl $crate::config::__serde::Serialize for $keyword {
            fn serialize<S: $crate::config::__serde::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::config::__serde::Deserialize<'de> for $keyword {
            fn deserialize<D: $crate::config::__serde::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                use $crate::config::schema::SettingValue as _;
                let word: ::std::string::String =
                    $crate::config::__serde::Deserialize::deserialize(deserializer)?;
                <$keyword>::from_text(&word).map_err(|_| {
                    <D::Error as $crate::config::__serde::de::Error>::custom(format!(
                        "invalid value \"{word}\": expected {}",
                        <$keyword>::expected()
                    ))
                })
            }
        }
    )+};
}

impl serde::Serialize for PoolConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serialize(self, serializer)
    }
}

impl<'de> serde::Deserialize<'de> for PoolConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer)
    }
}
