//! Redirect chains and loops.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::Shared;
use crate::util::{ApiError, ApiResult, Params};

/// Longest chain `/redirect/{n}` builds.
const MAX_HOPS: u64 = 100;

fn redirect_to(status: StatusCode, location: &str) -> Response {
    let mut resp = (status, Json(json!({ "location": location }))).into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn redirect_status(p: &Params) -> Result<StatusCode, ApiError> {
    let code = p.bounded("status", 302, 301, 308)?;
    match code {
        301 | 302 | 303 | 307 | 308 => {
            Ok(StatusCode::from_u16(code as u16).unwrap_or(StatusCode::FOUND))
        }
        other => Err(ApiError::bad_request(format!(
            "`status` must be 301, 302, 303, 307 or 308, got {other}"
        ))),
    }
}

/// `ANY /redirect/{n}` (`status=301|302|303|307|308`, default 302): a chain of `n` redirects
/// (`/redirect/{n-1}`, ..., `/redirect/0`), then `200 {"redirected":true,"method"}`.
/// `ANY /redirect/loop`: redirects to itself forever.
pub(crate) async fn redirect(
    State(shared): State<Arc<Shared>>,
    Path(hops): Path<String>,
    method: Method,
    p: Params,
) -> ApiResult {
    let status = redirect_status(&p)?;
    let carried = p
        .get("status")
        .map(|s| format!("?status={s}"))
        .unwrap_or_default();
    if hops == "loop" {
        shared.lock().stats.redirects += 1;
        return Ok(redirect_to(status, &format!("/redirect/loop{carried}")));
    }
    let n: u64 = hops
        .parse()
        .ok()
        .filter(|n| *n <= MAX_HOPS)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{hops}` is not `loop` or a hop count in 0..={MAX_HOPS}"
            ))
        })?;
    if n == 0 {
        return Ok(Json(json!({ "redirected": true, "method": method.as_str() })).into_response());
    }
    shared.lock().stats.redirects += 1;
    Ok(redirect_to(
        status,
        &format!("/redirect/{}{carried}", n - 1),
    ))
}
