//! DNS-01 providers: lego's two generic ones, with lego's environment variables, so that any DNS can be scripted.
//!
//! - `exec`: runs `$EXEC_PATH present|cleanup <fqdn> <value>` (`EXEC_MODE=RAW`: `<domain> <token> <keyAuth>`).
//! - `httpreq`: POSTs `{"fqdn","value"}` (`HTTPREQ_MODE=RAW`: `{"domain","token","keyAuth"}`) to
//!   `$HTTPREQ_ENDPOINT/present` and `/cleanup`, with basic auth from `HTTPREQ_USERNAME`/`HTTPREQ_PASSWORD`.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::AcmeError;

/// How long one provider call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A DNS-01 record to publish or withdraw.
#[derive(Debug, Clone)]
pub struct DnsRecord {
    /// The domain being validated (without `*.`).
    pub domain: String,
    pub token: String,
    pub key_authorization: String,
    /// The TXT value: base64url(SHA-256(key authorization)).
    pub value: String,
}

impl DnsRecord {
    /// `_acme-challenge.<domain>.`, as lego passes it.
    pub fn fqdn(&self) -> String {
        format!("_acme-challenge.{}.", self.domain.trim_end_matches('.'))
    }
}

/// A configured DNS provider.
#[derive(Debug, Clone)]
pub enum DnsProvider {
    Exec {
        path: String,
        raw: bool,
    },
    HttpReq {
        endpoint: String,
        raw: bool,
        credentials: Option<(String, String)>,
    },
}

impl DnsProvider {
    /// The provider named by `dnsChallenge.provider`, configured from the environment as lego is.
    pub fn from_name(name: &str) -> Result<DnsProvider, AcmeError> {
        let env = |key: &str| std::env::var(key).unwrap_or_default();
        let failed = |message: String| AcmeError::Dns {
            provider: name.to_string(),
            message,
        };
        match name {
            "exec" => {
                let path = env("EXEC_PATH");
                if path.is_empty() {
                    return Err(failed("EXEC_PATH is not set".into()));
                }
                Ok(DnsProvider::Exec {
                    path,
                    raw: env("EXEC_MODE").eq_ignore_ascii_case("RAW"),
                })
            }
            "httpreq" => {
                let endpoint = env("HTTPREQ_ENDPOINT");
                if endpoint.is_empty() {
                    return Err(failed("HTTPREQ_ENDPOINT is not set".into()));
                }
                let (user, password) = (env("HTTPREQ_USERNAME"), env("HTTPREQ_PASSWORD"));
                Ok(DnsProvider::HttpReq {
                    endpoint: endpoint.trim_end_matches('/').to_string(),
                    raw: env("HTTPREQ_MODE").eq_ignore_ascii_case("RAW"),
                    credentials: (!user.is_empty() || !password.is_empty()).then_some((user, password)),
                })
            }
            other => Err(failed(format!(
                "DNS provider {other:?} is not supported yet; use \"exec\" or \"httpreq\" to script any DNS"
            ))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            DnsProvider::Exec { .. } => "exec",
            DnsProvider::HttpReq { .. } => "httpreq",
        }
    }

    pub async fn present(&self, record: &DnsRecord) -> Result<(), AcmeError> {
        self.call("present", record).await
    }

    pub async fn cleanup(&self, record: &DnsRecord) -> Result<(), AcmeError> {
        self.call("cleanup", record).await
    }

    async fn call(&self, action: &'static str, record: &DnsRecord) -> Result<(), AcmeError> {
        let failed = |message: String| AcmeError::Dns {
            provider: self.name().to_string(),
            message: format!("{action} {}: {message}", record.fqdn()),
        };
        let call = async {
            match self {
                DnsProvider::Exec { path, raw } => exec(path, *raw, action, record).await,
                DnsProvider::HttpReq {
                    endpoint,
                    raw,
                    credentials,
                } => http_request(endpoint, *raw, credentials.as_ref(), action, record).await,
            }
        };
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(result) => result.map_err(failed),
            Err(_) => Err(failed(format!("no answer within {CALL_TIMEOUT:?}"))),
        }
    }
}

/// `ETXTBSY` on Linux.
const TEXT_FILE_BUSY: i32 = 26;

async fn exec(path: &str, raw: bool, action: &str, record: &DnsRecord) -> Result<(), String> {
    let mut command = tokio::process::Command::new(path);
    command.arg(action);
    if raw {
        command.args([&record.domain, &record.token, &record.key_authorization]);
    } else {
        command.args([record.fqdn(), record.value.clone()]);
    }
    command.kill_on_drop(true);
    // A program written just before it is run can be briefly "busy" (ETXTBSY) while another
    // thread's fork still holds the writer's descriptor, before that child's exec closes it.
    // It passes within milliseconds: try a few times.
    let mut attempt = 0;
    let output = loop {
        match command.output().await {
            Err(e) if e.raw_os_error() == Some(TEXT_FILE_BUSY) && attempt < 5 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20 * attempt)).await;
            }
            result => break result.map_err(|e| format!("cannot run {path}: {e}"))?,
        }
    };
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{path} exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

async fn http_request(
    endpoint: &str,
    raw: bool,
    credentials: Option<&(String, String)>,
    action: &str,
    record: &DnsRecord,
) -> Result<(), String> {
    let body = if raw {
        serde_json::json!({
            "domain": record.domain,
            "token": record.token,
            "keyAuth": record.key_authorization,
        })
    } else {
        serde_json::json!({ "fqdn": record.fqdn(), "value": record.value })
    };
    let mut request = http::Request::post(format!("{endpoint}/{action}"))
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some((user, password)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header(http::header::AUTHORIZATION, format!("Basic {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| e.to_string())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| e.to_string())?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        return Ok(());
    }
    Err(format!(
        "{endpoint}/{action} answered {}",
        response.status()
    ))
}
