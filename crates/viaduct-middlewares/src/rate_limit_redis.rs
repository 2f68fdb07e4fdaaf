//! `rateLimit` with `redis`: the token buckets live in Redis, shared by every instance
//! using the same server. The bucket layout is Traefik's, so that Viaduct and Traefik
//! instances can share a limit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use viaduct_config::GoDuration;

use viaduct_redis::{RedisClient, RedisError, RedisSettings, Reply};

/// The key prefix (then the middleware's name and the source) and bucket fields Traefik
/// uses, so that instances of both can share a limit.
const KEY_PREFIX: &str = "rate:";
/// One reservation, atomically: refill for the time elapsed, take a token, keep the debt
/// unless the wait would be too long. Answers the wait in microseconds.
const SCRIPT: &str = r#"
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, longest = tonumber(ARGV[4]), tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'last', 'tokens')
local since = tonumber(state[1]) or 0
local stored = tonumber(state[2]) or 0
if since > now then since = now end
local available = math.min(stored + (now - since) * rate, burst)
local remaining = available - 1
local wait = 0
if remaining < 0 then
  wait = -remaining / rate
  if wait > longest then remaining = available end
end
redis.call('HSET', KEYS[1], 'last', now, 'tokens', remaining)
redis.call('EXPIRE', KEYS[1], ARGV[3])
return tostring(wait)
"#;

/// The `redis` options, as Traefik reads them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RedisOptions {
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    tls: Option<serde_json::Value>,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    db: i64,
    #[serde(default)]
    pool_size: i64,
    #[serde(default)]
    min_idle_conns: i64,
    #[serde(default)]
    max_active_conns: i64,
    #[serde(default)]
    read_timeout: Option<GoDuration>,
    #[serde(default)]
    write_timeout: Option<GoDuration>,
    #[serde(default)]
    dial_timeout: Option<GoDuration>,
}

/// Buckets in Redis.
#[derive(Debug)]
pub(crate) struct RedisLimiter {
    client: RedisClient,
    /// `rate:<middleware>:`, the sources' keys follow.
    key_prefix: String,
    /// Tokens per microsecond, as the script counts.
    rate_per_micro: f64,
    burst: i64,
    ttl_seconds: u64,
    max_delay: Duration,
}

impl RedisOptions {
    /// The client settings, Traefik's defaults filled in.
    pub fn settings(&self) -> Result<RedisSettings, String> {
        if self.tls.is_some() {
            return Err("option redis.tls: TLS to Redis is not supported".into());
        }
        let endpoints = if self.endpoints.is_empty() {
            vec!["localhost:6379".to_string()]
        } else {
            self.endpoints.clone()
        };
        let duration = |value: Option<GoDuration>, default: u64| {
            value
                .and_then(GoDuration::positive)
                .unwrap_or(Duration::from_secs(default))
        };
        Ok(RedisSettings {
            endpoints,
            username: self.username.clone(),
            password: self.password.clone(),
            db: self.db,
            pool_size: usize::try_from(self.pool_size)
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or(10),
            dial_timeout: duration(self.dial_timeout, 5),
            read_timeout: duration(self.read_timeout, 3),
            write_timeout: duration(self.write_timeout, 3),
        })
    }
}

impl RedisLimiter {
    pub fn new(
        middleware: &str,
        settings: RedisSettings,
        rate: f64,
        burst: i64,
        ttl: Duration,
        max_delay: Duration,
    ) -> Self {
        RedisLimiter {
            client: RedisClient::new(settings),
            key_prefix: format!("{KEY_PREFIX}{middleware}:"),
            rate_per_micro: rate / 1_000_000.0,
            burst,
            ttl_seconds: ttl.as_secs(),
            max_delay,
        }
    }

    /// The longest wait served late rather than refused.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// Takes a token for `source`; the wait before it is there.
    pub async fn reserve(&self, source: &str) -> Result<Duration, RedisError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let key = format!("{}{source}", self.key_prefix);
        let args = [
            self.rate_per_micro.to_string(),
            self.burst.to_string(),
            self.ttl_seconds.to_string(),
            now.to_string(),
            self.max_delay.as_micros().to_string(),
        ];
        let wait = match self.client.eval(SCRIPT, &[&key], &args).await? {
            Reply::Bulk(Some(text)) => String::from_utf8_lossy(&text)
                .parse::<f64>()
                .map_err(|_| RedisError::Protocol("the wait is not a number".into()))?,
            other => return Err(RedisError::Protocol(format!("{other:?}"))),
        };
        Ok(Duration::from_secs_f64((wait / 1_000_000.0).max(0.0)))
    }
}
