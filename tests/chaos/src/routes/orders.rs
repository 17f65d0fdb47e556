//! Non-idempotent writes: orders, with `Idempotency-Key` support and commit-then-fail.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::rng::Fnv;
use crate::state::{IdemRecord, Order, Shared};
use crate::util::{reset_response, retry_after_from, ApiError, ApiResult, Params};

const MAX_ORDERS: usize = 100_000;

/// A hash of `v` that ignores the order of object keys.
fn canonical_hash(v: &Value) -> u64 {
    fn feed(v: &Value, h: &mut Fnv) {
        match v {
            Value::Null => h.write(b"n"),
            Value::Bool(b) => h.write(if *b { b"t" } else { b"f" }),
            Value::Number(n) => {
                h.write(b"#");
                h.write(n.to_string().as_bytes());
            }
            Value::String(s) => {
                h.write(b"s");
                h.write(&(s.len() as u64).to_le_bytes());
                h.write(s.as_bytes());
            }
            Value::Array(items) => {
                h.write(b"[");
                h.write(&(items.len() as u64).to_le_bytes());
                items.iter().for_each(|i| feed(i, h));
            }
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                h.write(b"{");
                h.write(&(keys.len() as u64).to_le_bytes());
                for k in keys {
                    h.write(&(k.len() as u64).to_le_bytes());
                    h.write(k.as_bytes());
                    if let Some(value) = map.get(k) {
                        feed(value, h);
                    }
                }
            }
        }
    }
    let mut h = Fnv::new();
    feed(v, &mut h);
    h.finish()
}

enum FailWith {
    Status(StatusCode),
    Reset,
}

struct Mode {
    fail: FailWith,
    times: u64,
    /// The fraction of orders (chosen by body, from the seed) that fail this way.
    rate: f64,
}

fn parse_mode(p: &Params) -> Result<Option<Mode>, ApiError> {
    match p.get("mode") {
        None | Some("") | Some("normal") => Ok(None),
        Some("commit_then_fail") => {
            let fail = match p.get("fail").unwrap_or("503") {
                "reset" => FailWith::Reset,
                code => {
                    let status = code
                        .parse::<u16>()
                        .ok()
                        .filter(|c| (400..=599).contains(c))
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "`fail` is `reset` or a status in 400..=599, got `{code}`"
                            ))
                        })?;
                    FailWith::Status(status)
                }
            };
            let times = p.bounded("times", 1, 0, 1_000_000)?;
            let rate = if p.get("rate").is_some() {
                p.fraction("rate")?
            } else {
                1.0
            };
            Ok(Some(Mode { fail, times, rate }))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "`mode` is `commit_then_fail`, got `{other}`"
        ))),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::bad_request("`Idempotency-Key` must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(key.to_owned()))
}

pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body must be JSON: {e}")))?;
    let key = idempotency_key(&headers)?;
    let mode = parse_mode(&p)?;
    let hash = canonical_hash(&value);

    let (order, replayed, fail) = {
        let mut state = shared.lock();
        let existing = key.as_ref().and_then(|k| state.idempotency.get(k).cloned());
        let (order, replayed) = match existing {
            Some(record) if record.body_hash != hash => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    format!(
                        "Idempotency-Key `{}` was first used with a different body",
                        key.as_deref().unwrap_or_default()
                    ),
                ));
            }
            Some(record) => match state.orders.get(record.order_index).cloned() {
                Some(order) => {
                    state.stats.idempotent_replays += 1;
                    (order, true)
                }
                None => {
                    return Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "lost",
                        "order vanished",
                    ))
                }
            },
            None => {
                if state.orders.len() >= MAX_ORDERS {
                    return Err(ApiError::new(
                        StatusCode::INSUFFICIENT_STORAGE,
                        "too_many_orders",
                        format!("at most {MAX_ORDERS} orders; POST /stats/reset"),
                    ));
                }
                let duplicate = !state.order_bodies.insert(hash);
                let order = Order {
                    id: state.orders.len() as u64 + 1,
                    body: value,
                    idempotency_key: key.clone(),
                    duplicate,
                };
                state.stats.orders_created += 1;
                if duplicate {
                    state.stats.duplicate_orders += 1;
                }
                if let Some(k) = &key {
                    let order_index = state.orders.len();
                    state.idempotency.insert(
                        k.clone(),
                        IdemRecord {
                            body_hash: hash,
                            order_index,
                        },
                    );
                }
                state.orders.push(order.clone());
                (order, false)
            }
        };
        let fail = match mode {
            Some(mode) => {
                let slot = match &key {
                    Some(k) => format!("key:{k}"),
                    None => format!("body:{hash:016x}"),
                };
                let seen = state.commit_failures.entry(slot).or_insert(0);
                *seen += 1;
                // Which orders fail depends on the body only, so clients with and without
                // keys meet the same failures.
                let chosen = crate::rng::unit(shared.config.seed, hash) < mode.rate;
                if *seen <= mode.times && chosen {
                    state.stats.commit_then_fail += 1;
                    Some(mode.fail)
                } else {
                    None
                }
            }
            None => None,
        };
        (order, replayed, fail)
    };

    match fail {
        Some(FailWith::Reset) => Ok(reset_response()),
        Some(FailWith::Status(status)) => {
            let body = json!({
                "error": "commit_then_fail",
                "message": "the order was committed, but this answer failed on purpose",
            });
            let mut resp = (status, Json(body)).into_response();
            retry_after_from(&p, resp.headers_mut())?;
            Ok(resp)
        }
        None => {
            let mut resp: Response = (StatusCode::CREATED, Json(&order)).into_response();
            if let Ok(location) = HeaderValue::from_str(&format!("/orders/{}", order.id)) {
                resp.headers_mut().insert("location", location);
            }
            if replayed {
                resp.headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            Ok(resp)
        }
    }
}

pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Response {
    let orders = shared.lock().orders.clone();
    Json(orders).into_response()
}

pub(crate) async fn get_one(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult {
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("`{id}` is not an order id")))?;
    let state = shared.lock();
    let order = id
        .checked_sub(1)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| state.orders.get(i))
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))?;
    Ok(Json(order).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ignores_key_order_but_not_values() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"b":[2,1],"a":1}"#).unwrap();
        assert_eq!(canonical_hash(&a), canonical_hash(&b));
        assert_ne!(canonical_hash(&a), canonical_hash(&c));
    }
}
