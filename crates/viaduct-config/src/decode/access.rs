//! Map and sequence access over value trees, and the case-insensitive field matching.

use serde::de::{self, DeserializeSeed};
use serde_json::{map, Map, Value};

use super::value_de::ValueDeserializer;
use super::{join_index, join_key, DecodeError};

/// Walks the entries of an object. With `fields` (a struct), each key is mapped to the field
/// it names ignoring ASCII case; without (a map), keys are passed through unchanged.
pub(crate) struct ObjectAccess {
    entries: map::IntoIter,
    fields: Option<&'static [&'static str]>,
    path: String,
    pending: Option<(String, Value)>,
}

/// Walks the elements of a sequence, naming each `path[i]` in errors.
pub(crate) struct SequenceAccess {
    elements: std::vec::IntoIter<Value>,
    index: usize,
    path: String,
}

impl ObjectAccess {
    pub(crate) fn new(
        map: Map<String, Value>,
        fields: Option<&'static [&'static str]>,
        path: String,
    ) -> Self {
        ObjectAccess {
            entries: map.into_iter(),
            fields,
            path,
            pending: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for ObjectAccess {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key_path = join_key(&self.path, &key);
        let name = match self.fields.and_then(|fields| field_named(fields, &key)) {
            Some(field) => field.to_owned(),
            None => key,
        };
        self.pending = Some((key_path.clone(), value));
        seed.deserialize(ValueDeserializer::new(
            Value::String(name),
            key_path.clone(),
        ))
        .map(Some)
        .map_err(|e| e.at(&key_path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let (path, value) = self
            .pending
            .take()
            .ok_or_else(|| <DecodeError as de::Error>::custom("value requested before its key"))?;
        seed.deserialize(ValueDeserializer::new(value, path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

impl SequenceAccess {
    pub(crate) fn new(elements: Vec<Value>, path: String) -> Self {
        SequenceAccess {
            elements: elements.into_iter(),
            index: 0,
            path,
        }
    }
}

impl<'de> de::SeqAccess<'de> for SequenceAccess {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        let Some(value) = self.elements.next() else {
            return Ok(None);
        };
        let path = join_index(&self.path, self.index);
        self.index += 1;
        seed.deserialize(ValueDeserializer::new(value, path))
            .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.elements.len())
    }
}

/// The field `key` names: the exact spelling first, then ignoring ASCII case.
pub(crate) fn field_named(fields: &[&'static str], key: &str) -> Option<&'static str> {
    fields
        .iter()
        .find(|f| **f == key)
        .or_else(|| fields.iter().find(|f| f.eq_ignore_ascii_case(key)))
        .copied()
}

/// Top-level keys that belong to the other kind of configuration document. Users often put
/// routing configuration in `traefik.yml` (Traefik issue #12098); say so instead of
/// "unknown field".
const DYNAMIC_ROOTS: &[&str] = &["http", "tcp", "udp", "tls"];
const STATIC_ONLY_ROOTS: &[&str] = &[
    "entryPoints",
    "providers",
    "log",
    "accessLog",
    "api",
    "metrics",
    "ping",
    "tracing",
    "certificatesResolvers",
    "serversTransport",
    "tcpServersTransport",
    "hostResolver",
    "experimental",
    "global",
];

/// The error for a document root that holds a section of the other configuration kind.
pub(crate) fn misplaced_section(
    struct_name: &str,
    root: &Map<String, Value>,
) -> Option<DecodeError> {
    let (candidates, message): (&[&str], fn(&str) -> String) = match struct_name {
        "StaticConfig" => (DYNAMIC_ROOTS, |key| {
            format!(
                "`{key}` is dynamic (routing) configuration; put it in a file read by providers.file"
            )
        }),
        "DynamicConfig" => (STATIC_ONLY_ROOTS, |key| {
            format!(
                "`{key}` is static (install) configuration; put it in the static configuration \
                 file (traefik.yml), not in a dynamic configuration file"
            )
        }),
        _ => return None,
    };
    root.keys().find_map(|key| {
        candidates
            .iter()
            .find(|c| c.eq_ignore_ascii_case(key))
            .map(|_| DecodeError {
                path: Some(key.clone()),
                message: message(key),
            })
    })
}
