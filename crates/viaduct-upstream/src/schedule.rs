//! Lock-free smooth weighted round robin.
//!
//! The smooth WRR sequence (nginx's algorithm, the one Traefik's EDF scheduler
//! approximates) is precomputed once per configuration; picking is then one atomic
//! increment and an index. For very large weight sums the sequence would be too long, so
//! weights are first divided by their GCD and, if still too long, scaled down
//! proportionally (keeping every server at weight ≥ 1).

use std::sync::atomic::{AtomicUsize, Ordering};

/// The longest precomputed sequence: 64 Ki entries of u32 is 256 KiB, enough for 1,000
/// servers with weights up to 65.
const MAX_SEQUENCE: u64 = 1 << 16;

#[derive(Debug)]
pub struct WeightedSchedule {
    sequence: Box<[u32]>,
    next: AtomicUsize,
}

impl WeightedSchedule {
    /// Builds the schedule for `weights` (index = member). Members with weight 0 are never
    /// picked. Returns `None` when no member has a positive weight.
    pub fn new(weights: &[u64]) -> Option<WeightedSchedule> {
        let mut weights: Vec<u64> = weights.to_vec();
        let divisor = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
        if divisor == 0 {
            return None;
        }
        weights.iter_mut().for_each(|w| *w /= divisor);
        let total: u64 = weights.iter().sum();
        if total > MAX_SEQUENCE {
            let scale = MAX_SEQUENCE as f64 / total as f64;
            for w in weights.iter_mut().filter(|w| **w > 0) {
                *w = ((*w as f64 * scale) as u64).max(1);
            }
        }
        let total: u64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut sequence = Vec::with_capacity(total as usize);
        for _ in 0..total {
            let mut best = 0usize;
            for (i, w) in weights.iter().enumerate() {
                current[i] += *w as i64;
                if current[i] > current[best] {
                    best = i;
                }
            }
            current[best] -= total as i64;
            sequence.push(best as u32);
        }
        Some(WeightedSchedule {
            sequence: sequence.into_boxed_slice(),
            next: AtomicUsize::new(0),
        })
    }

    /// The next member in the sequence.
    pub fn pick(&self) -> usize {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.sequence[n % self.sequence.len()] as usize
    }

    /// Continues from where another schedule was, so a reload does not restart the rotation
    /// at the first server every time.
    pub fn resume_from(&self, previous: &WeightedSchedule) {
        self.next
            .store(previous.next.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.sequence.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequence.is_empty()
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(s: &WeightedSchedule, members: usize, picks: usize) -> Vec<usize> {
        let mut c = vec![0; members];
        for _ in 0..picks {
            c[s.pick()] += 1;
        }
        c
    }

    #[test]
    fn equal_weights_alternate() {
        let s = WeightedSchedule::new(&[1, 1]).unwrap();
        let picks: Vec<usize> = (0..4).map(|_| s.pick()).collect();
        assert_eq!(picks, vec![0, 1, 0, 1]);
    }

    #[test]
    fn weights_are_honoured_and_smooth() {
        let s = WeightedSchedule::new(&[5, 1, 1]).unwrap();
        let picks: Vec<usize> = (0..7).map(|_| s.pick()).collect();
        // nginx's smooth sequence for 5,1,1: a a b a c a a
        assert_eq!(picks, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&s, 3, 700), vec![500, 100, 100]);
    }

    #[test]
    fn zero_weight_is_never_picked_and_all_zero_is_none() {
        let s = WeightedSchedule::new(&[0, 3]).unwrap();
        assert_eq!(counts(&s, 2, 30), vec![0, 30]);
        assert!(WeightedSchedule::new(&[0, 0]).is_none());
        assert!(WeightedSchedule::new(&[]).is_none());
    }

    #[test]
    fn huge_weights_are_scaled_not_exploded() {
        let s = WeightedSchedule::new(&[1_000_000, 3_000_000, 1]).unwrap();
        assert!(s.len() as u64 <= MAX_SEQUENCE + 3);
        let c = counts(&s, 3, s.len());
        assert!(c[2] >= 1, "a tiny weight still gets picked");
        let ratio = c[1] as f64 / c[0] as f64;
        assert!((2.9..3.1).contains(&ratio), "ratio {ratio}");
    }
}
