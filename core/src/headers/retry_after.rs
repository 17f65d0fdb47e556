//! `Retry-After` (RFC 9110 §10.2.3): how long the server asks us to wait.
//!
//! ```text
//! Retry-After = HTTP-date / delay-seconds
//! delay-seconds = 1*DIGIT
//! ```

use core::time::Duration;

use super::{parse_u64, trim_ows};
use crate::time::UnixTime;

/// What a delay-seconds too large for a `u64` reads as: `u64::MAX` seconds. No server means that
/// number, so a message about a wait this long says the server's value was out of range instead
/// of printing it.
pub const RETRY_AFTER_OUT_OF_RANGE: Duration = Duration::from_secs(u64::MAX);

/// How long a `Retry-After` value asks to wait, measured from `now`.
///
/// - delay-seconds (`"120"`, optional whitespace around it) → that many seconds. A number too
///   large for a `u64` saturates to [`RETRY_AFTER_OUT_OF_RANGE`] instead of failing: it still
///   means "a very long time", and the caller's cap turns it into something sensible.
/// - an HTTP-date in any of the three RFC 9110 forms → the time from `now` until then, or
///   [`Duration::ZERO`] when the date has passed.
/// - anything else (empty, `+5`, `-5`, `1.5`, `5s`, a malformed date) → `None`.
///
/// The result is not capped; that is the caller's decision.
///
/// HTTP-dates are read in the three forms RFC 9110 §5.6.7 lists, as the `httpdate` crate reads
/// them, which is strict in ways worth knowing:
///
/// - names are case-sensitive (`GMT`, `Nov`, `Sun`), as the RFC says;
/// - the weekday must be the right one for the date, or the date is rejected;
/// - years before 1970 or after 9999 are rejected, so a date before the epoch gives `None`
///   rather than "already past";
/// - the RFC 850 form's two-digit year is read as 1970–2069 (`70`–`99` → 19xx, `00`–`69` → 20xx)
///   rather than by the RFC's "more than 50 years in the future" rule.
///
/// ```
/// use std::time::Duration;
/// use resile_core::headers::parse_retry_after;
/// use resile_core::UnixTime;
///
/// let now = UnixTime::from_secs(784_111_777 - 60); // a minute before the RFC's example date
/// assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
/// assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after("Sun Nov  6 08:49:37 1994", now), Some(Duration::from_secs(60)));
/// assert_eq!(parse_retry_after("soon", now), None);
/// ```
pub fn parse_retry_after(value: &str, now: UnixTime) -> Option<Duration> {
    let v = trim_ows(value);
    // Every HTTP-date form begins with a day name, so a leading digit means delay-seconds.
    if v.as_bytes().first()?.is_ascii_digit() {
        return parse_u64(v).map(Duration::from_secs);
    }
    let at = super::http_date::parse_http_date(v)?;
    Some(now.until(UnixTime::from_secs(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The RFC 9110 example date, Sun, 06 Nov 1994 08:49:37 GMT.
    const RFC_DATE: u64 = 784_111_777;

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    #[test]
    fn delay_seconds() {
        let now = UnixTime::from_secs(1_000);
        let table: &[(&str, Option<Duration>)] = &[
            ("0", secs(0)),
            ("1", secs(1)),
            ("120", secs(120)),
            ("0120", secs(120)),
            (" 120", secs(120)),
            ("120 ", secs(120)),
            ("\t 3 \t", secs(3)),
            ("18446744073709551615", secs(u64::MAX)),
            (
                "99999999999999999999999999999999999999",
                Some(RETRY_AFTER_OUT_OF_RANGE),
            ),
            ("", None),
            ("   ", None),
            ("+5", None),
            ("-5", None),
            ("-0", None),
            ("1.5", None),
            (".5", None),
            ("5.", None),
            ("5s", None),
            ("5 5", None),
            ("1e3", None),
            ("0x10", None),
            ("١٢", None),
            ("１２", None),
            ("\n5", None),
        ];
        for &(input, want) in table {
            assert_eq!(parse_retry_after(input, now), want, "{input:?}");
        }
    }

    #[test]
    fn http_date_all_three_forms() {
        let table: &[&str] = &[
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
            "  Sun, 06 Nov 1994 08:49:37 GMT\t",
        ];
        for &input in table {
            let now = UnixTime::from_secs(RFC_DATE - 90);
            assert_eq!(parse_retry_after(input, now), secs(90), "{input:?}");
            // Sub-second `now` still gives the exact distance.
            let now = UnixTime::from_millis((RFC_DATE - 1) * 1000 + 250);
            assert_eq!(
                parse_retry_after(input, now),
                Some(Duration::from_millis(750)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn past_dates_are_zero() {
        let now = UnixTime::from_secs(RFC_DATE + 1);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        let now = UnixTime::from_secs(RFC_DATE);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn far_future_dates() {
        let now = UnixTime::EPOCH;
        // 9999-12-31T23:59:59Z is the last date httpdate accepts.
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            secs(253_402_300_799)
        );
        assert_eq!(
            parse_retry_after("Wednesday, 01-Jan-70 00:00:00 GMT", now),
            None, // 1970-01-01 was a Thursday
        );
        // RFC 850 two-digit years: 00-69 are 20xx.
        assert_eq!(
            parse_retry_after("Saturday, 01-Jan-00 00:00:00 GMT", now),
            secs(946_684_800)
        );
    }

    #[test]
    fn malformed_dates() {
        let now = UnixTime::EPOCH;
        let table: &[&str] = &[
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Mon, 06 Nov 1994 08:49:37 GMT", // wrong weekday
            "Sun, 31 Nov 1994 08:49:37 GMT", // no such day
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 08:49:60 GMT", // no leap seconds
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1969 08:49:37 GMT", // before the epoch: unsupported
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "2024-01-01T00:00:00Z",
            "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, ０6 Nov 1994 08:49:37 GMT",
            "Wed",
            "GMT",
            "Sunday, ",
        ];
        for &input in table {
            assert_eq!(parse_retry_after(input, now), None, "{input:?}");
        }
    }
}
