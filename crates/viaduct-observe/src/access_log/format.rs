//! Access-log lines in Traefik's layouts: its extended Common Log Format, the generic CLF,
//! and JSON with Traefik's field names.

use std::fmt::Write as _;

use super::json::JsonLine;
use http::{HeaderMap, HeaderValue, Version};

use super::{AccessLogSettings, AccessRecord, Format, HeaderMode};
use crate::time::UtcTime;

/// One line, with its newline.
pub fn format_line(settings: &AccessLogSettings, record: &AccessRecord) -> String {
    match settings.format {
        Format::Common => clf(settings, record, true),
        Format::GenericClf => clf(settings, record, false),
        Format::Json => json(settings, record),
    }
}

/// `<ClientHost> - <user> [<time>] "<METHOD> <path> <proto>" <status> <size> "<referer>"
/// "<user-agent>"`, then for Traefik's own layout `<RequestCount> "<RouterName>"
/// "<ServiceURL>" <Duration>ms`. As in Traefik, the referer and user agent are the header
/// fields of the same names: `-` unless `fields.headers` keeps them.
fn clf(settings: &AccessLogSettings, record: &AccessRecord, extended: bool) -> String {
    let header = |name: &str, value: Option<&HeaderValue>| match settings.fields.header(name) {
        HeaderMode::Keep => quoted_header(value),
        HeaderMode::Redact => quoted(value.map(|_| "REDACTED")),
        HeaderMode::Drop => quoted(None),
    };
    let mut line = String::with_capacity(192);
    let _ = write!(
        line,
        "{} - {} [{}] \"{} {} {}\" {} {} {} {}",
        record.client.ip(),
        record
            .client_username
            .as_deref()
            .filter(|user| !user.is_empty())
            .unwrap_or("-"),
        UtcTime::of(record.start).clf(),
        record.method,
        or_dash(&record.path),
        protocol(record.version),
        record.status,
        record.downstream_size,
        header("Referer", record.referer.as_ref()),
        header("User-Agent", record.user_agent.as_ref()),
    );
    if extended {
        let _ = write!(
            line,
            " {} {} {} {}ms",
            record.request_count,
            quoted(record.router.as_deref()),
            quoted(record.upstream.as_ref().map(|u| u.url.as_str())),
            record.duration.as_millis()
        );
    }
    line.push('\n');
    line
}

fn json(settings: &AccessLogSettings, record: &AccessRecord) -> String {
    let fields = &settings.fields;
    let start = UtcTime::of(record.start);
    // Values borrow from the record and these locals: no allocation per field.
    let client_addr = record.client.to_string();
    let client_ip = record.client.ip().to_string();
    let client_port = record.client.port().to_string();
    let (request_host, request_port) = split_host_port(&record.host);
    let started = start.rfc3339_nanos();
    let mut line = JsonLine::with_capacity(40);
    let number = |line: &mut JsonLine, name: &'static str, value: u64| {
        if fields.keeps(name) {
            line.number(name, value);
        }
    };
    let duration = nanos(record.duration);
    let (origin_status, origin_duration, origin_size) = match &record.upstream {
        Some(u) => (u.status, nanos(u.duration), record.downstream_size),
        None => (0, 0, 0),
    };
    number(&mut line, "DownstreamContentSize", record.downstream_size);
    number(&mut line, "DownstreamStatus", u64::from(record.status));
    number(&mut line, "Duration", duration);
    if record.upstream.is_none() {
        // Traefik writes a zero ratio when no backend answered.
        number(&mut line, "GzipRatio", 0);
    }
    number(&mut line, "OriginContentSize", origin_size);
    number(&mut line, "OriginDuration", origin_duration);
    number(&mut line, "OriginStatus", u64::from(origin_status));
    number(
        &mut line,
        "Overhead",
        duration.saturating_sub(origin_duration),
    );
    number(&mut line, "RequestContentSize", record.request_content_size);
    number(&mut line, "RequestCount", record.request_count);
    number(&mut line, "RetryAttempts", u64::from(record.retry_attempts));

    macro_rules! text {
        ($name:literal, $value:expr) => {
            if fields.keeps($name) {
                line.text($name, $value);
            }
        };
    }
    text!("ClientAddr", client_addr.as_str());
    text!("ClientHost", client_ip.as_str());
    text!("ClientPort", client_port.as_str());
    text!(
        "ClientUsername",
        record.client_username.as_deref().unwrap_or("-")
    );
    text!("RequestAddr", record.host.as_str());
    text!("RequestHost", request_host.as_str());
    text!("RequestMethod", record.method.as_str());
    text!("RequestPath", record.path.as_str());
    text!("RequestPort", request_port.as_str());
    text!("RequestProtocol", protocol(record.version));
    text!("RequestScheme", if record.tls { "https" } else { "http" });
    if let Some(router) = &record.router {
        text!("RouterName", router.as_ref());
    }
    if let Some(service) = &record.service {
        text!("ServiceName", service.as_ref());
    }
    if let Some(upstream) = &record.upstream {
        text!("ServiceAddr", authority(&upstream.url));
        text!("ServiceURL", upstream.url.as_str());
    }
    text!("StartLocal", started.as_str());
    text!("StartUTC", started.as_str());
    text!("entryPointName", record.entry_point.as_ref());
    if let Some(headers) = &record.request_headers {
        add_headers(&mut line, settings, "request_", headers);
    }
    if let Some(headers) = &record.response_headers {
        add_headers(&mut line, settings, "origin_", headers);
        add_headers(&mut line, settings, "downstream_", headers);
    }
    line.text("level", "info");
    line.text("msg", "");
    line.text("time", start.rfc3339());
    line.finish()
}

fn add_headers(
    line: &mut JsonLine<'_>,
    settings: &AccessLogSettings,
    prefix: &str,
    headers: &HeaderMap,
) {
    for name in headers.keys() {
        let value = match settings.fields.header(name.as_str()) {
            HeaderMode::Drop => continue,
            HeaderMode::Redact => "REDACTED".to_string(),
            HeaderMode::Keep => headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(","),
        };
        line.text(format!("{prefix}{}", canonical(name.as_str())), value);
    }
}

/// Go's canonical header form: `x-forwarded-host` → `X-Forwarded-Host`.
fn canonical(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

fn quoted(value: Option<&str>) -> String {
    match value.filter(|v| !v.is_empty()) {
        Some(v) => format!("\"{v}\""),
        None => "\"-\"".into(),
    }
}

fn quoted_header(value: Option<&HeaderValue>) -> String {
    quoted(
        value
            .map(|v| String::from_utf8_lossy(v.as_bytes()))
            .as_deref(),
    )
}

/// `a.test:8080` → (`a.test`, `8080`); no port → `-`, as Traefik writes it.
fn split_host_port(host: &str) -> (String, String) {
    if let Some(rest) = host.strip_prefix('[') {
        if let Some((ip, port)) = rest.split_once("]:") {
            return (ip.to_string(), port.to_string());
        }
        return (rest.trim_end_matches(']').to_string(), "-".into());
    }
    match host.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h.to_string(), p.to_string())
        }
        _ => (host.to_string(), "-".into()),
    }
}

/// `http://127.0.0.1:8080/x` → `127.0.0.1:8080`.
fn authority(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use http::Method;
    use viaduct_config::static_config::AccessLog;

    use super::super::UpstreamFacts;
    use serde_json::Value;

    use super::*;

    fn record() -> AccessRecord {
        AccessRecord {
            start: UNIX_EPOCH + Duration::new(1_795_824_853, 0),
            duration: Duration::from_micros(5_400),
            client: "127.0.0.1:52224".parse().unwrap(),
            method: Method::GET,
            path: "/?a=1".into(),
            version: Version::HTTP_11,
            host: "a.test".into(),
            tls: false,
            request_content_size: 0,
            entry_point: Arc::from("web"),
            router: Some(Arc::from("r1@file")),
            service: Some(Arc::from("s1@file")),
            upstream: Some(UpstreamFacts {
                url: "http://127.0.0.1:28782".into(),
                status: 200,
                duration: Duration::from_micros(5_000),
                sent_at: std::time::Instant::now(),
            }),
            status: 200,
            downstream_size: 449,
            request_count: 1,
            retry_attempts: 0,
            client_username: None,
            referer: Some(HeaderValue::from_static("http://x/")),
            user_agent: Some(HeaderValue::from_static("curl/7.88.1")),
            request_headers: None,
            response_headers: None,
        }
    }

    fn settings(format: &str) -> AccessLogSettings {
        AccessLogSettings::from_static(&AccessLog {
            format: format.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn common_matches_traefik() {
        let kept = AccessLogSettings::from_static(&AccessLog {
            fields: Some(serde_json::json!({"headers": {"names": {"Referer": "keep", "User-Agent": "keep"}}})),
            ..Default::default()
        })
        .unwrap();
        assert!(format_line(&settings("common"), &record()).contains(" 200 449 \"-\" \"-\" 1 "));
        assert_eq!(
            format_line(&kept, &record()),
            "127.0.0.1 - - [28/Nov/2026:00:14:13 +0000] \"GET /?a=1 HTTP/1.1\" 200 449 \"http://x/\" \"curl/7.88.1\" 1 \"r1@file\" \"http://127.0.0.1:28782\" 5ms\n"
        );
        let mut unrouted = record();
        unrouted.router = None;
        unrouted.upstream = None;
        unrouted.referer = None;
        let mut generic = kept.clone();
        generic.format = Format::GenericClf;
        assert!(format_line(&generic, &unrouted).ends_with("200 449 \"-\" \"curl/7.88.1\"\n"));
        assert!(format_line(&settings("common"), &unrouted).ends_with(" 1 \"-\" \"-\" 5ms\n"));
    }

    #[test]
    fn json_has_traefik_fields() {
        let line = format_line(&settings("json"), &record());
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ClientHost"], "127.0.0.1");
        assert_eq!(v["ClientPort"], "52224");
        assert_eq!(v["DownstreamStatus"], 200);
        assert_eq!(v["Duration"], 5_400_000);
        assert_eq!(v["Overhead"], 400_000);
        assert_eq!(v["RequestHost"], "a.test");
        assert_eq!(v["RequestPort"], "-");
        assert_eq!(v["ServiceAddr"], "127.0.0.1:28782");
        assert_eq!(v["StartUTC"], "2026-11-28T00:14:13Z");
        assert_eq!(v["entryPointName"], "web");
        assert_eq!(v["time"], "2026-11-28T00:14:13Z");
        assert!(v.get("GzipRatio").is_none());
    }

    #[test]
    fn user_and_retries_as_traefik_writes_them() {
        let mut noted = record();
        noted.client_username = Some(Arc::from("we ird"));
        noted.retry_attempts = 2;
        assert!(format_line(&settings("common"), &noted).starts_with("127.0.0.1 - we ird ["));
        let v: Value = serde_json::from_str(&format_line(&settings("json"), &noted)).unwrap();
        assert_eq!(v["ClientUsername"], "we ird");
        assert_eq!(v["RetryAttempts"], 2);
        // basicAuth without usable credentials: an empty name, `-` in CLF as in Traefik.
        noted.client_username = Some(Arc::from(""));
        assert!(format_line(&settings("common"), &noted).starts_with("127.0.0.1 - - ["));
        let v: Value = serde_json::from_str(&format_line(&settings("json"), &noted)).unwrap();
        assert_eq!(v["ClientUsername"], "");
    }

    #[test]
    fn headers_are_kept_redacted_or_dropped() {
        let s = AccessLogSettings::from_static(&AccessLog {
            format: "json".into(),
            fields: Some(serde_json::json!({"headers": {"defaultMode": "keep", "names": {"authorization": "redact", "cookie": "drop"}}})),
            ..Default::default()
        })
        .unwrap();
        let mut r = record();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-host", HeaderValue::from_static("a"));
        headers.insert("authorization", HeaderValue::from_static("secret"));
        headers.insert("cookie", HeaderValue::from_static("c"));
        r.request_headers = Some(headers);
        let v: Value = serde_json::from_str(&format_line(&s, &r)).unwrap();
        assert_eq!(v["request_X-Forwarded-Host"], "a");
        assert_eq!(v["request_Authorization"], "REDACTED");
        assert!(v.get("request_Cookie").is_none());
    }
}
