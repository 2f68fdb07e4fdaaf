//! A scripted raw-TCP backend on 127.0.0.1 that records what it receives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the backend does on one connection, in order.
#[derive(Clone)]
pub(super) enum Step {
    /// Reads one whole request (head and body) and records it.
    Read,
    Send(&'static [u8]),
    Pause(Duration),
    Close,
}

/// A backend that plays one script per accepted connection and records what it received.
/// After its script a connection stays open until the client closes it.
pub(super) struct Backend {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Backend {
    pub(super) async fn start(scripts: Vec<Vec<Step>>) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let (count, log) = (accepted.clone(), received.clone());
        let task = tokio::spawn(async move {
            // Owning the connection tasks here ends them when the backend is dropped.
            let mut connections = JoinSet::new();
            let mut scripts = scripts.into_iter();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let script = scripts.next().unwrap_or_else(|| vec![Step::Close]);
                connections.spawn(play(stream, script, log.clone()));
            }
        });
        Backend {
            addr,
            accepted,
            received,
            task,
        }
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(super) fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub(super) fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn play(mut stream: TcpStream, script: Vec<Step>, log: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    for step in script {
        match step {
            Step::Read => match read_request(&mut stream, &mut buf).await {
                Some(request) => log.lock().unwrap().push(request),
                None => return,
            },
            Step::Send(bytes) => {
                if stream.write_all(bytes).await.is_err() {
                    return;
                }
            }
            Step::Pause(d) => tokio::time::sleep(d).await,
            Step::Close => return,
        }
    }
    let mut sink = [0u8; 1024];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// Reads one request framed by Content-Length or chunked encoding; `None` at end of stream.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(len) = complete_request_len(buf) {
            let request: Vec<u8> = buf.drain(..len).collect();
            return Some(String::from_utf8_lossy(&request).into_owned());
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn complete_request_len(buf: &[u8]) -> Option<usize> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head) = request.parse(buf).ok()? else {
        return None;
    };
    let field = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).to_string())
    };
    if field("transfer-encoding").is_some() {
        let mut pos = head;
        loop {
            let httparse::Status::Complete((line, size)) =
                httparse::parse_chunk_size(&buf[pos..]).ok()?
            else {
                return None;
            };
            pos += line;
            if size == 0 {
                let mut trailers = [httparse::EMPTY_HEADER; 16];
                return match httparse::parse_headers(&buf[pos..], &mut trailers).ok()? {
                    httparse::Status::Complete((len, _)) => Some(pos + len),
                    httparse::Status::Partial => None,
                };
            }
            pos += size as usize + 2;
            if pos > buf.len() {
                return None;
            }
        }
    }
    let length: usize = field("content-length").map_or(0, |v| v.trim().parse().unwrap());
    (buf.len() >= head + length).then_some(head + length)
}
