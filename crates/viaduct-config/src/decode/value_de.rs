//! The deserializer over a `serde_json::Value` tree.

use serde::de::{self, IntoDeserializer, Unexpected, Visitor};
use serde_json::{Map, Number, Value};

use super::access::{misplaced_section, ObjectAccess, SequenceAccess};
use super::DecodeError;

/// Deserializes one node of a value tree; `path` is where the node sits, for errors.
pub(crate) struct ValueDeserializer {
    value: Value,
    path: String,
}

impl ValueDeserializer {
    pub(crate) fn new(value: Value, path: String) -> Self {
        ValueDeserializer { value, path }
    }

    fn invalid_type(&self, expected: &dyn de::Expected) -> DecodeError {
        de::Error::invalid_type(unexpected(&self.value), expected)
    }
}

type Result<T> = std::result::Result<T, DecodeError>;

macro_rules! forward_integer {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_integer(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let path = self.path;
        let result = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(SequenceAccess::new(items, path.clone())),
            Value::Object(map) => visitor.visit_map(ObjectAccess::new(map, None, path.clone())),
        };
        result.map_err(|e| e.at(&path))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let result = match &self.value {
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::String(s) => match parse_go_bool(s) {
                Some(b) => visitor.visit_bool(b),
                None => Err(de::Error::invalid_value(Unexpected::Str(s), &"a boolean")),
            },
            _ => Err(self.invalid_type(&"a boolean")),
        };
        result.map_err(|e| e.at(&self.path))
    }

    forward_integer!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let result = match &self.value {
            Value::Number(n) => match n.as_f64() {
                Some(f) => visitor.visit_f64(f),
                None => Err(self.invalid_type(&"a number")),
            },
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) => visitor.visit_f64(f),
                Err(_) => Err(de::Error::invalid_value(Unexpected::Str(s), &"a number")),
            },
            _ => Err(self.invalid_type(&"a number")),
        };
        result.map_err(|e| e.at(&self.path))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let path = self.path;
        let result: Result<V::Value> = match self.value {
            Value::String(s) => visitor.visit_string(s),
            // Users write `port: 8080` for string options; Go's loaders accept it.
            Value::Number(n) => visitor.visit_string(n.to_string()),
            Value::Bool(b) => visitor.visit_string(b.to_string()),
            other => Err(de::Error::invalid_type(unexpected(&other), &"a string")),
        };
        result.map_err(|e| e.at(&path))
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let path = self.path;
        let result = into_sequence(self.value)
            .and_then(|items| visitor.visit_seq(SequenceAccess::new(items, path.clone())));
        result.map_err(|e| e.at(&path))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let path = self.path;
        let result = into_object(self.value, "a map")
            .and_then(|map| visitor.visit_map(ObjectAccess::new(map, None, path.clone())));
        result.map_err(|e| e.at(&path))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let path = self.path;
        let result = into_object(self.value, "a section (map of options)").and_then(|map| {
            if path.is_empty() {
                if let Some(err) = misplaced_section(name, &map) {
                    return Err(err);
                }
            }
            visitor.visit_map(ObjectAccess::new(map, Some(fields), path.clone()))
        });
        result.map_err(|e| e.at(&path))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let path = self.path;
        let result: Result<V::Value> = match self.value {
            Value::String(s) => {
                let variant = variants
                    .iter()
                    .find(|v| **v == s)
                    .or_else(|| variants.iter().find(|v| v.eq_ignore_ascii_case(&s)))
                    .map_or(s, |v| (*v).to_owned());
                visitor.visit_enum(variant.into_deserializer())
            }
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a string naming a variant",
            )),
        };
        result.map_err(|e| e.at(&path))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_unit()
    }
}

impl ValueDeserializer {
    fn deserialize_integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let result = match &self.value {
            Value::Number(n) => visit_number(n.clone(), visitor),
            Value::String(s) => {
                let t = s.trim();
                if let Ok(i) = t.parse::<i64>() {
                    visitor.visit_i64(i)
                } else if let Ok(u) = t.parse::<u64>() {
                    visitor.visit_u64(u)
                } else {
                    Err(de::Error::invalid_value(Unexpected::Str(s), &"an integer"))
                }
            }
            _ => Err(self.invalid_type(&"an integer")),
        };
        result.map_err(|e| e.at(&self.path))
    }
}

fn visit_number<'de, V: Visitor<'de>>(n: Number, visitor: V) -> Result<V::Value> {
    if let Some(u) = n.as_u64() {
        visitor.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        visitor.visit_i64(i)
    } else {
        visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The elements of a node read as a list: a sequence, a comma-separated string, a map of
/// indices, or a single scalar.
fn into_sequence(value: Value) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| Value::String(part.to_owned()))
            .collect()),
        Value::Object(map) => indexed_elements(map),
        scalar @ (Value::Bool(_) | Value::Number(_)) => Ok(vec![scalar]),
    }
}

fn indexed_elements(map: Map<String, Value>) -> Result<Vec<Value>> {
    let mut indexed = Vec::with_capacity(map.len());
    for (key, value) in map {
        let index: usize = key.trim().parse().map_err(|_| {
            <DecodeError as de::Error>::custom(format!(
                "expected a list (or list indices such as `0`, `1`), found key `{key}`"
            ))
        })?;
        indexed.push((index, value));
    }
    indexed.sort_by_key(|(index, _)| *index);
    Ok(indexed.into_iter().map(|(_, value)| value).collect())
}

fn into_object(value: Value, expected: &'static str) -> Result<Map<String, Value>> {
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        // `--providers.docker` or `traefik.http.routers.r.tls=true`: enable with defaults.
        Value::String(s) if s.is_empty() || s.eq_ignore_ascii_case("true") => Ok(Map::new()),
        other => Err(de::Error::invalid_type(unexpected(&other), &expected)),
    }
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Unexpected::Unsigned(u),
            (_, Some(i), _) => Unexpected::Signed(i),
            (_, _, Some(f)) => Unexpected::Float(f),
            _ => Unexpected::Other("number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}
