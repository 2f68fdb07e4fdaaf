//! Load generator and echo server for `bench/tcp/run`.
//!
//! ```text
//! tcp_load echo ADDR                         # echo server: every byte back, FIN after the client's
//! tcp_load throughput ADDR SECONDS CONNS     # MiB/s echoed through ADDR over CONNS connections
//! tcp_load connect ADDR SECONDS CONCURRENCY  # connections/s: connect, 1 byte, half-close, echo, close
//! ```

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let addr: SocketAddr = args.get(1).expect("ADDR").parse().unwrap();
    let number = |i: usize| -> u64 { args.get(i).and_then(|a| a.parse().ok()).unwrap_or(1) };
    match args.first().map(String::as_str) {
        Some("echo") => runtime.block_on(echo(addr)),
        Some("throughput") => {
            let mib = runtime.block_on(throughput(addr, number(2), number(3)));
            println!("{mib:.0}");
        }
        Some("connect") => {
            let rate = runtime.block_on(connect(addr, number(2), number(3)));
            println!("{rate:.0}");
        }
        _ => eprintln!("usage: tcp_load echo|throughput|connect ADDR [SECONDS N]"),
    }
}

async fn echo(addr: SocketAddr) {
    let listener = TcpListener::bind(addr).await.unwrap();
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (mut read, mut write) = stream.split();
            let _ = tokio::io::copy(&mut read, &mut write).await;
            let _ = write.shutdown().await;
        });
    }
}

async fn throughput(addr: SocketAddr, seconds: u64, connections: u64) -> f64 {
    let echoed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let echoed = echoed.clone();
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            let (mut read, mut write) = stream.into_split();
            let writer = tokio::spawn(async move {
                let chunk = vec![b'x'; 64 * 1024];
                while Instant::now() < deadline {
                    if write.write_all(&chunk).await.is_err() {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            });
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if Instant::now() < deadline {
                            echoed.fetch_add(n as u64, Ordering::Relaxed);
                        }
                    }
                }
            }
            let _ = writer.await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    echoed.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0) / seconds as f64
}

async fn connect(addr: SocketAddr, seconds: u64, concurrency: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let Ok(mut stream) = TcpStream::connect(addr).await else {
                    continue;
                };
                // A reset instead of TIME_WAIT: thousands of short connections would exhaust ports.
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                if stream.write_all(b"x").await.is_err() || stream.shutdown().await.is_err() {
                    continue;
                }
                let mut answer = Vec::new();
                if stream.read_to_end(&mut answer).await.is_ok() && answer == b"x" {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}
