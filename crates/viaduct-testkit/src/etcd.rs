use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::Method;

use crate::client::{HttpClient, RequestBody, RequestSpec};
use crate::error::TestkitError;
use crate::ports::free_port;
use crate::wait::wait_until;

/// A throwaway single-member etcd (v3) on loopback ports, with its data in a temporary
/// directory; stopped on drop. Keys are written through etcd's JSON API, as a client would.
#[derive(Debug)]
pub struct EtcdServer {
    port: u16,
    child: Child,
    _data: tempfile::TempDir,
    client: HttpClient,
}

impl EtcdServer {
    /// Starts etcd on a free port and waits until it answers.
    pub async fn start() -> crate::Result<Self> {
        Self::start_on(free_port()?).await
    }

    /// Starts etcd on `port` (for a test that starts the store after its client).
    pub async fn start_on(port: u16) -> crate::Result<Self> {
        let data = tempfile::tempdir().map_err(|e| TestkitError::io("etcd's data directory", e))?;
        let peer = free_port()?;
        let client_url = format!("http://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let child = Command::new("etcd")
            .arg("--name=test")
            .arg(format!("--data-dir={}", data.path().join("etcd").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=test={peer_url}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TestkitError::Spawn {
                program: "etcd".into(),
                source,
            })?;
        let server = EtcdServer {
            port,
            child,
            _data: data,
            client: HttpClient::http1().with_timeout(Duration::from_secs(5)),
        };
        wait_until("etcd to answer", Duration::from_secs(20), || async {
            match server
                .call("/v3/kv/range", serde_json::json!({"key": encode("probe")}))
                .await
            {
                Ok(_) => Ok(Some(())),
                Err(e) => Err(e.to_string()),
            }
        })
        .await?;
        Ok(server)
    }

    /// `127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Writes one key.
    pub async fn put(&self, key: &str, value: &str) -> crate::Result<()> {
        let body = serde_json::json!({"key": encode(key), "value": encode(value)});
        self.call("/v3/kv/put", body).await.map(drop)
    }

    /// Writes several keys in one transaction (one revision, one watch event batch).
    pub async fn put_all(&self, pairs: &[(&str, &str)]) -> crate::Result<()> {
        let success: Vec<serde_json::Value> = pairs
            .iter()
            .map(
                |(k, v)| serde_json::json!({"request_put": {"key": encode(k), "value": encode(v)}}),
            )
            .collect();
        self.call("/v3/kv/txn", serde_json::json!({"success": success}))
            .await
            .map(drop)
    }

    /// Deletes one key.
    pub async fn delete(&self, key: &str) -> crate::Result<()> {
        self.call(
            "/v3/kv/deleterange",
            serde_json::json!({"key": encode(key)}),
        )
        .await
        .map(drop)
    }

    async fn call(&self, path: &str, body: serde_json::Value) -> crate::Result<String> {
        let url = format!("http://127.0.0.1:{}{path}", self.port);
        let spec = RequestSpec::new(Method::POST, &url)
            .header("content-type", "application/json")
            .body(RequestBody::Bytes(Bytes::from(body.to_string())));
        let reply = self.client.send(spec).await?;
        if reply.status != 200 {
            return Err(TestkitError::Http {
                url,
                reason: format!("status {}: {}", reply.status, reply.text()),
            });
        }
        Ok(reply.text())
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}
