//! Trace and span identifiers from a per-thread generator, seeded once from the OS: a
//! `getrandom` call per span would be a system call on the request path.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

pub(super) fn trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&next().to_be_bytes());
    id[8..].copy_from_slice(&next().to_be_bytes());
    id
}

pub(super) fn span_id() -> [u8; 8] {
    loop {
        let id = next();
        if id != 0 {
            return id.to_be_bytes();
        }
    }
}

/// True with probability `rate` (clamped to 0..=1).
pub(super) fn sampled(rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate <= 0.0 {
        return false;
    }
    (next() >> 11) as f64 / (1u64 << 53) as f64 <= rate
}

/// splitmix64.
fn next() -> u64 {
    STATE.with(|state| {
        let value = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(value);
        let mut z = value;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness: identifiers only need to be unlikely to collide.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return now ^ (std::process::id() as u64) << 32;
    }
    u64::from_le_bytes(bytes)
}
