//! Deterministic pseudo-randomness: every draw is a pure function of the seed and a counter.

/// One round of splitmix64: a good 64-bit mix of `x`.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `counter`-th draw under `seed`, uniform in `[0, 1)`.
pub(crate) fn unit(seed: u64, counter: u64) -> f64 {
    let bits = splitmix64(seed ^ splitmix64(counter)) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

/// FNV-1a, for hashing request bodies (stable across runs and platforms).
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_is_deterministic_and_in_range() {
        for i in 0..1000 {
            let u = unit(42, i);
            assert!((0.0..1.0).contains(&u));
            assert_eq!(u, unit(42, i));
        }
        assert_ne!(unit(1, 0), unit(2, 0));
    }

    #[test]
    fn unit_is_roughly_uniform() {
        let below = (0..10_000).filter(|i| unit(9, *i) < 0.2).count();
        assert!((1700..2300).contains(&below), "{below}");
    }
}
