//! Shared test helpers: configuration from YAML, files in temp dirs, captured logs.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use viaduct_config::{parse_document, DynamicConfig, Format, Origin};

pub fn yaml(text: &str) -> DynamicConfig {
    parse_document(text, Format::Yaml, Origin::Inline("test")).unwrap()
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A YAML document defining one HTTP router `name` with `rule`.
pub fn router_doc(name: &str, rule: &str) -> String {
    format!("http:\n  routers:\n    {name}:\n      rule: \"{rule}\"\n      service: svc\n")
}

pub fn router_names(config: &DynamicConfig) -> Vec<String> {
    config
        .http
        .as_ref()
        .map(|h| h.routers.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn rule_of(config: &DynamicConfig, router: &str) -> Option<String> {
    Some(config.http.as_ref()?.routers.get(router)?.rule.clone())
}

/// Log lines written while the returned guard is alive (for the current thread).
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn start() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
