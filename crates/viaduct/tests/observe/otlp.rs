//! A test OTLP/HTTP collector: accepts `POST /v1/traces` and `POST /v1/metrics` with
//! protobuf bodies, decodes the spans and metric points and keeps them for assertions.

#![allow(dead_code)] // each test binary uses its own part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Clone, Default)]
pub struct Span {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub name: String,
    pub kind: u64,
    pub attributes: BTreeMap<String, String>,
    /// The resource's attributes.
    pub resource: BTreeMap<String, String>,
}

/// One data point of a pushed metric.
#[derive(Debug, Clone, Default)]
pub struct MetricPoint {
    pub name: String,
    /// `gauge`, `sum` or `histogram`.
    pub kind: &'static str,
    pub attributes: BTreeMap<String, String>,
    /// The number, or a histogram's count.
    pub value: f64,
    /// A histogram's bucket counts and bounds.
    pub bucket_counts: Vec<u64>,
    pub bounds: Vec<f64>,
    pub resource: BTreeMap<String, String>,
}

pub struct Collector {
    pub port: u16,
    pub spans: Arc<Mutex<Vec<Span>>>,
    /// The points of each metrics export request, in arrival order.
    pub metric_pushes: Arc<Mutex<Vec<Vec<MetricPoint>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Collector {
    pub async fn start() -> Collector {
        Collector::serve(None).await
    }

    /// A collector answering over TLS (HTTP/1.1 only: it offers no h2 by ALPN) with a new
    /// self-signed certificate for `127.0.0.1`; also returns that certificate as PEM.
    pub async fn start_tls() -> (Collector, String) {
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()),
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![certified.cert.der().clone()], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        (Collector::serve(Some(acceptor)).await, certified.cert.pem())
    }

    async fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Collector {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let metric_pushes: Arc<Mutex<Vec<Vec<MetricPoint>>>> = Arc::default();
        let store = spans.clone();
        let pushes = metric_pushes.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                let pushes = pushes.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                receive(stream, store, pushes).await;
                            }
                        }
                        None => receive(stream, store, pushes).await,
                    }
                });
            }
        });
        Collector {
            port,
            spans,
            metric_pushes,
            task,
        }
    }

    /// The points of the last metrics push.
    pub fn last_metrics(&self) -> Vec<MetricPoint> {
        self.metric_pushes
            .lock()
            .unwrap()
            .last()
            .cloned()
            .unwrap_or_default()
    }

    pub fn spans_of(&self, trace_id: &str) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

/// Reads one export request, keeps what it holds, and answers 200.
async fn receive(
    mut stream: impl AsyncRead + AsyncWrite + Unpin,
    store: Arc<Mutex<Vec<Span>>>,
    pushes: Arc<Mutex<Vec<Vec<MetricPoint>>>>,
) {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    let chunked = String::from_utf8_lossy(&data[..head_end])
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    while !chunked && data.len() < head_end + length {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let mut body = data[head_end..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        while !body.ends_with(b"0\r\n\r\n") {
            let Ok(n) = stream.read(&mut buf).await else {
                return;
            };
            if n == 0 {
                return;
            }
            body.extend_from_slice(&buf[..n]);
        }
        body = dechunk(&body);
    } else {
        body.truncate(length);
    }
    if head.contains("content-encoding: gzip") {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain)
            .unwrap();
        body = plain;
    }
    if head.starts_with("post /v1/metrics") {
        pushes.lock().unwrap().push(decode_metrics(&body));
    } else {
        store.lock().unwrap().extend(decode_request(&body));
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .await;
}

/// A chunked body's data.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

enum Field {
    Varint(u64),
    Fixed(u64),
    Bytes(Vec<u8>),
}

fn fields(mut data: &[u8]) -> Vec<(u64, Field)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = varint(&mut data);
        let value = match key & 7 {
            0 => Field::Varint(varint(&mut data)),
            1 => {
                let v = u64::from_le_bytes(data[..8].try_into().unwrap());
                data = &data[8..];
                Field::Fixed(v)
            }
            2 => {
                let len = varint(&mut data) as usize;
                let v = data[..len].to_vec();
                data = &data[len..];
                Field::Bytes(v)
            }
            5 => {
                let v = u64::from(u32::from_le_bytes(data[..4].try_into().unwrap()));
                data = &data[4..];
                Field::Fixed(v)
            }
            other => panic!("wire type {other}"),
        };
        out.push((key >> 3, value));
    }
    out
}

fn varint(data: &mut &[u8]) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let byte = data[0];
        *data = &data[1..];
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
        shift += 7;
    }
}

fn bytes_of(fields: &[(u64, Field)], number: u64) -> Vec<&[u8]> {
    fields
        .iter()
        .filter_map(|(n, f)| match f {
            Field::Bytes(b) if *n == number => Some(b.as_slice()),
            _ => None,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(list: Vec<&[u8]>) -> BTreeMap<String, String> {
    list.into_iter()
        .map(|kv| {
            let kv = fields(kv);
            let key = String::from_utf8_lossy(bytes_of(&kv, 1)[0]).into_owned();
            let any = fields(bytes_of(&kv, 2).first().copied().unwrap_or(&[]));
            let value = match any.first() {
                Some((1, Field::Bytes(s))) => String::from_utf8_lossy(s).into_owned(),
                Some((2 | 3, Field::Varint(v))) => v.to_string(),
                Some((4, Field::Fixed(v))) => f64::from_bits(*v).to_string(),
                _ => String::new(),
            };
            (key, value)
        })
        .collect()
}

/// `ExportTraceServiceRequest` → spans.
fn decode_request(body: &[u8]) -> Vec<Span> {
    let mut spans = Vec::new();
    for resource_spans in bytes_of(&fields(body), 1) {
        let rs = fields(resource_spans);
        let resource = bytes_of(&rs, 1)
            .first()
            .map(|r| attributes(bytes_of(&fields(r), 1)))
            .unwrap_or_default();
        for scope_spans in bytes_of(&rs, 2) {
            for span in bytes_of(&fields(scope_spans), 2) {
                let f = fields(span);
                let one = |n| {
                    bytes_of(&f, n)
                        .first()
                        .map(|b| b.to_vec())
                        .unwrap_or_default()
                };
                let kind = f
                    .iter()
                    .find_map(|(n, v)| match v {
                        Field::Varint(k) if *n == 6 => Some(*k),
                        _ => None,
                    })
                    .unwrap_or(0);
                spans.push(Span {
                    trace_id: hex(&one(1)),
                    span_id: hex(&one(2)),
                    parent_span_id: hex(&one(4)),
                    name: String::from_utf8_lossy(&one(5)).into_owned(),
                    kind,
                    attributes: attributes(bytes_of(&f, 9)),
                    resource: resource.clone(),
                });
            }
        }
    }
    spans
}

/// `ExportMetricsServiceRequest` → data points.
fn decode_metrics(body: &[u8]) -> Vec<MetricPoint> {
    let mut points = Vec::new();
    for resource_metrics in bytes_of(&fields(body), 1) {
        let rm = fields(resource_metrics);
        let resource = bytes_of(&rm, 1)
            .first()
            .map(|r| attributes(bytes_of(&fields(r), 1)))
            .unwrap_or_default();
        for scope_metrics in bytes_of(&rm, 2) {
            for metric in bytes_of(&fields(scope_metrics), 2) {
                let m = fields(metric);
                let name = String::from_utf8_lossy(bytes_of(&m, 1)[0]).into_owned();
                for (number, kind) in [(5, "gauge"), (7, "sum"), (9, "histogram")] {
                    for data in bytes_of(&m, number) {
                        for point in bytes_of(&fields(data), 1) {
                            let p = fields(point);
                            let fixed = |n| {
                                p.iter().find_map(|(k, v)| match v {
                                    Field::Fixed(x) if *k == n => Some(*x),
                                    _ => None,
                                })
                            };
                            let packed = |n| -> Vec<u64> {
                                bytes_of(&p, n)
                                    .first()
                                    .map(|b| {
                                        b.chunks(8)
                                            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                                            .collect()
                                    })
                                    .unwrap_or_default()
                            };
                            let mut out = MetricPoint {
                                name: name.clone(),
                                kind,
                                resource: resource.clone(),
                                ..Default::default()
                            };
                            if kind == "histogram" {
                                out.attributes = attributes(bytes_of(&p, 9));
                                out.value = fixed(4).unwrap_or(0) as f64;
                                out.bucket_counts = packed(6);
                                out.bounds = packed(7).into_iter().map(f64::from_bits).collect();
                            } else {
                                out.attributes = attributes(bytes_of(&p, 7));
                                out.value = match (fixed(4), fixed(6)) {
                                    (Some(d), _) => f64::from_bits(d),
                                    (None, Some(i)) => i as i64 as f64,
                                    (None, None) => 0.0,
                                };
                            }
                            points.push(out);
                        }
                    }
                }
            }
        }
    }
    points
}
