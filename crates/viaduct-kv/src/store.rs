//! What every KV provider does the same way, whatever the store: read every key under the
//! root and decode it, follow the store's change events (or poll where it has none), coalesce a
//! burst of events into one re-read, send a configuration only when it changed, keep the last
//! good one on a broken value or an unreachable store, and retry with a capped backoff.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use viaduct_config::DynamicConfig;
use viaduct_providers::ProviderMessage;

use crate::layout::{decode_layout, LayoutError};

/// One KV store, as the provider loop sees it.
pub(crate) trait Store: Sync {
    /// A live watch on the root.
    type Watch: Send;
    /// The provider's name (`name@<provider>`).
    const PROVIDER: &'static str;

    /// The root key, without slashes around it.
    fn root_key(&self) -> &str;

    /// Every `(key, value)` under the root.
    fn read_pairs(&self) -> impl Future<Output = Result<Vec<(String, String)>, KvError>> + Send;

    /// Starts watching the root; `None` when the store cannot notify (the loop polls).
    fn watch(&self) -> impl Future<Output = Result<Option<Self::Watch>, KvError>> + Send;

    /// Waits for the next change under the root.
    fn next_event(
        &self,
        watch: &mut Self::Watch,
    ) -> impl Future<Output = Result<(), KvError>> + Send;
}

/// Why the options are refused, or why one read brought no configuration.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("providers.{provider}.{option}: {reason}")]
    Option {
        provider: &'static str,
        option: &'static str,
        reason: String,
    },
    #[error("reading the configuration from {store} ({endpoints}): {source}")]
    Store {
        store: &'static str,
        endpoints: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the configuration in the store does not decode: {0}")]
    Layout(#[from] LayoutError),
}

/// The provider's delays; tests shorten them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// Re-read period when the store cannot notify.
    pub poll_interval: Duration,
    /// A burst of events ends after this long without one.
    pub quiet: Duration,
    /// The longest a burst may delay a re-read.
    pub burst_cap: Duration,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_interval: Duration::from_secs(5),
            quiet: Duration::from_millis(50),
            burst_cap: Duration::from_secs(1),
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// What the event wait ended with.
enum Wake {
    Changed,
    Lost(KvError),
    Closed,
}

/// What was last sent, and the last decoding error logged (logged once while it stays).
#[derive(Default)]
struct Sent {
    config: Option<DynamicConfig>,
    error: Option<String>,
}

/// One read of the store, decoded.
pub(crate) async fn fetch<S: Store>(store: &S) -> Result<DynamicConfig, KvError> {
    let pairs = store.read_pairs().await?;
    Ok(decode_layout(&pairs, store.root_key())?)
}

/// Reads, then follows the store, until `tx` closes.
pub(crate) async fn run<S: Store>(store: &S, timing: Timing, tx: mpsc::Sender<ProviderMessage>) {
    let mut sent = Sent::default();
    let mut backoff = timing.first_backoff;
    loop {
        // Watch before reading, so no edit falls between the read and the watch.
        let outcome = match store.watch().await {
            Ok(watch) => match reload(store, &tx, &mut sent).await {
                Ok(()) => {
                    backoff = timing.first_backoff;
                    follow(store, timing, watch, &tx, &mut sent).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => return,
            Err(e) => tracing::error!(
                provider = S::PROVIDER,
                error = %e,
                retry_in = ?backoff,
                "the store is unreachable; the last configuration stays"
            ),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = tx.closed() => return,
        }
        backoff = (backoff * 2).min(timing.max_backoff);
    }
}

/// Waits for changes and re-reads after each; `Ok` when `tx` closed, `Err` when the store
/// went away.
async fn follow<S: Store>(
    store: &S,
    timing: Timing,
    mut watch: Option<S::Watch>,
    tx: &mpsc::Sender<ProviderMessage>,
    sent: &mut Sent,
) -> Result<(), KvError> {
    loop {
        let wake = match &mut watch {
            Some(watch) => {
                tokio::select! {
                    wake = next_burst(store, timing, watch) => wake,
                    () = tx.closed() => Wake::Closed,
                }
            }
            None => {
                tokio::select! {
                    () = tokio::time::sleep(timing.poll_interval) => Wake::Changed,
                    () = tx.closed() => Wake::Closed,
                }
            }
        };
        match wake {
            Wake::Changed => reload(store, tx, sent).await?,
            Wake::Lost(e) => return Err(e),
            Wake::Closed => return Ok(()),
        }
    }
}

/// Waits for one event, then for the burst it starts to end (no event for `quiet`, at most
/// `burst_cap`), so that a script writing fifty keys gives one re-read.
async fn next_burst<S: Store>(store: &S, timing: Timing, watch: &mut S::Watch) -> Wake {
    if let Err(e) = store.next_event(watch).await {
        return Wake::Lost(e);
    }
    let deadline = Instant::now() + timing.burst_cap;
    loop {
        let quiet_until = (Instant::now() + timing.quiet).min(deadline);
        tokio::select! {
            event = store.next_event(watch) => {
                if let Err(e) = event {
                    return Wake::Lost(e);
                }
            }
            () = tokio::time::sleep_until(quiet_until) => return Wake::Changed,
        }
    }
}

/// Reads the store and sends the configuration if it changed. A configuration that does not
/// decode is logged (once while it stays the same) and the last good one stays; only a store
/// failure is an error.
async fn reload<S: Store>(
    store: &S,
    tx: &mpsc::Sender<ProviderMessage>,
    sent: &mut Sent,
) -> Result<(), KvError> {
    let config = match fetch(store).await {
        Ok(config) => config,
        Err(KvError::Layout(e)) => {
            let message = e.to_string();
            if sent.error.as_deref() != Some(&message) {
                tracing::error!(provider = S::PROVIDER, key = %e.key, error = %e.message, "the stored configuration does not decode; the last good one stays");
                sent.error = Some(message);
            }
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    sent.error = None;
    if sent.config.as_ref() == Some(&config) {
        return Ok(());
    }
    let message = ProviderMessage {
        provider: S::PROVIDER.into(),
        config: Arc::new(config.clone()),
    };
    // A closed channel means shutdown; the watch loop notices it.
    if tx.send(message).await.is_ok() {
        sent.config = Some(config);
    }
    Ok(())
}
