//! Server health: what active checks and passive failure counting know about each server.
//!
//! A [`ServerState`] belongs to a (service, server URL) pair, not to a snapshot: the
//! compiler hands the previous snapshot's state to the next one, so a reload neither brings
//! a known-down server back nor restarts its checks. The request path reads it with a couple
//! of relaxed atomic loads.

mod active;
mod grpc;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use active::{HealthCheckError, HealthCheckSpec, HealthChecker};

/// Live facts about one server, shared by every snapshot that lists it.
#[derive(Debug)]
pub struct ServerState {
    /// What the active health check last concluded (UP until a check says otherwise).
    active_up: AtomicBool,
    /// Set aside by passive health checking until this instant ([`clock_ms`]); 0 = not.
    passive_down_until: AtomicU64,
    /// Recent failures, for passive health checking. Touched only when a request fails or
    /// when a request succeeds after failures.
    failures: Mutex<Vec<Instant>>,
    has_failures: AtomicBool,
    /// Requests sent to this server whose response has not ended yet (`p2c`, `leasttime`).
    in_flight: AtomicUsize,
    /// Recent times to first response byte (`leasttime`), and their mean in whole
    /// milliseconds as `f64` bits, so that picking reads one atomic.
    response_times: Mutex<ResponseTimes>,
    mean_response_ms: AtomicU64,
}

/// The last [`RESPONSE_TIME_SAMPLES`] times to first byte, in whole milliseconds (Traefik's
/// `leasttime` keeps the same window and unit).
#[derive(Debug, Default)]
struct ResponseTimes {
    samples: Vec<u64>,
    next: usize,
    sum: u64,
}

const RESPONSE_TIME_SAMPLES: usize = 100;

/// UP or DOWN, as the API reports a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerStatus {
    Up,
    Down,
}

impl ServerStatus {
    /// Traefik's spelling in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ServerStatus::Up => "UP",
            ServerStatus::Down => "DOWN",
        }
    }
}

/// `passiveHealthCheck`: `max_failed_attempts` failures within `failure_window` set the
/// server aside for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassivePolicy {
    pub failure_window: Duration,
    pub max_failed_attempts: usize,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            active_up: AtomicBool::new(true),
            passive_down_until: AtomicU64::new(0),
            failures: Mutex::new(Vec::new()),
            has_failures: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            response_times: Mutex::new(ResponseTimes::default()),
            mean_response_ms: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl ServerState {
    /// Whether the server may take requests.
    pub fn is_available(&self) -> bool {
        if !self.active_up.load(Ordering::Relaxed) {
            return false;
        }
        let until = self.passive_down_until.load(Ordering::Relaxed);
        until == 0 || clock_ms() >= until
    }

    pub fn status(&self) -> ServerStatus {
        if self.is_available() {
            ServerStatus::Up
        } else {
            ServerStatus::Down
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The mean time to first byte over recent requests, in milliseconds (0 before any).
    pub fn mean_response_ms(&self) -> f64 {
        f64::from_bits(self.mean_response_ms.load(Ordering::Relaxed))
    }

    /// Records the time a request took to its first response byte.
    pub fn record_response_time(&self, elapsed: Duration) {
        let ms = elapsed.as_millis() as u64;
        let Ok(mut times) = self.response_times.lock() else {
            return;
        };
        if times.samples.len() < RESPONSE_TIME_SAMPLES {
            times.samples.push(ms);
            times.sum += ms;
        } else {
            let slot = times.next;
            times.sum = times.sum - times.samples[slot] + ms;
            times.samples[slot] = ms;
        }
        times.next = (times.next + 1) % RESPONSE_TIME_SAMPLES;
        let mean = times.sum as f64 / times.samples.len() as f64;
        self.mean_response_ms
            .store(mean.to_bits(), Ordering::Relaxed);
    }

    /// Counts a request as in flight until the returned guard is dropped.
    pub fn start_request(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Records an active check's verdict; returns true when it changed the status.
    pub(crate) fn set_active(&self, up: bool) -> bool {
        self.active_up.swap(up, Ordering::Relaxed) != up
    }

    /// Records the outcome of a proxied request for passive health checking. Returns true
    /// when this failure set the server aside.
    pub fn record_outcome(
        &self,
        failed: bool,
        policy: &PassivePolicy,
        active_checked: bool,
    ) -> bool {
        if !failed {
            if self.has_failures.load(Ordering::Relaxed) {
                if let Ok(mut failures) = self.failures.lock() {
                    failures.clear();
                }
                self.has_failures.store(false, Ordering::Relaxed);
            }
            return false;
        }
        let now = Instant::now();
        let too_many = match self.failures.lock() {
            Ok(mut failures) => {
                let window_start = now.checked_sub(policy.failure_window);
                failures.retain(|t| window_start.is_none_or(|start| *t > start));
                failures.push(now);
                self.has_failures.store(true, Ordering::Relaxed);
                failures.len() >= policy.max_failed_attempts
            }
            Err(_) => false,
        };
        if !too_many || !self.is_available() {
            return false;
        }
        if active_checked {
            // The active check brings the server back when it answers again.
            self.active_up.store(false, Ordering::Relaxed);
        } else {
            let until = clock_ms() + policy.failure_window.as_millis() as u64;
            self.passive_down_until
                .store(until.max(1), Ordering::Relaxed);
        }
        true
    }
}

/// Keeps a request counted in [`ServerState::in_flight`] while alive.
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<ServerState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Milliseconds since the first call, plus one (so that 0 can mean "never").
fn clock_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn passive_failures_set_the_server_aside_for_the_window() {
        let state = ServerState::default();
        let policy = PassivePolicy {
            failure_window: Duration::from_millis(80),
            max_failed_attempts: 2,
        };
        assert!(!state.record_outcome(true, &policy, false));
        assert!(state.is_available());
        assert!(state.record_outcome(true, &policy, false));
        assert!(!state.is_available());
        std::thread::sleep(Duration::from_millis(120));
        assert!(state.is_available());
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let state = ServerState::default();
        let policy = PassivePolicy {
            failure_window: Duration::from_secs(10),
            max_failed_attempts: 2,
        };
        state.record_outcome(true, &policy, false);
        state.record_outcome(false, &policy, false);
        assert!(!state.record_outcome(true, &policy, false));
        assert!(state.is_available());
    }

    #[test]
    fn response_times_average_over_a_window() {
        let state = ServerState::default();
        assert_eq!(state.mean_response_ms(), 0.0);
        state.record_response_time(Duration::from_millis(10));
        state.record_response_time(Duration::from_millis(30));
        assert_eq!(state.mean_response_ms(), 20.0);
        for _ in 0..RESPONSE_TIME_SAMPLES {
            state.record_response_time(Duration::from_millis(5));
        }
        assert_eq!(state.mean_response_ms(), 5.0);
    }

    #[test]
    fn in_flight_is_counted_until_the_guard_drops() {
        let state = Arc::new(ServerState::default());
        let a = state.start_request();
        let b = state.start_request();
        assert_eq!(state.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(state.in_flight(), 0);
    }
}
