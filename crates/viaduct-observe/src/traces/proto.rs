//! OTLP's `ExportTraceServiceRequest` in protobuf.

use super::{AttributeValue, SpanKind, SpanRecord};
use crate::otlp::wire::{self, bytes, fixed64, message, string, varint_field};

/// The request body for `POST /v1/traces` (`application/x-protobuf`).
pub(super) fn export_request(resource: &[(String, String)], spans: &[SpanRecord]) -> Vec<u8> {
    let resource_msg = wire::resource(resource);
    let mut scope_spans = Vec::new();
    message(&mut scope_spans, 1, &wire::scope());
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
    match value {
        AttributeValue::Text(s) => wire::key_value(key, s),
        AttributeValue::Int(i) => wire::key_int(key, *i),
    }
}
