//! The real servers and files the part-A middleware tests use: an untyped backend, an
//! authentication server, certificates for mutual TLS, htpasswd lines, and encodings.

#![allow(dead_code)]

/// `htpasswd -nb<flag> user password`, the `user:hash` line.
pub(crate) fn htpasswd(flag: &str, user: &str, password: &str) -> String {
    let out = std::process::Command::new("htpasswd")
        .args([&format!("-nb{flag}"), user, password])
        .output()
        .expect("htpasswd runs");
    assert!(out.status.success(), "htpasswd failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

pub(crate) fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 by hand, to keep the tests free of an encoding crate.
pub(crate) fn base64(input: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A backend that answers every request without a Content-Type: `<html>` for paths with
/// `html`, PNG bytes for `png`, a typed JSON answer for `typed`, and text otherwise.
pub(crate) struct UntypedBackend {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UntypedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) async fn untyped_backend() -> UntypedBackend {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let (typed, body): (bool, Vec<u8>) = if path.contains("html") {
                        (false, b"  <HTML><body>hi</body></HTML>".to_vec())
                    } else if path.contains("png") {
                        (false, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec())
                    } else if path.contains("typed") {
                        (true, b"{}".to_vec())
                    } else {
                        (false, b"plain words".to_vec())
                    };
                    let content_type = if typed {
                        "Content-Type: application/json\r\n"
                    } else {
                        ""
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\n{content_type}Content-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    UntypedBackend { url, task }
}

/// Go's `url.QueryUnescape`.
pub(crate) fn query_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A CA, a client certificate it signed with every field the info header can carry, and a
/// server certificate; all written as PEM files into `dir`. Returns the client's DER.
pub(crate) fn mtls_files(dir: &std::path::Path) -> Vec<u8> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType, SerialNumber,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.distinguished_name
        .push(DnType::OrganizationName, "Viaduct CA");
    ca.distinguished_name
        .push(DnType::CommonName, "test client CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();

    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["client.test".to_string()]).unwrap();
    let dn = &mut params.distinguished_name;
    dn.push(
        DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
        "example",
    );
    dn.push(DnType::CountryName, "FR");
    dn.push(DnType::StateOrProvinceName, "Rhone");
    dn.push(DnType::LocalityName, "Lyon");
    dn.push(DnType::OrganizationName, "Viaduct");
    dn.push(DnType::OrganizationalUnitName, "Tests");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 5]), "SN-42");
    dn.push(DnType::CommonName, "client.test");
    params.subject_alt_names.extend([
        SanType::Rfc822Name("me@client.test".try_into().unwrap()),
        SanType::IpAddress("127.0.0.9".parse().unwrap()),
        SanType::URI("spiffe://client/test".try_into().unwrap()),
    ]);
    params.serial_number = Some(SerialNumber::from(vec![0x01, 0x02, 0x03]));
    params.not_before = rcgen::date_time_ymd(2024, 1, 2);
    params.not_after = rcgen::date_time_ymd(2034, 1, 2);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();

    let server = rcgen::generate_simple_self_signed(vec!["secure.test".to_string()]).unwrap();
    let files = [
        ("ca.pem", ca_cert.pem()),
        ("client.pem", client.pem()),
        ("client.key", key.serialize_pem()),
        ("server.pem", server.cert.pem()),
        ("server.key", server.signing_key.serialize_pem()),
    ];
    for (name, content) in files {
        std::fs::write(dir.join(name), content).unwrap();
    }
    client.der().to_vec()
}

/// What the test authentication server received.
#[derive(Debug, Clone)]
pub(crate) struct AuthSeen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl AuthSeen {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A small HTTP/1.1 authentication server deciding by `X-Forwarded-Uri`: `/deny…` gets a
/// 401, `/redirect…` a 302 to a relative URL, anything else a 200 with user headers and
/// cookies.
pub(crate) struct AuthServer {
    pub addr: std::net::SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<AuthSeen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl AuthServer {
    pub(crate) fn last(&self) -> AuthSeen {
        self.seen
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("the auth server was called")
    }
}

pub(crate) async fn auth_server() -> AuthServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let end = loop {
                        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break end;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    buf.drain(..end + 4);
                    let mut lines = head.split("\r\n");
                    let mut request_line = lines.next().unwrap_or("").split(' ');
                    let method = request_line.next().unwrap_or("").to_string();
                    let target = request_line.next().unwrap_or("").to_string();
                    let headers: Vec<(String, String)> = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                        .collect();
                    let length: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Vec<u8> = buf.drain(..length).collect();
                    let seen = AuthSeen {
                        method,
                        target,
                        headers,
                        body,
                    };
                    let uri = seen.header("x-forwarded-uri").unwrap_or("").to_string();
                    record.lock().unwrap().push(seen);
                    let response = if uri.starts_with("/deny") {
                        let body = "denied by auth";
                        format!(
                            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"auth\"\r\nX-Auth-Extra: 1\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        )
                    } else if uri.starts_with("/redirect") {
                        "HTTP/1.1 302 Found\r\nLocation: /login?from=x\r\nContent-Length: 0\r\n\r\n"
                            .to_string()
                    } else {
                        "HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Role: admin\r\nX-Auth-Ignored: no\r\nSet-Cookie: session=abc; Path=/\r\nSet-Cookie: other=1\r\nContent-Length: 0\r\n\r\n".to_string()
                    };
                    if stream.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    AuthServer { addr, seen, task }
}
