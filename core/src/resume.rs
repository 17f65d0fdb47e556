//! Resuming a download whose body broke off part-way: what the next attempt asks for, and what
//! its answer means for the bytes already delivered.
//!
//! A [`Download`] is made from the head of the first full answer (a `200`) and told how many
//! bytes of the body have been delivered. When the body breaks, [`Download::plan`] says how the
//! next attempt asks (a [`Plan::Resume`] with `Range: bytes=N-` and `If-Range`, or a
//! [`Plan::Restart`] without them), and [`Download::judge`] says what that attempt's answer is:
//!
//! ```text
//!   206 + Content-Range: bytes N-…/total (same N, same total, same validator) ─▶ Continue
//!   200 (Range ignored, or If-Range failed: the resource changed)             ─▶ Restart { discard }
//!   416, or a 206 whose Content-Range does not start at N                     ─▶ Fail(ResumeError)
//!   anything else (503, 404, ...)                                             ─▶ NotTheBody: the engine decides
//! ```
//!
//! Only a validator that names one exact representation makes a resume safe: a strong ETag,
//! else `Last-Modified`. A weak ETag (`W/"…"`) cannot be used in `If-Range` (RFC 9110 §13.1.5),
//! and without a validator the bytes of two versions could be concatenated, so such a download
//! restarts from its first byte instead of resuming. A restart always tells the caller how many
//! delivered bytes to discard: no answer is ever appended to bytes of another version.
//!
//! ```
//! use resile_core::resume::{Download, Plan, Verdict};
//!
//! let first = [("etag", "\"v1\""), ("content-length", "1000")];
//! let mut d = Download::start(&first[..]);
//! d.delivered(400); // then the body broke
//! let Plan::Resume { range, if_range } = d.plan() else { panic!() };
//! assert_eq!((range.as_str(), if_range.as_str()), ("bytes=400-", "\"v1\""));
//! let answer = [("content-range", "bytes 400-999/1000"), ("etag", "\"v1\"")];
//! assert_eq!(d.judge(206, &answer[..]), Verdict::Continue);
//! ```

use crate::headers::Headers;

/// What identifies the representation the delivered bytes belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// A strong entity tag, quotes included (`"abc"`).
    ETag(String),
    /// The `Last-Modified` date, as the server wrote it.
    LastModified(String),
}

impl Validator {
    /// The strongest validator a response head carries: a strong ETag, else `Last-Modified`.
    pub fn of(headers: &(impl Headers + ?Sized)) -> Option<Validator> {
        let etag = headers.get("etag").map(str::trim);
        if let Some(tag) = etag.filter(|t| is_strong_etag(t)) {
            return Some(Validator::ETag(tag.to_string()));
        }
        headers
            .get("last-modified")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| Validator::LastModified(d.to_string()))
    }

    /// The value for `If-Range`.
    pub fn as_str(&self) -> &str {
        match self {
            Validator::ETag(t) | Validator::LastModified(t) => t,
        }
    }
}

fn is_strong_etag(tag: &str) -> bool {
    tag.len() >= 2 && tag.starts_with('"') && tag.ends_with('"')
}

/// How the next attempt of a broken download asks for the body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Plan {
    /// Send `Range` and `If-Range` with these values; judge the answer with [`Download::judge`].
    Resume {
        /// `bytes=N-`, N the bytes delivered.
        range: String,
        /// The validator of the delivered bytes.
        if_range: String,
    },
    /// Ask for the whole body again; what was delivered will be discarded.
    Restart {
        /// Why the download cannot continue where it broke.
        why: RestartWhy,
    },
}

/// Why a download starts again from its first byte.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RestartWhy {
    /// The first answer carried neither a strong ETag nor `Last-Modified`.
    NoValidator,
    /// The server said `Accept-Ranges: none`.
    RangesRefused,
    /// The server answered a range request with the whole body (it ignores `Range`).
    RangeIgnored,
    /// The resource changed since the delivered bytes (its validator differs).
    Changed,
    /// The body came with a `Content-Encoding` (gzip, br, ...) and was decoded on the way
    /// ([`Delivery::Decoded`]): the bytes delivered are decoded ones, while a `Range` counts
    /// the encoded representation's, so no offset of one names a byte of the other. (A
    /// browser cannot ask for `identity`.)
    Encoded,
}

impl RestartWhy {
    /// One sentence for logs.
    pub fn explain(self) -> &'static str {
        match self {
            RestartWhy::NoValidator => {
                "the first answer had no strong ETag or Last-Modified to resume against"
            }
            RestartWhy::RangesRefused => "the server refuses range requests (Accept-Ranges: none)",
            RestartWhy::RangeIgnored => "the server answered the range request with the whole body",
            RestartWhy::Changed => "the resource changed since the bytes already delivered",
            RestartWhy::Encoded => {
                "the body was sent with a Content-Encoding, so a byte offset into it cannot be resumed"
            }
        }
    }
}

/// A resumed answer that cannot be used: the download fails with this.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeError {
    /// 416: the server has no byte at the offset asked for.
    #[error("the server cannot serve bytes from offset {offset} (416; its length is {total:?})")]
    RangeNotSatisfiable {
        /// The offset asked for.
        offset: u64,
        /// The length the server gave in `Content-Range: bytes */N`, if any.
        total: Option<u64>,
    },
    /// A 206 whose `Content-Range` is missing, unparsable, or not the range asked for.
    #[error("the partial answer's Content-Range `{got}` does not continue at byte {offset} of {total:?}")]
    ContentRangeMismatch {
        /// The offset asked for.
        offset: u64,
        /// The length known from earlier answers.
        total: Option<u64>,
        /// The header as received (empty when missing).
        got: String,
    },
    /// The server sent the body again from its first byte, to a consumer that reads bytes
    /// in order (an adapter's plain chunk reader): the bytes delivered are void. A consumer
    /// that handles it discards them and reads on; the bytes that follow start the body.
    #[error("the server sent the body again from its first byte ({}): discard the {discard} byte(s) delivered", why.explain())]
    Restarted {
        /// Bytes delivered before, now void.
        discard: u64,
        /// Why the body started again.
        why: RestartWhy,
    },
    /// A 206 that names another representation (its ETag differs from the one resumed).
    #[error(
        "the partial answer's ETag `{got}` is not the `{expected}` of the bytes already delivered"
    )]
    ValidatorMismatch {
        /// The validator resumed against.
        expected: String,
        /// The validator of the partial answer.
        got: String,
    },
}

/// What the answer to a resumed (or restarted) attempt means.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Its body continues exactly where the delivered bytes end.
    Continue,
    /// Its body is the whole representation again: discard the `discard` bytes delivered; the
    /// download now counts from zero.
    Restart {
        /// Bytes delivered before, now void.
        discard: u64,
        /// Why.
        why: RestartWhy,
    },
    /// The download cannot go on.
    Fail(ResumeError),
    /// Not an answer about the body (an error status, a retryable one included): what it means
    /// is the engine's decision, as for any attempt.
    NotTheBody,
}

/// What the delivered bytes are: the representation as sent, or a decoding of it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The bytes as the server sent them (`Content-Encoding` included, if any): their offsets
    /// are the ones a `Range` counts. A driver that asks for `identity` and never decodes.
    AsSent,
    /// A body with a `Content-Encoding` is decoded before it is delivered (a browser's fetch):
    /// such a body cannot be resumed, only restarted.
    Decoded,
}

/// The state of one download: what the delivered bytes belong to and how many there are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    validator: Option<Validator>,
    ranges: Ranges,
    total: Option<u64>,
    delivered: u64,
    delivery: Delivery,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Ranges {
    Unknown,
    Refused,
    Encoded,
}

impl Download {
    /// The download, from the head of its first full answer.
    pub fn start(headers: &(impl Headers + ?Sized)) -> Download {
        Download::delivered_as(Delivery::AsSent, headers)
    }

    /// Like [`Download::start`], for a driver whose bytes are delivered as `delivery` says.
    pub fn delivered_as(delivery: Delivery, headers: &(impl Headers + ?Sized)) -> Download {
        let mut d = Download {
            validator: None,
            ranges: Ranges::Unknown,
            total: None,
            delivered: 0,
            delivery,
        };
        d.restart_from(headers);
        d
    }

    fn restart_from(&mut self, headers: &(impl Headers + ?Sized)) {
        self.validator = Validator::of(headers);
        let encoded = self.delivery == Delivery::Decoded
            && headers.get("content-encoding").is_some_and(|v| {
                !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity")
            });
        self.ranges = match headers.get("accept-ranges") {
            _ if encoded => Ranges::Encoded,
            Some(v) if v.trim().eq_ignore_ascii_case("none") => Ranges::Refused,
            _ => Ranges::Unknown,
        };
        self.total = headers
            .get("content-length")
            .and_then(|v| v.trim().parse().ok());
        self.delivered = 0;
    }

    /// `n` more bytes were handed to the caller.
    pub fn delivered(&mut self, n: u64) {
        self.delivered = self.delivered.saturating_add(n);
    }

    /// Bytes handed to the caller so far (of the current representation).
    pub fn offset(&self) -> u64 {
        self.delivered
    }

    /// The representation's length, when known.
    pub fn total(&self) -> Option<u64> {
        self.total
    }

    /// The validator resumes are made against.
    pub fn validator(&self) -> Option<&Validator> {
        self.validator.as_ref()
    }

    /// How the next attempt asks for the body, after a break.
    pub fn plan(&self) -> Plan {
        match (&self.validator, self.ranges) {
            (_, Ranges::Refused) => Plan::Restart {
                why: RestartWhy::RangesRefused,
            },
            (_, Ranges::Encoded) => Plan::Restart {
                why: RestartWhy::Encoded,
            },
            (None, _) => Plan::Restart {
                why: RestartWhy::NoValidator,
            },
            (Some(v), Ranges::Unknown) => Plan::Resume {
                range: format!("bytes={}-", self.delivered),
                if_range: v.as_str().to_string(),
            },
        }
    }

    /// What the answer (`status`, `headers`) to the attempt made after [`Download::plan`]
    /// means. A `Continue` or `Restart` updates the state to match the new body.
    pub fn judge(&mut self, status: u16, headers: &(impl Headers + ?Sized)) -> Verdict {
        let plan = self.plan();
        match (status, plan) {
            (206, Plan::Resume { .. }) => match self.check_partial(headers) {
                Ok(total) => {
                    self.total = self.total.or(total);
                    Verdict::Continue
                }
                Err(e) => Verdict::Fail(e),
            },
            (200, plan) => {
                let why = match plan {
                    Plan::Restart { why } => why,
                    Plan::Resume { .. } if Validator::of(headers) != self.validator => {
                        RestartWhy::Changed
                    }
                    Plan::Resume { .. } => RestartWhy::RangeIgnored,
                };
                let discard = self.delivered;
                self.restart_from(headers);
                Verdict::Restart { discard, why }
            }
            (416, Plan::Resume { .. }) => Verdict::Fail(ResumeError::RangeNotSatisfiable {
                offset: self.delivered,
                total: headers
                    .get("content-range")
                    .and_then(|v| v.trim().strip_prefix("bytes */"))
                    .and_then(|n| n.parse().ok()),
            }),
            // A 206 to a request without Range is a range the client did not ask for.
            (206, Plan::Restart { .. }) => Verdict::Fail(self.mismatch(headers)),
            _ => Verdict::NotTheBody,
        }
    }

    fn mismatch(&self, headers: &(impl Headers + ?Sized)) -> ResumeError {
        ResumeError::ContentRangeMismatch {
            offset: self.delivered,
            total: self.total,
            got: headers.get("content-range").unwrap_or("").to_string(),
        }
    }

    /// A 206 continues the delivered bytes: its range starts at the offset, its length is the
    /// one known, its ETag (if any) the one resumed. Its total, when it gives one.
    fn check_partial(&self, headers: &(impl Headers + ?Sized)) -> Result<Option<u64>, ResumeError> {
        if let (Some(Validator::ETag(expected)), Some(got)) =
            (&self.validator, headers.get("etag").map(str::trim))
        {
            if got != expected {
                return Err(ResumeError::ValidatorMismatch {
                    expected: expected.clone(),
                    got: got.to_string(),
                });
            }
        }
        let range = headers.get("content-range").and_then(ContentRange::parse);
        match range {
            Some(r)
                if r.first == self.delivered
                    && r.total.is_none_or(|t| r.last < t)
                    && (self.total.is_none() || r.total.is_none() || r.total == self.total) =>
            {
                Ok(r.total)
            }
            _ => Err(self.mismatch(headers)),
        }
    }
}

/// `Content-Range: bytes first-last/total` (total `*` when unknown).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct ContentRange {
    first: u64,
    last: u64,
    total: Option<u64>,
}

impl ContentRange {
    fn parse(text: &str) -> Option<ContentRange> {
        let rest = text.trim().strip_prefix("bytes ")?;
        let (span, total) = rest.split_once('/')?;
        let (first, last) = span.split_once('-')?;
        let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
        let total = match total.trim() {
            "*" => None,
            n => Some(n.parse().ok()?),
        };
        (first <= last).then_some(ContentRange { first, last, total })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A response head, as a table row writes it.
    type Head<'a> = &'a [(&'a str, &'a str)];

    fn downloaded(first: Head<'_>, delivered: u64) -> Download {
        let mut d = Download::start(first);
        d.delivered(delivered);
        d
    }

    #[test]
    fn the_validator_is_a_strong_etag_else_last_modified() {
        let lm = "Tue, 01 Dec 2026 10:00:00 GMT";
        let table: [(Head<'_>, Option<Validator>); 5] = [
            (&[("etag", "\"a\"")], Some(Validator::ETag("\"a\"".into()))),
            (
                &[("etag", "\"a\""), ("last-modified", lm)],
                Some(Validator::ETag("\"a\"".into())),
            ),
            (
                &[("etag", "W/\"a\""), ("last-modified", lm)],
                Some(Validator::LastModified(lm.into())),
            ),
            (&[("etag", "W/\"a\"")], None),
            (&[], None),
        ];
        for (headers, want) in table {
            assert_eq!(Validator::of(&headers), want, "{headers:?}");
        }
    }

    #[test]
    fn a_break_resumes_from_the_last_byte_delivered() {
        let d = downloaded(&[("etag", "\"v1\""), ("content-length", "100")], 37);
        assert_eq!(
            d.plan(),
            Plan::Resume {
                range: "bytes=37-".into(),
                if_range: "\"v1\"".into()
            }
        );
        let lm = "Tue, 01 Dec 2026 10:00:00 GMT";
        let d = downloaded(&[("last-modified", lm)], 5);
        assert_eq!(
            d.plan(),
            Plan::Resume {
                range: "bytes=5-".into(),
                if_range: lm.into()
            }
        );
    }

    #[test]
    fn a_decoded_body_restarts_instead_of_resuming_at_a_decoded_offset() {
        let decoded = |head: Head<'_>| {
            let mut d = Download::delivered_as(Delivery::Decoded, head);
            d.delivered(50);
            d
        };
        for encoding in ["gzip", " br ", "GZIP, identity"] {
            let head: Head<'_> = &[("etag", "\"v1\""), ("content-encoding", encoding)];
            let d = decoded(head);
            assert_eq!(
                d.plan(),
                Plan::Restart {
                    why: RestartWhy::Encoded
                },
                "{encoding}"
            );
            // Bytes delivered as sent resume in the encoded representation's offsets.
            let as_sent = downloaded(head, 50);
            assert!(matches!(as_sent.plan(), Plan::Resume { .. }), "{encoding}");
        }
        for plain in ["identity", "", " Identity "] {
            let d = decoded(&[("etag", "\"v1\""), ("content-encoding", plain)]);
            assert!(matches!(d.plan(), Plan::Resume { .. }), "{plain:?}");
        }
    }

    #[test]
    fn without_a_validator_or_with_ranges_refused_it_restarts() {
        let d = downloaded(&[("etag", "W/\"x\""), ("content-length", "100")], 50);
        assert_eq!(
            d.plan(),
            Plan::Restart {
                why: RestartWhy::NoValidator
            }
        );
        let d = downloaded(&[("etag", "\"x\""), ("accept-ranges", "none")], 50);
        assert_eq!(
            d.plan(),
            Plan::Restart {
                why: RestartWhy::RangesRefused
            }
        );
    }

    #[test]
    fn answers_to_a_resume_continue_restart_or_fail() {
        let first = [("etag", "\"v1\""), ("content-length", "100")];
        let table: [(u16, Head<'_>, Verdict); 11] = [
            (
                206,
                &[("content-range", "bytes 40-99/100")],
                Verdict::Continue,
            ),
            (
                206,
                &[("content-range", "bytes 40-99/100"), ("etag", "\"v1\"")],
                Verdict::Continue,
            ),
            (
                206,
                &[("content-range", "bytes 40-99/*")],
                Verdict::Continue,
            ),
            (
                200,
                &[("etag", "\"v1\""), ("content-length", "100")],
                Verdict::Restart {
                    discard: 40,
                    why: RestartWhy::RangeIgnored,
                },
            ),
            (
                200,
                &[("etag", "\"v2\""), ("content-length", "120")],
                Verdict::Restart {
                    discard: 40,
                    why: RestartWhy::Changed,
                },
            ),
            (
                416,
                &[("content-range", "bytes */30")],
                Verdict::Fail(ResumeError::RangeNotSatisfiable {
                    offset: 40,
                    total: Some(30),
                }),
            ),
            (
                206,
                &[("content-range", "bytes 0-99/100")],
                Verdict::Fail(ResumeError::ContentRangeMismatch {
                    offset: 40,
                    total: Some(100),
                    got: "bytes 0-99/100".into(),
                }),
            ),
            (
                206,
                &[("content-range", "bytes 40-119/120")],
                Verdict::Fail(ResumeError::ContentRangeMismatch {
                    offset: 40,
                    total: Some(100),
                    got: "bytes 40-119/120".into(),
                }),
            ),
            (
                206,
                &[],
                Verdict::Fail(ResumeError::ContentRangeMismatch {
                    offset: 40,
                    total: Some(100),
                    got: String::new(),
                }),
            ),
            (
                206,
                &[("content-range", "bytes 40-99/100"), ("etag", "\"v2\"")],
                Verdict::Fail(ResumeError::ValidatorMismatch {
                    expected: "\"v1\"".into(),
                    got: "\"v2\"".into(),
                }),
            ),
            (503, &[("retry-after", "1")], Verdict::NotTheBody),
        ];
        for (status, headers, want) in table {
            let mut d = downloaded(&first, 40);
            assert_eq!(d.judge(status, &headers), want, "{status} {headers:?}");
        }
    }

    #[test]
    fn a_restart_counts_the_new_body_from_zero() {
        let mut d = downloaded(&[("etag", "\"v1\""), ("content-length", "100")], 40);
        let new = [("etag", "\"v2\""), ("content-length", "120")];
        assert!(matches!(d.judge(200, &new[..]), Verdict::Restart { .. }));
        assert_eq!(
            (d.offset(), d.total(), d.validator()),
            (0, Some(120), Some(&Validator::ETag("\"v2\"".into())))
        );
        d.delivered(10);
        assert_eq!(
            d.plan(),
            Plan::Resume {
                range: "bytes=10-".into(),
                if_range: "\"v2\"".into()
            }
        );
    }

    #[test]
    fn a_restart_without_range_accepts_only_the_whole_body() {
        let mut d = downloaded(&[("content-length", "100")], 40);
        let partial = [("content-range", "bytes 40-99/100")];
        assert!(matches!(
            d.judge(206, &partial[..]),
            Verdict::Fail(ResumeError::ContentRangeMismatch { .. })
        ));
        let whole = [("content-length", "100")];
        assert_eq!(
            d.judge(200, &whole[..]),
            Verdict::Restart {
                discard: 40,
                why: RestartWhy::NoValidator
            }
        );
    }

    #[test]
    fn content_ranges_parse_totally() {
        let table = [
            ("bytes 0-9/10", Some((0, 9, Some(10)))),
            ("bytes 5-9/*", Some((5, 9, None))),
            ("bytes 9-5/10", None),
            ("bytes */10", None),
            ("items 0-9/10", None),
            ("bytes -1-9/10", None),
            ("", None),
        ];
        for (text, want) in table {
            let got = ContentRange::parse(text).map(|r| (r.first, r.last, r.total));
            assert_eq!(got, want, "{text}");
        }
        // A range that ends past its own total is not a continuation.
        let mut d = downloaded(&[("etag", "\"v\"")], 5);
        let bad = [("content-range", "bytes 5-10/10")];
        assert!(matches!(d.judge(206, &bad[..]), Verdict::Fail(_)));
    }
}
