//! OTLP's `ExportTraceServiceRequest` in protobuf, encoded by hand: the few messages the
//! exporter sends do not warrant a code generator and its build-time dependencies.

use super::{AttributeValue, SpanKind, SpanRecord};

/// The request body for `POST /v1/traces` (`application/x-protobuf`).
pub(super) fn export_request(resource: &[(String, String)], spans: &[SpanRecord]) -> Vec<u8> {
    let mut resource_msg = Vec::new();
    for (key, value) in resource {
        message(
            &mut resource_msg,
            1,
            &key_value(key, &AttributeValue::Text(value.clone())),
        );
    }
    let mut scope = Vec::new();
    string(&mut scope, 1, "viaduct");
    string(&mut scope, 2, env!("CARGO_PKG_VERSION"));
    let mut scope_spans = Vec::new();
    message(&mut scope_spans, 1, &scope);
    for span in spans {
        message(&mut scope_spans, 2, &span_message(span));
    }
    let mut resource_spans = Vec::new();
    message(&mut resource_spans, 1, &resource_msg);
    message(&mut resource_spans, 2, &scope_spans);
    let mut request = Vec::new();
    message(&mut request, 1, &resource_spans);
    request
}

fn span_message(span: &SpanRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    bytes(&mut out, 1, &span.trace_id);
    bytes(&mut out, 2, &span.span_id);
    if let Some(parent) = &span.parent_span_id {
        bytes(&mut out, 4, parent);
    }
    string(&mut out, 5, &span.name);
    let kind = match span.kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
    };
    varint_field(&mut out, 6, kind);
    fixed64(&mut out, 7, span.start_unix_nanos);
    fixed64(&mut out, 8, span.end_unix_nanos);
    for (key, value) in &span.attributes {
        message(&mut out, 9, &key_value(key, value));
    }
    if span.error {
        let mut status = Vec::new();
        varint_field(&mut status, 3, 2);
        message(&mut out, 15, &status);
    }
    out
}

fn key_value(key: &str, value: &AttributeValue) -> Vec<u8> {
    let mut any = Vec::new();
    match value {
        AttributeValue::Text(s) => string(&mut any, 1, s),
        AttributeValue::Int(i) => varint_field(&mut any, 3, *i as u64),
    }
    let mut out = Vec::new();
    string(&mut out, 1, key);
    message(&mut out, 2, &any);
    out
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, u64::from(field << 3 | u32::from(wire)));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, 0);
    varint(out, value);
}

fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&value.to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    tag(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn string(out: &mut Vec<u8>, field: u32, text: &str) {
    bytes(out, field, text.as_bytes());
}

fn message(out: &mut Vec<u8>, field: u32, encoded: &[u8]) {
    bytes(out, field, encoded);
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
    }
}
