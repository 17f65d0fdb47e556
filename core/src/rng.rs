//! Randomness as an input.
//!
//! The engine owns one small seeded generator (xoshiro256++ seeded through splitmix64). The
//! driver seeds it from the OS or from `crypto.getRandomValues`; the same seed and the same inputs
//! give the same decisions, which is what makes traces comparable across drivers.

use core::fmt;

/// A source of random 64-bit words. The engine only needs this much.
pub trait RandomSource {
    /// The next uniformly distributed word.
    fn next_u64(&mut self) -> u64;

    /// A uniform value in `[0, bound)`; `0` when `bound` is `0`.
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Lemire's multiply-shift with rejection: unbiased and division-free on the fast path.
        let mut m = u128::from(self.next_u64()) * u128::from(bound);
        if (m as u64) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        (m >> 64) as u64
    }

    /// A uniform value in `[lo, hi]` (inclusive); `lo` when `hi <= lo`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        match (hi - lo).checked_add(1) {
            Some(span) => lo + self.below(span),
            None => self.next_u64(),
        }
    }
}

/// xoshiro256++ — small, fast, and good enough for jitter and idempotency keys.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose whole future is fixed by `seed`.
    pub fn seeded(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    /// Sixteen random bytes laid out as a version-4, variant-1 UUID.
    pub fn uuid_v4(&mut self) -> Uuid {
        // The version (byte 6's high nibble, 4) and the variant (byte 8's two high bits, 10)
        // set on the words, before they become bytes: two word stores, not byte fix-ups.
        let hi = (self.next_u64() & !0xf000) | 0x4000;
        let lo = (self.next_u64() & !(0xc0 << 56)) | (0x80 << 56);
        Uuid(((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes())
    }
}

impl RandomSource for Rng {
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

impl fmt::Debug for Rng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rng { .. }")
    }
}

/// A UUID held as bytes; it prints as the usual 36-character text without allocating.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The text form into a stack buffer: `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
    pub fn to_text(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Where each byte's two digits go: the dashes sit after bytes 4, 6, 8 and 10.
        const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
        let mut out = [b'-'; 36];
        for (byte, at) in self.0.iter().zip(AT) {
            if let Some([hi, lo]) = out.get_mut(at..at + 2) {
                *hi = HEX[usize::from(byte >> 4)];
                *lo = HEX[usize::from(byte & 0x0f)];
            }
        }
        out
    }
}

/// A UUID's 36-character text, held inline: formatted once, read as a `&str` without
/// allocating.
#[derive(Copy, Clone, PartialEq, Eq, Hash)]
pub struct UuidText([u8; 36]);

impl UuidText {
    /// The text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes (see `Uuid::to_text`).
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The text's bytes, without checking them again (a header value made of them).
    pub fn as_bytes(&self) -> &[u8; 36] {
        &self.0
    }
}

impl fmt::Display for UuidText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for UuidText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Uuid {
    /// The text form, kept: `id.text().as_str()`.
    pub fn text(&self) -> UuidText {
        UuidText(self.to_text())
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        // The buffer holds only ASCII hex digits and dashes.
        f.write_str(core::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Uuid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// For tests of state kept per time slot: the next reading, in ms, of a clock at `t` that
/// mostly moves forward by less than `step`, and one time in a hundred jumps `jump` ahead or
/// goes `back` (saturating at zero).
#[cfg(test)]
pub(crate) fn wander_ms(
    rng: &mut impl RandomSource,
    t: u64,
    step: u64,
    jump: u64,
    back: u64,
) -> u64 {
    match rng.below(100) {
        0 => t.saturating_sub(back),
        1 => t + jump,
        _ => t + rng.below(step),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Rng::seeded(7);
        let mut b = Rng::seeded(7);
        let mut c = Rng::seeded(8);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn below_and_between_stay_in_range() {
        let mut r = Rng::seeded(1);
        for bound in [1u64, 2, 3, 10, 1000, u64::MAX] {
            for _ in 0..200 {
                assert!(r.below(bound) < bound);
            }
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.between(5, 5), 5);
        assert_eq!(r.between(9, 3), 9);
        for _ in 0..200 {
            let v = r.between(10, 20);
            assert!((10..=20).contains(&v));
        }
        let _ = r.between(0, u64::MAX);
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let mut r = Rng::seeded(42);
        for _ in 0..50 {
            let text = r.uuid_v4().to_string();
            assert_eq!(text.len(), 36);
            assert_eq!(&text[14..15], "4");
            assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
            assert_eq!(text.matches('-').count(), 4);
        }
    }

    #[test]
    fn uuid_bits_are_set_on_the_words_as_on_the_bytes() {
        // The RFC 4122 fix-ups done on bytes 6 and 8 of the two words' bytes give the same
        // ids, so ids drawn from a seed stay what they were.
        let (mut r, mut words) = (Rng::seeded(9), Rng::seeded(9));
        for _ in 0..1_000 {
            let (hi, lo) = (words.next_u64(), words.next_u64());
            let mut b = ((u128::from(hi) << 64) | u128::from(lo)).to_be_bytes();
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            assert_eq!(r.uuid_v4(), Uuid(b));
        }
    }

    #[test]
    fn uuid_text_is_the_usual_form() {
        let id = Uuid([
            0x0c, 0x9f, 0x3d, 0x7e, 0x6b, 0x0a, 0x4a, 0x4e, 0x9d, 0x55, 0x2b, 0x1c, 0x3f, 0x5e,
            0x7a, 0x90,
        ]);
        let want = "0c9f3d7e-6b0a-4a4e-9d55-2b1c3f5e7a90";
        assert_eq!(id.text().as_str(), want);
        assert_eq!(id.to_string(), want);
        assert_eq!(&id.to_text(), want.as_bytes());
    }
}
