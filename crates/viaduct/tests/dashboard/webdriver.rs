//! A small WebDriver client for chromedriver, over the test kit's HTTP client: enough to
//! load pages, find elements, type, click, run scripts, read the console and take screenshots.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use viaduct_testkit::{free_port, HttpClient, RequestBody, RequestSpec};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session; the browser and chromedriver stop when it is dropped.
pub struct Browser {
    client: HttpClient,
    base: String,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        let port = free_port().unwrap();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (apt-get install chromium-driver)");
        let client = HttpClient::http1().with_timeout(Duration::from_secs(60));
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(reply) = client.get(&format!("{base}/status")).await {
                if reply.status == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--hide-scrollbars",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let mut browser = Browser {
            client,
            base,
            session: String::new(),
            driver,
            _profile: profile,
        };
        let created = browser
            .call(Method::POST, "/session", Some(capabilities))
            .await;
        browser.session = created["sessionId"].as_str().unwrap().to_string();
        browser
    }

    /// Sends one command; returns its `value`, panicking on a WebDriver error.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut spec = RequestSpec::new(method, &url);
        if let Some(body) = body {
            spec = spec
                .header("content-type", "application/json")
                .body(RequestBody::Bytes(Bytes::from(body.to_string())));
        }
        let reply = self.client.send(spec).await.unwrap();
        let answer: Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(reply.status, 200, "WebDriver {path}: {answer}");
        answer["value"].clone()
    }

    async fn session_call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        self.call(method, &path, body).await
    }

    pub async fn goto(&self, url: &str) {
        self.session_call(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn set_window(&self, width: u32, height: u32) {
        let rect = json!({ "width": width, "height": height });
        self.session_call(Method::POST, "/window/rect", Some(rect))
            .await;
    }

    pub async fn execute(&self, script: &str, args: Value) -> Value {
        let body = json!({ "script": script, "args": args });
        self.session_call(Method::POST, "/execute/sync", Some(body))
            .await
    }

    /// Polls `script` (which returns a value) until `ready` accepts it, for at most `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
        ready: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, json!([])).await;
            if ready(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last value: {value}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let body = json!({ "using": "css selector", "value": css });
        let found = self
            .session_call(Method::POST, "/element", Some(body))
            .await;
        match found[ELEMENT_KEY].as_str() {
            Some(id) => id.to_string(),
            None => panic!("no element {css}: {found}"),
        }
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.session_call(
            Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        let body = json!({ "text": text });
        self.session_call(Method::POST, &format!("/element/{id}/value"), Some(body))
            .await;
    }

    pub async fn clear(&self, css: &str) {
        let id = self.element(css).await;
        self.session_call(
            Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let encoded = self.session_call(Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The console messages logged since the last call.
    pub async fn console(&self) -> Vec<Value> {
        let body = json!({ "type": "browser" });
        let logs = self.session_call(Method::POST, "/se/log", Some(body)).await;
        logs.as_array().cloned().unwrap_or_default()
    }

    pub async fn quit(mut self) {
        let path = format!("/session/{}", self.session);
        self.call(Method::DELETE, &path, None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A test that failed midway still ends its session, so chromedriver closes the
        // browser; killing chromedriver alone would leave Chromium running.
        if !self.session.is_empty() {
            end_session_blocking(&self.base, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` without an async runtime (drop may run while unwinding).
fn end_session_blocking(base: &str, session: &str) {
    use std::io::{Read, Write};
    let Some(authority) = base.strip_prefix("http://") else {
        return;
    };
    let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
    }
}
