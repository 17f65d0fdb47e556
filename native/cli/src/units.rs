//! Parsers for the command line's values: durations (`500ms`, `5s`, `2m`), rates (`10/s`),
//! header lines (`Name: value`), and the `--paginate` style.

use std::time::Duration;

use resile_core::paginate::PageStyle;

/// `500ms`, `5s`, `1.5s`, `2m`, `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 5s, 2m)"))?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ))
        }
    };
    let secs = value * scale;
    if !(0.0..=86_400.0 * 24.0).contains(&secs) {
        return Err(format!("`{text}` is out of range (0 to 24 days)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A size in bytes: `65536`, `64k`, `10M`, `1G` (1024-based, as curl's `--max-filesize`);
/// from 1 byte to 2^50.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let shift = match unit {
        "" | "b" | "B" => 0,
        "k" | "K" | "KiB" => 10,
        "m" | "M" | "MiB" => 20,
        "g" | "G" | "GiB" => 30,
        "t" | "T" | "TiB" => 40,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use k, M, G or T)"
            ))
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (try 65536, 64k, 10M, 1G)"))?;
    match n.checked_mul(1 << shift) {
        Some(bytes) if (1..=1 << 50).contains(&bytes) => Ok(bytes),
        _ => Err(format!("`{text}` is out of range (1 byte to 1024T)")),
    }
}

/// `10/s`, `600/m`, `3600/h`, or a bare number per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, per) = match t.split_once('/') {
        Some((n, p)) => (n, p.trim()),
        None => (t, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a rate (try 10/s or 600/m)"))?;
    let secs = match per {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        _ => return Err(format!("`{text}`: unknown period `{per}` (use s, m or h)")),
    };
    let rate = n / secs;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("`{text}` must be a positive rate"));
    }
    Ok(rate)
}

/// `--backoff`: the first delay, and the cap when given.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The longest delay.
    pub cap: Option<Duration>,
}

/// `--backoff`: `200ms..10s` (the first delay and the cap), or `200ms` (the first delay).
pub fn parse_backoff(text: &str) -> Result<Backoff, String> {
    let (base, cap) = match text.split_once("..") {
        Some((b, c)) => (b, Some(c)),
        None => (text, None),
    };
    let base = parse_duration(base)?;
    if base.is_zero() {
        return Err(format!("`{text}`: the first delay must be positive"));
    }
    let cap = cap.map(parse_duration).transpose()?;
    if cap.is_some_and(|c| c < base) {
        return Err(format!("`{text}`: the cap is below the first delay"));
    }
    Ok(Backoff { base, cap })
}

/// One status of `--retry-on 409,425`: a code in 100..=599.
pub fn parse_status(text: &str) -> Result<u16, String> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| format!("`{text}` is not a status code in 100..=599"))
}

/// `Name: value`.
pub fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not a header (use `Name: value`)"))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(format!("`{name}` is not a valid header name"));
    }
    let value = value.trim();
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(format!("the value of `{name}` has control characters"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// `link`, `cursor:/json/pointer[:param]`, `offset`, `page`; page size applies to the last two.
pub fn parse_paginate(text: &str, page_size: u64) -> Result<PageStyle, String> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("link"), None, None) => Ok(PageStyle::Link),
        (Some("offset"), None, None) => Ok(PageStyle::offset(page_size)),
        (Some("page"), None, None) => Ok(PageStyle::page(page_size)),
        (Some("cursor"), Some(pointer), param) if pointer.starts_with('/') => {
            Ok(PageStyle::cursor(pointer, param.unwrap_or("cursor")))
        }
        (Some("cursor"), _, _) => {
            Err("cursor pagination needs a JSON pointer: cursor:/next_cursor[:param]".into())
        }
        _ => Err(format!(
            "`{text}` is not a pagination style (link, cursor:/pointer, offset, page)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, bytes) in [
            ("1", 1),
            ("65536", 65536),
            ("64k", 64 << 10),
            ("10M", 10 << 20),
            ("1G", 1 << 30),
            ("2GiB", 2 << 30),
            ("1024T", 1 << 50),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in [
            "",
            "0",
            "0k",
            "-1",
            "1.5M",
            "10X",
            "1025T",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        for bad in ["", "x", "5 parsecs", "-1s", "1e99s", "NaN"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("10/s"), Ok(10.0));
        assert_eq!(parse_rate("600/m"), Ok(10.0));
        assert_eq!(parse_rate("4"), Ok(4.0));
        for bad in ["0/s", "-3/s", "x/s", "10/fortnight"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_ranges_and_status_lists() {
        assert_eq!(
            parse_backoff("200ms..10s"),
            Ok(Backoff {
                base: Duration::from_millis(200),
                cap: Some(Duration::from_secs(10))
            })
        );
        assert_eq!(
            parse_backoff("1s"),
            Ok(Backoff {
                base: Duration::from_secs(1),
                cap: None
            })
        );
        for bad in ["0ms..1s", "2s..1s", "..", "fast", "1s..x"] {
            assert!(parse_backoff(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_status(" 409"), Ok(409));
        for bad in ["", "99", "600", "x"] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_and_pagination() {
        assert_eq!(parse_header("X-A: b: c"), Ok(("X-A".into(), "b: c".into())));
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: x").is_err());
        assert!(parse_header("X-Bad: a\u{1}b").is_err());
        assert_eq!(parse_paginate("link", 50), Ok(PageStyle::Link));
        assert_eq!(
            parse_paginate("cursor:/next", 50),
            Ok(PageStyle::cursor("/next", "cursor"))
        );
        assert_eq!(
            parse_paginate("cursor:/meta/next:after", 50),
            Ok(PageStyle::cursor("/meta/next", "after"))
        );
        assert_eq!(parse_paginate("page", 25), Ok(PageStyle::page(25)));
        assert!(parse_paginate("cursor", 1).is_err());
        assert!(parse_paginate("pages", 1).is_err());
    }
}
