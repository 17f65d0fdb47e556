//! The shipping service over real HTTP on 127.0.0.1, in front of the in-process chaos server:
//! scripted rates (`/s/rates/{sku}`) for each upstream behaviour, and the chaos `/orders`
//! store, which counts orders and honours `Idempotency-Key`.

use std::sync::Arc;
use std::time::Duration;

use axum_shipping::{client, router, AppState, Upstream};
use reqwest::{header, StatusCode};
use resile_chaos::{ChaosConfig, ChaosServer, Script, ScriptFault, ScriptReply};
use serde_json::{json, Value};

/// The chaos server, and this service in front of it.
struct World {
    chaos: ChaosServer,
    app: String,
    http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The service's policy with short waits: 3 attempts of at most 1 s within 2.5 s.
fn fast_policy() -> resile::Config {
    let mut policy = axum_shipping::policy();
    policy.backoff.base_ms = 5;
    policy.backoff.cap_ms = 20;
    policy.retry.attempt_timeout_ms = Some(1_000);
    policy.retry.deadline_ms = Some(2_500);
    policy
}

/// Rates answer `replies` in turn (the last one again after that); bookings go to
/// `{chaos}/orders{orders_query}`.
async fn world(replies: Vec<ScriptReply>, orders_query: &str) -> World {
    let chaos = resile_chaos::start(ChaosConfig {
        max_stall: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .expect("chaos server starts");
    chaos
        .state()
        .set_script(
            "rates",
            Script {
                replies,
                then: None,
            },
        )
        .expect("script installs");
    let upstream = Upstream {
        rates: format!("{}/s/rates", chaos.url()),
        orders: format!("{}/orders{orders_query}", chaos.url()),
    };
    let state = AppState {
        client: client(fast_policy()).expect("client builds"),
        upstream: Arc::new(upstream),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let app = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router(state)).await;
    });
    World {
        chaos,
        app,
        http: reqwest::Client::new(),
        server,
    }
}

fn reply(status: u16, body: Value) -> ScriptReply {
    ScriptReply {
        status,
        body: Some(body),
        ..Default::default()
    }
}

fn quote_body() -> Value {
    json!({"sku": "A-1", "price_cents": 1299, "currency": "EUR"})
}

/// Status, headers and JSON body of `GET {app}{path}`.
async fn get(w: &World, path: &str) -> (StatusCode, header::HeaderMap, Value) {
    let response = w
        .http
        .get(format!("{}{path}", w.app))
        .send()
        .await
        .expect("the service answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

fn upstream_requests(w: &World) -> u64 {
    w.chaos.state().script_log("rates").map_or(0, |l| l.count)
}

fn assert_problem(headers: &header::HeaderMap, body: &Value, status: u16, kind: &str) {
    assert_eq!(
        headers[header::CONTENT_TYPE],
        resile::axum::PROBLEM_JSON,
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    let type_uri = body["type"].as_str().unwrap_or_default();
    assert!(type_uri.ends_with(&format!("#{kind}")), "{body}");
}

#[tokio::test]
async fn a_healthy_upstream_answers_200_with_the_quote() {
    let w = world(vec![reply(200, quote_body())], "").await;
    let (status, _, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, quote_body());
    let log = w.chaos.state().script_log("rates").expect("log");
    assert_eq!(log.count, 1);
    assert_eq!(log.requests[0].path, "/s/rates/A-1");
}

#[tokio::test]
async fn a_flaky_upstream_answers_200_after_retries() {
    let w = world(
        vec![
            reply(503, json!({"error": "busy"})),
            reply(503, json!({"error": "busy"})),
            reply(200, quote_body()),
        ],
        "",
    )
    .await;
    let (status, _, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, quote_body());
    assert_eq!(upstream_requests(&w), 3);
}

#[tokio::test]
async fn an_upstream_always_503_answers_503_naming_the_reason_then_the_breaker_says_when() {
    let w = world(vec![reply(503, json!({"error": "down"}))], "").await;
    let (status, headers, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_problem(&headers, &body, 503, "upstream-unavailable");
    assert_eq!(body["why"], "max_attempts", "{body}");
    assert_eq!(body["attempts"], 3, "{body}");
    assert_eq!(body["retryable"], true, "{body}");
    assert!(!body.to_string().contains("down"), "{body}");
    assert_eq!(upstream_requests(&w), 3);

    // The one shared client keeps failing attempts against the host: its breaker opens
    // (5 failures in a row by default), and then the answer says when to come back.
    let mut opened = None;
    for _ in 0..5 {
        let (status, headers, body) = get(&w, "/quote/A-1").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        if body["why"] == "breaker_open" {
            opened = Some((headers, body));
            break;
        }
    }
    let (headers, body) = opened.expect("the breaker opens within 5 more calls");
    assert_problem(&headers, &body, 503, "upstream-unavailable");
    let retry_after: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds");
    // The breaker opens for 5 s the first time.
    assert!((1..=5).contains(&retry_after), "Retry-After: {retry_after}");
    let seen = upstream_requests(&w);
    let (_, _, body) = get(&w, "/quote/A-1").await;
    assert_eq!(body["why"], "breaker_open", "{body}");
    assert_eq!(upstream_requests(&w), seen, "an open breaker sends nothing");
}

#[tokio::test]
async fn an_upstream_asking_for_minutes_answers_503_with_its_retry_after() {
    let mut limited = reply(429, json!({"error": "slow down"}));
    limited.headers.insert("Retry-After".into(), "120".into());
    let w = world(vec![limited], "").await;
    let (status, headers, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_problem(&headers, &body, 503, "upstream-unavailable");
    assert_eq!(body["why"], "retry_after_too_long", "{body}");
    let retry_after: u64 = headers[header::RETRY_AFTER]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds");
    assert!(
        (110..=120).contains(&retry_after),
        "Retry-After: {retry_after}"
    );
    assert_eq!(upstream_requests(&w), 1, "a wait over the cap is not slept");
}

#[tokio::test]
async fn a_stalled_upstream_answers_504() {
    let w = world(
        vec![ScriptReply {
            fault: Some(ScriptFault::Stall),
            ..Default::default()
        }],
        "",
    )
    .await;
    let (status, headers, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert_problem(&headers, &body, 504, "upstream-timeout");
    assert!(body["why"].is_string(), "{body}");
    assert!(headers.get(header::RETRY_AFTER).is_none());
    assert!(upstream_requests(&w) >= 1);
}

#[tokio::test]
async fn an_unusable_upstream_answer_is_502_without_its_body() {
    let w = world(
        vec![reply(200, json!("<html>secret-stack-trace</html>"))],
        "",
    )
    .await;
    let (status, headers, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_problem(&headers, &body, 502, "bad-upstream");
    assert!(!body.to_string().contains("secret-stack-trace"), "{body}");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

#[tokio::test]
async fn an_unknown_sku_upstream_is_404_and_a_rejected_credential_is_502() {
    let w = world(
        vec![
            reply(404, json!({"error": "no such sku", "db": "prod-7"})),
            reply(401, json!({"error": "bad api key"})),
        ],
        "",
    )
    .await;
    let (status, headers, body) = get(&w, "/quote/NOPE").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_problem(&headers, &body, 404, "upstream-status");
    assert!(!body.to_string().contains("prod-7"), "{body}");
    // A 401 upstream is about this service's credentials: the caller gets 502, not 401.
    let (status, headers, body) = get(&w, "/quote/A-1").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_problem(&headers, &body, 502, "bad-upstream");
    assert_eq!(upstream_requests(&w), 2, "final statuses are not retried");
}

#[tokio::test]
async fn a_bad_sku_is_the_callers_400_and_calls_nothing() {
    let w = world(vec![reply(200, quote_body())], "").await;
    let (status, headers, body) = get(&w, "/quote/a%2F..%2Fadmin").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(headers[header::CONTENT_TYPE], resile::axum::PROBLEM_JSON);
    assert_eq!(upstream_requests(&w), 0);
}

#[tokio::test]
async fn a_booking_retried_after_a_503_creates_exactly_one_order() {
    // The upstream commits the order, then answers 503 instead of 201, once per key.
    let w = world(
        vec![reply(200, quote_body())],
        "?mode=commit_then_fail&fail=503",
    )
    .await;
    let order = json!({"sku": "A-1", "qty": 2, "to": "Rue de la Paix 1, Paris"});
    let response = w
        .http
        .post(format!("{}/shipments", w.app))
        .json(&order)
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.status(), StatusCode::CREATED);
    let shipment: Value = response.json().await.expect("JSON");

    let stats = w.chaos.stats();
    assert_eq!(stats.commit_then_fail, 1, "the first answer was lost");
    assert_eq!(stats.orders_created, 1);
    assert_eq!(stats.idempotent_replays, 1, "the retry was replayed");
    assert_eq!(stats.duplicate_orders, 0);
    let orders = w.chaos.state().orders();
    assert_eq!(orders.len(), 1);
    assert!(orders[0].idempotency_key.is_some());
    assert_eq!(orders[0].body, order);
    assert_eq!(
        shipment,
        json!({"id": orders[0].id, "sku": "A-1", "qty": 2, "to": "Rue de la Paix 1, Paris"})
    );
}
