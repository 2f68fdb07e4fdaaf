use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::TestkitError;

/// Polls `probe` until it yields `Some`, backing off from 20 ms to 250 ms between attempts, and
/// gives up after `timeout`. The last `Err` text seen is kept for the timeout message, so a failed
/// wait says *why* the condition never held.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> crate::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(20);
    let mut last = String::new();
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(reason) => last = reason,
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(TestkitError::Timeout {
                what: what.to_string(),
                timeout,
                detail: if last.is_empty() {
                    String::new()
                } else {
                    format!(" (last: {last})")
                },
            });
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}
