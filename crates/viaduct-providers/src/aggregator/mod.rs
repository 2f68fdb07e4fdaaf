//! The aggregator: the latest configuration of every provider, throttled and merged.

mod merge;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use viaduct_config::DynamicConfig;

use crate::ProviderMessage;
pub use merge::merge;

/// Collects provider messages and publishes the merged configuration.
#[derive(Debug)]
pub struct Aggregator {
    throttle: Duration,
    /// The configuration in effect for each provider. Shared with `received` (no copy): a large
    /// configuration is held once, not once per map.
    applied: BTreeMap<String, Arc<DynamicConfig>>,
    /// The last configuration received from each provider, applied or not.
    received: BTreeMap<String, Arc<DynamicConfig>>,
    windows: BTreeMap<String, ThrottleWindow>,
    generation: u64,
    /// Whether anything was published yet (the first merge always is). What was published last
    /// is read back from the watch channel rather than kept here a second time.
    published_any: bool,
}

/// One merged configuration; `generation` increases with every publication.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MergedConfig {
    pub generation: u64,
    pub config: DynamicConfig,
}

/// After a provider's configuration is applied, its next ones wait until `ends`; only the
/// latest of them is applied then.
#[derive(Debug)]
struct ThrottleWindow {
    ends: Instant,
    pending: Option<Arc<DynamicConfig>>,
}

impl Aggregator {
    /// `throttle` is `providersThrottleDuration`; zero applies every message at once.
    pub fn new(throttle: Duration) -> Self {
        Aggregator {
            throttle,
            applied: BTreeMap::new(),
            received: BTreeMap::new(),
            windows: BTreeMap::new(),
            generation: 0,
            published_any: false,
        }
    }

    /// Receives provider messages; publishes merged configurations.
    ///
    /// The first merge is always published, so a consumer can tell that providers have
    /// reported even when they define nothing; later ones only when the merge changed.
    /// Returns when every sender is gone, after applying what was still held back.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<ProviderMessage>,
        out: watch::Sender<Arc<MergedConfig>>,
    ) {
        self.generation = out.borrow().generation;
        loop {
            let next_due = self
                .windows
                .values()
                .filter(|w| w.pending.is_some())
                .map(|w| w.ends)
                .min();
            tokio::select! {
                message = rx.recv() => match message {
                    Some(message) => self.receive(message, &out),
                    None => {
                        self.apply_pending(None, &out);
                        return;
                    }
                },
                _ = sleep_until(next_due), if next_due.is_some() => {
                    self.apply_pending(Some(Instant::now()), &out);
                }
            }
        }
    }

    fn receive(&mut self, message: ProviderMessage, out: &watch::Sender<Arc<MergedConfig>>) {
        let ProviderMessage { provider, config } = message;
        if self
            .received
            .get(&provider)
            .is_some_and(|previous| Arc::ptr_eq(previous, &config) || **previous == *config)
        {
            tracing::debug!(provider = %provider, "configuration unchanged; skipping");
            return;
        }
        self.received.insert(provider.clone(), Arc::clone(&config));
        let now = Instant::now();
        match self.windows.get_mut(&provider) {
            Some(window) if now < window.ends => {
                tracing::debug!(provider = %provider, "configuration throttled");
                window.pending = Some(config);
            }
            _ => self.apply(provider, config, now, out),
        }
    }

    /// Applies the held-back configurations whose window ended by `now` (all when `None`).
    fn apply_pending(&mut self, now: Option<Instant>, out: &watch::Sender<Arc<MergedConfig>>) {
        let due: Vec<(String, Arc<DynamicConfig>)> = self
            .windows
            .iter_mut()
            .filter(|(_, w)| now.is_none_or(|now| w.ends <= now))
            .filter_map(|(provider, w)| Some((provider.clone(), w.pending.take()?)))
            .collect();
        for (provider, config) in due {
            self.apply(provider, config, Instant::now(), out);
        }
    }

    fn apply(
        &mut self,
        provider: String,
        config: Arc<DynamicConfig>,
        now: Instant,
        out: &watch::Sender<Arc<MergedConfig>>,
    ) {
        if !self.throttle.is_zero() {
            self.windows.insert(
                provider.clone(),
                ThrottleWindow {
                    ends: now + self.throttle,
                    pending: None,
                },
            );
        }
        self.applied.insert(provider, config);
        let merged = merge(&self.applied);
        if self.published_any && out.borrow().config == merged {
            return;
        }
        self.generation += 1;
        tracing::info!(
            generation = self.generation,
            "publishing a new configuration"
        );
        out.send_replace(Arc::new(MergedConfig {
            generation: self.generation,
            config: merged,
        }));
        self.published_any = true;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
