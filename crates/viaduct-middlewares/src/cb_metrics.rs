//! The rolling metrics `circuitBreaker` conditions read, shaped as oxy's: counters over the
//! last 10 seconds (1-second buckets), latencies over the last 60 seconds (10-second
//! buckets) at 1% precision.

use std::time::{Duration, Instant};

use crate::cb_expression::Metrics;

const COUNTER_BUCKETS: usize = 10;
const COUNTER_RESOLUTION: Duration = Duration::from_secs(1);
const HISTOGRAM_BUCKETS: usize = 6;
const HISTOGRAM_RESOLUTION: Duration = Duration::from_secs(10);
/// Status codes are counted up to this value (exclusive).
const MAX_STATUS: usize = 1000;
/// Latency classes grow by 1% (oxy's 2 significant figures), from 1µs to one hour.
const LATENCY_GROWTH: f64 = 1.01;
const MAX_LATENCY_MICROS: f64 = 3_600_000_000.0;

/// What the last seconds looked like.
#[derive(Debug)]
pub(crate) struct RollingMetrics {
    epoch: Instant,
    counters: Vec<CounterBucket>,
    /// Empty when no condition reads latencies: nothing to record then.
    histograms: Vec<HistogramBucket>,
    latency_classes: usize,
}

#[derive(Debug, Clone)]
struct CounterBucket {
    /// The time slot (in resolutions since the epoch) this bucket holds.
    slot: u64,
    total: u64,
    network_errors: u64,
    by_status: Box<[u32]>,
}

#[derive(Debug, Clone)]
struct HistogramBucket {
    slot: u64,
    counts: Box<[u32]>,
}

impl RollingMetrics {
    pub fn new(with_latency: bool) -> Self {
        let latency_classes = (MAX_LATENCY_MICROS.ln() / LATENCY_GROWTH.ln()).ceil() as usize + 1;
        let counters = (0..COUNTER_BUCKETS)
            .map(|_| CounterBucket {
                slot: u64::MAX,
                total: 0,
                network_errors: 0,
                by_status: vec![0; MAX_STATUS].into_boxed_slice(),
            })
            .collect();
        let histograms = if with_latency {
            (0..HISTOGRAM_BUCKETS)
                .map(|_| HistogramBucket {
                    slot: u64::MAX,
                    counts: vec![0; latency_classes].into_boxed_slice(),
                })
                .collect()
        } else {
            Vec::new()
        };
        RollingMetrics {
            epoch: Instant::now(),
            counters,
            histograms,
            latency_classes,
        }
    }

    /// One finished request. 502 and 504 count as network errors, as oxy counts them.
    pub fn record(&mut self, status: u16, latency: Duration, now: Instant) {
        let slot = self.slot(now, COUNTER_RESOLUTION);
        let bucket = &mut self.counters[slot as usize % COUNTER_BUCKETS];
        if bucket.slot != slot {
            bucket.slot = slot;
            bucket.total = 0;
            bucket.network_errors = 0;
            bucket.by_status.fill(0);
        }
        bucket.total += 1;
        if status == 502 || status == 504 {
            bucket.network_errors += 1;
        }
        if let Some(count) = bucket.by_status.get_mut(usize::from(status)) {
            *count += 1;
        }
        if self.histograms.is_empty() {
            return;
        }
        let slot = self.slot(now, HISTOGRAM_RESOLUTION);
        let class = self.latency_class(latency);
        let bucket = &mut self.histograms[slot as usize % HISTOGRAM_BUCKETS];
        if bucket.slot != slot {
            bucket.slot = slot;
            bucket.counts.fill(0);
        }
        bucket.counts[class] += 1;
    }

    pub fn reset(&mut self) {
        for bucket in &mut self.counters {
            bucket.slot = u64::MAX;
        }
        for bucket in &mut self.histograms {
            bucket.slot = u64::MAX;
        }
    }

    /// A view at `now` for evaluating a condition.
    pub fn at(&mut self, now: Instant) -> MetricsAt<'_> {
        MetricsAt { metrics: self, now }
    }

    fn slot(&self, now: Instant, resolution: Duration) -> u64 {
        (now.saturating_duration_since(self.epoch).as_nanos() / resolution.as_nanos()) as u64
    }

    fn latency_class(&self, latency: Duration) -> usize {
        let micros = (latency.as_micros() as f64).max(1.0);
        let class = (micros.ln() / LATENCY_GROWTH.ln()).ceil() as usize;
        class.min(self.latency_classes - 1)
    }

    fn live_counters(&self, now: Instant) -> impl Iterator<Item = &CounterBucket> {
        let current = self.slot(now, COUNTER_RESOLUTION);
        self.counters
            .iter()
            .filter(move |b| b.slot <= current && current - b.slot < COUNTER_BUCKETS as u64)
    }
}

pub(crate) struct MetricsAt<'m> {
    metrics: &'m mut RollingMetrics,
    now: Instant,
}

impl Metrics for MetricsAt<'_> {
    fn network_error_ratio(&mut self) -> f64 {
        let (errors, total) = self
            .metrics
            .live_counters(self.now)
            .fold((0, 0), |(e, t), b| (e + b.network_errors, t + b.total));
        if total == 0 {
            0.0
        } else {
            errors as f64 / total as f64
        }
    }

    fn response_code_ratio(&mut self, from: u16, to: u16, dfrom: u16, dto: u16) -> f64 {
        let sum = |from: u16, to: u16| -> u64 {
            let (from, to) = (usize::from(from), usize::from(to).min(MAX_STATUS));
            self.metrics
                .live_counters(self.now)
                .map(|b| {
                    b.by_status
                        .get(from..to)
                        .map_or(0, |s| s.iter().map(|&c| u64::from(c)).sum())
                })
                .sum()
        };
        let divisor = sum(dfrom, dto);
        if divisor == 0 {
            0.0
        } else {
            sum(from, to) as f64 / divisor as f64
        }
    }

    fn latency_at_quantile_ms(&mut self, quantile: f64) -> i64 {
        let metrics = &*self.metrics;
        let current = metrics.slot(self.now, HISTOGRAM_RESOLUTION);
        let mut merged = vec![0u64; metrics.latency_classes];
        for bucket in metrics
            .histograms
            .iter()
            .filter(|b| b.slot <= current && current - b.slot < HISTOGRAM_BUCKETS as u64)
        {
            for (sum, &count) in merged.iter_mut().zip(bucket.counts.iter()) {
                *sum += u64::from(count);
            }
        }
        let total: u64 = merged.iter().sum();
        if total == 0 {
            return 0;
        }
        let wanted = ((quantile.clamp(0.0, 100.0) / 100.0) * total as f64)
            .ceil()
            .max(1.0) as u64;
        let mut seen = 0;
        for (class, &count) in merged.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                let micros = LATENCY_GROWTH.powi(class as i32);
                return (micros / 1000.0) as i64;
            }
        }
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_quantiles_over_the_window() {
        let mut m = RollingMetrics::new(true);
        let t0 = m.epoch;
        for status in [200, 200, 502, 504, 500] {
            m.record(status, Duration::from_millis(100), t0);
        }
        m.record(200, Duration::from_millis(1000), t0);
        let mut view = m.at(t0);
        assert!((view.network_error_ratio() - 2.0 / 6.0).abs() < 1e-9);
        assert!((view.response_code_ratio(500, 600, 0, 600) - 0.5).abs() < 1e-9);
        assert_eq!(view.response_code_ratio(300, 400, 400, 500), 0.0);
        let median = view.latency_at_quantile_ms(50.0);
        assert!((99..=101).contains(&median), "{median}");
        let top = view.latency_at_quantile_ms(99.0);
        assert!((990..=1010).contains(&top), "{top}");
        // Ten seconds later the counters have rolled over.
        let later = t0 + Duration::from_secs(11);
        assert_eq!(m.at(later).network_error_ratio(), 0.0);
        m.record(502, Duration::from_millis(1), later);
        assert_eq!(m.at(later).network_error_ratio(), 1.0);
    }
}
