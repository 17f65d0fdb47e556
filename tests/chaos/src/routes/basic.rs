//! Single-request faults: statuses, flakiness, slowness, stalls, resets, truncation.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::Shared;
use crate::util::{
    reset_response, retry_after_from, status_param, truncated_response, ApiError, ApiResult, Params,
};

/// Upper bound of `/truncate?len=`.
const MAX_TRUNCATE_LEN: u64 = 1 << 20;

fn json_with_status(status: StatusCode, value: serde_json::Value) -> Response {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        status.into_response()
    } else {
        (status, Json(value)).into_response()
    }
}

pub(crate) async fn status(Path(code): Path<String>, p: Params) -> ApiResult {
    let code: u16 = code.parse().map_err(|_| {
        ApiError::bad_request(format!("`{code}` is not a status code; use 200..=599"))
    })?;
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(|_| (200..=599).contains(&code))
        .ok_or_else(|| ApiError::bad_request(format!("status {code} is not in 200..=599")))?;
    let mut resp = json_with_status(status, json!({ "status": code }));
    retry_after_from(&p, resp.headers_mut())?;
    Ok(resp)
}

pub(crate) async fn flaky(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let key = p.get("key").unwrap_or("default").to_owned();
    if key.len() > 256 {
        return Err(ApiError::bad_request("`key` is at most 256 bytes"));
    }
    let fail = p.bounded("fail", 1, 0, 1_000_000)?;
    let status = status_param(&p, "status", 503)?;
    let attempt = {
        let mut state = shared.lock();
        if state.flaky.len() >= 100_000 && !state.flaky.contains_key(&key) {
            state.flaky.clear();
        }
        let attempt = state.flaky.entry(key.clone()).or_insert(0);
        *attempt += 1;
        let attempt = *attempt;
        if attempt <= fail {
            state.stats.flaky_failures += 1;
        }
        attempt
    };
    if attempt <= fail {
        let mut resp = json_with_status(
            status,
            json!({ "key": key, "attempt": attempt, "failed": true }),
        );
        retry_after_from(&p, resp.headers_mut())?;
        Ok(resp)
    } else {
        Ok(Json(json!({ "key": key, "attempt": attempt })).into_response())
    }
}

pub(crate) async fn slow(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let ms = p.num::<u64>("ms", 100, "milliseconds")?;
    let status = status_param(&p, "status", 200)?;
    let delay = shared.capped(Duration::from_millis(ms));
    tokio::time::sleep(delay).await;
    Ok(json_with_status(
        status,
        json!({ "slept_ms": delay.as_millis() as u64 }),
    ))
}

pub(crate) async fn stall(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let ms = p.opt::<u64>("ms", "milliseconds")?;
    let delay = ms.map_or(shared.config.max_stall, |ms| {
        shared.capped(Duration::from_millis(ms))
    });
    shared.lock().stats.stalls += 1;
    tokio::time::sleep(delay).await;
    Ok(reset_response())
}

pub(crate) async fn reset() -> Response {
    reset_response()
}

pub(crate) async fn truncate(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let len = p.bounded("len", 100, 1, MAX_TRUNCATE_LEN)?;
    let send = p.bounded("send", len / 2, 0, len - 1)?;
    let status = status_param(&p, "status", 200)?;
    shared.lock().stats.truncated += 1;
    let full: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    Ok(truncated_response(
        status,
        Bytes::from(full),
        send as usize,
        "text/plain; charset=utf-8",
    ))
}
