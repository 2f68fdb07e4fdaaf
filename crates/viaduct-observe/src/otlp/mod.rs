//! What the OTLP exporters (traces and metrics) share: protobuf encoded by hand (the few
//! messages sent do not warrant a code generator and its build-time dependencies) and the
//! export call made from an exporter's own thread: a blocking HTTP/1.1 POST (`otlp.http`,
//! over TLS for `https://`), or a unary gRPC call over HTTP/2 (`otlp.grpc`).

mod grpc;
mod tls;
pub(crate) mod wire;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::Deserialize;

pub use tls::{ClientTls, ClientTlsOptions};

const TIMEOUT: Duration = Duration::from_secs(5);
/// Traefik's default OTLP/HTTP endpoint.
const DEFAULT_ENDPOINT: &str = "https://localhost:4318";
/// Traefik's default OTLP/gRPC endpoint (TLS unless `insecure`).
const DEFAULT_GRPC_ENDPOINT: &str = "localhost:4317";

/// An exporter's `otlp.http` options (the same for traces and metrics).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct HttpExporterOptions {
    endpoint: Option<String>,
    headers: BTreeMap<String, String>,
    tls: Option<ClientTlsOptions>,
}

/// An exporter's `otlp.grpc` options (the same for traces and metrics).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct GrpcExporterOptions {
    /// `host:port`.
    endpoint: Option<String>,
    /// Plain HTTP/2 instead of TLS.
    insecure: bool,
    headers: BTreeMap<String, String>,
    tls: Option<ClientTlsOptions>,
}

/// `otlp.http` or `otlp.grpc`: the one an exporter uses (HTTP when both are given, as Traefik).
pub(crate) enum ExporterOptions {
    Http(HttpExporterOptions),
    Grpc(GrpcExporterOptions),
}

/// How the collector is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `POST <path>` with the protobuf body, over HTTP/1.1.
    Http,
    /// The gRPC method `<path>`, over HTTP/2.
    Grpc,
}

/// An `otlp.http.endpoint` (or `otlp.grpc.endpoint`) that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
#[error("{endpoint:?}: {reason}")]
pub struct EndpointError {
    pub endpoint: String,
    pub reason: String,
}

/// Where an exporter posts: `host:port`, the path, extra request headers, and TLS for
/// `https://` endpoints.
#[derive(Debug, Clone, PartialEq)]
pub struct Collector {
    pub transport: Transport,
    pub authority: String,
    /// The request path, or the gRPC method.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub tls: Option<ClientTls>,
}

impl ExporterOptions {
    /// `otlp.http` when given, else `otlp.grpc`, else `otlp.http`'s defaults (Traefik's).
    pub(crate) fn chosen(
        http: Option<HttpExporterOptions>,
        grpc: Option<GrpcExporterOptions>,
    ) -> ExporterOptions {
        match (http, grpc) {
            (Some(http), _) => ExporterOptions::Http(http),
            (None, Some(grpc)) => ExporterOptions::Grpc(grpc),
            (None, None) => ExporterOptions::Http(HttpExporterOptions::default()),
        }
    }

    /// The collector: for HTTP, posting to the endpoint's path or `http_path`; for gRPC,
    /// calling `grpc_method`.
    pub(crate) fn collector(
        self,
        http_path: &str,
        grpc_method: &str,
    ) -> Result<Collector, EndpointError> {
        match self {
            ExporterOptions::Http(http) => http.collector(http_path),
            ExporterOptions::Grpc(grpc) => grpc.collector(grpc_method),
        }
    }
}

impl GrpcExporterOptions {
    fn collector(self, method: &str) -> Result<Collector, EndpointError> {
        let endpoint = self
            .endpoint
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_GRPC_ENDPOINT.into());
        // Go's gRPC exporter takes `host:port`; a scheme, if written, says the same as `insecure`.
        let (authority, insecure) = match endpoint.trim().split_once("://") {
            Some(("http", rest)) => (rest, true),
            Some(("https", rest)) => (rest, self.insecure),
            Some(_) => {
                return Err(EndpointError {
                    endpoint,
                    reason: "the scheme must be http or https, or none".into(),
                })
            }
            None => (endpoint.trim(), self.insecure),
        };
        let authority = authority.trim_end_matches('/');
        let fail = |reason: String| EndpointError {
            endpoint: endpoint.clone(),
            reason,
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(fail("expected host:port".into()));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:4317")
        };
        let tls = if insecure {
            None
        } else {
            Some(ClientTls::build(&self.tls.unwrap_or_default()).map_err(fail)?)
        };
        Ok(Collector {
            transport: Transport::Grpc,
            authority,
            path: method.to_string(),
            headers: self.headers.into_iter().collect(),
            tls,
        })
    }
}

impl HttpExporterOptions {
    /// The collector to post to (Traefik's default endpoint when none is given).
    pub(crate) fn collector(self, default_path: &str) -> Result<Collector, EndpointError> {
        let endpoint = self
            .endpoint
            .filter(|e| !e.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        Collector::from_endpoint(
            &endpoint,
            default_path,
            self.headers.into_iter().collect(),
            self.tls.as_ref(),
        )
        .map_err(|reason| EndpointError { endpoint, reason })
    }
}

/// An exporter's resource: `service.name`, `service.version`, then `attributes` (one of the
/// same key replaces the earlier, the last one given winning).
pub(crate) fn resource(
    service_name: String,
    attributes: impl IntoIterator<Item = (String, String)>,
) -> Vec<(String, String)> {
    let mut resource = vec![
        ("service.name".to_string(), service_name),
        (
            "service.version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    for (key, value) in attributes {
        resource.retain(|(k, _)| *k != key);
        resource.push((key, value));
    }
    resource
}

impl Collector {
    /// `http://collector:4318/v1/traces` → (`collector:4318`, `/v1/traces`); no path means
    /// `default_path`. `https://` endpoints use `tls` (the system's roots without it); `tls`
    /// is ignored for `http://` ones, as in Traefik. The error says why the endpoint or its
    /// TLS options cannot be used.
    pub fn from_endpoint(
        endpoint: &str,
        default_path: &str,
        headers: Vec<(String, String)>,
        tls: Option<&ClientTlsOptions>,
    ) -> Result<Collector, String> {
        let (rest, tls, default_port) = match endpoint.trim().split_once("://") {
            Some(("http", rest)) => (rest, None, 80),
            Some(("https", rest)) => {
                let options = tls.cloned().unwrap_or_default();
                (rest, Some(ClientTls::build(&options)?), 443)
            }
            Some(_) => return Err("the scheme must be http or https".into()),
            None => (endpoint.trim(), None, 80),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err("no host".into());
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let path = if path.is_empty() || path == "/" {
            default_path.to_string()
        } else {
            path.to_string()
        };
        Ok(Collector {
            transport: Transport::Http,
            authority,
            path,
            headers,
            tls,
        })
    }

    /// Sends one protobuf export request; any answer but success is an error.
    pub fn post(&self, body: &[u8]) -> std::io::Result<()> {
        if self.transport == Transport::Grpc {
            return grpc::post(self, body);
        }
        self.post_as("application/x-protobuf", body)
    }

    /// POSTs `body` as `content_type` over HTTP/1.1; any answer but 2xx is an error.
    pub fn post_as(&self, content_type: &str, body: &[u8]) -> std::io::Result<()> {
        let addr =
            self.authority.to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::other("the collector's host resolves to no address")
            })?;
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        match &self.tls {
            Some(tls) => {
                let connection = rustls::ClientConnection::new(tls.0.clone(), self.server_name()?)
                    .map_err(std::io::Error::other)?;
                let mut stream = rustls::StreamOwned::new(connection, stream);
                self.exchange(&mut stream, content_type, body)
            }
            None => {
                let mut stream = stream;
                self.exchange(&mut stream, content_type, body)
            }
        }
    }

    /// The host of the authority, for SNI and certificate verification.
    fn server_name(&self) -> std::io::Result<ServerName<'static>> {
        let host = match self.authority.rsplit_once(':') {
            Some((host, _)) => host,
            None => &self.authority,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(host.to_string()).map_err(std::io::Error::other)
    }

    fn exchange(
        &self,
        stream: &mut impl ReadWrite,
        content_type: &str,
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.path,
            self.authority,
            body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        let mut answer = [0u8; 64];
        let n = stream.read(&mut answer)?;
        let status = String::from_utf8_lossy(&answer[..n]);
        if status.starts_with("HTTP/1.1 2") || status.starts_with("HTTP/1.0 2") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "the collector answered {:?}",
                status.lines().next().unwrap_or("")
            )))
        }
    }
}

/// A connection, plain or TLS.
trait ReadWrite: Read + Write {}

impl<T: Read + Write> ReadWrite for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let at = |e: &str| {
            Collector::from_endpoint(e, "/v1/traces", Vec::new(), None)
                .map(|c| (c.authority, c.path))
        };
        assert_eq!(
            at("http://c:4318/v1/x").unwrap(),
            ("c:4318".into(), "/v1/x".into())
        );
        assert_eq!(
            at("http://c:4318").unwrap(),
            ("c:4318".into(), "/v1/traces".into())
        );
        assert_eq!(
            at("http://c/").unwrap(),
            ("c:80".into(), "/v1/traces".into())
        );
        assert_eq!(
            at("https://c/").unwrap(),
            ("c:443".into(), "/v1/traces".into())
        );
        let missing_ca = ClientTlsOptions {
            ca: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        assert!(Collector::from_endpoint("https://c", "/", Vec::new(), Some(&missing_ca)).is_err());
        assert!(at("ftp://c").is_err());
    }
}
