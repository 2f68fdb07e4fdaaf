//! `inFlightReq`: at most `amount` requests per source at a time; the others are answered
//! 429. A request holds its slot until its response body is over (sent, failed or dropped).

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde::Deserialize;
use viaduct_upstream::full_body;

use crate::body_end::on_body_end;
use crate::build::BuildContext;
use crate::chain::{BoxFuture, Middleware, Next, Request, RequestContext, Response};
use crate::source_criterion::{SourceCriterion, SourceCriterionOptions};

const SHARDS: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Options {
    #[serde(default)]
    amount: i64,
    #[serde(default)]
    source_criterion: Option<SourceCriterionOptions>,
}

#[derive(Debug)]
pub(crate) struct InFlightReq {
    amount: u64,
    criterion: SourceCriterion,
    counters: Arc<Counters>,
}

/// Requests in flight per source. Carried across reloads: requests started under the old
/// configuration still count, and release their slot when they end.
#[derive(Debug)]
struct Counters {
    hasher: RandomState,
    // A source is present only while it has requests in flight, so the map stays small.
    shards: Box<[Mutex<HashMap<String, u64>>]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

pub(crate) fn build(
    options: &serde_json::Value,
    ctx: &BuildContext<'_>,
) -> Result<Arc<dyn Middleware>, String> {
    let options: Options = crate::options::decode(options)?;
    if options.amount <= 0 {
        return Err(format!(
            "option amount: {} is not a positive number of requests",
            options.amount
        ));
    }
    let criterion =
        SourceCriterion::build(options.source_criterion.as_ref(), SourceCriterion::Host)?;
    Ok(Arc::new(InFlightReq {
        amount: options.amount as u64,
        criterion,
        counters: ctx.carry("inFlightReq", Counters::default),
    }))
}

impl Middleware for InFlightReq {
    fn handle<'a>(
        &'a self,
        request: Request,
        ctx: &'a RequestContext<'a>,
        next: Next<'a>,
    ) -> BoxFuture<'a, Response> {
        let source = self.criterion.source(&request, ctx);
        let Some(slot) = self.counters.acquire(source, self.amount) else {
            let amount = self.amount;
            return Box::pin(async move { too_many_requests(amount) });
        };
        Box::pin(async move {
            // Dropping `slot` early (the client gave up while waiting) releases it too.
            let response = next.run(request).await;
            on_body_end(response, move |_| drop(slot))
        })
    }
}

/// One request's place in its source's count.
struct Slot {
    counters: Arc<Counters>,
    source: String,
    shard: usize,
}

impl Counters {
    fn acquire(self: &Arc<Self>, source: String, amount: u64) -> Option<Slot> {
        let shard = self.hasher.hash_one(&source) as usize % SHARDS;
        let mut counts = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(source.clone()).or_insert(0);
        if *count >= amount {
            return None;
        }
        *count += 1;
        Some(Slot {
            counters: self.clone(),
            source,
            shard,
        })
    }

    #[cfg(test)]
    fn in_flight(&self, source: &str) -> u64 {
        let shard = self.hasher.hash_one(source) as usize % SHARDS;
        let counts = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        counts.get(source).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counters.shards[self.shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.source) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.source);
            }
        }
    }
}

/// Traefik's answer (its connection limiter's error).
fn too_many_requests(amount: u64) -> Response {
    let mut response = Response::new(full_body(format!("max connections reached: {amount}")));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_source_and_released_on_drop() {
        let counters = Arc::new(Counters::default());
        let first = counters.acquire("a".into(), 2).unwrap();
        let second = counters.acquire("a".into(), 2).unwrap();
        assert!(counters.acquire("a".into(), 2).is_none());
        assert!(counters.acquire("b".into(), 2).is_some());
        drop(first);
        assert_eq!(counters.in_flight("a"), 1);
        let third = counters.acquire("a".into(), 2).unwrap();
        drop(second);
        drop(third);
        assert_eq!(counters.in_flight("a"), 0);
        assert!(counters.shards.iter().all(|s| s.lock().unwrap().is_empty()));
    }
}
