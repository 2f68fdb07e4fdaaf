//! Copying bytes both ways between a client and a backend, with TCP half-close.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// Both directions finished (or the second was cut after `terminationDelay`).
    Closed,
    /// The router was removed by a reload and its grace ran out.
    RouterRemoved,
}

/// Copies `client` ⇄ `backend` until both directions end. When one side stops sending, its
/// peer's write side is shut down (a FIN, so half-closing clients still get their answer) and
/// the other direction may run on for at most `termination_delay` (`None`: unbounded), as
/// Traefik's `terminationDelay` does. When `router_alive` reports the router gone, the relay
/// ends after `removal_grace`.
pub async fn relay<C, B>(
    client: C,
    backend: B,
    termination_delay: Option<Duration>,
    mut router_alive: watch::Receiver<()>,
    removal_grace: Duration,
) -> RelayEnd
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut backend_read, mut backend_write) = tokio::io::split(backend);
    let upstream = copy_then_close(&mut client_read, &mut backend_write);
    let downstream = copy_then_close(&mut backend_read, &mut client_write);
    let both = async {
        tokio::pin!(upstream, downstream);
        // One direction ends first; the other then gets `termination_delay` at most.
        let rest = tokio::select! {
            _ = &mut upstream => Either::Downstream,
            _ = &mut downstream => Either::Upstream,
        };
        let remaining = async {
            match rest {
                Either::Downstream => (&mut downstream).await,
                Either::Upstream => (&mut upstream).await,
            }
        };
        match termination_delay {
            Some(delay) => {
                let _ = tokio::time::timeout(delay, remaining).await;
            }
            None => remaining.await,
        }
    };
    let removed = async {
        // The sender lives in the router, held by every snapshot serving it: all of them
        // gone means the router was removed.
        while router_alive.changed().await.is_ok() {}
        tokio::time::sleep(removal_grace).await;
    };
    tokio::select! {
        _ = both => RelayEnd::Closed,
        _ = removed => RelayEnd::RouterRemoved,
    }
}

/// The buffer of each direction.
const COPY_BUFFER: usize = 64 * 1024;

enum Either {
    Upstream,
    Downstream,
}

async fn copy_then_close<R, W>(from: &mut R, to: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Larger reads than `copy`'s 8 KiB: fewer system calls per byte on bulk transfers.
    let mut from = tokio::io::BufReader::with_capacity(COPY_BUFFER, from);
    if let Err(e) = tokio::io::copy_buf(&mut from, to).await {
        tracing::trace!(error = %e, "TCP relay direction ended with an error");
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn half_close_reaches_the_backend_and_the_answer_comes_back() {
        let (client, mut client_far) = tokio::io::duplex(1024);
        let (backend, mut backend_far) = tokio::io::duplex(1024);
        let (_alive, watch) = watch::channel(());
        let relaying = tokio::spawn(relay(
            client,
            backend,
            Some(Duration::from_secs(5)),
            watch,
            Duration::ZERO,
        ));
        client_far.write_all(b"question").await.unwrap();
        client_far.shutdown().await.unwrap();
        let mut got = Vec::new();
        backend_far.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"question");
        backend_far.write_all(b"answer").await.unwrap();
        backend_far.shutdown().await.unwrap();
        let mut answer = Vec::new();
        client_far.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, b"answer");
        assert_eq!(relaying.await.unwrap(), RelayEnd::Closed);
    }

    #[tokio::test]
    async fn termination_delay_bounds_the_other_direction() {
        let (client, mut client_far) = tokio::io::duplex(1024);
        let (backend, _backend_far) = tokio::io::duplex(1024);
        let (_alive, watch) = watch::channel(());
        client_far.shutdown().await.unwrap();
        let started = tokio::time::Instant::now();
        let end = relay(
            client,
            backend,
            Some(Duration::from_millis(50)),
            watch,
            Duration::ZERO,
        )
        .await;
        assert_eq!(end, RelayEnd::Closed);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_removed_router_ends_the_relay_after_the_grace() {
        let (client, _client_far) = tokio::io::duplex(1024);
        let (backend, _backend_far) = tokio::io::duplex(1024);
        let (alive, watch) = watch::channel(());
        drop(alive);
        let end = relay(client, backend, None, watch, Duration::from_millis(10)).await;
        assert_eq!(end, RelayEnd::RouterRemoved);
    }
}
