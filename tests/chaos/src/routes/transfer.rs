//! Transfers that break and must be taken up again: a download that breaks part-way and can be
//! resumed with `Range` / `If-Range` (`/download/{n}`), and an upload that fails after reading
//! the whole body, so a retry must send the body again (`/upload-retry`). What each saw is kept
//! per `key` ([`TransferLog`], `GET /transfers/{key}`).
//!
//! `GET /download/{n}?key=K&seed=S&break_at=F&breaks=B&validator=V&ranges=R&change_after=C`
//! serves [`download_bytes`] of `n` bytes (a new version, other bytes and validators, once `C`
//! answers were served for `K`). Each of the first `B` answers (default 1) for `K` breaks the
//! connection once the byte at `F · n` (default 0.5) is reached. `V` is the validator sent:
//! `etag` (a strong ETag and Last-Modified, default), `weak` (a weak ETag only),
//! `last-modified`, or `none`. `R` is `honor` (default: a single `bytes=N-` or `bytes=N-M`
//! range is served as 206 when `If-Range`, if any, matches; 416 past the end) or `ignore`
//! (every answer is the whole body as 200, like a server without range support).
//! `bad_range=416` answers every range request 416; `bad_range=start` answers it 206 from
//! byte 0 whatever was asked (a partial answer that is not the range asked for).
//! `stall_ms=M` makes each break a stall: the bytes before it sent, the connection stays
//! open and silent for `M` ms (capped by `max_stall`), then breaks.
//!
//! `PUT|POST /upload-retry?key=K&fail=N&status=S` reads the whole body, logs its length and
//! SHA-256, and answers `S` (default 503) to the first `N` (default 1) requests for `K`,
//! then 200 with `{"len", "sha256", "attempt"}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http_body::Frame;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::routes::body::{download_bytes, download_len, gzip, sha256_hex};
use crate::state::{ChaosHandle, Shared};
use crate::util::{status_param, ApiError, ApiResult, Params};

/// Keys remembered at once; past this the log starts again.
const MAX_KEYS: usize = 10_000;
/// The `Last-Modified` of version 0 (version `v` is `v` days later).
const EPOCH_SECS: u64 = 1_780_000_000;

/// What one `key` of `/download/{n}` or `/upload-retry` has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransferLog {
    /// Requests answered.
    pub requests: u64,
    /// Body bytes written to the wire by downloads (bytes of broken answers included).
    pub bytes_sent: u64,
    /// Per download request: the `Range` asked for (`None`: none) and the status answered.
    pub downloads: Vec<(Option<String>, u16)>,
    /// Per upload request: the length and SHA-256 of the body received.
    pub uploads: Vec<(u64, String)>,
    /// Per download request: its `X-Request-ID` (`None`: none).
    pub request_ids: Vec<Option<String>>,
}

impl ChaosHandle {
    /// What `/download/{n}` or `/upload-retry` saw for `key`.
    pub fn transfer_log(&self, key: &str) -> Option<TransferLog> {
        self.shared.lock().transfers.get(key).cloned()
    }
}

fn log_for<'a>(state: &'a mut crate::state::State, key: &str) -> &'a mut TransferLog {
    if state.transfers.len() >= MAX_KEYS && !state.transfers.contains_key(key) {
        state.transfers.clear();
    }
    state.transfers.entry(key.to_string()).or_default()
}

fn key_of(p: &Params) -> Result<String, ApiError> {
    let key = p.get("key").unwrap_or("default");
    if key.len() > 256 {
        return Err(ApiError::bad_request("`key` is at most 256 bytes"));
    }
    Ok(key.to_string())
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum ValidatorKind {
    ETag,
    Weak,
    LastModified,
    None,
}

/// Frames of a breaking body: small enough that the server writes each out before the next.
const FRAME: usize = 64 << 10;
/// How long a breaking body waits, all its bytes written, before it breaks: long enough for
/// them (and the head) to reach a client on a busy machine, so the break falls where it was
/// asked to and not before the head.
const BREAK_PAUSE: Duration = Duration::from_millis(300);

/// A body that sends `rest` in frames, then fails after its pause ([`BREAK_PAUSE`], or the
/// `stall_ms` asked for), short of the `Content-Length` announced, so the client sees a
/// truncated body.
struct Breaking {
    rest: Bytes,
    pause: Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for Breaking {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if !this.rest.is_empty() {
            let frame = this.rest.split_to(this.rest.len().min(FRAME));
            return Poll::Ready(Some(Ok(Frame::data(frame))));
        }
        ready!(this.pause.as_mut().poll(cx));
        Poll::Ready(Some(Err("download broken by resile-chaos".into())))
    }
}

/// A fault in the answer to a range request.
#[derive(Copy, Clone)]
enum BadRange {
    Unsatisfiable,
    FromStart,
}

/// A single byte range of a body of `len` bytes: `bytes=first-` or `bytes=first-last`.
fn parse_range(text: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = text.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        // Several ranges: served whole, as a server may.
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let first: u64 = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => len.saturating_sub(1),
        l => l.parse::<u64>().ok()?.min(len.saturating_sub(1)),
    };
    if first >= len || first > last {
        return Some(Err(()));
    }
    Some(Ok((first, last)))
}

/// `GET /download/{n}`: see the module docs.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    Path(n): Path<String>,
    headers: HeaderMap,
    p: Params,
) -> ApiResult {
    let len = download_len(&n)?;
    let key = key_of(&p)?;
    let seed: u64 = p.num("seed", shared.config.seed, "an unsigned integer")?;
    let break_at = match p.get("break_at") {
        Some(_) => p.fraction("break_at")?,
        None => 0.5,
    };
    let breaks = p.bounded("breaks", 1, 0, 1_000)?;
    // A break that stalls first: the connection stays open, silent, this long (capped).
    let pause = match p.opt::<u64>("stall_ms", "milliseconds")? {
        Some(ms) => shared.capped(Duration::from_millis(ms)),
        None => BREAK_PAUSE,
    };
    let change_after = p.opt::<u64>("change_after", "an unsigned integer")?;
    let validator = match p.get("validator").unwrap_or("etag") {
        "etag" => ValidatorKind::ETag,
        "weak" => ValidatorKind::Weak,
        "last-modified" => ValidatorKind::LastModified,
        "none" => ValidatorKind::None,
        other => {
            return Err(ApiError::bad_request(format!(
                "`validator` is etag, weak, last-modified or none, got `{other}`"
            )))
        }
    };
    let honor = match p.get("ranges").unwrap_or("honor") {
        "honor" => true,
        "ignore" => false,
        other => {
            return Err(ApiError::bad_request(format!(
                "`ranges` is honor or ignore, got `{other}`"
            )))
        }
    };
    let bad_range = match p.get("bad_range") {
        None => None,
        Some("416") => Some(BadRange::Unsatisfiable),
        Some("start") => Some(BadRange::FromStart),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`bad_range` is 416 or start, got `{other}`"
            )))
        }
    };
    let asked = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let if_range = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);

    let served = shared.lock().transfers.get(&key).map_or(0, |l| l.requests);
    let version = match change_after {
        Some(c) if served >= c => 1,
        _ => 0,
    };
    let body = Bytes::from(download_bytes(seed.wrapping_add(version), len));
    // `gzip`: the representation is the gzip of the bytes, sent with `Content-Encoding: gzip`
    // whatever `Accept-Encoding` says; ranges, breaks and lengths count its encoded bytes.
    let gzipped = p.flag("gzip");
    let body = if gzipped { gzip(&body) } else { body };
    let len = body.len() as u64;
    let etag = format!("\"d{seed}-{len}-v{version}\"");
    let modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(EPOCH_SECS + version * 86_400),
    );
    let (etag_header, modified_header) = match validator {
        ValidatorKind::ETag => (Some(etag.clone()), Some(modified.clone())),
        ValidatorKind::Weak => (Some(format!("W/{etag}")), None),
        ValidatorKind::LastModified => (None, Some(modified.clone())),
        ValidatorKind::None => (None, None),
    };
    // If-Range holds only on an exact strong ETag or the exact Last-Modified date.
    let if_range_holds = match if_range.as_deref() {
        None => true,
        Some(v) => {
            (validator == ValidatorKind::ETag && v == etag)
                || (matches!(validator, ValidatorKind::ETag | ValidatorKind::LastModified)
                    && v == modified)
        }
    };
    let range = match (&asked, honor && if_range_holds) {
        (Some(text), true) => match (parse_range(text, len), bad_range) {
            (Some(_), Some(BadRange::Unsatisfiable)) => Some(Err(())),
            (Some(_), Some(BadRange::FromStart)) => Some(Ok((0, len.saturating_sub(1)))),
            (parsed, _) => parsed,
        },
        _ => None,
    };
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Ok((first, last))) => (StatusCode::PARTIAL_CONTENT, first, last + 1),
        Some(Err(())) => {
            let mut state = shared.lock();
            let log = log_for(&mut state, &key);
            log.requests += 1;
            log.downloads.push((asked, 416));
            log.request_ids.push(request_id);
            let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
    };
    // The break falls at an absolute offset of the body, so a resumed answer that starts
    // past it does not break again.
    let cut = ((len as f64) * break_at).floor() as u64;
    let breaking = served < breaks && cut >= start && cut < end;
    let sent = if breaking { cut - start } else { end - start };
    {
        let mut state = shared.lock();
        if breaking {
            state.stats.truncated += 1;
        }
        let log = log_for(&mut state, &key);
        log.requests += 1;
        log.bytes_sent += sent;
        log.downloads.push((asked, status.as_u16()));
        log.request_ids.push(request_id);
    }
    let slice = body.slice(start as usize..end as usize);
    let mut resp = if breaking {
        Response::new(Body::new(Breaking {
            rest: slice.slice(..sent as usize),
            pause: Box::pin(tokio::time::sleep(pause)),
        }))
    } else {
        Response::new(Body::from(slice))
    };
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if honor {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    for (name, value) in [
        (header::ETAG, etag_header),
        (header::LAST_MODIFIED, modified_header),
    ] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&sha256_hex(&body)) {
        h.insert("x-content-sha256", v);
    }
    Ok(resp)
}

/// `PUT|POST /upload-retry`: see the module docs.
pub(crate) async fn upload_retry(
    State(shared): State<Arc<Shared>>,
    p: Params,
    body: Bytes,
) -> ApiResult {
    let key = key_of(&p)?;
    let fail = p.bounded("fail", 1, 0, 1_000)?;
    let status = status_param(&p, "status", 503)?;
    let sha = sha256_hex(&body);
    let attempt = {
        let mut state = shared.lock();
        let log = log_for(&mut state, &key);
        log.requests += 1;
        log.uploads.push((body.len() as u64, sha.clone()));
        log.requests
    };
    if attempt <= fail {
        return Err(ApiError::new(
            status,
            "upload_failed",
            format!(
                "failed on purpose after reading {} byte(s) (attempt {attempt} of {fail} to fail)",
                body.len()
            ),
        ));
    }
    Ok(Json(json!({ "len": body.len(), "sha256": sha, "attempt": attempt })).into_response())
}

/// `GET /transfers/{key}`: the [`TransferLog`] of `key` (404 when nothing was seen).
pub(crate) async fn log(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> ApiResult {
    match shared.lock().transfers.get(&key) {
        Some(log) => Ok(Json(log.clone()).into_response()),
        None => Err(ApiError::not_found(format!("no transfer `{key}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_within_the_body() {
        let table = [
            ("bytes=0-", Some(Ok((0, 99)))),
            ("bytes=50-", Some(Ok((50, 99)))),
            ("bytes=10-19", Some(Ok((10, 19)))),
            ("bytes=10-500", Some(Ok((10, 99)))),
            ("bytes=100-", Some(Err(()))),
            ("bytes=20-10", Some(Err(()))),
            ("bytes=0-1,5-6", None),
            ("items=0-", None),
            ("bytes=x-", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_range(text, 100), want, "{text}");
        }
    }
}
