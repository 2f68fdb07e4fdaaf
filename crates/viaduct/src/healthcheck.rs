//! `viaduct healthcheck`: asks a running instance's `/ping` (on the ping entry point from the
//! same static configuration) and exits 0 on `200 OK`, 1 otherwise — for container health
//! checks, as `traefik healthcheck`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use crate::static_load;

/// Traefik's client timeout.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
enum HealthcheckError {
    #[error("please enable `ping` to use health check")]
    PingDisabled,
    #[error("ping: missing {0} entry point")]
    MissingEntryPoint(String),
    #[error("entry point address {0:?} cannot be reached: {1}")]
    Address(String, String),
    #[error("{url}: {source}")]
    Request { url: String, source: std::io::Error },
    #[error("{0}: the answer is not HTTP")]
    NotHttp(String),
}

pub fn run(args: &[String]) -> ExitCode {
    match check(args) {
        Ok(url) => {
            println!("OK: {url}");
            ExitCode::SUCCESS
        }
        Err(Outcome::Failed(e)) => {
            println!("Error calling healthcheck: {e}");
            ExitCode::from(1)
        }
        Err(Outcome::BadStatus(status)) => {
            println!("Bad healthcheck status: {status}");
            ExitCode::from(1)
        }
    }
}

enum Outcome {
    Failed(String),
    BadStatus(String),
}

fn check(args: &[String]) -> Result<String, Outcome> {
    let loaded = static_load::load(args).map_err(|e| Outcome::Failed(format!("{e:#}")))?;
    let config = loaded.config;
    let failed = |e: HealthcheckError| Outcome::Failed(e.to_string());
    let ping = config
        .ping
        .as_ref()
        .ok_or(failed(HealthcheckError::PingDisabled))?;
    let name = if ping.entry_point.is_empty() {
        "traefik"
    } else {
        ping.entry_point.as_str()
    };
    let entry_point = config
        .entry_points
        .get(name)
        .ok_or_else(|| failed(HealthcheckError::MissingEntryPoint(name.into())))?;
    let address = entry_point
        .address
        .trim()
        .trim_end_matches("/tcp")
        .to_string();
    let url = format!("http://{address}/ping");
    let target = resolve(&address).map_err(failed)?;
    let status = head_ping(target, &address).map_err(|source| {
        failed(HealthcheckError::Request {
            url: url.clone(),
            source,
        })
    })?;
    let status = status.ok_or_else(|| failed(HealthcheckError::NotHttp(url.clone())))?;
    if status.starts_with("200") {
        Ok(url)
    } else {
        Err(Outcome::BadStatus(status))
    }
}

/// `:8080` means this machine, as Go's dialer reads it.
fn resolve(address: &str) -> Result<SocketAddr, HealthcheckError> {
    let local = match address.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => address.to_string(),
    };
    local
        .to_socket_addrs()
        .map_err(|e| HealthcheckError::Address(address.into(), e.to_string()))?
        .next()
        .ok_or_else(|| HealthcheckError::Address(address.into(), "no address".into()))
}

/// Sends `HEAD /ping` and returns the status (`200 OK`), or `None` for a non-HTTP answer.
fn head_ping(target: SocketAddr, host: &str) -> std::io::Result<Option<String>> {
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let host = if host.starts_with(':') {
        format!("localhost{host}")
    } else {
        host.to_string()
    };
    write!(
        stream,
        "HEAD /ping HTTP/1.1\r\nHost: {host}\r\nUser-Agent: viaduct-healthcheck\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("");
    Ok(status_line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| status_line.strip_prefix("HTTP/1.0 "))
        .map(str::to_string))
}
