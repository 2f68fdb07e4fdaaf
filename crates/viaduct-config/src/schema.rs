//! The shape of a typed model, discovered by letting it deserialize from a probe.
//!
//! Two things need the shape before decoding: telling entry point names from option names in
//! `TRAEFIK_*` variable names (where `_` separates both), and reading a YAML `docker:` with
//! no value as "enabled with defaults" rather than "absent".

use serde::de::{self, DeserializeOwned, DeserializeSeed, Visitor};
use serde_json::Value;

use crate::decode::{access::field_named, DecodeError};

/// The shape of one node of a model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Schema {
    /// A struct, with its fields by their serialized names.
    Struct(Vec<(&'static str, Schema)>),
    /// A map keyed by names the user chooses.
    Map(Box<Schema>),
    Seq(Box<Schema>),
    Optional(Box<Schema>),
    Scalar,
    /// Anything (`serde_json::Value`, durations): the shape is not known.
    Any,
}

/// The shape of `T`, or `None` for models the probe cannot walk (e.g. enums).
pub(crate) fn schema_of<T: DeserializeOwned>() -> Option<Schema> {
    let mut schema = Schema::Any;
    T::deserialize(Probe {
        slot: &mut schema,
        depth: 0,
    })
    .ok()?;
    Some(schema)
}

/// Replaces `null` by `{}` where the model has an optional struct: in Traefik, a section
/// written without a value (`docker:`) is enabled with its defaults.
pub(crate) fn enable_empty_sections(value: &mut Value, schema: &Schema) {
    match (schema, value) {
        (Schema::Optional(inner), value) => {
            if value.is_null() && matches!(**inner, Schema::Struct(_)) {
                *value = Value::Object(serde_json::Map::new());
            }
            enable_empty_sections(value, inner);
        }
        (Schema::Struct(fields), Value::Object(map)) => {
            let names: Vec<&'static str> = fields.iter().map(|(name, _)| *name).collect();
            for (key, child) in map.iter_mut() {
                let field = fields
                    .iter()
                    .find(|(name, _)| Some(*name) == field_named(&names, key));
                if let Some((_, field_schema)) = field {
                    enable_empty_sections(child, field_schema);
                }
            }
        }
        (Schema::Map(inner), Value::Object(map)) | (Schema::Seq(inner), Value::Object(map)) => {
            map.values_mut()
                .for_each(|child| enable_empty_sections(child, inner));
        }
        (Schema::Seq(inner), Value::Array(items)) => items
            .iter_mut()
            .for_each(|child| enable_empty_sections(child, inner)),
        _ => {}
    }
}

/// Deep enough for every configuration model; stops runaway recursive types.
const MAX_DEPTH: usize = 48;

struct Probe<'a> {
    slot: &'a mut Schema,
    depth: usize,
}

impl Probe<'_> {
    fn check_depth(&self) -> Result<(), DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(de::Error::custom("model nests too deeply to probe"));
        }
        Ok(())
    }
}

macro_rules! probe_scalar {
    ($($method:ident => $visit:ident($($arg:expr)?);)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            *self.slot = Schema::Scalar;
            visitor.$visit($($arg)?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Probe<'_> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        *self.slot = Schema::Any;
        visitor.visit_u64(0)
    }

    probe_scalar! {
        deserialize_bool => visit_bool(false);
        deserialize_i8 => visit_u64(0);
        deserialize_i16 => visit_u64(0);
        deserialize_i32 => visit_u64(0);
        deserialize_i64 => visit_u64(0);
        deserialize_i128 => visit_u64(0);
        deserialize_u8 => visit_u64(0);
        deserialize_u16 => visit_u64(0);
        deserialize_u32 => visit_u64(0);
        deserialize_u64 => visit_u64(0);
        deserialize_u128 => visit_u64(0);
        deserialize_f32 => visit_f64(0.0);
        deserialize_f64 => visit_f64(0.0);
        deserialize_char => visit_char(' ');
        deserialize_str => visit_str("");
        deserialize_string => visit_str("");
        deserialize_bytes => visit_bytes(&[]);
        deserialize_byte_buf => visit_bytes(&[]);
        deserialize_identifier => visit_str("");
        deserialize_unit => visit_unit();
        deserialize_ignored_any => visit_unit();
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let mut inner = Schema::Any;
        self.check_depth()?;
        let value = visitor.visit_some(Probe {
            slot: &mut inner,
            depth: self.depth + 1,
        })?;
        *self.slot = Schema::Optional(Box::new(inner));
        Ok(value)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        *self.slot = Schema::Scalar;
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let mut element = Schema::Any;
        self.check_depth()?;
        let value = visitor.visit_seq(OneElement {
            slot: Some(&mut element),
            depth: self.depth + 1,
        })?;
        *self.slot = Schema::Seq(Box::new(element));
        Ok(value)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let mut entry = Schema::Any;
        self.check_depth()?;
        let value = visitor.visit_map(OneEntry {
            slot: Some(&mut entry),
            key_done: false,
            depth: self.depth + 1,
        })?;
        *self.slot = Schema::Map(Box::new(entry));
        Ok(value)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.check_depth()?;
        let mut access = EveryField {
            fields: fields.iter(),
            current: None,
            collected: Vec::with_capacity(fields.len()),
            depth: self.depth + 1,
        };
        let value = visitor.visit_map(&mut access)?;
        *self.slot = Schema::Struct(access.collected);
        Ok(value)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DecodeError> {
        Err(de::Error::custom("enums are not probed"))
    }
}

/// Presents every field of a struct once, probing each value.
struct EveryField {
    fields: std::slice::Iter<'static, &'static str>,
    current: Option<&'static str>,
    collected: Vec<(&'static str, Schema)>,
    depth: usize,
}

impl<'de> de::MapAccess<'de> for EveryField {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some(field) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some(field);
        seed.deserialize(de::value::StrDeserializer::<DecodeError>::new(field))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let mut schema = Schema::Any;
        let value = seed.deserialize(Probe {
            slot: &mut schema,
            depth: self.depth,
        })?;
        if let Some(field) = self.current.take() {
            self.collected.push((field, schema));
        }
        Ok(value)
    }
}

/// A map with one entry, to probe the value type.
struct OneEntry<'a> {
    slot: Option<&'a mut Schema>,
    key_done: bool,
    depth: usize,
}

impl<'de> de::MapAccess<'de> for OneEntry<'_> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        if self.key_done || self.slot.is_none() {
            return Ok(None);
        }
        self.key_done = true;
        let mut key_schema = Schema::Any;
        seed.deserialize(Probe {
            slot: &mut key_schema,
            depth: self.depth,
        })
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let slot = self
            .slot
            .take()
            .ok_or_else(|| <DecodeError as de::Error>::custom("value without key"))?;
        seed.deserialize(Probe {
            slot,
            depth: self.depth,
        })
    }
}

/// A sequence with one element, to probe the element type.
struct OneElement<'a> {
    slot: Option<&'a mut Schema>,
    depth: usize,
}

impl<'de> de::SeqAccess<'de> for OneElement<'_> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        match self.slot.take() {
            Some(slot) => seed
                .deserialize(Probe {
                    slot,
                    depth: self.depth,
                })
                .map(Some),
            None => Ok(None),
        }
    }
}
