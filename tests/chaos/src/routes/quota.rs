//! `/quota`: one upstream quota shared by many clients, with a log of every request it saw, for
//! the fleet tests (how much a fleet of clients sends to one rate-limited host).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::routes::ratelimit::decide;
use crate::state::{Bucket, QuotaLog, Shared};
use crate::util::{ApiError, ApiResult, Params};

/// The most requests one key's log keeps; later ones are counted, not logged.
const MAX_LOG: usize = 200_000;

pub(crate) async fn quota(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let rate: f64 = p.num("rate", 10.0, "requests per second")?;
    if !(rate > 0.0 && rate <= 1e6) {
        return Err(ApiError::bad_request(
            "`rate` must be in (0, 1000000] requests per second",
        ));
    }
    let burst = p.bounded("burst", 10, 1, 1_000_000)?;
    let retry_after = p.bounded("retry_after", 1, 1, 3_600)?;
    let refuse_at = p.opt::<u64>("refuse_at", "a request number")?;
    let instance = p.bounded("instance", 0, 0, 1_000_000)? as u32;
    let key = p.get("key").unwrap_or("default").to_owned();
    if key.len() > 256 {
        return Err(ApiError::bad_request("`key` is at most 256 bytes"));
    }
    let now = Instant::now();
    let (allowed, retry_after) = {
        let mut state = shared.lock();
        if state.quotas.len() >= 10_000 && !state.quotas.contains_key(&key) {
            state.quotas.clear();
        }
        let log = state.quotas.entry(key.clone()).or_insert_with(|| QuotaLog {
            origin: now,
            bucket: Bucket {
                tokens: burst as f64,
                at: now,
            },
            seen: 0,
            entries: Vec::new(),
        });
        log.seen += 1;
        let decision = decide(&mut log.bucket, now, rate, burst as f64);
        let (allowed, wait) = match refuse_at {
            Some(n) if n == log.seen => (false, retry_after),
            _ if decision.allowed => (true, 0),
            _ => (false, decision.retry_after_secs),
        };
        let at_us = now.saturating_duration_since(log.origin).as_micros() as u64;
        if log.entries.len() < MAX_LOG {
            log.entries
                .push((at_us, if allowed { 200 } else { 429 }, instance));
        }
        if !allowed {
            state.stats.rate_limited += 1;
        }
        (allowed, wait)
    };
    if allowed {
        return Ok(Json(json!({ "key": key })).into_response());
    }
    let body = json!({
        "error": "rate_limited",
        "message": format!("over {rate}/s with burst {burst} for key `{key}`"),
    });
    let mut resp = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    Ok(resp)
}

/// `GET /quota/log?key=K`: `{"key","seen","entries":[[at_us, status, instance], ...]}`, times
/// in microseconds since the key's first request.
pub(crate) async fn log(State(shared): State<Arc<Shared>>, p: Params) -> Response {
    let key = p.get("key").unwrap_or("default");
    let state = shared.lock();
    match state.quotas.get(key) {
        Some(log) => {
            Json(json!({ "key": key, "seen": log.seen, "entries": log.entries })).into_response()
        }
        None => Json(json!({ "key": key, "seen": 0, "entries": [] })).into_response(),
    }
}
