//! How a balancer chooses among its members (servers, or child services): weighted round
//! robin, power of two random choices, highest random weight.

use std::cell::Cell;
use std::net::IpAddr;

use crate::schedule::WeightedSchedule;

/// `loadBalancer.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Smooth weighted round robin (the default).
    #[default]
    Wrr,
    /// Two members drawn at random; the one with fewer requests in flight (per weight) wins.
    P2c,
    /// Rendezvous hashing of the client IP: a client keeps its member while it is up.
    Hrw,
    /// The lowest mean time to first byte × (1 + requests in flight) / weight; ties go
    /// round robin.
    LeastTime,
}

#[derive(Debug, thiserror::Error)]
#[error("unsupported load-balancer strategy {0:?} (wrr, p2c, hrw or leasttime)")]
pub struct UnknownStrategy(pub String);

impl Strategy {
    pub fn parse(name: Option<&str>) -> Result<Strategy, UnknownStrategy> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("wrr") => Ok(Strategy::Wrr),
            Some("p2c") => Ok(Strategy::P2c),
            Some("hrw") => Ok(Strategy::Hrw),
            Some("leasttime") => Ok(Strategy::LeastTime),
            Some(other) => Err(UnknownStrategy(other.to_string())),
        }
    }
}

/// What a strategy needs to know about the members of one balancer.
pub(crate) trait Members {
    fn count(&self) -> usize;
    fn weight(&self, i: usize) -> u64;
    fn available(&self, i: usize) -> bool;
    /// Requests in flight, for `p2c`.
    fn load(&self, i: usize) -> usize;
    /// The name hashed with the client IP, for `hrw`.
    fn key(&self, i: usize) -> &str;
    /// Mean time to first byte in milliseconds, for `leasttime`.
    fn response_ms(&self, _i: usize) -> f64 {
        0.0
    }
}

/// Weighted round robin that skips unavailable members. The schedule is tried once per
/// member; when that finds nothing (most members down), a scan finds any available one.
pub(crate) fn wrr(schedule: Option<&WeightedSchedule>, members: &impl Members) -> Option<usize> {
    let schedule = schedule?;
    for _ in 0..members.count() {
        let i = schedule.pick();
        if members.available(i) {
            return Some(i);
        }
    }
    first_available(members)
}

/// Power of two random choices among available members: two distinct members drawn at
/// random, the one with fewer requests in flight per unit of weight wins.
pub(crate) fn p2c(members: &impl Members) -> Option<usize> {
    let a = draw(members, None)?;
    let Some(b) = draw(members, Some(a)) else {
        return Some(a);
    };
    // a is better when load_a / w_a <= load_b / w_b, compared without dividing.
    let (la, lb) = (members.load(a) as u128, members.load(b) as u128);
    let (wa, wb) = (members.weight(a) as u128, members.weight(b) as u128);
    Some(if la * wb <= lb * wa { a } else { b })
}

/// A random available member other than `except`: a few random draws, then a scan.
fn draw(members: &impl Members, except: Option<usize>) -> Option<usize> {
    let n = members.count();
    let usable = |i: usize| Some(i) != except && members.weight(i) > 0 && members.available(i);
    let choices = n - usize::from(except.is_some_and(|e| e < n));
    if choices == 0 {
        return None;
    }
    for _ in 0..4 {
        let mut i = random_below(choices);
        if except.is_some_and(|e| i >= e) {
            i += 1;
        }
        if usable(i) {
            return Some(i);
        }
    }
    (0..n).find(|&i| usable(i))
}

/// Least time: the lowest `response_ms × (1 + load) / weight`; members sharing the lowest
/// score are taken in the round robin's order.
pub(crate) fn least_time(
    schedule: Option<&WeightedSchedule>,
    members: &impl Members,
) -> Option<usize> {
    let score = |i: usize| {
        members.response_ms(i) * (1.0 + members.load(i) as f64) / members.weight(i) as f64
    };
    let usable = |i: usize| members.weight(i) > 0 && members.available(i);
    let best = (0..members.count())
        .filter(|&i| usable(i))
        .map(score)
        .min_by(f64::total_cmp)?;
    if let Some(schedule) = schedule {
        for _ in 0..members.count() {
            let i = schedule.pick();
            if usable(i) && score(i) == best {
                return Some(i);
            }
        }
    }
    (0..members.count()).find(|&i| usable(i) && score(i) == best)
}

/// Highest random weight: each available member scores `weight / -ln(h)` where `h` is a
/// hash of (client IP, member key) mapped into (0, 1); the best score wins.
pub(crate) fn hrw(client: Option<IpAddr>, members: &impl Members) -> Option<usize> {
    let ip = client.map(|ip| ip.to_string()).unwrap_or_default();
    let mut best: Option<(f64, usize)> = None;
    for i in 0..members.count() {
        let weight = members.weight(i);
        if weight == 0 || !members.available(i) {
            continue;
        }
        let h = mix(fnv1a(
            ip.as_bytes(),
            fnv1a(members.key(i).as_bytes(), FNV_OFFSET),
        ));
        let unit = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let score = weight as f64 / -unit.ln();
        if best.is_none_or(|(s, _)| score > s) {
            best = Some((score, i));
        }
    }
    best.map(|(_, i)| i)
}

/// A uniform-enough index below `n` from a per-thread xorshift generator: `p2c` needs
/// cheap randomness, not unpredictability.
fn random_below(n: usize) -> usize {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed());
    }
    let x = STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    });
    (mix(x) % n as u64) as usize
}

fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish() | 1
}

fn first_available(members: &impl Members) -> Option<usize> {
    (0..members.count()).find(|&i| members.weight(i) > 0 && members.available(i))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8], mut hash: u64) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// splitmix64's finaliser: FNV alone leaves the high bits poorly mixed for short keys.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake {
        weights: Vec<u64>,
        up: Vec<bool>,
        load: Vec<usize>,
        keys: Vec<String>,
    }

    impl Members for Fake {
        fn count(&self) -> usize {
            self.weights.len()
        }
        fn weight(&self, i: usize) -> u64 {
            self.weights[i]
        }
        fn available(&self, i: usize) -> bool {
            self.up[i]
        }
        fn load(&self, i: usize) -> usize {
            self.load[i]
        }
        fn key(&self, i: usize) -> &str {
            &self.keys[i]
        }
    }

    fn fake(n: usize) -> Fake {
        Fake {
            weights: vec![1; n],
            up: vec![true; n],
            load: vec![0; n],
            keys: (0..n).map(|i| format!("http://10.0.0.{i}")).collect(),
        }
    }

    #[test]
    fn wrr_skips_down_members() {
        let mut f = fake(3);
        f.up[1] = false;
        let s = WeightedSchedule::new(&f.weights).unwrap();
        let picks: Vec<_> = (0..6).map(|_| wrr(Some(&s), &f).unwrap()).collect();
        assert!(!picks.contains(&1));
        f.up = vec![false; 3];
        assert_eq!(wrr(Some(&s), &f), None);
    }

    #[test]
    fn p2c_prefers_the_less_loaded() {
        let mut f = fake(2);
        f.load = vec![10, 0];
        // Two distinct members out of two: the less loaded always wins.
        assert!((0..50).all(|_| p2c(&f) == Some(1)));
        f.load = vec![3, 3];
        f.weights = vec![1, 3];
        assert!((0..50).all(|_| p2c(&f) == Some(1)), "load per weight");
        f.weights = vec![1, 1];
        f.up[1] = false;
        assert!((0..20).all(|_| p2c(&f) == Some(0)));
    }

    #[test]
    fn hrw_is_stable_per_client_and_spreads_clients() {
        let f = fake(4);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = hrw(Some(ip), &f);
        assert!((0..10).all(|_| hrw(Some(ip), &f) == first));
        let mut seen = std::collections::HashSet::new();
        for i in 0..64u8 {
            seen.insert(hrw(Some(IpAddr::from([10, 0, 1, i])), &f));
        }
        assert!(seen.len() >= 3, "{seen:?}");
        // Removing another member does not move a client whose member is still up.
        let mut g = fake(4);
        let chosen = first.unwrap();
        g.up[(chosen + 1) % 4] = false;
        assert_eq!(hrw(Some(ip), &g), first);
    }

    #[test]
    fn least_time_weighs_response_time_by_load_and_breaks_ties_round_robin() {
        struct Timed(Fake, Vec<f64>);
        impl Members for Timed {
            fn count(&self) -> usize {
                self.0.count()
            }
            fn weight(&self, i: usize) -> u64 {
                self.0.weight(i)
            }
            fn available(&self, i: usize) -> bool {
                self.0.available(i)
            }
            fn load(&self, i: usize) -> usize {
                self.0.load(i)
            }
            fn key(&self, i: usize) -> &str {
                self.0.key(i)
            }
            fn response_ms(&self, i: usize) -> f64 {
                self.1[i]
            }
        }
        let s = WeightedSchedule::new(&[1, 1, 1]).unwrap();
        let mut t = Timed(fake(3), vec![10.0, 5.0, 5.0]);
        let picks: Vec<_> = (0..4).map(|_| least_time(Some(&s), &t).unwrap()).collect();
        assert!(!picks.contains(&0));
        assert!(
            picks.contains(&1) && picks.contains(&2),
            "ties alternate: {picks:?}"
        );
        t.0.load = vec![0, 3, 3];
        assert_eq!(least_time(Some(&s), &t), Some(0), "10×1 beats 5×4");
    }

    #[test]
    fn strategies_parse() {
        assert_eq!(Strategy::parse(None).unwrap(), Strategy::Wrr);
        assert_eq!(Strategy::parse(Some("P2C")).unwrap(), Strategy::P2c);
        assert_eq!(
            Strategy::parse(Some("leasttime")).unwrap(),
            Strategy::LeastTime
        );
        assert!(Strategy::parse(Some("random")).is_err());
    }
}
