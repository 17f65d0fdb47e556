//! How a refused value is written in a [`super::ConfigError::OutOfRange`]: as the user would
//! type it, and bounded. A float prints in full by default (`1e308` is 309 digits), so a very
//! large or very small one is written in scientific notation instead.
//!
//! A float's digits come from `zmij`, the shortest round-trip writer serde_json prints floats
//! with (so it is in every build already), laid out as `f64`'s `Display` (`{}`) and `LowerExp`
//! (`{:e}`) lay them out: the same text, without `core`'s own float formatting (Grisu with a
//! Dragon4 fallback, shortest and exact: 21 KB of the browser module, which nothing else needs).

/// A value as an error message shows it.
pub(crate) trait Shown {
    /// The value, at most a few dozen characters.
    fn shown(&self) -> String;
}

macro_rules! shown_as_display {
    ($($t:ty),*) => {$(
        impl Shown for $t {
            fn shown(&self) -> String {
                self.to_string()
            }
        }
    )*};
}

shown_as_display!(u64, i64, String, str);

// The narrower integers are shown widened, so that one `Display` per signedness serves them
// all: `u16`'s and `u32`'s are copies of their own that only config errors reached in the
// browser build. The digits are the same.
macro_rules! shown_widened {
    ($($t:ty => $wide:ty),*) => {$(
        impl Shown for $t {
            fn shown(&self) -> String {
                <$wide>::from(*self).shown()
            }
        }
    )*};
}

shown_widened!(u8 => u64, u16 => u64, u32 => u64, i32 => i64);

impl Shown for usize {
    fn shown(&self) -> String {
        // usize is at most 64 bits wide on every target.
        (*self as u64).shown()
    }
}

impl<T: Shown + ?Sized> Shown for &T {
    fn shown(&self) -> String {
        (**self).shown()
    }
}

impl Shown for f64 {
    fn shown(&self) -> String {
        let plain = *self == 0.0 || (1e-4..1e16).contains(&self.abs());
        match Decimal::of(*self) {
            Some(d) if !plain => d.exponential(),
            Some(d) => d.plain(),
            None => zmij::Buffer::new().format(*self).to_owned(),
        }
    }
}

/// `value` as serde_json's `to_string` writes it (compact, keys in the map's order, strings
/// escaped as serde_json escapes them), for a refused value that is not a scalar (a `preset`
/// given as an object). Written here so the browser module carries no JSON text serializer:
/// nothing else there writes JSON text (≈ 2.5 KB raw of serde_json's `Serializer`, its
/// string escaper and the `Serialize` entries it instantiates).
pub(crate) fn compact_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_json(&mut out, value);
    out
}

fn write_json(out: &mut String, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => out.push_str(&u.to_string()),
            (None, Some(i), _) => out.push_str(&i.to_string()),
            // serde_json writes a non-finite float (which a `Number` never holds) as null.
            (None, None, Some(f)) if f.is_finite() => {
                out.push_str(zmij::Buffer::new().format_finite(f))
            }
            _ => out.push_str("null"),
        },
        Value::String(s) => write_json_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, key);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

/// A JSON string as serde_json escapes it: `"` and `\` backslashed, five control characters
/// with a short escape (`\b \t \n \f \r`), the other control characters as `\u00XX`,
/// everything else as is.
fn write_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\u{1f}' => {
                let b = c as usize;
                out.push_str("\\u00");
                out.push(char::from(HEX[b >> 4]));
                out.push(char::from(HEX[b & 0xf]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A finite float's shortest round-trip digits: `0.d₁d₂… × 10^point`, negative or not.
struct Decimal {
    negative: bool,
    /// No leading or trailing zeros; empty for zero.
    digits: String,
    point: i32,
}

impl Decimal {
    /// `None` for infinities and NaN. zmij writes `1.0`, `0.001`, `1.5e+300` or `5e-324`; its
    /// digits are read back from that text, whichever layout it chose.
    fn of(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        let mut buffer = zmij::Buffer::new();
        // `point` counts the digits before the '.' less the leading zeros after it.
        let (mut d, mut point, mut exponent) = (0u64, 0i32, 0i32);
        let (mut fraction, mut in_exponent, mut exponent_sign) = (false, false, 1);
        for &b in buffer.format_finite(value).as_bytes() {
            match b {
                b'0'..=b'9' if in_exponent => exponent = exponent * 10 + i32::from(b - b'0'),
                b'0' if d == 0 => point -= i32::from(fraction),
                b'0'..=b'9' => {
                    d = d.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                    point += i32::from(!fraction);
                }
                b'.' => fraction = true,
                b'e' => in_exponent = true,
                b'-' if in_exponent => exponent_sign = -1,
                _ => {}
            }
        }
        if d == 0 {
            point = 0;
        }
        while d != 0 && d % 10 == 0 {
            d /= 10;
        }
        let point = point + exponent_sign * exponent;
        // zmij breaks a tie between two shortest candidates (the value exactly halfway) towards
        // the even one; `core` rounds it up. Shortest digits are at most 17, so they fit a u64.
        let n = if d == 0 { 0 } else { d.ilog10() as i32 + 1 };
        let (mut d, point) = if exactly(value, d * 10 + 5, point - n - 1) {
            let up = d + 1;
            (up, point + (up.ilog10() as i32 + 1) - n)
        } else {
            (d, point)
        };
        while d != 0 && d % 10 == 0 {
            d /= 10;
        }
        Some(Decimal {
            negative: value.is_sign_negative(),
            digits: if d == 0 { String::new() } else { d.to_string() },
            point,
        })
    }

    fn sign(&self) -> &'static str {
        if self.negative {
            "-"
        } else {
            ""
        }
    }

    /// As `{}` writes it: every digit, no exponent (`0.0001`, `1000000000`, `-0`).
    fn plain(&self) -> String {
        let (digits, point) = (self.digits.as_str(), self.point);
        let len = digits.len() as i32;
        let body = if digits.is_empty() {
            "0".to_owned()
        } else if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point >= len {
            format!("{digits}{}", "0".repeat((point - len) as usize))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        format!("{}{body}", self.sign())
    }

    /// As `{:e}` writes it: `1e308`, `1.7976931348623157e308`, `5e-324`, `0e0`.
    fn exponential(&self) -> String {
        let Some(first) = self.digits.get(..1) else {
            return format!("{}0e0", self.sign());
        };
        let rest = &self.digits[1..];
        let dot = if rest.is_empty() { "" } else { "." };
        format!("{}{first}{dot}{rest}e{}", self.sign(), self.point - 1)
    }
}

/// Whether `|value|` is exactly `d × 10^q`. An `f64` is `m × 2^e`; with the powers of two on
/// either side taken out this is `m_odd × 5^-q = d_odd` or `m_odd = d_odd × 5^q`, which fits a
/// u128 whenever it can hold (`d` below 2⁶⁴ and `m` below 2⁵³ bound `q` to a few dozen).
fn exactly(value: f64, d: u64, q: i32) -> bool {
    let bits = value.to_bits() & !(1 << 63);
    let (biased, fraction) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    let (m, e) = match biased {
        0 => (fraction, -1074),
        _ => (fraction | (1 << 52), biased - 1075),
    };
    if m == 0 || d == 0 {
        return false;
    }
    let (a, m_odd) = (m.trailing_zeros() as i32, m >> m.trailing_zeros());
    let (b, d_odd) = (d.trailing_zeros() as i32, d >> d.trailing_zeros());
    if a + e != b + q {
        return false;
    }
    let Some(five) = 5u128.checked_pow(q.unsigned_abs()) else {
        return false;
    };
    let (small, large) = if q >= 0 {
        (d_odd, m_odd)
    } else {
        (m_odd, d_odd)
    };
    u128::from(small).checked_mul(five) == Some(u128::from(large))
}

#[cfg(test)]
mod tests {
    use super::{compact_json, Decimal, Shown};
    use crate::rng::{RandomSource, Rng};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn floats_are_written_as_typed_and_bounded_at_either_end() {
        let table: [(f64, &str); 9] = [
            (0.0, "0"),
            (2.5, "2.5"),
            (-1.0, "-1"),
            (0.0001, "0.0001"),
            (1e9, "1000000000"),
            (1e308, "1e308"),
            (f64::MAX, "1.7976931348623157e308"),
            (5e-324, "5e-324"),
            (-3e20, "-3e20"),
        ];
        for (value, text) in table {
            assert_eq!(value.shown(), text);
        }
        assert_eq!(f64::INFINITY.shown(), "inf");
        assert_eq!(f64::NEG_INFINITY.shown(), "-inf");
        assert_eq!(f64::NAN.shown(), "NaN");
        assert_eq!((-0.0f64).shown(), "-0");
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        for (shown, display) in [
            (0u8.shown(), 0u8.to_string()),
            (u8::MAX.shown(), u8::MAX.to_string()),
            (u16::MAX.shown(), u16::MAX.to_string()),
            (u32::MAX.shown(), u32::MAX.to_string()),
            (usize::MAX.shown(), usize::MAX.to_string()),
            (u64::MAX.shown(), u64::MAX.to_string()),
            (i32::MIN.shown(), i32::MIN.to_string()),
            ((-7i32).shown(), "-7".to_string()),
            (i64::MIN.shown(), i64::MIN.to_string()),
        ] {
            assert_eq!(shown, display);
        }
    }

    #[test]
    fn compact_json_is_what_serde_json_writes() {
        use serde_json::json;
        let controls: String = (0u8..0x20).map(char::from).collect();
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-7),
            json!(2.5),
            json!(-0.0),
            json!(1e300),
            json!(5e-324),
            json!(0.1),
            json!(1.0),
            json!(""),
            json!(controls),
            json!("quote \" backslash \\ slash / del \u{7f} é \u{2028} 😀"),
            json!([]),
            json!({}),
            json!([1, [2, [3, {}]], "x", null]),
            json!({"name": "aws-standard", "b": {"c": [true, 1.5, {"d\n": "e\t"}]}, "a": -1}),
        ];
        for value in values {
            assert_eq!(compact_json(&value), serde_json::to_string(&value).unwrap());
        }
    }

    /// The text `f64`'s own `Display` and `LowerExp` give, for floats spread over every exponent
    /// and the edges (subnormals, powers of two and ten, integers near 2⁵³), both signs.
    #[test]
    fn the_same_text_as_std() {
        let mut values = vec![
            0.0,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::EPSILON,
            0.1,
            0.2,
            0.3,
            1.0 / 3.0,
            2.0 / 3.0,
            9_007_199_254_740_993.0,
            123_456_789_012_345_680.0,
            1e15,
            1e16,
            1e21,
            1e22,
            1e23,
            5e-5,
            0.000_123,
        ];
        for e in -1074..=1023 {
            values.push(2f64.powi(e));
        }
        for e in -330..=310 {
            values.push(format!("1e{e}").parse().unwrap());
            values.push(format!("9.999999999999999e{e}").parse().unwrap());
        }
        // A fixed-seed walk over the bit patterns (the engine's own seeded generator).
        let mut rng = Rng::seeded(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            values.push(f64::from_bits(rng.next_u64()));
        }
        // Halfway cases, where the shortest digits have two candidates (2⁻²⁵ is
        // 2.98023223876953125e-8: `{}` ends it in …313, not …312).
        for m in 1..400u32 {
            for e in -80..80 {
                values.push(f64::from(m) * 2f64.powi(e));
            }
        }
        for m in 0..20_000u32 {
            values.push(f64::from(m) * 1e10 + 0.5);
            values.push((f64::from(m) + 0.5) * 2f64.powi(40));
        }
        for v in values.into_iter().flat_map(|v| [v, -v]) {
            if let Some(d) = Decimal::of(v) {
                assert_eq!(d.plain(), format!("{v}"), "{v:e}");
                assert_eq!(d.exponential(), format!("{v:e}"), "{v:e}");
            }
            let want = if v == 0.0 || (1e-4..1e16).contains(&v.abs()) || !v.is_finite() {
                v.to_string()
            } else {
                format!("{v:e}")
            };
            assert_eq!(v.shown(), want);
        }
    }
}
