//! A slow replica: most requests are answered fast, the first of every `every` is slow, as a
//! load balancer in front of one overloaded replica among several would answer. Hedging tests
//! use it: a hedge sent after the fast latency lands on a fast replica.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::state::Shared;
use crate::util::{ApiError, ApiResult, Params};

/// Counters kept before the map is cleared (clients cannot grow it without bound).
const MAX_KEYS: usize = 10_000;

/// `GET /replica?key=K&every=N&slow_ms=S&fast_ms=F`: request `n` (1-based, counted per key)
/// sleeps `slow_ms` when `(n - 1) % every == 0`, else `fast_ms`; answers 200 with
/// `{"key", "request", "slow"}`.
pub(crate) async fn replica(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let key = p.get("key").unwrap_or("default").to_owned();
    if key.len() > 256 {
        return Err(ApiError::bad_request("`key` is at most 256 bytes"));
    }
    let every = p.bounded("every", 10, 1, 1_000_000)?;
    let slow_ms = p.num::<u64>("slow_ms", 1_000, "milliseconds")?;
    let fast_ms = p.num::<u64>("fast_ms", 5, "milliseconds")?;
    let request = {
        let mut state = shared.lock();
        if state.replica.len() >= MAX_KEYS && !state.replica.contains_key(&key) {
            state.replica.clear();
        }
        let n = state.replica.entry(key.clone()).or_insert(0);
        *n += 1;
        *n
    };
    let slow = (request - 1) % every == 0;
    let ms = if slow { slow_ms } else { fast_ms };
    tokio::time::sleep(shared.capped(Duration::from_millis(ms))).await;
    Ok(Json(json!({ "key": key, "request": request, "slow": slow })).into_response())
}
