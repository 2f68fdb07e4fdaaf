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

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use viaduct_config::{static_config, DynamicConfig};
use viaduct_providers::ProviderMessage;
use viaduct_redis::{RedisClient, RedisError, RedisSettings, Reply, Subscription};

use crate::layout::LayoutError;
use crate::store::{self, KvError, Store, Timing};

/// The name the provider's objects are qualified with (`name@redis`).
pub const REDIS_PROVIDER_NAME: &str = "redis";

/// Reads and watches one Redis database.
#[derive(Debug)]
pub struct RedisProvider {
    client: RedisClient,
    root_key: String,
    db: i64,
    timing: Timing,
    /// The switch to polling is logged once.
    warned_polling: AtomicBool,
}

/// Keys fetched per `MGET`, so that no command or reply grows with the store.
const MGET_CHUNK: usize = 500;
/// `SCAN`'s `COUNT` hint.
const SCAN_COUNT: usize = 1000;

impl RedisProvider {
    /// Checks the options. Nothing is contacted yet.
    pub fn new(options: &static_config::RedisProvider) -> Result<Self, KvError> {
        let option = |option, reason: &str| KvError::Option {
            provider: REDIS_PROVIDER_NAME,
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
            timing: Timing::default(),
            warned_polling: AtomicBool::new(false),
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
        store::fetch(self).await
    }

    /// Reads, then watches, until `tx` closes.
    pub async fn run(self, tx: mpsc::Sender<ProviderMessage>) {
        store::run(&self, self.timing, tx).await;
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

    fn redis_error(&self, source: RedisError) -> KvError {
        KvError::Store {
            store: "Redis",
            endpoints: self.client.settings().endpoints.join(", "),
            source: Box::new(source),
        }
    }
}

impl Store for RedisProvider {
    type Watch = Subscription;
    const PROVIDER: &'static str = REDIS_PROVIDER_NAME;

    fn root_key(&self) -> &str {
        &self.root_key
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

    /// Subscribes to the root's keyspace notifications, switching them on if needed; polling
    /// where the server refuses `CONFIG`.
    async fn watch(&self) -> Result<Option<Subscription>, KvError> {
        match self.enable_notifications().await {
            Ok(()) => {}
            Err(RedisError::Server(reason)) => {
                if !self.warned_polling.swap(true, Ordering::Relaxed) {
                    tracing::warn!(provider = REDIS_PROVIDER_NAME, reason = %reason, interval = ?self.timing.poll_interval, "cannot switch on Redis keyspace notifications; polling instead");
                }
                // Reachability is still checked, so that an outage backs off.
                self.client
                    .call(&["PING"])
                    .await
                    .map_err(|e| self.redis_error(e))?;
                return Ok(None);
            }
            Err(e) => return Err(self.redis_error(e)),
        }
        let pattern = format!("__keyspace@{}__:{}/*", self.db, glob_escape(&self.root_key));
        let subscription = self
            .client
            .psubscribe(&[&pattern])
            .await
            .map_err(|e| self.redis_error(e))?;
        Ok(Some(subscription))
    }

    async fn next_event(&self, subscription: &mut Subscription) -> Result<(), KvError> {
        subscription
            .next_message()
            .await
            .map(drop)
            .map_err(|e| self.redis_error(e))
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
