//! The collection, paginated four ways, with injected failures and insertions.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::HOST;
use axum::http::uri::Authority;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::config::MAX_COLLECTION;
use crate::rng::unit;
use crate::state::{Collection, Shared};
use crate::util::{set_header, ApiError, ApiResult, Params};

const MAX_PAGE: u64 = 1000;
const DEFAULT_PAGE: u64 = 100;
/// Cursors are ids scrambled with this mask so that clients treat them as opaque.
const CURSOR_MASK: u64 = 0x5eed_c0de_a5a5_1234;

#[derive(Serialize)]
struct Item {
    id: u64,
    name: String,
}

fn items(ids: Vec<u64>) -> Vec<Item> {
    ids.into_iter()
        .map(|id| Item {
            id,
            name: format!("item-{id}"),
        })
        .collect()
}

/// The page-request options every mode shares.
struct PageOptions {
    fail_rate: f64,
    insert_every: u64,
    total: Option<u64>,
}

impl PageOptions {
    fn parse(p: &Params) -> Result<Self, ApiError> {
        Ok(PageOptions {
            fail_rate: p.fraction("fail_rate")?,
            insert_every: p.bounded("insert_every", 0, 0, u64::MAX)?,
            total: p
                .opt::<u64>("total", "a whole number")?
                .map(|t| t.min(MAX_COLLECTION)),
        })
    }

    /// The options to carry into `Link` URLs, so that following them keeps the behaviour.
    fn link_suffix(&self) -> String {
        let mut s = String::new();
        if self.fail_rate > 0.0 {
            s.push_str(&format!("&fail_rate={}", self.fail_rate));
        }
        if self.insert_every > 0 {
            s.push_str(&format!("&insert_every={}", self.insert_every));
        }
        s
    }
}

/// Runs `page` on the collection as one page request: counts it, fails it when the seeded
/// draw says so, and inserts an item afterwards every `insert_every` requests.
fn with_page<R>(
    shared: &Shared,
    opts: &PageOptions,
    page: impl FnOnce(&Collection) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let mut state = shared.lock();
    if let Some(total) = opts.total {
        if total != state.collection.total {
            state.collection = Collection { total, inserted: 0 };
        }
    }
    state.page_requests += 1;
    let n = state.page_requests;
    if opts.fail_rate > 0.0 && unit(shared.config.seed, n) < opts.fail_rate {
        state.stats.page_failures += 1;
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "injected_failure",
            format!(
                "page request #{n} failed on purpose (fail_rate={})",
                opts.fail_rate
            ),
        ));
    }
    let result = page(&state.collection)?;
    state.stats.pages_served += 1;
    if opts.insert_every > 0
        && n % opts.insert_every == 0
        && state.collection.len() < 2 * MAX_COLLECTION
    {
        state.collection.inserted += 1;
        state.stats.items_inserted += 1;
    }
    Ok(result)
}

/// `http://host:port` as the client addressed us, or our own address.
fn base_url(shared: &Shared, headers: &HeaderMap) -> String {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok());
    match host {
        Some(authority) => format!("http://{authority}"),
        None => format!("http://{}", shared.addr),
    }
}

fn page_size(p: &Params, name: &str) -> Result<u64, ApiError> {
    p.bounded(name, DEFAULT_PAGE, 1, MAX_PAGE)
}

pub(crate) async fn link(
    State(shared): State<Arc<Shared>>,
    p: Params,
    headers: HeaderMap,
) -> ApiResult {
    let opts = PageOptions::parse(&p)?;
    let size = page_size(&p, "page_size")?;
    let after = p.opt::<u64>("after", "an item id")?;
    let (ids, more) = with_page(&shared, &opts, |c| {
        let start = match after {
            None => 0,
            Some(id) => {
                c.position_of(id)
                    .ok_or_else(|| ApiError::bad_request(format!("`after={id}` names no item")))?
                    + 1
            }
        };
        let ids = c.ids(start, size);
        Ok((ids, start + size < c.len()))
    })?;
    let base = base_url(&shared, &headers);
    let suffix = opts.link_suffix();
    let first = format!("<{base}/items/link?page_size={size}{suffix}>; rel=\"first\"");
    let link = match (more, ids.last()) {
        (true, Some(last)) => {
            format!(
                "<{base}/items/link?after={last}&page_size={size}{suffix}>; rel=\"next\", {first}"
            )
        }
        _ => first,
    };
    let mut resp = Json(items(ids)).into_response();
    set_header(resp.headers_mut(), "link", link);
    Ok(resp)
}

fn encode_cursor(id: u64) -> String {
    format!("c1{:016x}", id ^ CURSOR_MASK)
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let hex = cursor.strip_prefix("c1").filter(|h| h.len() == 16)?;
    u64::from_str_radix(hex, 16).ok().map(|v| v ^ CURSOR_MASK)
}

pub(crate) async fn cursor(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let opts = PageOptions::parse(&p)?;
    let limit = page_size(&p, "limit")?;
    let after = match p.get("cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            decode_cursor(c)
                .ok_or_else(|| ApiError::bad_request(format!("invalid cursor `{c}`")))?,
        ),
    };
    let (ids, more) = with_page(&shared, &opts, |c| {
        let start = match after {
            None => 0,
            Some(id) => {
                c.position_of(id)
                    .ok_or_else(|| ApiError::bad_request("the cursor names no item"))?
                    + 1
            }
        };
        let ids = c.ids(start, limit);
        Ok((ids, start + limit < c.len()))
    })?;
    let next = if more {
        ids.last().map(|id| encode_cursor(*id))
    } else {
        None
    };
    Ok(Json(json!({ "items": items(ids), "next_cursor": next })).into_response())
}

pub(crate) async fn offset(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let opts = PageOptions::parse(&p)?;
    let limit = page_size(&p, "limit")?;
    let offset = p.num::<u64>("offset", 0, "a whole number")?;
    let (ids, total) = with_page(&shared, &opts, |c| Ok((c.ids(offset, limit), c.len())))?;
    Ok(with_total(Json(items(ids)).into_response(), total))
}

pub(crate) async fn page(State(shared): State<Arc<Shared>>, p: Params) -> ApiResult {
    let opts = PageOptions::parse(&p)?;
    let per_page = page_size(&p, "per_page")?;
    let page = p.bounded("page", 1, 1, u64::MAX)?;
    let start = (page - 1).saturating_mul(per_page);
    let (ids, total) = with_page(&shared, &opts, |c| Ok((c.ids(start, per_page), c.len())))?;
    Ok(with_total(Json(items(ids)).into_response(), total))
}

fn with_total(mut resp: Response, total: u64) -> Response {
    set_header(resp.headers_mut(), "x-total-count", total);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for id in [0, 1, 77, u64::MAX] {
            assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        }
        assert_eq!(decode_cursor("c1zz"), None);
        assert_eq!(decode_cursor("42"), None);
    }
}
