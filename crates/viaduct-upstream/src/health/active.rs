//! Active health checks: one task per (service, server), owned by the snapshots using it.

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, HOST, LOCATION};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::BodyExt;
use tokio::task::JoinHandle;
use viaduct_config::HealthCheck;

use super::ServerState;
use crate::body::Body;
use crate::server::Server;
use crate::transport::Transport;

/// Go's http.Client gives up after this many redirects.
const MAX_REDIRECTS: usize = 10;

/// A `healthCheck` section with Traefik's defaults applied. Two equal specs on the same
/// server and transport mean the running checker can be kept across a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckSpec {
    /// `mode: grpc`: the gRPC health protocol instead of an HTTP request.
    pub grpc: bool,
    pub path: String,
    /// Replaces the server's scheme (`http`, `https`).
    pub scheme: Option<Scheme>,
    pub port: Option<u16>,
    /// The `Host` header; the server's authority when unset.
    pub hostname: Option<String>,
    pub method: Method,
    /// The one healthy status; any 2xx or 3xx when unset.
    pub status: Option<StatusCode>,
    pub interval: Duration,
    pub unhealthy_interval: Duration,
    pub timeout: Duration,
    pub follow_redirects: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, thiserror::Error)]
pub enum HealthCheckError {
    #[error("healthCheck.{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("healthCheck.mode {0:?}: expected http or grpc")]
    UnknownMode(String),
}

/// A running health check. Dropping the last reference stops it: snapshots own their
/// checkers, so checks live exactly as long as a configuration uses the server.
#[derive(Debug)]
pub struct HealthChecker {
    spec: Arc<HealthCheckSpec>,
    url: String,
    transport: Arc<Transport>,
    task: JoinHandle<()>,
}

impl HealthCheckSpec {
    pub fn from_config(config: &HealthCheck) -> Result<HealthCheckSpec, HealthCheckError> {
        let invalid =
            |field: &'static str, reason: String| HealthCheckError::Invalid { field, reason };
        let grpc = match config.mode.to_ascii_lowercase().as_str() {
            "" | "http" => false,
            "grpc" => true,
            _ => return Err(HealthCheckError::UnknownMode(config.mode.clone())),
        };
        let scheme = match config.scheme.to_ascii_lowercase().as_str() {
            "" => None,
            "http" | "h2c" => Some(Scheme::HTTP),
            "https" => Some(Scheme::HTTPS),
            other => return Err(invalid("scheme", format!("{other:?} is not http or https"))),
        };
        let port = match config.port {
            0 => None,
            p => Some(
                u16::try_from(p).map_err(|_| invalid("port", format!("{p} is out of range")))?,
            ),
        };
        let method = if config.method.is_empty() {
            Method::GET
        } else {
            Method::from_bytes(config.method.to_ascii_uppercase().as_bytes())
                .map_err(|e| invalid("method", e.to_string()))?
        };
        let status = match config.status {
            0 => None,
            s => Some(
                u16::try_from(s)
                    .ok()
                    .and_then(|s| StatusCode::from_u16(s).ok())
                    .ok_or_else(|| invalid("status", format!("{s} is not an HTTP status")))?,
            ),
        };
        let mut headers = Vec::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid("headers", format!("{name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| invalid("headers", format!("{name}: {e}")))?;
            headers.push((name, value));
        }
        let positive = |d: Option<viaduct_config::GoDuration>, default: Duration| {
            d.and_then(viaduct_config::GoDuration::positive)
                .unwrap_or(default)
        };
        let interval = positive(config.interval, Duration::from_secs(30));
        Ok(HealthCheckSpec {
            grpc,
            path: config.path.clone(),
            scheme,
            port,
            hostname: (!config.hostname.is_empty()).then(|| config.hostname.clone()),
            method,
            status,
            interval,
            unhealthy_interval: positive(config.unhealthy_interval, interval),
            timeout: positive(config.timeout, Duration::from_secs(5)),
            follow_redirects: config.follow_redirects.unwrap_or(true),
            headers,
        })
    }

    /// The first URL checked for `server`: the path resolved against the server's URL, with
    /// the scheme and port overrides.
    fn target(&self, server: &Server) -> Result<Uri, String> {
        let scheme = self.scheme.clone().unwrap_or_else(|| server.scheme.clone());
        let authority = match self.port {
            Some(port) => authority_with_port(&server.authority, port)?,
            None => server.authority.clone(),
        };
        let path = if self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!(
                "{}/{}",
                server.path_prefix.as_deref().unwrap_or(""),
                self.path
            )
        };
        let path = PathAndQuery::try_from(path).map_err(|e| format!("path: {e}"))?;
        Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|e| e.to_string())
    }
}

impl HealthChecker {
    /// Starts checking `server` of `service`, writing verdicts into `state`. `None` outside
    /// a Tokio runtime (configuration checks), where nothing is served anyway.
    pub fn spawn(
        service: &str,
        server: &Server,
        spec: Arc<HealthCheckSpec>,
        transport: Arc<Transport>,
        state: Arc<ServerState>,
    ) -> Option<Arc<HealthChecker>> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let probe = Probe {
            service: service.to_string(),
            url: server.url.clone(),
            target: spec.target(server),
            host: match &spec.hostname {
                Some(h) => HeaderValue::from_str(h).ok(),
                None => None,
            }
            .unwrap_or_else(|| server.host_header.clone()),
            h2c: server.h2c,
            spec: spec.clone(),
            transport: transport.clone(),
            state,
        };
        let task = runtime.spawn(probe.run());
        Some(Arc::new(HealthChecker {
            spec,
            url: server.url.clone(),
            transport,
            task,
        }))
    }

    /// Whether this checker does what a new one for these arguments would do.
    pub fn is_equivalent(
        &self,
        server: &Server,
        spec: &HealthCheckSpec,
        transport: &Arc<Transport>,
    ) -> bool {
        self.url == server.url && *self.spec == *spec && Arc::ptr_eq(&self.transport, transport)
    }
}

impl Drop for HealthChecker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Everything one checker task needs, owned.
struct Probe {
    service: String,
    url: String,
    target: Result<Uri, String>,
    host: HeaderValue,
    h2c: bool,
    spec: Arc<HealthCheckSpec>,
    transport: Arc<Transport>,
    state: Arc<ServerState>,
}

impl Probe {
    async fn run(self) {
        loop {
            let wait = if self
                .state
                .active_up
                .load(std::sync::atomic::Ordering::Relaxed)
            {
                self.spec.interval
            } else {
                self.spec.unhealthy_interval
            };
            tokio::time::sleep(wait).await;
            let verdict = match tokio::time::timeout(self.spec.timeout, self.check()).await {
                Ok(verdict) => verdict,
                Err(_) => Err(format!("no answer within {:?}", self.spec.timeout)),
            };
            let up = verdict.is_ok();
            if self.state.set_active(up) {
                match verdict {
                    Ok(()) => {
                        tracing::info!(service = %self.service, url = %self.url, "server UP: health check passed")
                    }
                    Err(reason) => {
                        tracing::warn!(service = %self.service, url = %self.url, %reason, "server DOWN: health check failed")
                    }
                }
            } else if let Err(reason) = verdict {
                tracing::debug!(service = %self.service, url = %self.url, %reason, "health check failed");
            }
        }
    }

    async fn check(&self) -> Result<(), String> {
        if self.spec.grpc {
            let target = self.target.as_ref().map_err(Clone::clone)?;
            return super::grpc::check(&self.transport, target, &self.host).await;
        }
        let mut uri = self.target.clone()?;
        let mut method = self.spec.method.clone();
        let mut host = self.host.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(uri.clone())
                .body(Body::Empty)
                .map_err(|e| e.to_string())?;
            let headers = request.headers_mut();
            headers.insert(HOST, host.clone());
            for (name, value) in &self.spec.headers {
                headers.insert(name.clone(), value.clone());
            }
            let response = self
                .transport
                .send(request, self.h2c && uri.scheme() == Some(&Scheme::HTTP))
                .await
                .map_err(|e| format!("HTTP request failed: {e}"))?;
            let status = response.status();
            let location = response.headers().get(LOCATION).cloned();
            // Read the body so the connection goes back to the pool.
            let _ = response.into_body().collect().await;
            if self.spec.follow_redirects && status.is_redirection() {
                if let Some(next) = location.and_then(|l| resolve(&uri, l.to_str().ok()?)) {
                    if matches!(status.as_u16(), 301..=303) && method != Method::HEAD {
                        method = Method::GET;
                    }
                    if let Some(authority) = next.authority() {
                        if Some(authority) != uri.authority() {
                            host = HeaderValue::from_str(authority.as_str())
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    uri = next;
                    continue;
                }
            }
            return judge(status, self.spec.status);
        }
        Err(format!("stopped after {MAX_REDIRECTS} redirects"))
    }
}

fn judge(status: StatusCode, wanted: Option<StatusCode>) -> Result<(), String> {
    match wanted {
        Some(wanted) if wanted != status => Err(format!(
            "received error status code: {} expected status code: {}",
            status.as_u16(),
            wanted.as_u16()
        )),
        Some(_) => Ok(()),
        None if status.is_success() || status.is_redirection() => Ok(()),
        None => Err(format!("received error status code: {}", status.as_u16())),
    }
}

/// A redirect's `Location`, absolute or relative to `base`.
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if location.contains("://") {
        return location.parse().ok();
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path().rsplit_once('/').map_or("", |(d, _)| d);
        format!("{dir}/{location}")
    };
    let mut parts = base.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path).ok()?);
    Uri::from_parts(parts).ok()
}

fn authority_with_port(authority: &Authority, port: u16) -> Result<Authority, String> {
    let host = authority.host();
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Authority::try_from(format!("{host}:{port}")).map_err(|e| format!("port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_path: &str) -> HealthCheckSpec {
        HealthCheckSpec::from_config(&HealthCheck {
            path: yaml_path.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn defaults_are_traefiks() {
        let s = spec("/health");
        assert_eq!(s.interval, Duration::from_secs(30));
        assert_eq!(s.unhealthy_interval, Duration::from_secs(30));
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert!(s.follow_redirects);
        assert_eq!(s.method, Method::GET);
    }

    #[test]
    fn target_applies_scheme_port_and_path() {
        let server = Server::parse("http://[::1]:81/base", 1, true).unwrap();
        let mut s = spec("/health?x=1");
        assert_eq!(
            s.target(&server).unwrap().to_string(),
            "http://[::1]:81/health?x=1"
        );
        s.port = Some(9000);
        s.scheme = Some(Scheme::HTTPS);
        assert_eq!(
            s.target(&server).unwrap().to_string(),
            "https://[::1]:9000/health?x=1"
        );
        let relative = spec("ping");
        assert_eq!(
            relative.target(&server).unwrap().to_string(),
            "http://[::1]:81/base/ping"
        );
    }

    #[test]
    fn judging_statuses() {
        assert!(judge(StatusCode::OK, None).is_ok());
        assert!(judge(StatusCode::FOUND, None).is_ok());
        assert!(judge(StatusCode::NOT_FOUND, None).is_err());
        assert!(judge(StatusCode::OK, Some(StatusCode::NO_CONTENT)).is_err());
        assert!(judge(StatusCode::NO_CONTENT, Some(StatusCode::NO_CONTENT)).is_ok());
    }

    #[test]
    fn modes() {
        let mode = |m: &str| {
            HealthCheckSpec::from_config(&HealthCheck {
                path: "/".into(),
                mode: m.into(),
                ..Default::default()
            })
        };
        assert!(mode("grpc").unwrap().grpc);
        assert!(!mode("HTTP").unwrap().grpc);
        assert!(mode("tcp")
            .unwrap_err()
            .to_string()
            .contains("http or grpc"));
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "http://a:1/x/y".parse().unwrap();
        assert_eq!(resolve(&base, "/z").unwrap().to_string(), "http://a:1/z");
        assert_eq!(resolve(&base, "w").unwrap().to_string(), "http://a:1/x/w");
        assert_eq!(
            resolve(&base, "http://b:2/").unwrap().to_string(),
            "http://b:2/"
        );
    }
}
