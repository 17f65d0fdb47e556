//! How a refused value is written in a [`super::ConfigError::OutOfRange`]: as the user would
//! type it, and bounded. A float prints in full by default (`1e308` is 309 digits), so a very
//! large or very small one is written in scientific notation instead.

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

shown_as_display!(u8, u16, u32, u64, usize, i32, i64, String, str);

impl<T: Shown + ?Sized> Shown for &T {
    fn shown(&self) -> String {
        (**self).shown()
    }
}

impl Shown for f64 {
    fn shown(&self) -> String {
        let plain = self.is_finite() && (*self == 0.0 || (1e-4..1e16).contains(&self.abs()));
        if plain || !self.is_finite() {
            self.to_string()
        } else {
            format!("{self:e}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Shown;
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
        assert_eq!(f64::NAN.shown(), "NaN");
    }
}
