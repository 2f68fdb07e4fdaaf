//! `accessLog` options, resolved and validated once at start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use viaduct_config::static_config::AccessLog;

/// Default capacity of the writer's queue when `bufferingSize` does not ask for more.
const DEFAULT_QUEUE: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct AccessLogSettings {
    /// `None`: standard output.
    pub file_path: Option<PathBuf>,
    pub format: Format,
    /// Records queued for the writer before new ones are dropped.
    pub queue: usize,
    pub filters: Filters,
    pub fields: Fields,
    /// `accessLog.addInternals`: log requests to internal services too.
    pub add_internals: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Traefik's extended Common Log Format.
    Common,
    /// The Common Log Format up to the user agent.
    GenericClf,
    Json,
}

/// `accessLog.filters`: a record is kept when any configured filter matches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// `None`: no filters configured at all (keep everything).
    configured: bool,
    status_ranges: Vec<(u16, u16)>,
    retry_attempts: bool,
    min_duration: Duration,
}

/// `accessLog.fields`: which JSON fields and headers appear.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    default_keep: bool,
    names: HashMap<String, bool>,
    headers_default: HeaderMode,
    /// By lower-cased header name.
    headers: HashMap<String, HeaderMode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderMode {
    Keep,
    Drop,
    Redact,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    #[error("accessLog.format: {0:?} is not one of common, genericCLF, json")]
    Format(String),
    #[error("accessLog.filters.statusCodes: {0:?} is not a status code or a range like 300-302")]
    StatusCodes(String),
    #[error("accessLog.fields: {0}")]
    Fields(String),
    #[error("accessLog.filePath {path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("accessLog: cannot start the writer thread: {0}")]
    Thread(std::io::Error),
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawFields {
    default_mode: Option<String>,
    names: HashMap<String, String>,
    headers: Option<RawHeaders>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct RawHeaders {
    default_mode: Option<String>,
    names: HashMap<String, String>,
}

impl AccessLogSettings {
    pub fn from_static(config: &AccessLog) -> Result<AccessLogSettings, AccessLogError> {
        let format = match config.format.trim() {
            "" | "common" => Format::Common,
            "genericCLF" => Format::GenericClf,
            "json" => Format::Json,
            other => {
                // Traefik's fallback for a format it does not know.
                tracing::error!(error = %AccessLogError::Format(other.to_string()), "using the common format");
                Format::Common
            }
        };
        let filters = match &config.filters {
            None => Filters::default(),
            Some(f) => Filters {
                configured: true,
                status_ranges: f
                    .status_codes
                    .iter()
                    .map(|s| status_range(s))
                    .collect::<Result<_, _>>()?,
                retry_attempts: f.retry_attempts,
                min_duration: f.min_duration.positive().unwrap_or_default(),
            },
        };
        let fields = match &config.fields {
            None => Fields::default(),
            Some(value) => Fields::parse(value)?,
        };
        Ok(AccessLogSettings {
            file_path: config
                .file_path
                .as_ref()
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
            format,
            queue: usize::try_from(config.buffering_size)
                .unwrap_or(0)
                .max(DEFAULT_QUEUE),
            filters,
            fields,
            add_internals: config.add_internals,
        })
    }
}

impl Filters {
    /// Traefik's rule: no filters, or empty ones, keep everything; otherwise any match keeps.
    pub fn keep(&self, status: u16, retry_attempts: u32, duration: Duration) -> bool {
        if !self.configured
            || (self.status_ranges.is_empty()
                && !self.retry_attempts
                && self.min_duration.is_zero())
        {
            return true;
        }
        self.status_ranges
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&status))
            || (self.retry_attempts && retry_attempts > 0)
            || (!self.min_duration.is_zero() && duration > self.min_duration)
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            default_keep: true,
            names: HashMap::new(),
            headers_default: HeaderMode::Drop,
            headers: HashMap::new(),
        }
    }
}

impl Fields {
    fn parse(value: &serde_json::Value) -> Result<Fields, AccessLogError> {
        let raw: RawFields = serde_json::from_value(value.clone())
            .map_err(|e| AccessLogError::Fields(e.to_string()))?;
        let keep = |mode: &str, key: &str| match mode.to_ascii_lowercase().as_str() {
            "keep" => Ok(true),
            "drop" => Ok(false),
            other => Err(AccessLogError::Fields(format!(
                "{key}: {other:?} is not keep or drop"
            ))),
        };
        let mut fields = Fields::default();
        if let Some(mode) = &raw.default_mode {
            fields.default_keep = keep(mode, "defaultMode")?;
        }
        for (name, mode) in &raw.names {
            fields
                .names
                .insert(name.clone(), keep(mode, &format!("names.{name}"))?);
        }
        if let Some(headers) = raw.headers {
            if let Some(mode) = &headers.default_mode {
                fields.headers_default = header_mode(mode, "headers.defaultMode")?;
            }
            for (name, mode) in &headers.names {
                fields.headers.insert(
                    name.to_ascii_lowercase(),
                    header_mode(mode, &format!("headers.names.{name}"))?,
                );
            }
        }
        Ok(fields)
    }

    /// Whether the JSON field `name` is written.
    pub fn keeps(&self, name: &str) -> bool {
        self.names.get(name).copied().unwrap_or(self.default_keep)
    }

    pub fn header(&self, name: &str) -> HeaderMode {
        self.headers
            .get(&name.to_ascii_lowercase())
            .copied()
            .unwrap_or(self.headers_default)
    }

    pub fn any_header_kept(&self) -> bool {
        self.headers_default != HeaderMode::Drop
            || self.headers.values().any(|m| *m != HeaderMode::Drop)
    }
}

fn header_mode(mode: &str, key: &str) -> Result<HeaderMode, AccessLogError> {
    match mode.to_ascii_lowercase().as_str() {
        "keep" => Ok(HeaderMode::Keep),
        "drop" => Ok(HeaderMode::Drop),
        "redact" => Ok(HeaderMode::Redact),
        other => Err(AccessLogError::Fields(format!(
            "{key}: {other:?} is not keep, drop or redact"
        ))),
    }
}

/// `"200"` or `"300-302"`.
fn status_range(value: &str) -> Result<(u16, u16), AccessLogError> {
    let bad = || AccessLogError::StatusCodes(value.to_string());
    let (lo, hi) = match value.trim().split_once('-') {
        Some((lo, hi)) => (lo.trim(), hi.trim()),
        None => (value.trim(), value.trim()),
    };
    let lo: u16 = lo.parse().map_err(|_| bad())?;
    let hi: u16 = hi.parse().map_err(|_| bad())?;
    if lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use viaduct_config::static_config::AccessLogFilters;

    use super::*;

    #[test]
    fn filters_keep_on_any_match() {
        let config = AccessLog {
            filters: Some(AccessLogFilters {
                status_codes: vec!["200".into(), "300-302".into()],
                retry_attempts: true,
                min_duration: viaduct_config::GoDuration::from_millis(10),
            }),
            ..Default::default()
        };
        let settings = AccessLogSettings::from_static(&config).unwrap();
        let f = &settings.filters;
        assert!(f.keep(200, 0, Duration::ZERO));
        assert!(f.keep(301, 0, Duration::ZERO));
        assert!(!f.keep(404, 0, Duration::ZERO));
        assert!(f.keep(404, 1, Duration::ZERO));
        assert!(f.keep(404, 0, Duration::from_millis(11)));
        let bad = AccessLog {
            filters: Some(AccessLogFilters {
                status_codes: vec!["30x".into()],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(AccessLogSettings::from_static(&bad).is_err());
    }

    #[test]
    fn fields_modes() {
        let config = AccessLog {
            format: "json".into(),
            fields: Some(serde_json::json!({
                "defaultMode": "drop",
                "names": {"ClientHost": "keep"},
                "headers": {"defaultMode": "keep", "names": {"Authorization": "redact", "Cookie": "drop"}}
            })),
            ..Default::default()
        };
        let s = AccessLogSettings::from_static(&config).unwrap();
        assert!(s.fields.keeps("ClientHost"));
        assert!(!s.fields.keeps("RequestPath"));
        assert_eq!(s.fields.header("authorization"), HeaderMode::Redact);
        assert_eq!(s.fields.header("Cookie"), HeaderMode::Drop);
        assert_eq!(s.fields.header("User-Agent"), HeaderMode::Keep);
        assert!(s.fields.any_header_kept());
    }
}
