//! Time as an input.
//!
//! The core never reads a clock: `std::time::Instant::now()` panics on
//! `wasm32-unknown-unknown`. Drivers pass in an [`Instant`] (nanoseconds since an origin the
//! driver picks, usually its own start) and, only where HTTP needs the calendar (a `Retry-After`
//! HTTP-date, an absolute token expiry), a [`UnixTime`].
//!
//! All arithmetic saturates: a clock that seems to run backwards is clamped, never a panic.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

use serde::{Deserialize, Serialize};

/// A point on the driver's monotonic clock, in nanoseconds since an origin the driver chose.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Instant(u64);

impl Instant {
    /// The driver's origin.
    pub const ZERO: Instant = Instant(0);
    /// The far end of the clock; only ever the result of saturation.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the origin (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// An instant from a floating-point millisecond reading such as `performance.now()`.
    /// Negative or non-finite readings clamp to the origin.
    pub fn from_millis_f64(millis: f64) -> Self {
        if millis.is_finite() && millis > 0.0 {
            let nanos = millis * 1e6;
            if nanos >= u64::MAX as f64 {
                Instant::MAX
            } else {
                Instant(nanos as u64)
            }
        } else {
            Instant::ZERO
        }
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Whole milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0 / 1_000_000
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    ///
    /// Under a second (most calls' elapsed times) without `Duration::from_nanos`'s division
    /// into seconds and nanoseconds: the same value.
    #[inline]
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        let nanos = self.0.saturating_sub(earlier.0);
        match u32::try_from(nanos) {
            Ok(n) if n < 1_000_000_000 => Duration::new(0, n),
            _ => Duration::from_nanos(nanos),
        }
    }

    /// `self + d`, clamped at [`Instant::MAX`].
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self` plus `nanos` nanoseconds, clamped at [`Instant::MAX`] (`self + d` for a `d`
    /// already in nanoseconds, without converting it again).
    pub(crate) fn saturating_add_nanos(self, nanos: u64) -> Instant {
        Instant(self.0.saturating_add(nanos))
    }

    /// `self - d`, clamped at the origin.
    pub fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_nanos(d)))
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX` (about 584 years).
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Whole milliseconds of a duration, saturating.
pub fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:03}s",
            self.0 / 1_000_000_000,
            (self.0 / 1_000_000) % 1000
        )
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Wall-clock time in milliseconds since the Unix epoch, passed in only where HTTP needs it.
#[derive(
    Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(u64);

impl UnixTime {
    /// The Unix epoch.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// From milliseconds since the epoch (`Date.now()`).
    pub const fn from_millis(ms: u64) -> Self {
        UnixTime(ms)
    }

    /// From whole seconds since the epoch (saturating).
    pub const fn from_secs(s: u64) -> Self {
        UnixTime(s.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Whole seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// The time from `self` until `later`, or zero when `later` is already past.
    pub fn until(self, later: UnixTime) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> UnixTime {
        UnixTime(self.0.saturating_add(duration_millis(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_millis(5);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(t.saturating_sub(Duration::from_secs(1)), Instant::ZERO);
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
        assert_eq!(t + Duration::MAX, Instant::MAX);
    }

    #[test]
    fn float_readings_clamp() {
        assert_eq!(Instant::from_millis_f64(-3.0), Instant::ZERO);
        assert_eq!(Instant::from_millis_f64(f64::NAN), Instant::ZERO);
        assert_eq!(Instant::from_millis_f64(f64::INFINITY), Instant::ZERO);
        assert_eq!(
            Instant::from_millis_f64(1.5),
            Instant::from_nanos(1_500_000)
        );
        assert_eq!(Instant::from_millis_f64(1e300), Instant::MAX);
    }

    #[test]
    fn an_elapsed_time_under_a_second_is_the_same_duration_as_from_nanos() {
        let edges = [
            0,
            1,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            u64::from(u32::MAX),
        ];
        for nanos in edges.into_iter().chain([u64::from(u32::MAX) + 1, u64::MAX]) {
            let since = Instant::from_nanos(nanos).saturating_duration_since(Instant::ZERO);
            assert_eq!(since, Duration::from_nanos(nanos), "{nanos} ns");
        }
        assert_eq!(Instant::ZERO - Instant::from_nanos(5), Duration::ZERO);
    }

    #[test]
    fn wall_clock_until_past_is_zero() {
        let now = UnixTime::from_secs(100);
        assert_eq!(now.until(UnixTime::from_secs(90)), Duration::ZERO);
        assert_eq!(now.until(UnixTime::from_secs(103)), Duration::from_secs(3));
    }
}
