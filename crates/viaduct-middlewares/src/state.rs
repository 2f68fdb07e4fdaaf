//! State that outlives a snapshot (rate-limit buckets, circuit-breaker windows, in-flight
//! counters), carried to the next snapshot by middleware name and type.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

type Key = (String, &'static str);

/// The carried state of one snapshot's middlewares. The builder of the next snapshot reads
/// the previous store, so a reload keeps, say, a client's spent rate-limit tokens.
#[derive(Debug, Default)]
pub struct StateStore {
    // Locked only while building a snapshot, never on the request path.
    entries: Mutex<HashMap<Key, Arc<dyn Any + Send + Sync>>>,
}

impl StateStore {
    /// The state of middleware `name` (its `kind` tells types apart): taken from `previous`
    /// when it had one of type `T`, otherwise `create`d. Recorded in `self` for the next
    /// snapshot either way.
    pub fn carry<T: Any + Send + Sync>(
        &self,
        previous: Option<&StateStore>,
        name: &str,
        kind: &'static str,
        create: impl FnOnce() -> T,
    ) -> Arc<T> {
        let key = (name.to_string(), kind);
        let carried = previous.and_then(|p| {
            p.entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&key)
                .cloned()
                .and_then(|any| any.downcast::<T>().ok())
        });
        let state = carried.unwrap_or_else(|| Arc::new(create()));
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, state.clone());
        state
    }
}
