//! Placeholder with the final API shape.
use std::sync::Arc;

#[derive(Debug)]
pub struct TlsError;

pub struct TlsShared;
impl TlsShared {
    pub fn new() -> Result<TlsShared, TlsError> {
        Ok(TlsShared)
    }
}

pub struct TlsRuntime;
pub struct TlsRoute {
    pub hosts: Vec<String>,
    pub options: String,
}
pub struct TlsIssue {
    pub object: String,
    pub message: String,
    pub is_error: bool,
}
impl TlsRuntime {
    pub fn build(
        _config: Option<&viaduct_config::TlsConfig>,
        _routes: &[TlsRoute],
        _shared: &TlsShared,
    ) -> (TlsRuntime, Vec<TlsIssue>) {
        (TlsRuntime, Vec::new())
    }
    pub fn server_config(&self, _sni: Option<&str>) -> Option<Arc<rustls::ServerConfig>> {
        None
    }
    pub fn has_options(&self, _options: &str) -> bool {
        true
    }
}
