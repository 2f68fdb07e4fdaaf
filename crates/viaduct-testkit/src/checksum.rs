/// A streaming 64-bit FNV-1a checksum: enough to tell an intact 16 MiB body from a truncated or
/// reordered one, without pulling a crypto crate into the test build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    state: u64,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self::new()
    }
}

impl Checksum {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    pub fn new() -> Self {
        Self {
            state: Self::OFFSET,
            len: 0,
        }
    }

    pub fn of(bytes: &[u8]) -> Self {
        let mut sum = Self::new();
        sum.update(bytes);
        sum
    }

    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(Self::PRIME);
        }
        self.len += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Lower-case hex of the 64-bit state, as the echo backend reports it.
    pub fn hex(&self) -> String {
        format!("{:016x}", self.state)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn streaming_equals_one_shot() {
        let mut s = Checksum::new();
        s.update(b"hello ");
        s.update(b"world");
        assert_eq!(s, Checksum::of(b"hello world"));
        assert_ne!(s, Checksum::of(b"hello worle"));
        assert_eq!(s.len(), 11);
    }
}
