//! `ResileMiddleware` in a reqwest-middleware stack, against the chaos server: the engine's
//! decisions through the middleware, and next to `RetryTransientMiddleware` on the same
//! scenarios.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{chaos, fast_policy};
use reqwest_middleware::ClientWithMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use reqwest_retry::RetryTransientMiddleware;
use resile::middleware::CallOptions;
use resile::{Client, ClientAuth, ClientCredentials, Error, EventKind, Secret, Why};
use serde_json::{json, Value};

// README: begin
use reqwest_middleware::ClientBuilder;
use resile::middleware::{CallReport, ResileMiddleware};

async fn get_text(resile: &resile::Client, url: &str) -> Result<String, reqwest_middleware::Error> {
    // The stack sends; the resile client's engine decides every retry, wait and refusal.
    let http = ClientBuilder::new(reqwest::Client::new())
        .with(ResileMiddleware::new(resile))
        .build();
    let response = http.get(url).send().await.inspect_err(|e| {
        if let reqwest_middleware::Error::Middleware(e) = e {
            if let Some(e) = e.downcast_ref::<resile::Error>() {
                eprintln!("resile gave up: {e} (why: {:?})", e.why());
            }
        }
    })?;
    let report = response
        .extensions()
        .get::<CallReport>()
        .expect("set by resile");
    eprintln!("{} after {} attempt(s)", response.status(), report.attempts);
    Ok(response.text().await?)
}
// README: end

/// A JSON body (reqwest-middleware's own `json` needs its `json` feature).
trait JsonBody {
    fn json_body(self, value: Value) -> Self;
}

impl JsonBody for reqwest_middleware::RequestBuilder {
    fn json_body(self, value: Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }
}

fn client_with(policy: resile::Config) -> Client {
    Client::builder().engine(policy).seed(7).build().unwrap()
}

/// A client whose calls carry a token from the chaos server's token endpoint.
fn client_with_token(base: &str) -> Client {
    Client::builder()
        .engine(fast_policy())
        .token_source(ClientCredentials {
            token_url: format!("{base}/oauth/token"),
            client_id: "demo".into(),
            client_secret: Secret::new("demo"),
            scope: Some("read".into()),
            auth: ClientAuth::Basic,
        })
        .build()
        .unwrap()
}

fn stack(client: &Client) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(ResileMiddleware::new(client))
        .build()
}

fn report(response: &reqwest::Response) -> CallReport {
    response
        .extensions()
        .get::<CallReport>()
        .cloned()
        .expect("the middleware puts a CallReport in the response's extensions")
}

/// The final status and how many attempts it took.
fn status_and_attempts(response: &reqwest::Response) -> (u16, u32) {
    (response.status().as_u16(), report(response).attempts)
}

/// A response's JSON body (reqwest's own `json` needs its `json` feature).
async fn body_json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

/// The `resile::Error` inside a middleware error.
fn resile_error(e: &reqwest_middleware::Error) -> &Error {
    match e {
        reqwest_middleware::Error::Middleware(inner) => inner
            .downcast_ref::<Error>()
            .unwrap_or_else(|| panic!("not a resile::Error: {inner:?}")),
        other => panic!("expected a middleware error, got {other:?}"),
    }
}

fn script(server: &resile_chaos::ChaosServer, id: &str, replies: Value) {
    server
        .state()
        .set_script(
            id,
            serde_json::from_value(json!({ "replies": replies })).unwrap(),
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_then_succeeds_with_one_request_id_and_a_decision_log() {
    let server = chaos().await;
    script(
        &server,
        "mw",
        json!([{"status": 503}, {"status": 503}, {"status": 200, "body": {"ok": true}}]),
    );
    let client = client_with(fast_policy());
    let response = stack(&client)
        .get(format!("{}/s/mw", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let report = report(&response);
    assert_eq!(report.attempts, 3);
    assert_eq!(body_json(response).await, json!({"ok": true}));

    let log = server.state().script_log("mw").unwrap();
    assert_eq!(log.count, 3);
    let ids: HashSet<_> = log
        .requests
        .iter()
        .map(|r| r.x_request_id.clone())
        .collect();
    assert_eq!(ids.len(), 1, "one X-Request-ID on every attempt: {ids:?}");
    assert_eq!(
        log.requests[0].x_request_id.as_deref(),
        Some(report.request_id.as_str())
    );
    assert!(log.requests.iter().all(|r| r.idempotency_key.is_none()));

    // The decision log: this call's events, from its start to its success.
    assert!(matches!(
        report.events.first().map(|e| &e.kind),
        Some(EventKind::CallStarted { .. })
    ));
    assert!(matches!(
        report.events.last().map(|e| &e.kind),
        Some(EventKind::CallSucceeded { .. })
    ));
    let retries = report
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::RetryScheduled {
                    why: Why::Backoff,
                    ..
                }
            )
        })
        .count();
    assert_eq!(retries, 2, "{:#?}", report.decisions());
    assert_eq!(report.decisions().len(), report.events.len());
    assert_eq!(client.stats().retries, 2, "the client's engine decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_in_both_forms_and_holds_the_host() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let http = stack(&client);

    // Seconds: `Retry-After: 1` on a 429 is waited out (the engine's own wait, read from its
    // events), then the call succeeds.
    let url = format!(
        "{}/flaky?key=ra&fail=1&status=429&retry_after=1",
        server.url()
    );
    let response = http.get(url).send().await.unwrap();
    let report = report(&response);
    assert_eq!((response.status().as_u16(), report.attempts), (200, 2));
    let delay = report
        .events
        .iter()
        .find_map(|e| match e.kind {
            EventKind::RetryScheduled {
                delay,
                why: Why::RetryAfterHeader,
                ..
            } => Some(delay),
            _ => None,
        })
        .unwrap_or_else(|| panic!("a wait for the header: {:#?}", report.decisions()));
    assert!(delay >= Duration::from_secs(1), "{delay:?}");

    // An hour is over the cap: the call fails at once, says so, and the host is held.
    let e = http
        .get(format!("{}/status/503?retry_after=3600", server.url()))
        .send()
        .await
        .unwrap_err();
    let e = resile_error(&e);
    match e {
        Error::RateLimited {
            retry_after,
            attempts,
            header,
            ..
        } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
            assert_eq!(*attempts, 1);
            assert_eq!(*header, Some("Retry-After"));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(e.why(), Some(Why::RetryAfterTooLong));
    let held = client.hosts()[0].held_until.expect("the host is held");
    // Held for as long as the engine allows a server to ask (`retry.max_retry_after_ms`).
    let cap = Duration::from_millis(client.config().engine.retry.max_retry_after_ms);
    let left = held - client.now();
    assert!(left > cap / 2 && left <= cap, "{left:?}");

    // Held: the next request to that host, from the client itself, is not sent.
    let before = server.stats().requests;
    let e = client
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(!e.maybe_processed(), "{e:?}");
    assert_eq!(
        server.stats().requests,
        before,
        "nothing sent to a held host"
    );

    // An HTTP date an hour away, on another server (the first one is held).
    let other = chaos().await;
    let e = http
        .get(format!("{}/status/503?retry_after_date=3600", other.url()))
        .send()
        .await
        .unwrap_err();
    match resile_error(&e) {
        Error::RateLimited {
            retry_after: Some(asked),
            ..
        } => assert!(
            // An HTTP date has whole seconds: about an hour, give or take one.
            *asked > Duration::from_secs(3500) && *asked <= Duration::from_secs(3601),
            "{asked:?}"
        ),
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_retried_after_a_503_carries_one_key_and_is_applied_once() {
    let server = chaos().await;
    let state = server.state();
    let client = client_with(fast_policy());
    let http = stack(&client);
    let url = format!("{}/orders?mode=commit_then_fail&fail=503", server.url());

    // The engine's key, the same on the retry: the server applies the order once.
    let response = http
        .post(&url)
        .json_body(json!({"sku": "auto"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (201, 2));
    assert_eq!(
        response
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let orders = state.orders();
    assert_eq!(orders.len(), 1);
    assert!(orders[0].idempotency_key.is_some());
    assert_eq!(server.stats().idempotent_replays, 1);

    // The caller's own key is sent as it is, on every attempt.
    let response = http
        .post(&url)
        .header("Idempotency-Key", "order-77")
        .json_body(json!({"sku": "explicit"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (201, 2));
    assert_eq!(state.orders().len(), 2);
    assert_eq!(
        state.orders()[1].idempotency_key.as_deref(),
        Some("order-77")
    );
    assert_eq!(server.stats().idempotent_replays, 2);
    assert_eq!(server.stats().duplicate_orders, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_body_is_sent_once_and_the_error_says_why() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let chunks = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(r#"{"sku":"#),
        Ok(r#""stream"}"#),
    ]);
    let before = server.stats().requests;
    let mut extensions = http::Extensions::new();
    let request = stack(&client)
        .put(format!("{}/status/503", server.url()))
        .body(reqwest::Body::wrap_stream(chunks))
        .build()
        .unwrap();
    let e = stack(&client)
        .execute_with_extensions(request, &mut extensions)
        .await
        .unwrap_err();
    let e = resile_error(&e);
    assert!(
        matches!(
            e,
            Error::NotRetried {
                why: Why::BodyNotReplayable,
                attempts: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(server.stats().requests, before + 1, "sent once");
    // The request's extensions carry the report after a failure too.
    let report = extensions.get::<CallReport>().expect("a report");
    assert_eq!(report.attempts, 1);
    assert!(matches!(
        report.events.last().map(|e| &e.kind),
        Some(EventKind::CallFailed { .. })
    ));
}

/// reqwest-middleware #44 / #214: a streamed body cannot be cloned, so a retry has nothing to
/// send. A `BodyFactory` in the extensions makes it again: the upload that failed after the
/// server read it is sent whole a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_factory_in_the_extensions_makes_a_streamed_upload_retryable() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let parts: Vec<bytes::Bytes> = (0..64u8).map(|i| vec![i; 4096].into()).collect();
    let whole: Vec<u8> = parts.iter().flatten().copied().collect();
    let made = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let count = made.clone();
    let factory = resile::BodyFactory::new(move || {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        futures::stream::iter(parts.clone().into_iter().map(Ok::<_, std::io::Error>))
    });
    let response = stack(&client)
        .put(format!(
            "{}/upload-retry?key=mw-factory&fail=1",
            server.url()
        ))
        .with_extension(factory)
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (200, 2));
    assert_eq!(
        made.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "one body per attempt"
    );
    let body = body_json(response).await;
    assert_eq!(body["len"], json!(whole.len()));
    assert_eq!(body["sha256"], json!(resile_chaos::sha256_hex(&whole)));
    let log = server.state().transfer_log("mw-factory").unwrap();
    let want = (whole.len() as u64, resile_chaos::sha256_hex(&whole));
    assert_eq!(
        log.uploads,
        vec![want.clone(), want],
        "the whole body, both times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_is_shared_with_the_client_it_came_from() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 1;
    policy.breaker.consecutive_failures = 3;
    policy.breaker.open_ms = 60_000;
    policy.breaker.max_open_ms = 60_000;
    let client = client_with(policy);
    let http = stack(&client);
    for _ in 0..3 {
        let e = http
            .get(format!("{}/status/500", server.url()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(resile_error(&e).status(), Some(500));
    }
    // The middleware's failures opened the client's breaker: the client fails fast.
    let before = server.stats().requests;
    let e = client
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.why(), Some(Why::BreakerOpen), "{e:?}");
    // And the middleware does too, with the same reason.
    let e = http
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(resile_error(&e).why(), Some(Why::BreakerOpen));
    assert_eq!(
        server.stats().requests,
        before,
        "an open breaker sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_downcast_to_the_engines_error() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 2;
    let middleware = ResileMiddleware::build(Client::builder().engine(policy).seed(7)).unwrap();
    let http = ClientBuilder::new(reqwest::Client::new())
        .with(middleware.clone())
        .build();
    let e = http
        .get(format!("{}/status/503", server.url()))
        .send()
        .await
        .unwrap_err();
    let e = resile_error(&e);
    assert!(
        matches!(e, Error::RetriesExhausted { attempts: 2, .. }),
        "{e:?}"
    );
    assert_eq!(e.why(), Some(Why::MaxAttempts));
    assert_eq!(e.status(), Some(503));
    assert_eq!(middleware.client().stats().attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_the_stacks_client_gives_up_on_is_not_tried_again() {
    // reqwest's default policy follows 10 redirects, then fails: another attempt would follow
    // the same loop (it was `other`, and each of 4 attempts followed it 10 times).
    let server = chaos().await;
    let client = client_with(fast_policy());
    let e = stack(&client)
        .get(format!("{}/redirect/loop", server.url()))
        .send()
        .await
        .unwrap_err();
    let e = resile_error(&e);
    assert_eq!(e.why(), Some(Why::Unreadable), "{e:?}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("redirect"), "{e}");
    assert_eq!(client.stats().attempts, 1);
    assert_eq!(
        server.stats().redirects,
        11,
        "one attempt: the request and 10 redirects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_over_its_time_is_dropped_and_retried() {
    let server = chaos().await;
    script(
        &server,
        "slow",
        json!([{"delay_ms": 2500, "body": {"slow": true}}, {"body": {"slow": false}}]),
    );
    let mut policy = fast_policy();
    policy.retry.attempt_timeout_ms = Some(200);
    let client = client_with(policy);
    let response = stack(&client)
        .get(format!("{}/s/slow", server.url()))
        .send()
        .await
        .unwrap();
    let report = report(&response);
    assert_eq!(report.attempts, 2);
    assert_eq!(body_json(response).await, json!({"slow": false}));
    let first = report
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::AttemptAborted {
                attempt: 1, why, ..
            } => Some(*why),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the first attempt aborted: {:#?}", report.decisions()));
    assert_eq!(first, Why::AttemptTimeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_calls_carry_the_clients_token_and_refresh_it_once() {
    let server = chaos().await;
    let base = server.url();
    let client = client_with_token(&base);
    let http = stack(&client);
    for _ in 0..3 {
        let response = http
            .get(format!("{base}/protected/x"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    assert_eq!(server.stats().tokens_issued, 1, "one token for every call");
    // The server forgets its tokens: the 401 makes the engine fetch one more, once.
    server.state().expire_tokens();
    let response = http
        .get(format!("{base}/protected/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (200, 2));
    assert_eq!(server.stats().tokens_issued, 2);
    // The client itself uses the same token.
    let value: Value = client
        .get_json(format!("{base}/protected/y"))
        .await
        .unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(server.stats().tokens_issued, 2);
    // A request with its own Authorization keeps it: no token, and the 401 is the answer.
    let response = http
        .get(format!("{base}/protected/z"))
        .header("authorization", "Bearer mine")
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (401, 1));
    assert_eq!(server.stats().tokens_issued, 2);
}

/// The same scenarios through `RetryTransientMiddleware` and through `ResileMiddleware`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_to_retry_transient_middleware() {
    let server = chaos().await;
    let state = server.state();
    let backoff = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(20))
        .build_with_max_retries(3);
    let theirs = ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(backoff))
        .build();
    // (script, replies, requests through RetryTransientMiddleware, through ResileMiddleware)
    let always_503: Vec<Value> = (0..8).map(|_| json!({"status": 503})).collect();
    let scenarios = [
        (
            "503-503-200",
            json!([{"status": 503}, {"status": 503}, {"status": 200}]),
            3,
            3,
        ),
        ("400", json!([{"status": 400}]), 1, 1),
        (
            "always-503",
            Value::Array(always_503),
            4,
            u64::from(fast_policy().retry.max_attempts),
        ),
    ];
    for (id, replies, theirs_sent, ours_sent) in scenarios {
        let client = client_with(fast_policy());
        let ours = stack(&client);
        for (who, http, expected) in [("theirs", &theirs, theirs_sent), ("ours", &ours, ours_sent)]
        {
            let name = format!("{id}-{who}");
            script(&server, &name, replies.clone());
            let answer = http.get(format!("{}/s/{name}", server.url())).send().await;
            if let (Ok(response), "ours") = (&answer, who) {
                assert_eq!(u64::from(report(response).attempts), expected, "{name}");
            }
            assert_eq!(state.script_log(&name).unwrap().count, expected, "{name}");
        }
    }

    // A POST the server applies and then answers 503: retried without a key, it is applied
    // twice; with the engine's key, once.
    let client = client_with(fast_policy());
    let ours = stack(&client);
    let url = format!("{}/orders?mode=commit_then_fail&fail=503", server.url());
    let response = theirs
        .post(&url)
        .json_body(json!({"sku": "theirs"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let theirs_orders = state.orders().len();
    let response = ours
        .post(&url)
        .json_body(json!({"sku": "ours"}))
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (201, 2));
    let ours_orders = state.orders().len() - theirs_orders;
    assert_eq!((theirs_orders, ours_orders), (2, 1));
    assert_eq!(
        server.stats().duplicate_orders,
        1,
        "only the retry without a key"
    );
}

/// `RetryTransientMiddleware` with a short backoff and 4 attempts, as in the scenarios above.
fn retry_transient() -> ClientWithMiddleware {
    let backoff = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(1), Duration::from_millis(20))
        .build_with_max_retries(3);
    ClientBuilder::new(reqwest::Client::new())
        .with(RetryTransientMiddleware::new_with_policy(backoff))
        .build()
}

fn waited_for(report: &CallReport, why: Why) -> bool {
    report
        .events
        .iter()
        .any(|e| matches!(e.kind, EventKind::Waiting { why: w, .. } if w == why))
}

/// A quota of one request a second, announced in the IETF `RateLimit` headers: the engine
/// learns the limit and waits out the used-up quota; the retry middleware walks into 429s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_hints_are_learned_and_waited_out_next_to_retry_transient_middleware() {
    let server = chaos().await;
    let url = |key: &str| {
        format!(
            "{}/ratelimited?rate=1&burst=1&dialects=ietf&key={key}",
            server.url()
        )
    };

    let theirs = retry_transient();
    let before = server.stats().rate_limited;
    assert_eq!(
        theirs.get(url("theirs")).send().await.unwrap().status(),
        200
    );
    let second = theirs.get(url("theirs")).send().await.unwrap();
    assert_eq!(
        second.status(),
        429,
        "four attempts within the second, all refused"
    );
    let theirs_refused = server.stats().rate_limited - before;
    assert_eq!(theirs_refused, 4);

    let client = client_with(fast_policy());
    let ours = stack(&client);
    let before = server.stats().rate_limited;
    let first = ours.get(url("ours")).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let learned = report(&first).events.iter().find_map(|e| match e.kind {
        EventKind::LimitLearned {
            per_second, burst, ..
        } => Some((per_second, burst)),
        _ => None,
    });
    assert_eq!(learned, Some((1.0, 1)), "{:#?}", report(&first).decisions());
    let second = ours.get(url("ours")).send().await.unwrap();
    assert_eq!(status_and_attempts(&second), (200, 1));
    assert!(
        waited_for(&report(&second), Why::ServerQuotaHold),
        "{:#?}",
        report(&second).decisions()
    );
    assert_eq!(
        server.stats().rate_limited - before,
        0,
        "no request was refused"
    );
}

/// The retry budget: with two retries in reserve and none earned, an outage gets two retries
/// in all from the engine, and four attempts per call from the retry middleware.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_budget_caps_retries_into_an_outage_next_to_retry_transient_middleware() {
    let server = chaos().await;
    let url = format!("{}/status/503", server.url());
    const CALLS: u64 = 5;

    let theirs = retry_transient();
    let before = server.stats().requests;
    for _ in 0..CALLS {
        assert_eq!(theirs.get(&url).send().await.unwrap().status(), 503);
    }
    assert_eq!(server.stats().requests - before, CALLS * 4);

    let mut policy = fast_policy();
    policy.retry.max_attempts = 4;
    policy.breaker.enabled = false;
    policy.budget.ratio = 0.0;
    policy.budget.reserve = 2;
    let client = client_with(policy);
    let ours = stack(&client);
    let before = server.stats().requests;
    let mut last = None;
    for _ in 0..CALLS {
        last = Some(ours.get(&url).send().await.unwrap_err());
    }
    assert_eq!(
        server.stats().requests - before,
        CALLS + 2,
        "two retries in all"
    );
    let e = last.unwrap();
    assert_eq!(resile_error(&e).why(), Some(Why::BudgetExhausted), "{e:?}");
    assert_eq!(resile_error(&e).status(), Some(503));
}

/// The client-side rate limit paces requests through the stack as it paces the client's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_side_rate_limit_paces_the_stacks_requests() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.limit = Some(serde_json::from_value(json!({"per_second": 2.0, "burst": 1})).unwrap());
    let client = client_with(policy);
    let http = stack(&client);
    let url = format!("{}/status/200", server.url());
    let first = http.get(&url).send().await.unwrap();
    assert!(!waited_for(&report(&first), Why::ClientRateLimit));
    // Within half a second of the first: the limiter makes it wait, then it goes.
    let second = http.get(&url).send().await.unwrap();
    assert_eq!(status_and_attempts(&second), (200, 1));
    assert!(
        waited_for(&report(&second), Why::ClientRateLimit),
        "{:#?}",
        report(&second).decisions()
    );
}

/// `CallOptions` in the request's extensions: what `RequestBuilder` sets for the client's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_options_in_the_extensions_set_attempts_deadline_token_and_key() {
    let server = chaos().await;
    let base = server.url();
    let client = client_with_token(&base);
    let http = stack(&client);

    let e = http
        .get(format!("{base}/status/503"))
        .with_extension(CallOptions::new().max_attempts(2).without_token())
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            resile_error(&e),
            Error::RetriesExhausted { attempts: 2, .. }
        ),
        "{e:?}"
    );

    script(&server, "slow-opt", json!([{"delay_ms": 2500}]));
    let e = http
        .get(format!("{base}/s/slow-opt"))
        .with_extension(
            CallOptions::new()
                .deadline(Duration::from_millis(300))
                .without_token(),
        )
        .send()
        .await
        .unwrap_err();
    let why = resile_error(&e).why();
    assert!(
        matches!(why, Some(Why::DeadlineExceeded | Why::DeadlineWouldPass)),
        "{e:?}"
    );

    // No key: a POST that may have been applied is not repeated.
    let url = format!("{base}/orders?mode=commit_then_fail&fail=503");
    let e = http
        .post(&url)
        .json_body(json!({"sku": "no-key"}))
        .with_extension(CallOptions::new().without_idempotency_key().without_token())
        .send()
        .await
        .unwrap_err();
    assert_eq!(resile_error(&e).why(), Some(Why::NotIdempotent), "{e:?}");
    assert_eq!(server.state().orders().len(), 1);
    assert_eq!(server.state().orders()[0].idempotency_key, None);

    // No token: the protected resource answers 401, and no token was fetched.
    let response = http
        .get(format!("{base}/protected/x"))
        .with_extension(CallOptions::new().without_token())
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_attempts(&response), (401, 1));
    assert_eq!(server.stats().tokens_issued, 0);
    // Without options, the same request carries the client's token.
    let response = http
        .get(format!("{base}/protected/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.stats().tokens_issued, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let text = get_text(
        &client,
        &format!("{}/flaky?key=readme&fail=1", server.url()),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"key": "readme", "attempt": 2})
    );
}

#[test]
fn the_readme_shows_this_code() {
    resile_chaos::readme::assert_snippet_is_code(
        include_str!("../../README.md"),
        "## With reqwest-middleware",
        include_str!("middleware.rs"),
        "native/tests/middleware.rs",
    );
}
