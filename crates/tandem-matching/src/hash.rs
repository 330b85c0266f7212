//! FNV-1a 64: a tiny, stable, non-cryptographic hash.
//!
//! Used wherever a value must hash identically across processes and releases
//! (cache keys, goal-word bits, overflow subject bits). `std`'s
//! `DefaultHasher` is randomly seeded per process, so it cannot be used here.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a 64 state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv64(u64);

impl Fnv64 {
    /// A fresh hasher at the FNV offset basis.
    pub(crate) fn new() -> Self {
        Self(OFFSET_BASIS)
    }

    /// Feeds `bytes` into the hash.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    /// The hash of everything written so far.
    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of `bytes` in one call.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::new();
    h.write(bytes);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
