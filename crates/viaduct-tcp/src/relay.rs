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

enum Either {
    Upstream,
    Downstream,
}

async fn copy_then_close<R, W>(from: &mut R, to: &mut W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Err(e) = tokio::io::copy(from, to).await {
        tracing::trace!(error = %e, "TCP relay direction ended with an error");
    }
    let _ = to.shutdown().await;
}
