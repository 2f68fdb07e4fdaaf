//! `providers.redis`: the configuration under `<rootKey>/` in Redis, watched live.
//!
//! A read walks the keys with `SCAN MATCH` (never `KEYS`, which blocks the server), fetches
//! their values with `MGET` and decodes them with [`crate::layout`]. Changes are watched with
//! keyspace notifications (`PSUBSCRIBE __keyspace@<db>__:<rootKey>/*`), switched on with
//! `CONFIG SET` when they are off, as Traefik's Redis store does; where `CONFIG` is refused
//! (managed Redis) the store is re-read every 5 s instead. A burst of events (an `MSET` of
//! many keys) gives one re-read. A configuration is sent only when it changed; a broken value
//! or an unreachable server keeps the last good one, and the connection is retried with a
//! capped backoff.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use viaduct_config::{static_config, DynamicConfig};
use viaduct_providers::ProviderMessage;
use viaduct_redis::{RedisClient, RedisError, RedisSettings, Reply, Subscription};

use crate::layout::{decode_layout, LayoutError};

/// The name the provider's objects are qualified with (`name@redis`).
pub const REDIS_PROVIDER_NAME: &str = "redis";

/// Reads and watches one Redis database.
#[derive(Debug)]
pub struct RedisProvider {
    client: RedisClient,
    root_key: String,
    db: i64,
    timing: Timing,
}

/// Why the options are refused, or why one read brought no configuration.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("providers.redis.{option}: {reason}")]
    Option {
        option: &'static str,
        reason: String,
    },
    #[error("reading the configuration from Redis ({endpoints}): {source}")]
    Redis {
        endpoints: String,
        #[source]
        source: RedisError,
    },
    #[error("the configuration in Redis does not decode: {0}")]
    Layout(#[from] LayoutError),
}

/// The provider's delays; tests shorten them.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Re-read period when keyspace notifications cannot be switched on.
    poll_interval: Duration,
    /// A burst of events ends after this long without one.
    quiet: Duration,
    /// The longest a burst may delay a re-read.
    burst_cap: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
}

/// How changes are noticed on the current connection.
enum Watch {
    Notifications(Subscription),
    Polling,
}

/// What the event wait ended with.
enum Wake {
    Changed,
    Lost(RedisError),
    Closed,
}

/// Keys fetched per `MGET`, so that no command or reply grows with the store.
const MGET_CHUNK: usize = 500;
/// `SCAN`'s `COUNT` hint.
const SCAN_COUNT: usize = 1000;

impl RedisProvider {
    /// Checks the options. Nothing is contacted yet.
    pub fn new(options: &static_config::RedisProvider) -> Result<Self, KvError> {
        let option = |option, reason: &str| KvError::Option {
            option,
            reason: reason.to_owned(),
        };
        if options.endpoints.is_empty() {
            return Err(option("endpoints", "at least one endpoint is needed"));
        }
        if let Some(bad) = options.endpoints.iter().find(|e| !e.contains(':')) {
            return Err(option(
                "endpoints",
                &format!("{bad:?} is not a host:port address"),
            ));
        }
        if options.root_key.split('/').all(str::is_empty) {
            return Err(option("rootKey", "must not be empty"));
        }
        if options.db < 0 {
            return Err(option("db", "must not be negative"));
        }
        let mut settings = RedisSettings::new(options.endpoints.clone());
        settings.username = options.username.clone();
        settings.password = options.password.clone();
        settings.db = options.db;
        settings.pool_size = 2;
        Ok(RedisProvider {
            client: RedisClient::new(settings),
            root_key: options.root_key.trim_matches('/').to_owned(),
            db: options.db,
            timing: Timing {
                poll_interval: Duration::from_secs(5),
                quiet: Duration::from_millis(50),
                burst_cap: Duration::from_secs(1),
                first_backoff: Duration::from_secs(1),
                max_backoff: Duration::from_secs(30),
            },
        })
    }

    /// Shortens the backoff (first retry, cap) and the polling period; for tests.
    pub fn with_retry_delays(mut self, first: Duration, max: Duration, poll: Duration) -> Self {
        self.timing.first_backoff = first;
        self.timing.max_backoff = max;
        self.timing.poll_interval = poll;
        self
    }

    /// One read of the store.
    pub async fn fetch(&self) -> Result<DynamicConfig, KvError> {
        let pairs = self.read_pairs().await?;
        Ok(decode_layout(&pairs, &self.root_key)?)
    }

    /// Reads, then watches, until `tx` closes.
    pub async fn run(self, tx: mpsc::Sender<ProviderMessage>) {
        let mut last_sent: Option<DynamicConfig> = None;
        let mut last_error: Option<String> = None;
        let mut warned_polling = false;
        let mut backoff = self.timing.first_backoff;
        loop {
            // Subscribe before reading, so no edit falls between the read and the watch.
            let outcome = match self.watch(&mut warned_polling).await {
                Ok(watch) => match self.reload(&tx, &mut last_sent, &mut last_error).await {
                    Ok(()) => {
                        backoff = self.timing.first_backoff;
                        self.follow(watch, &tx, &mut last_sent, &mut last_error)
                            .await
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => return,
                Err(e) => tracing::error!(
                    provider = REDIS_PROVIDER_NAME,
                    error = %e,
                    retry_in = ?backoff,
                    "Redis is unreachable; the last configuration stays"
                ),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = tx.closed() => return,
            }
            backoff = (backoff * 2).min(self.timing.max_backoff);
        }
    }

    /// Waits for changes on `watch` and re-reads after each; `Ok` when `tx` closed, `Err`
    /// when Redis went away.
    async fn follow(
        &self,
        mut watch: Watch,
        tx: &mpsc::Sender<ProviderMessage>,
        last_sent: &mut Option<DynamicConfig>,
        last_error: &mut Option<String>,
    ) -> Result<(), KvError> {
        loop {
            let wake = match &mut watch {
                Watch::Notifications(subscription) => {
                    tokio::select! {
                        wake = self.next_burst(subscription) => wake,
                        () = tx.closed() => Wake::Closed,
                    }
                }
                Watch::Polling => {
                    tokio::select! {
                        () = tokio::time::sleep(self.timing.poll_interval) => Wake::Changed,
                        () = tx.closed() => Wake::Closed,
                    }
                }
            };
            match wake {
                Wake::Changed => self.reload(tx, last_sent, last_error).await?,
                Wake::Lost(source) => return Err(self.redis_error(source)),
                Wake::Closed => return Ok(()),
            }
        }
    }

    /// Waits for one event, then for the burst it starts to end (no event for `quiet`, at
    /// most `burst_cap`), so that a script writing fifty keys gives one re-read.
    async fn next_burst(&self, subscription: &mut Subscription) -> Wake {
        if let Err(e) = subscription.next_message().await {
            return Wake::Lost(e);
        }
        let deadline = Instant::now() + self.timing.burst_cap;
        loop {
            let quiet_until = (Instant::now() + self.timing.quiet).min(deadline);
            tokio::select! {
                message = subscription.next_message() => {
                    if let Err(e) = message {
                        return Wake::Lost(e);
                    }
                }
                () = tokio::time::sleep_until(quiet_until) => return Wake::Changed,
            }
        }
    }

    /// Reads the store and sends the configuration if it changed. A configuration that does
    /// not decode is logged (once while it stays the same) and the last good one stays;
    /// only a Redis failure is an error.
    async fn reload(
        &self,
        tx: &mpsc::Sender<ProviderMessage>,
        last_sent: &mut Option<DynamicConfig>,
        last_error: &mut Option<String>,
    ) -> Result<(), KvError> {
        let config = match self.fetch().await {
            Ok(config) => config,
            Err(KvError::Layout(e)) => {
                let message = e.to_string();
                if last_error.as_deref() != Some(&message) {
                    tracing::error!(provider = REDIS_PROVIDER_NAME, key = %e.key, error = %e.message, "the configuration in Redis does not decode; the last good one stays");
                    *last_error = Some(message);
                }
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        *last_error = None;
        if last_sent.as_ref() == Some(&config) {
            return Ok(());
        }
        let message = ProviderMessage {
            provider: REDIS_PROVIDER_NAME.into(),
            config: Arc::new(config.clone()),
        };
        // A closed channel means shutdown; the watch loop notices it.
        if tx.send(message).await.is_ok() {
            *last_sent = Some(config);
        }
        Ok(())
    }

    /// Subscribes to the root's keyspace notifications, switching them on if needed; polling
    /// where the server refuses `CONFIG`.
    async fn watch(&self, warned_polling: &mut bool) -> Result<Watch, KvError> {
        match self.enable_notifications().await {
            Ok(()) => {}
            Err(RedisError::Server(reason)) => {
                if !*warned_polling {
                    tracing::warn!(provider = REDIS_PROVIDER_NAME, reason = %reason, interval = ?self.timing.poll_interval, "cannot switch on Redis keyspace notifications; polling instead");
                    *warned_polling = true;
                }
                // Reachability is still checked, so that an outage backs off.
                self.client
                    .call(&["PING"])
                    .await
                    .map_err(|e| self.redis_error(e))?;
                return Ok(Watch::Polling);
            }
            Err(e) => return Err(self.redis_error(e)),
        }
        let pattern = format!("__keyspace@{}__:{}/*", self.db, glob_escape(&self.root_key));
        let subscription = self
            .client
            .psubscribe(&[&pattern])
            .await
            .map_err(|e| self.redis_error(e))?;
        Ok(Watch::Notifications(subscription))
    }

    /// Makes sure key events (`K`) of every class (`A`) are published.
    async fn enable_notifications(&self) -> Result<(), RedisError> {
        let current = match self
            .client
            .call(&["CONFIG", "GET", "notify-keyspace-events"])
            .await?
        {
            Reply::Array(Some(mut pair)) if pair.len() == 2 => pair
                .pop()
                .and_then(Reply::into_bytes)
                .map(|flags| String::from_utf8_lossy(&flags).into_owned())
                .unwrap_or_default(),
            other => {
                return Err(RedisError::Protocol(format!(
                    "CONFIG GET notify-keyspace-events answered {other:?}"
                )))
            }
        };
        if current.contains('K') && current.contains('A') {
            return Ok(());
        }
        // Keyevent notifications (`E`) someone else relies on are kept.
        let flags = if current.contains('E') { "KEA" } else { "KA" };
        self.client
            .call(&["CONFIG", "SET", "notify-keyspace-events", flags])
            .await?;
        Ok(())
    }

    /// Every `(key, value)` under the root, sorted by key.
    async fn read_pairs(&self) -> Result<Vec<(String, String)>, KvError> {
        let pattern = format!("{}/*", glob_escape(&self.root_key));
        let keys = self
            .client
            .scan(&pattern, SCAN_COUNT)
            .await
            .map_err(|e| self.redis_error(e))?;
        let mut pairs = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MGET_CHUNK) {
            let values = self
                .client
                .mget(chunk)
                .await
                .map_err(|e| self.redis_error(e))?;
            for (key, value) in chunk.iter().zip(values) {
                // Deleted since the scan, or not a string: not configuration.
                let Some(value) = value else { continue };
                let value = String::from_utf8(value).map_err(|_| LayoutError {
                    key: key.clone(),
                    message: "the value is not UTF-8 text".into(),
                })?;
                pairs.push((key.clone(), value));
            }
        }
        Ok(pairs)
    }

    fn redis_error(&self, source: RedisError) -> KvError {
        KvError::Redis {
            endpoints: self.client.settings().endpoints.join(", "),
            source,
        }
    }
}

/// `text` with Redis glob characters escaped, so a root key matches only itself.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}
