//! Scripted replies: a test says in advance what each request to `/s/{id}` gets, then reads
//! back what the client sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::state::Shared;
use crate::util::{refuse_response, reset_response, truncated_response, ApiError, ApiResult};

const MAX_SCRIPTS: usize = 1000;
const MAX_REPLIES: usize = 10_000;
const MAX_LOG: usize = 10_000;

/// What `/s/{id}` answers, request after request.
///
/// The n-th request gets `replies[n]`; once they are used up every request gets `then`, or
/// the last reply again when `then` is absent.
///
/// ```
/// let script: resile_chaos::Script = serde_json::from_str(
///     r#"{"replies":[{"status":503,"headers":{"Retry-After":"1"}},{"status":200,"body":"ok"}]}"#,
/// ).unwrap();
/// assert_eq!(script.replies[0].status, 503);
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Replies in the order they are given out.
    pub replies: Vec<ScriptReply>,
    /// The reply once `replies` are used up.
    #[serde(default)]
    pub then: Option<ScriptReply>,
}

/// One scripted reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptReply {
    /// Status code, 200..=599 (default 200).
    #[serde(default = "default_status")]
    pub status: u16,
    /// Extra response headers. A value `{date+N}` becomes the HTTP-date N seconds after the
    /// reply is sent.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Wait this long before answering (capped by `max_stall`).
    #[serde(default)]
    pub delay_ms: u64,
    /// Misbehave instead of answering normally.
    #[serde(default)]
    pub fault: Option<ScriptFault>,
    /// The body: a string is sent as is (`text/plain`), any other JSON value as JSON.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

impl Default for ScriptReply {
    fn default() -> Self {
        ScriptReply {
            status: 200,
            headers: BTreeMap::new(),
            delay_ms: 0,
            fault: None,
            body: None,
        }
    }
}

fn default_status() -> u16 {
    200
}

/// How a scripted reply misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScriptFault {
    /// Close the connection without a response.
    Reset,
    /// HTTP/2: refuse the stream unprocessed (`RST_STREAM` with `REFUSED_STREAM`); over
    /// HTTP/1.1, close the connection as `reset` does.
    Refuse,
    /// Never answer (until `max_stall`, then close).
    Stall,
    /// Send half the body of a response whose `Content-Length` promises all of it.
    Truncate,
    /// Send a head no client reads: a 1 MiB header, over hyper's limit (about 400 KiB) and
    /// Chromium's (256 KiB).
    Unreadable,
}

/// What a script has seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptLog {
    /// Requests seen (even beyond the entries kept).
    pub count: u64,
    /// The first 10 000 requests.
    pub requests: Vec<ScriptLogEntry>,
}

/// One request as a script saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptLogEntry {
    /// 1 for the first request.
    pub n: u64,
    /// The request method, e.g. `POST`.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Idempotency-Key` header, if sent.
    pub idempotency_key: Option<String>,
    /// The `X-Request-ID` header, if sent.
    pub x_request_id: Option<String>,
    /// The scheme only, e.g. `Bearer …`; the credentials are never kept.
    pub authorization: Option<String>,
    /// Index of the reply given, or `None` when `then` answered.
    pub reply: Option<usize>,
}

fn validate(script: &Script) -> Result<(), ApiError> {
    if script.replies.is_empty() && script.then.is_none() {
        return Err(ApiError::bad_request(
            "a script needs at least one reply in `replies` or `then`",
        ));
    }
    if script.replies.len() > MAX_REPLIES {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_REPLIES} replies"
        )));
    }
    for reply in script.replies.iter().chain(script.then.iter()) {
        if !(200..=599).contains(&reply.status) {
            return Err(ApiError::bad_request(format!(
                "status {} is not in 200..=599",
                reply.status
            )));
        }
        for (name, value) in &reply.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err(ApiError::bad_request(format!(
                    "invalid header `{name}: {value}`"
                )));
            }
        }
    }
    Ok(())
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "script ids are 1 to 128 characters of A-Z a-z 0-9 - _ .",
        ))
    }
}

pub(crate) fn install(shared: &Shared, id: &str, script: Script) -> Result<(), ApiError> {
    valid_id(id)?;
    validate(&script)?;
    let mut state = shared.lock();
    if state.scripts.len() >= MAX_SCRIPTS && !state.scripts.contains_key(id) {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "too_many_scripts",
            format!("at most {MAX_SCRIPTS} scripts; DELETE some or POST /stats/reset"),
        ));
    }
    state
        .scripts
        .insert(id.to_owned(), (script, ScriptLog::default()));
    Ok(())
}

pub(crate) async fn put_script(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let script: Script = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the script is not valid: {e}")))?;
    let replies = script.replies.len();
    install(&shared, &id, script)?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "id": id, "replies": replies })),
    )
        .into_response())
}

pub(crate) async fn delete_script(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult {
    match shared.lock().scripts.remove(&id) {
        Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        None => Err(ApiError::not_found(format!("no script `{id}`"))),
    }
}

pub(crate) async fn get_log(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult {
    match shared.lock().scripts.get(&id) {
        Some((_, log)) => Ok(Json(log).into_response()),
        None => Err(ApiError::not_found(format!("no script `{id}`"))),
    }
}

pub(crate) async fn serve_root(
    state: State<Arc<Shared>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    serve(state, id, method, uri, headers).await
}

pub(crate) async fn serve_nested(
    state: State<Arc<Shared>>,
    Path((id, _rest)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    serve(state, id, method, uri, headers).await
}

fn header_string(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn redact(authorization: String) -> String {
    match authorization.split_once(' ') {
        Some((scheme, _)) => format!("{scheme} …"),
        None => "…".to_owned(),
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    id: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let reply = {
        let mut state = shared.lock();
        state.stats.scripted += 1;
        let Some((script, log)) = state.scripts.get_mut(&id) else {
            return Err(ApiError::not_found(format!(
                "no script `{id}`; POST /script/{id} first"
            )));
        };
        let seen = usize::try_from(log.count).unwrap_or(usize::MAX);
        let (reply, index) = match (script.replies.get(seen), &script.then) {
            (Some(r), _) => (r.clone(), Some(seen)),
            (None, Some(then)) => (then.clone(), None),
            (None, None) => {
                let last = script.replies.len().saturating_sub(1);
                (
                    script.replies.get(last).cloned().unwrap_or_default(),
                    Some(last),
                )
            }
        };
        log.count += 1;
        if log.requests.len() < MAX_LOG {
            log.requests.push(ScriptLogEntry {
                n: log.count,
                method: method.to_string(),
                path: uri
                    .path_and_query()
                    .map(|pq| pq.to_string())
                    .unwrap_or_default(),
                idempotency_key: header_string(&headers, "idempotency-key"),
                x_request_id: header_string(&headers, "x-request-id"),
                authorization: header_string(&headers, "authorization").map(redact),
                reply: index,
            });
        }
        reply
    };
    if reply.delay_ms > 0 {
        tokio::time::sleep(shared.capped(Duration::from_millis(reply.delay_ms))).await;
    }
    let (body, content_type) = match &reply.body {
        None => (Bytes::new(), "text/plain; charset=utf-8"),
        Some(serde_json::Value::String(s)) => (Bytes::from(s.clone()), "text/plain; charset=utf-8"),
        Some(value) => (Bytes::from(value.to_string()), "application/json"),
    };
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match reply.fault {
        Some(ScriptFault::Reset) => return Ok(reset_response()),
        Some(ScriptFault::Refuse) => return Ok(refuse_response()),
        Some(ScriptFault::Stall) => {
            shared.lock().stats.stalls += 1;
            tokio::time::sleep(shared.config.max_stall).await;
            return Ok(reset_response());
        }
        Some(ScriptFault::Truncate) => {
            shared.lock().stats.truncated += 1;
            let full = if body.is_empty() {
                Bytes::from(vec![b'x'; 100])
            } else {
                body
            };
            let sent = full.len() / 2;
            truncated_response(status, full, sent, content_type)
        }
        None | Some(ScriptFault::Unreadable) => {
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if reply.fault == Some(ScriptFault::Unreadable) {
                let pad = HeaderValue::from_maybe_shared(Bytes::from(vec![b'a'; 1 << 20]))
                    .expect("letters are a header value");
                resp.headers_mut().insert("x-unreadable", pad);
            }
            resp
        }
    };
    for (name, value) in &reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&expand_date(value, std::time::SystemTime::now())),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    Ok(resp)
}

/// A header value `{date+N}` (or `{date-N}`) becomes the HTTP-date N seconds after (before)
/// the moment the reply is sent, so a script can ask for a date-form `Retry-After` that is
/// always N seconds ahead, on any clock. Other values pass through unchanged. The same rule
/// as the core's simulator ([`resile_core::sim::expand_header`]), so scenarios replay alike.
pub fn expand_date(value: &str, now: std::time::SystemTime) -> String {
    let ms = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    resile_core::sim::expand_header(value, resile_core::UnixTime::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::expand_date;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn date_templates_expand_relative_to_now() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(
            expand_date("{date+0}", now),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            expand_date("{date+3}", now),
            "Sun, 06 Nov 1994 08:49:40 GMT"
        );
        assert_eq!(
            expand_date("{date-7}", now),
            "Sun, 06 Nov 1994 08:49:30 GMT"
        );
        for plain in ["5", "{date}", "{date+x}", "{date*3}", "{date+3", ""] {
            assert_eq!(expand_date(plain, now), plain);
        }
    }
}
