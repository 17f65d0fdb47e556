//! Admin routes: outage windows, token expiry, configuration, counters. None of them is
//! affected by an outage.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::config::MAX_COLLECTION;
use crate::state::{ChaosHandle, Shared};
use crate::util::{ApiError, ApiResult, Params};

/// Ten years: the longest window or expiry accepted.
const MAX_MS: u64 = 10 * 365 * 86_400 * 1000;

fn handle(shared: Arc<Shared>) -> ChaosHandle {
    ChaosHandle { shared }
}

fn outage_json(shared: &Shared) -> serde_json::Value {
    let now = Instant::now();
    match shared.lock().outage {
        Some(o) if o.end > now => json!({
            "active": o.start <= now,
            "starts_in_ms": o.start.saturating_duration_since(now).as_millis() as u64,
            "ends_in_ms": o.end.saturating_duration_since(now).as_millis() as u64,
            "retry_after": o.retry_after,
        }),
        _ => json!({ "active": false }),
    }
}

pub(crate) async fn set_outage(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let retry_after = p.opt::<u64>("retry_after", "whole seconds")?;
    let (start, end) = match p.opt::<u64>("for_ms", "milliseconds")? {
        Some(ms) => (0, ms.min(MAX_MS)),
        None => {
            let start = p.bounded("start_ms", 0, 0, MAX_MS)?;
            let end = p.opt::<u64>("end_ms", "milliseconds")?.ok_or_else(|| {
                ApiError::bad_request("give `for_ms`, or `end_ms` (and optionally `start_ms`)")
            })?;
            if end <= start {
                return Err(ApiError::bad_request(
                    "`end_ms` must be greater than `start_ms`",
                ));
            }
            (start, end.min(MAX_MS))
        }
    };
    handle(shared.clone()).set_outage(
        Duration::from_millis(start),
        Duration::from_millis(end),
        retry_after,
    );
    Ok(Json(outage_json(&shared)).into_response())
}

pub(crate) async fn clear_outage(State(shared): State<Arc<Shared>>) -> Response {
    handle(shared.clone()).clear_outage();
    Json(outage_json(&shared)).into_response()
}

pub(crate) async fn get_outage(State(shared): State<Arc<Shared>>) -> Response {
    Json(outage_json(&shared)).into_response()
}

pub(crate) async fn expire_tokens(State(shared): State<Arc<Shared>>) -> Response {
    let expired = handle(shared).expire_tokens();
    Json(json!({ "expired": expired })).into_response()
}

pub(crate) async fn config(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let h = handle(shared.clone());
    if let Some(total) = p.opt::<u64>("total", "a whole number")? {
        h.set_collection_total(total)
            .map_err(ApiError::bad_request)?;
    }
    if let Some(secs) = p.opt::<u64>("token_expires_in", "whole seconds")? {
        h.set_token_expires_in(secs.min(MAX_MS / 1000));
    }
    let state = shared.lock();
    Ok(Json(json!({
        "total": state.collection.total,
        "inserted": state.collection.inserted,
        "token_expires_in": state.token_expires_in,
        "max_total": MAX_COLLECTION,
    }))
    .into_response())
}

pub(crate) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(handle(shared).stats()).into_response()
}

pub(crate) async fn reset_stats(State(shared): State<Arc<Shared>>) -> Response {
    handle(shared).reset();
    (StatusCode::OK, Json(json!({ "reset": true }))).into_response()
}
