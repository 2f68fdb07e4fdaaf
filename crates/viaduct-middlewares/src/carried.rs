//! State carried across reloads only while the options that shaped it are unchanged
//! (rate-limit buckets, circuit-breaker windows): new options start afresh.

use std::sync::{Arc, Mutex, PoisonError};

use crate::build::BuildContext;

/// The state of one middleware, with the options it was created for.
struct Slot<K, V> {
    current: Mutex<Option<(K, Arc<V>)>>,
}

/// The state of the middleware being built: the previous snapshot's when it was created
/// for equal `options`, otherwise a new one from `create`.
pub(crate) fn carry_while_unchanged<K, V>(
    ctx: &BuildContext<'_>,
    kind: &'static str,
    options: K,
    create: impl FnOnce() -> V,
) -> Arc<V>
where
    K: PartialEq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    let slot = ctx.carry(kind, || Slot::<K, V> {
        current: Mutex::new(None),
    });
    // Locked only while building a snapshot.
    let mut current = slot.current.lock().unwrap_or_else(PoisonError::into_inner);
    match current.as_ref() {
        Some((previous, state)) if *previous == options => state.clone(),
        _ => {
            let state = Arc::new(create());
            *current = Some((options, state.clone()));
            state
        }
    }
}
