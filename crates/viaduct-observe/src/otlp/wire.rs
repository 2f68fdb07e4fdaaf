//! Protobuf's wire format, the parts OTLP messages need.

/// `opentelemetry.proto.common.v1.KeyValue` with a string value.
pub(crate) fn key_value(key: &str, value: &str) -> Vec<u8> {
    let mut any = Vec::new();
    string(&mut any, 1, value);
    let mut out = Vec::new();
    string(&mut out, 1, key);
    message(&mut out, 2, &any);
    out
}

/// `KeyValue` with an integer value.
pub(crate) fn key_int(key: &str, value: i64) -> Vec<u8> {
    let mut any = Vec::new();
    varint_field(&mut any, 3, value as u64);
    let mut out = Vec::new();
    string(&mut out, 1, key);
    message(&mut out, 2, &any);
    out
}

/// `opentelemetry.proto.common.v1.InstrumentationScope`: Viaduct and its version.
pub(crate) fn scope() -> Vec<u8> {
    let mut scope = Vec::new();
    string(&mut scope, 1, "viaduct");
    string(&mut scope, 2, env!("CARGO_PKG_VERSION"));
    scope
}

/// `opentelemetry.proto.resource.v1.Resource` with string attributes.
pub(crate) fn resource(attributes: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in attributes {
        message(&mut out, 1, &key_value(key, value));
    }
    out
}

pub(crate) fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

pub(crate) fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

pub(crate) fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, 0);
    varint(out, value);
}

pub(crate) fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn double(out: &mut Vec<u8>, field: u32, value: f64) {
    fixed64(out, field, value.to_bits());
}

pub(crate) fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

pub(crate) fn string(out: &mut Vec<u8>, field: u32, text: &str) {
    bytes(out, field, text.as_bytes());
}

pub(crate) fn message(out: &mut Vec<u8>, field: u32, encoded: &[u8]) {
    bytes(out, field, encoded);
}

/// A packed `repeated fixed64` (or `double`, by their bits).
pub(crate) fn packed_fixed64(
    out: &mut Vec<u8>,
    field: u32,
    values: impl ExactSizeIterator<Item = u64>,
) {
    tag(out, field, 2);
    varint(out, values.len() as u64 * 8);
    for value in values {
        out.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let mut out = Vec::new();
        string(&mut out, 5, "Router");
        assert_eq!(out[0], 5 << 3 | 2);
        assert_eq!(out[1], 6);
        let mut out = Vec::new();
        fixed64(&mut out, 7, 1);
        assert_eq!(out, [7 << 3 | 1, 1, 0, 0, 0, 0, 0, 0, 0]);
        let mut out = Vec::new();
        packed_fixed64(&mut out, 6, [1u64, 2].into_iter());
        assert_eq!(&out[..2], [6 << 3 | 2, 16]);
    }
}
