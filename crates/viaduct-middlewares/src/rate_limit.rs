//! `rateLimit`: a token bucket per request source. A request that would have to wait a
//! little (at most half the interval between two tokens) is delayed, as Traefik does;
//! one that would wait longer is answered 429 with `Retry-After` and `X-Retry-In`.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::StatusCode;
use serde::Deserialize;
use viaduct_config::GoDuration;
use viaduct_upstream::full_body;

use crate::build::BuildContext;
use crate::carried::carry_while_unchanged;
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::rate_limit_redis::{RedisLimiter, RedisOptions};
use crate::source_criterion::{SourceCriterion, SourceCriterionOptions};

/// Traefik keeps at most this many sources; the least recently active go first.
const MAX_SOURCES: usize = 65_536;
/// Independent locks, so that concurrent requests from different sources rarely contend.
const SHARDS: usize = 16;

const X_RETRY_IN: HeaderName = HeaderName::from_static("x-retry-in");

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    average: i64,
    #[serde(default)]
    period: GoDuration,
    #[serde(default)]
    burst: i64,
    #[serde(default)]
    source_criterion: Option<SourceCriterionOptions>,
    #[serde(default)]
    redis: Option<RedisOptions>,
}

#[derive(Debug)]
pub(crate) struct RateLimit {
    criterion: SourceCriterion,
    buckets: Arc<Buckets>,
}

/// `rateLimit` with its buckets in Redis.
#[derive(Debug)]
pub(crate) struct SharedRateLimit {
    criterion: SourceCriterion,
    limiter: Arc<RedisLimiter>,
}

/// The numbers a limit works with, as Traefik derives them from the options.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Tokens per second.
    rate: f64,
    burst: i64,
    /// The longest wait served late rather than refused.
    max_delay: Duration,
    /// How long an idle source's bucket is kept.
    ttl: Duration,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decision {
    /// Go on after this delay (zero most of the time).
    Pass(Duration),
    /// Refuse: a token will be there after this delay.
    Reject(Duration),
}

#[derive(Debug)]
struct Buckets {
    /// Tokens per second.
    rate: f64,
    burst: f64,
    max_delay: Duration,
    /// How long an idle source's bucket is kept.
    ttl: Duration,
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<String, Bucket>>]>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
    expires: Instant,
}

pub(crate) fn build(
    options: &serde_json::Value,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if options.period.is_negative() {
        return Err(format!(
            "option period: negative value not valid for period: {}",
            options.period
        ));
    }
    if options.average < 0 {
        return Err(format!(
            "option average: {} is negative (0 means no limit)",
            options.average
        ));
    }
    let criterion =
        SourceCriterion::build(options.source_criterion.as_ref(), SourceCriterion::peer())?;
    if options.average == 0 {
        return Ok(Arc::new(Unlimited));
    }
    let limits = Limits::of(&options);
    if let Some(redis) = &options.redis {
        let settings = redis.settings()?;
        // Carried so that a reload keeps the pooled connections.
        let limiter = carry_while_unchanged(ctx, "rateLimit/redis", options.clone(), || {
            RedisLimiter::new(
                ctx.name,
                settings,
                limits.rate,
                limits.burst,
                limits.ttl,
                limits.max_delay,
            )
        });
        return Ok(Arc::new(SharedRateLimit { criterion, limiter }));
    }
    let buckets =
        carry_while_unchanged(ctx, "rateLimit", options.clone(), || Buckets::new(&limits));
    Ok(Arc::new(RateLimit { criterion, buckets }))
}

impl Middleware for RateLimit {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let source = self.criterion.source(&request, ctx);
        match self.buckets.reserve(source, Instant::now()) {
            Decision::Pass(delay) if delay.is_zero() => next.run(request),
            Decision::Pass(delay) => Box::pin(async move {
                tokio::time::sleep(delay).await;
                next.run(request).await
            }),
            Decision::Reject(delay) => Box::pin(async move { too_many_requests(delay) }),
        }
    }
}

impl Middleware for SharedRateLimit {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let source = self.criterion.source(&request, ctx);
        Box::pin(async move {
            match self.limiter.reserve(&source).await {
                Ok(wait) if wait > self.limiter.max_delay() => too_many_requests(wait),
                Ok(wait) => {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    next.run(request).await
                }
                Err(e) => {
                    tracing::warn!(error = %e, "rate limit: could not update the bucket in Redis");
                    crate::responses::status(StatusCode::INTERNAL_SERVER_ERROR)
                }
            }
        })
    }
}

/// `average: 0`: Traefik's "no limit".
#[derive(Debug)]
struct Unlimited;

impl Middleware for Unlimited {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        next.run(request)
    }
}

impl Limits {
    fn of(options: &Options) -> Limits {
        let period = options.period.positive().unwrap_or(Duration::from_secs(1));
        let rate = options.average as f64 / period.as_secs_f64();
        // Traefik's choices: wait at most half a token's interval (0.5s below one token a
        // second); forget a source after one idle second more than a token's interval.
        let max_delay = if rate < 1.0 {
            Duration::from_millis(500)
        } else {
            // Go truncates the rate to whole tokens per second first.
            let per_second = rate.min(1e12) as u64;
            Duration::from_nanos(1_000_000_000 / (2 * per_second))
        };
        let ttl_seconds = if rate >= 1.0 {
            2
        } else {
            1 + (1.0 / rate) as u64
        };
        Limits {
            rate,
            burst: options.burst.max(1),
            max_delay,
            ttl: Duration::from_secs(ttl_seconds),
        }
    }
}

impl Buckets {
    fn new(limits: &Limits) -> Self {
        Buckets {
            rate: limits.rate,
            burst: limits.burst as f64,
            max_delay: limits.max_delay,
            ttl: limits.ttl,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Takes a token for `source` at `now` (Go's `rate.Limiter.Reserve`, cancelled when
    /// the wait would be too long).
    fn reserve(&self, source: String, now: Instant) -> Decision {
        let shard = &self.shards[self.hasher.hash_one(&source) as usize % SHARDS];
        let mut buckets = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(&source) && buckets.len() >= MAX_SOURCES / SHARDS {
            evict(&mut buckets, now);
        }
        let bucket = buckets.entry(source).or_insert(Bucket {
            tokens: self.burst,
            last: now,
            expires: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        let available = (bucket.tokens + elapsed * self.rate).min(self.burst);
        let after = available - 1.0;
        let wait = if after < 0.0 {
            Duration::from_secs_f64(-after / self.rate)
        } else {
            Duration::ZERO
        };
        bucket.last = now;
        bucket.expires = now + self.ttl;
        if wait > self.max_delay {
            bucket.tokens = available;
            Decision::Reject(wait)
        } else {
            bucket.tokens = after;
            Decision::Pass(wait)
        }
    }
}

/// Makes room in a full shard: the expired buckets, or else the one idle the longest.
fn evict(buckets: &mut HashMap<String, Bucket>, now: Instant) {
    buckets.retain(|_, b| b.expires > now);
    if buckets.len() < MAX_SOURCES / SHARDS {
        return;
    }
    let oldest = buckets
        .iter()
        .min_by_key(|(_, b)| b.expires)
        .map(|(k, _)| k.clone());
    if let Some(key) = oldest {
        buckets.remove(&key);
    }
}

fn too_many_requests(delay: Duration) -> Response {
    let mut response = Response::new(full_body("Too Many Requests"));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    let seconds = delay.as_secs_f64().ceil() as u64;
    headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    if let Ok(value) = HeaderValue::from_str(&crate::go_duration::format(delay)) {
        headers.insert(X_RETRY_IN, value);
    }
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(average: i64, period_secs: u64, burst: i64) -> Buckets {
        Buckets::new(&Limits::of(&Options {
            average,
            period: GoDuration::from_secs(period_secs),
            burst,
            source_criterion: None,
            redis: None,
        }))
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let b = buckets(1, 10, 2);
        let t0 = Instant::now();
        assert_eq!(b.reserve("a".into(), t0), Decision::Pass(Duration::ZERO));
        assert_eq!(b.reserve("a".into(), t0), Decision::Pass(Duration::ZERO));
        match b.reserve("a".into(), t0) {
            Decision::Reject(wait) => assert_eq!(wait, Duration::from_secs(10)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            b.reserve("b".into(), t0),
            Decision::Pass(Duration::ZERO),
            "sources have their own buckets"
        );
        // A refusal costs no token: one token back after one interval.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.reserve("a".into(), later), Decision::Pass(Duration::ZERO));
    }

    #[test]
    fn short_waits_are_delays() {
        // 100/s: a token every 10ms, waits of up to 5ms are served late rather than refused.
        let b = buckets(100, 1, 1);
        let t0 = Instant::now();
        assert_eq!(b.reserve("a".into(), t0), Decision::Pass(Duration::ZERO));
        let t1 = t0 + Duration::from_millis(6);
        match b.reserve("a".into(), t1) {
            Decision::Pass(wait) => assert!(wait <= Duration::from_millis(5), "{wait:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(b.reserve("a".into(), t1), Decision::Reject(_)));
    }

    #[test]
    fn huge_rates_do_not_overflow() {
        let b = buckets(i64::MAX, 1, 1);
        assert_eq!(b.max_delay, Duration::ZERO);
        assert_eq!(
            b.reserve("a".into(), Instant::now()),
            Decision::Pass(Duration::ZERO)
        );
    }

    #[test]
    fn the_map_stays_bounded() {
        let b = buckets(1, 1, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_SOURCES + 5000) {
            b.reserve(i.to_string(), t0);
        }
        let total: usize = b.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= MAX_SOURCES, "{total}");
    }
}
