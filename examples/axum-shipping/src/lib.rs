//! # axum-shipping: the shipping client, done right
//!
//! An axum service that quotes and books shipments through an upstream carrier API that
//! fails now and then. The usual first version (a web handler that opens a new HTTP client
//! per request, waits forever, retries a booking blindly and answers 500 with whatever the
//! upstream said) gets four things wrong; this one:
//!
//! - holds **one** [`resile::Client`] for the whole process, in the router state: one
//!   connection pool, and one breaker, retry budget and rate limiter per upstream host,
//!   shared by every request, so an outage trips one breaker instead of being hammered by
//!   every handler on its own;
//! - gives every upstream call a **deadline** a caller will wait for ([`policy`]: 3 attempts,
//!   2 s each, 5 s in all), not the library's 30 s default;
//! - books with an automatic **`Idempotency-Key`**, the same on every attempt, so a booking
//!   retried after a lost answer books once;
//! - answers upstream failures as **502/503/504** problem documents ([`resile::axum`]) with
//!   `Retry-After` when the upstream's breaker or rate limit says when, never the upstream's
//!   body or URL; the caller's own mistakes are 400, and the upstream 4xx that are about the
//!   caller's request (an unknown SKU: 404) are passed on ([`resile::axum::Passthrough`]).
//!
//! | route | upstream call | answer |
//! |---|---|---|
//! | `GET /quote/{sku}` | `GET {rates}/{sku}` → `{"sku","price_cents","currency"}` | 200 with the quote |
//! | `POST /shipments` `{"sku","qty","to"}` | `POST {orders}` with the same JSON → 201 `{"id",...}` | 201 `{"id","sku","qty","to"}` |
//!
//! Run it against the chaos server: `cargo run -p resile-cli -- serve-chaos --port 8080`,
//! then `cargo run -p axum-shipping -- http://127.0.0.1:8080/s/demo 3000` (see `main.rs`).

use std::fmt;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use resile::axum::Passthrough;
use serde::{Deserialize, Serialize};

/// Where the upstream's two endpoints are.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `GET {rates}/{sku}` answers a [`Quote`].
    pub rates: String,
    /// `POST {orders}` books a shipment and answers `{"id": N, ...}`.
    pub orders: String,
}

impl Upstream {
    /// The endpoints of a carrier API at `base`: `{base}/rates` and `{base}/orders`.
    ///
    /// ```
    /// let upstream = axum_shipping::Upstream::at("http://127.0.0.1:8080/carrier/").unwrap();
    /// assert_eq!(upstream.rates, "http://127.0.0.1:8080/carrier/rates");
    /// assert!(axum_shipping::Upstream::at("ftp://carrier.test").is_err());
    /// ```
    pub fn at(base: &str) -> Result<Upstream, resile::Error> {
        let invalid = |message: &str| resile::Error::InvalidUrl {
            url: base.to_string(),
            message: message.to_string(),
        };
        let url = resile::Url::parse(base).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("the upstream is an http:// or https:// URL"));
        }
        let base = base.trim_end_matches('/');
        Ok(Upstream {
            rates: format!("{base}/rates"),
            orders: format!("{base}/orders"),
        })
    }
}

/// The upstream policy of a request handler: whoever called this service waits seconds, so
/// the upstream call gets 3 attempts of at most 2 s each within 5 s in all. Everything else
/// (backoff with jitter, `Retry-After`, the retry budget, the breaker) is the library's
/// default.
pub fn policy() -> resile::Config {
    let mut policy = resile::Config::default();
    policy.retry.max_attempts = 3;
    policy.retry.attempt_timeout_ms = Some(2_000);
    policy.retry.deadline_ms = Some(5_000);
    policy
}

/// The one upstream client of the process.
pub fn client(policy: resile::Config) -> Result<resile::Client, resile::Error> {
    resile::Client::builder()
        .engine(policy)
        .user_agent(concat!("axum-shipping/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A price for shipping one item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The item.
    pub sku: String,
    /// The price, in cents of `currency`.
    pub price_cents: u64,
    /// ISO 4217.
    pub currency: String,
}

/// A shipment to book.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewShipment {
    /// The item.
    pub sku: String,
    /// How many, from 1 to 1000.
    pub qty: u32,
    /// Where to.
    pub to: String,
}

/// A booked shipment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The upstream's order id.
    pub id: u64,
    /// What was booked.
    #[serde(flatten)]
    pub order: NewShipment,
}

/// The part of the upstream's booking answer this service reads.
#[derive(Deserialize)]
struct Booked {
    id: u64,
}

/// What a handler fails with.
#[derive(Debug)]
pub enum ApiError {
    /// The caller's request is not valid: 400 with a problem document naming the field.
    Invalid {
        /// The field at fault.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// The upstream call failed: `resile::axum`'s 502/503/504, or the upstream's 4xx when it
    /// is about the caller's request.
    Upstream(Passthrough),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Invalid { field, expected } => write!(f, "`{field}` must be {expected}"),
            ApiError::Upstream(Passthrough(e)) => write!(f, "upstream: {e}"),
        }
    }
}

impl From<resile::Error> for ApiError {
    fn from(e: resile::Error) -> Self {
        ApiError::Upstream(Passthrough(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Invalid { field, expected } => (
                StatusCode::BAD_REQUEST,
                [(axum::http::header::CONTENT_TYPE, resile::axum::PROBLEM_JSON)],
                Json(serde_json::json!({
                    "type": "about:blank",
                    "title": "Bad Request",
                    "status": 400,
                    "detail": format!("`{field}` must be {expected}"),
                })),
            )
                .into_response(),
            ApiError::Upstream(e) => e.into_response(),
        }
    }
}

/// A SKU goes into the upstream URL's path: 1 to 64 ASCII letters, digits, `-` or `_`, so
/// no caller can make it `../admin`.
fn check_sku(sku: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::Invalid {
            field: "sku",
            expected: "1 to 64 ASCII letters, digits, `-` or `_`",
        })
    }
}

// README: begin
/// The router state: one client for the whole process (one pool; one breaker, budget and
/// rate limiter per upstream host), cloned cheaply into every request.
#[derive(Clone)]
pub struct AppState {
    /// The upstream client.
    pub client: resile::Client,
    /// Where the upstream's endpoints are.
    pub upstream: Arc<Upstream>,
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/quote/{sku}", get(quote))
        .route("/shipments", post(book))
        .with_state(state)
}

async fn quote(
    State(app): State<AppState>,
    Path(sku): Path<String>,
) -> Result<Json<Quote>, ApiError> {
    check_sku(&sku)?;
    // Retried on 429, 5xx, timeouts and resets within the deadline; when it still fails,
    // `?` answers 502, 503 (with Retry-After when known) or 504, and an unknown SKU 404.
    let quote: Quote = app
        .client
        .get_json(format!("{}/{sku}", app.upstream.rates))
        .await?;
    Ok(Json(quote))
}

async fn book(
    State(app): State<AppState>,
    Json(order): Json<NewShipment>,
) -> Result<(StatusCode, Json<Shipment>), ApiError> {
    check_sku(&order.sku)?;
    if !(1..=1000).contains(&order.qty) {
        return Err(ApiError::Invalid {
            field: "qty",
            expected: "from 1 to 1000",
        });
    }
    // A POST carries an automatic Idempotency-Key, the same on every attempt: retried after
    // a 503 or a lost answer, it books once.
    let booked: Booked = app.client.post_json(&app.upstream.orders, &order).await?;
    let shipment = Shipment {
        id: booked.id,
        order,
    };
    Ok((StatusCode::CREATED, Json(shipment)))
}
// README: end

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_that_could_leave_the_path_segment_are_refused() {
        for ok in ["A-1", "sku_42", &"x".repeat(64)] {
            assert!(check_sku(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../admin", "a/b", "a?b=1", "a b", "é", &"x".repeat(65)] {
            assert!(
                matches!(check_sku(bad), Err(ApiError::Invalid { field: "sku", .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_readme_shows_this_crate_s_code() {
        resile_chaos::readme::assert_snippet_is_code(
            include_str!("../../../README.md"),
            "## Behind an axum service",
            include_str!("lib.rs"),
            "examples/axum-shipping/src/lib.rs",
        );
    }
}
