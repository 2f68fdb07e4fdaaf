//! UDP routers end to end: sessions per client address, answers back to the right client, and
//! sessions that end after `udp.timeout` without traffic.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is the failure report

mod common;
mod tcp_support;

use std::net::SocketAddr;
use std::time::Duration;

use tcp_support::{eventually, UdpBackend};
use tokio::net::UdpSocket;

/// Sends `payload` and waits briefly for an answer ending with it: `(backend, backend port)`.
async fn ask(client: &UdpSocket, to: SocketAddr, payload: &str) -> Option<(String, u16)> {
    client.send_to(payload.as_bytes(), to).await.ok()?;
    let mut buf = [0u8; 2048];
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    loop {
        let (n, _) = tokio::time::timeout_at(deadline, client.recv_from(&mut buf))
            .await
            .ok()?
            .ok()?;
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut parts = answer.splitn(3, ':');
        let (name, port, echoed) = (parts.next()?, parts.next()?, parts.next()?);
        if echoed == payload {
            return Some((name.to_string(), port.parse().ok()?));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sessions_per_client_with_idle_expiry() {
    let a = UdpBackend::start("a").await;
    let b = UdpBackend::start("b").await;
    let port = {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let static_yaml = common::static_config("").replace(
        "providers:",
        &format!(
            "  dns:\n    address: \"127.0.0.1:{port}/udp\"\n    udp:\n      timeout: 500ms\nproviders:"
        ),
    );
    let dynamic = r#"
udp:
  routers:
    dns:
      entryPoints: [dns]
      service: pair
  services:
    pair:
      loadBalancer:
        servers:
          - address: "{{a}}"
          - address: "{{b}}"
"#;
    let proxy = common::start_with(
        &static_yaml,
        dynamic,
        &[("a", a.addr.to_string()), ("b", b.addr.to_string())],
    )
    .await;
    let entry: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let first = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let second = UdpSocket::bind("127.0.0.1:0").await.unwrap();

    let (first_backend, first_port) =
        eventually("the UDP router", || ask(&first, entry, "one")).await;
    let (second_backend, _) = ask(&second, entry, "two").await.unwrap();
    // Round robin over two servers: the two clients' sessions went to different ones, and
    // each client got its own answer.
    assert_ne!(first_backend, second_backend);
    // The session sticks to its server and its socket while it is active.
    for i in 0..3 {
        let again = ask(&first, entry, &format!("again{i}")).await.unwrap();
        assert_eq!(again, (first_backend.clone(), first_port));
    }
    // After udp.timeout without traffic the session is gone: the next datagram opens another
    // (a new socket towards the backend).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, later_port) = ask(&first, entry, "later").await.unwrap();
    assert_ne!(
        later_port, first_port,
        "a new session after the idle timeout"
    );
    drop(proxy);
}
