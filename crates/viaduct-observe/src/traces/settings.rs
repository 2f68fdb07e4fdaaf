//! `tracing` options, resolved once at start.

use serde::Deserialize;
use viaduct_config::static_config::Tracing;

use crate::otlp::{
    resource, Collector, EndpointError, ExporterOptions, GrpcExporterOptions, HttpExporterOptions,
};

#[derive(Debug, Clone, PartialEq)]
pub struct TracingSettings {
    pub service_name: String,
    pub sample_rate: f64,
    /// `service.name`, `service.version`, then `resourceAttributes`.
    pub resource: Vec<(String, String)>,
    /// Where spans are posted (`/v1/traces` by default).
    pub collector: Collector,
    /// `tracing.addInternals`: trace requests to internal services too.
    pub add_internals: bool,
    /// Query parameters whose values are recorded; the others read `REDACTED`.
    pub safe_query_params: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    #[error("tracing.otlp: {0}")]
    Otlp(String),
    #[error("tracing.otlp endpoint {0}")]
    Endpoint(#[from] EndpointError),
    #[error("tracing: cannot start the exporter thread: {0}")]
    Thread(std::io::Error),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawOtlp {
    http: Option<HttpExporterOptions>,
    grpc: Option<GrpcExporterOptions>,
}

impl TracingSettings {
    pub fn from_static(config: &Tracing) -> Result<TracingSettings, TracingError> {
        let otlp: RawOtlp = match &config.otlp {
            Some(value) if !value.is_null() => serde_json::from_value(value.clone())
                .map_err(|e| TracingError::Otlp(e.to_string()))?,
            _ => RawOtlp::default(),
        };
        let exporter = ExporterOptions::chosen(otlp.http, otlp.grpc);
        if !config.captured_request_headers.is_empty()
            || !config.captured_response_headers.is_empty()
        {
            tracing::warn!("tracing.capturedRequestHeaders and capturedResponseHeaders are not supported yet; they have no effect");
        }
        let collector = exporter.collector(
            "/v1/traces",
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        )?;
        let attributes = config
            .global_attributes
            .iter()
            .chain(config.resource_attributes.iter())
            .map(|(key, value)| (key.clone(), value.clone()));
        let resource = resource(config.service_name.clone(), attributes);
        Ok(TracingSettings {
            service_name: config.service_name.clone(),
            sample_rate: config.sample_rate,
            resource,
            collector,
            add_internals: config.add_internals,
            safe_query_params: config.safe_query_params.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let settings = TracingSettings::from_static(&Tracing {
            otlp: Some(serde_json::json!({"http": {"endpoint": "http://127.0.0.1:1/x"}})),
            resource_attributes: [("env".to_string(), "test".to_string())].into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(settings.collector.path, "/x");
        assert!(settings.resource.contains(&("env".into(), "test".into())));
        assert_eq!(
            settings.resource[0],
            ("service.name".into(), "traefik".into())
        );
    }
}
