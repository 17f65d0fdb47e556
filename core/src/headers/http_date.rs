//! HTTP-dates (RFC 9110 §5.6.7), read and written without a date library: the three forms,
//! strictly, as the `httpdate` crate reads them (the tests hold this to its answers).
//!
//! ```text
//! IMF-fixdate  Sun, 06 Nov 1994 08:49:37 GMT
//! RFC 850      Sunday, 06-Nov-94 08:49:37 GMT
//! asctime      Sun Nov  6 08:49:37 1994
//! ```

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// 9999-12-31T23:59:59Z, the last second an HTTP-date's four-digit year can name.
pub(crate) const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// The seconds since the Unix epoch an HTTP-date names, or `None`.
///
/// ASCII only; whitespace around it is ignored. Names are case-sensitive, the weekday must be
/// the date's, the year 1970–9999 (RFC 850's two digits: `70`–`99` are 19xx, `00`–`69` 20xx),
/// no leap second.
pub(crate) fn parse_http_date(text: &str) -> Option<u64> {
    if !text.is_ascii() {
        return None;
    }
    let s = text.trim().as_bytes();
    let date = match s.len() {
        29 => imf_fixdate(s)?,
        24 => asctime(s)?,
        _ => rfc850(s)?,
    };
    date.seconds()
}

/// The IMF-fixdate form of `secs` since the epoch, clamped to the last one there is.
pub(crate) fn fmt_http_date(secs: u64) -> String {
    let secs = secs.min(LAST_HTTP_DATE);
    let days = secs / 86_400;
    let (year, month, day) = civil(days);
    let of_day = secs % 86_400;
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[weekday(days)],
        MONTHS[month as usize - 1],
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    )
}

/// A date as written: every field in range is checked by [`Date::seconds`].
struct Date {
    year: u64,
    /// 1–12.
    month: u64,
    day: u64,
    hour: u64,
    minute: u64,
    second: u64,
    /// 0 = Monday.
    weekday: usize,
}

impl Date {
    fn seconds(&self) -> Option<u64> {
        let valid = (1970..=9999).contains(&self.year)
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        if !valid {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        (weekday(days) == self.weekday)
            .then(|| days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second)
    }
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
fn imf_fixdate(s: &[u8]) -> Option<Date> {
    if &s[3..5] != b", " || s[7] != b' ' || s[11] != b' ' || s[16] != b' ' || &s[25..] != b" GMT" {
        return None;
    }
    Some(Date {
        weekday: name(&s[..3], &DAYS)?,
        day: digits(&s[5..7])?,
        month: name(&s[8..11], &MONTHS)? as u64 + 1,
        year: digits(&s[12..16])?,
        ..time(&s[17..25])?
    })
}

/// `Sunday, 06-Nov-94 08:49:37 GMT` (the byte between the year and the time is not looked at,
/// as `httpdate` does not).
fn rfc850(s: &[u8]) -> Option<Date> {
    let comma = s.iter().position(|&b| b == b',')?;
    let weekday = name(&s[..comma], &LONG_DAYS)?;
    let s = s[comma..].strip_prefix(b", ")?;
    if s.len() != 22 || s[2] != b'-' || s[6] != b'-' || &s[18..] != b" GMT" {
        return None;
    }
    let year = digits(&s[7..9])?;
    Some(Date {
        weekday,
        day: digits(&s[..2])?,
        month: name(&s[3..6], &MONTHS)? as u64 + 1,
        year: year + if year < 70 { 2000 } else { 1900 },
        ..time(&s[10..18])?
    })
}

/// `Sun Nov  6 08:49:37 1994` (a one-digit day after a space, or two digits).
fn asctime(s: &[u8]) -> Option<Date> {
    if s[3] != b' ' || s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
        return None;
    }
    let day = match s[8] {
        b' ' => digits(&s[9..10])?,
        _ => digits(&s[8..10])?,
    };
    Some(Date {
        weekday: name(&s[..3], &DAYS)?,
        month: name(&s[4..7], &MONTHS)? as u64 + 1,
        day,
        year: digits(&s[20..24])?,
        ..time(&s[11..19])?
    })
}

/// `08:49:37`, with the date's fields still to be set.
fn time(s: &[u8]) -> Option<Date> {
    let &[h, hh, b':', m, mm, b':', s, ss] = s else {
        return None;
    };
    Some(Date {
        year: 0,
        month: 0,
        day: 0,
        hour: digits(&[h, hh])?,
        minute: digits(&[m, mm])?,
        second: digits(&[s, ss])?,
        weekday: 0,
    })
}

fn name(s: &[u8], names: &[&str]) -> Option<usize> {
    names.iter().position(|n| n.as_bytes() == s)
}

/// ASCII digits only (no sign, no space).
fn digits(s: &[u8]) -> Option<u64> {
    s.iter().try_fold(0, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

fn is_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => 0,
    }
}

/// 0 = Monday; 1970-01-01 was a Thursday.
fn weekday(days: u64) -> usize {
    ((days + 3) % 7) as usize
}

/// Days since 1970-01-01 of a date from 1970 on (Howard Hinnant's `days_from_civil`, with the
/// year starting in March so that a leap day is the year's last).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (y / 400, y % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `days` after 1970-01-01: (year, month 1–12, day).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_three_forms() {
        for text in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun Nov 06 08:49:37 1994",
            " \tSun, 06 Nov 1994 08:49:37 GMT\r\n",
        ] {
            assert_eq!(parse_http_date(text), Some(784_111_777), "{text:?}");
        }
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(LAST_HTTP_DATE)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(parse_http_date("Sun, 29 Feb 1900 00:00:00 GMT"), None);
        assert_eq!(parse_http_date("Thu, 29 Feb 2001 00:00:00 GMT"), None);
        assert_eq!(
            parse_http_date("Tuesday, 01-Jan-69 00:00:00 GMT"),
            Some(3_124_224_000)
        );
    }

    #[test]
    fn written_as_imf_fixdate() {
        assert_eq!(fmt_http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt_http_date(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    /// Every answer `httpdate` gives, for dates spread over its whole range written in each form
    /// (and each form broken one byte at a time), for their formatting, and for junk.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_same_answers_as_httpdate() {
        use std::time::{Duration, UNIX_EPOCH};
        let theirs = |text: &str| {
            httpdate::parse_http_date(text)
                .ok()
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
        };
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for i in 0..20_000u64 {
            let secs = match i {
                0 => 0,
                1 => LAST_HTTP_DATE,
                _ => next() % (LAST_HTTP_DATE + 1),
            };
            let imf = fmt_http_date(secs);
            assert_eq!(
                imf,
                httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
            );
            let days = secs / 86_400;
            let (year, month, day) = civil(days);
            let clock = &imf[17..25];
            let (wd, mon) = (weekday(days), MONTHS[month as usize - 1]);
            let forms = [
                imf.clone(),
                format!(
                    "{}, {day:02}-{mon}-{:02} {clock} GMT",
                    LONG_DAYS[wd],
                    year % 100
                ),
                format!("{} {mon} {day:>2} {clock} {year}", DAYS[wd]),
                format!("{} {mon} {day:02} {clock} {year}", DAYS[wd]),
            ];
            for form in forms {
                assert_eq!(parse_http_date(&form), theirs(&form), "{form:?}");
                // One byte changed to one of the bytes the forms are made of.
                let mut bytes = form.into_bytes();
                let at = next() as usize % bytes.len();
                bytes[at] = b" ,-:0123456789ADFGJMNOSTWadehinortuy\t"[next() as usize % 37];
                let broken = String::from_utf8(bytes).unwrap();
                assert_eq!(parse_http_date(&broken), theirs(&broken), "{broken:?}");
            }
        }
        for junk in [
            "",
            " ",
            "Sun",
            "Sunday, ",
            "Sunday, 06-Nov-94 08:49:37 GMTX",
            "Wednesday, 06-Nov-94 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{a0}",
            "Sun, ０6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{b}",
            "Sun, 06 Nov 1994 08:49:37 GMT\u{1c}",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sun Nov  6 08:49:37 0000",
            "Mon, 31 Dec 1969 23:59:59 GMT",
        ] {
            assert_eq!(parse_http_date(junk), theirs(junk), "{junk:?}");
        }
    }
}
