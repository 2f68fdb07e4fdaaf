//! `circuitBreaker`: watches the service's answers and, when `expression` holds, answers
//! `responseCode` itself for `fallbackDuration` (tripped), then lets a growing share of
//! requests through for `recoveryDuration` (recovering) before closing again (standby).
//! The state machine and metrics are vulcand/oxy's, which Traefik uses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde::Deserialize;
use viaduct_config::GoDuration;
use viaduct_upstream::full_body;

use crate::body_end::on_body_end;
use crate::build::BuildContext;
use crate::carried::carry_while_unchanged;
use crate::cb_expression::Condition;
use crate::cb_metrics::RollingMetrics;
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};

const DEFAULT_CHECK_PERIOD: Duration = Duration::from_millis(100);
const DEFAULT_FALLBACK: Duration = Duration::from_secs(10);
const DEFAULT_RECOVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    expression: String,
    #[serde(default)]
    check_period: GoDuration,
    #[serde(default)]
    fallback_duration: GoDuration,
    #[serde(default)]
    recovery_duration: GoDuration,
    #[serde(default)]
    response_code: Option<u16>,
}

#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    breaker: Arc<Breaker>,
    response_code: StatusCode,
}

/// The state shared by every request (and carried across reloads while unchanged).
#[derive(Debug)]
struct Breaker {
    condition: Condition,
    check_period: Duration,
    fallback_duration: Duration,
    recovery_duration: Duration,
    /// The common case read without the lock.
    standby: AtomicBool,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// End of the tripped or recovering phase.
    until: Instant,
    next_check: Instant,
    recovery: Ratio,
    metrics: RollingMetrics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Standby,
    Tripped,
    Recovering,
}

/// oxy's ratio controller: lets through a share of requests that grows linearly from 0 to
/// one half over the recovery.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    start: Instant,
    allowed: u64,
    denied: u64,
}

pub(crate) fn build(
    options: &serde_json::Value,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    let condition = Condition::parse(&options.expression)
        .map_err(|e| format!("option expression: {:?}: {e}", options.expression))?;
    let response_code = match options.response_code {
        None | Some(0) => StatusCode::SERVICE_UNAVAILABLE,
        Some(code) => StatusCode::from_u16(code)
            .map_err(|_| format!("option responseCode: {code} is not a status code"))?,
    };
    let breaker = carry_while_unchanged(ctx, "circuitBreaker", options.clone(), || {
        Breaker::new(condition, &options)
    });
    Ok(Arc::new(CircuitBreaker {
        breaker,
        response_code,
    }))
}

impl Middleware for CircuitBreaker {
    fn handle<'a>(
        &'a self,
        request: Request,
        _ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let start = Instant::now();
        if self.breaker.use_fallback(start) {
            let code = self.response_code;
            return Box::pin(async move { fallback(code) });
        }
        let breaker = self.breaker.clone();
        Box::pin(async move {
            let response = next.run(request).await;
            let status = response.status().as_u16();
            // As oxy, a request counts once its handler is done: when the body is over.
            on_body_end(response, move |_| {
                let now = Instant::now();
                breaker.record(status, now.saturating_duration_since(start), now);
            })
        })
    }
}

impl Breaker {
    fn new(condition: Condition, options: &Options) -> Self {
        let now = Instant::now();
        let metrics = RollingMetrics::new(condition.uses_latency());
        Breaker {
            condition,
            check_period: options
                .check_period
                .positive()
                .unwrap_or(DEFAULT_CHECK_PERIOD),
            fallback_duration: options
                .fallback_duration
                .positive()
                .unwrap_or(DEFAULT_FALLBACK),
            recovery_duration: options
                .recovery_duration
                .positive()
                .unwrap_or(DEFAULT_RECOVERY),
            standby: AtomicBool::new(true),
            inner: Mutex::new(Inner {
                phase: Phase::Standby,
                until: now,
                next_check: now,
                recovery: Ratio {
                    start: now,
                    allowed: 0,
                    denied: 0,
                },
                metrics,
            }),
        }
    }

    /// True when this request is to be answered by the fallback (oxy's `activateFallback`).
    fn use_fallback(&self, now: Instant) -> bool {
        if self.standby.load(Ordering::Acquire) {
            return false;
        }
        let mut inner = self.lock();
        if inner.phase == Phase::Tripped {
            if now < inner.until {
                return true;
            }
            inner.phase = Phase::Recovering;
            inner.until = now + self.recovery_duration;
            inner.recovery = Ratio {
                start: now,
                allowed: 0,
                denied: 0,
            };
            tracing::debug!("circuit breaker recovering");
        }
        match inner.phase {
            Phase::Standby => false,
            Phase::Tripped => true,
            Phase::Recovering => {
                if now > inner.until {
                    inner.phase = Phase::Standby;
                    self.standby.store(true, Ordering::Release);
                    tracing::debug!("circuit breaker back to standby");
                    return false;
                }
                !inner.recovery.allow(now, self.recovery_duration)
            }
        }
    }

    /// One finished request, then the condition if a check is due (oxy's `checkAndSet`).
    fn record(&self, status: u16, latency: Duration, now: Instant) {
        let mut inner = self.lock();
        inner.metrics.record(status, latency, now);
        if now <= inner.next_check {
            return;
        }
        inner.next_check = now + self.check_period;
        if inner.phase == Phase::Tripped {
            return;
        }
        if !self.condition.evaluate(&mut inner.metrics.at(now)) {
            return;
        }
        tracing::debug!(condition = ?self.condition, "circuit breaker tripped");
        inner.phase = Phase::Tripped;
        inner.until = now + self.fallback_duration;
        inner.metrics.reset();
        self.standby.store(false, Ordering::Release);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Ratio {
    fn allow(&mut self, now: Instant, duration: Duration) -> bool {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let target = 0.5 * elapsed / duration.as_secs_f64();
        let would_be = (self.allowed + 1) as f64 / (self.allowed + 1 + self.denied) as f64;
        if would_be < target {
            self.allowed += 1;
            true
        } else {
            self.denied += 1;
            false
        }
    }
}

fn fallback(code: StatusCode) -> Response {
    let mut response = Response::new(full_body(code.canonical_reason().unwrap_or("")));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(expression: &str) -> Breaker {
        let options = Options {
            expression: expression.into(),
            check_period: GoDuration::from_millis(100),
            fallback_duration: GoDuration::from_secs(10),
            recovery_duration: GoDuration::from_secs(10),
            response_code: None,
        };
        Breaker::new(Condition::parse(expression).unwrap(), &options)
    }

    #[test]
    fn closed_tripped_recovering_closed() {
        let b = breaker("NetworkErrorRatio() > 0.5");
        let t0 = Instant::now() + Duration::from_secs(1);
        assert!(!b.use_fallback(t0));
        b.record(502, Duration::from_millis(1), t0);
        assert!(b.use_fallback(t0 + Duration::from_secs(1)), "tripped");
        assert!(b.use_fallback(t0 + Duration::from_secs(9)));
        // Recovery: at first nothing passes, halfway about a quarter does.
        let recovering = t0 + Duration::from_secs(11);
        assert!(b.use_fallback(recovering));
        let halfway = recovering + Duration::from_secs(5);
        let passed = (0..100).filter(|_| !b.use_fallback(halfway)).count();
        assert!((20..=30).contains(&passed), "{passed}");
        assert!(
            !b.use_fallback(recovering + Duration::from_secs(11)),
            "standby"
        );
        assert!(b.standby.load(Ordering::Acquire));
    }

    #[test]
    fn failures_while_recovering_trip_again() {
        let b = breaker("ResponseCodeRatio(500, 600, 0, 600) > 0.5");
        let t0 = Instant::now() + Duration::from_secs(1);
        b.record(500, Duration::from_millis(1), t0);
        let recovering = t0 + Duration::from_secs(11);
        assert!(b.use_fallback(recovering));
        b.record(503, Duration::from_millis(1), recovering);
        assert!(
            b.use_fallback(recovering + Duration::from_secs(9)),
            "tripped again"
        );
    }
}
