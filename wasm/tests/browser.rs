//! The browser adapter in a real headless Chromium, against the chaos server on another origin
//! (so every request is a CORS request).
//!
//! `scripts/test-wasm.sh` starts the chaos server and builds these tests with
//! `RESILE_CHAOS_URL` set; without it every test fails, saying so (a run that checked nothing
//! must not pass).
#![cfg(target_arch = "wasm32")]

/// Every scenario of `tests/scenarios/`, listed by `build.rs` from the directory.
mod scenarios {
    include!(concat!(env!("OUT_DIR"), "/scenarios.rs"));
}

use core::cell::{Cell, RefCell};
use core::time::Duration;
use std::rc::Rc;

use futures_util::future::join_all;
use js_sys::{Function, Object, Promise, Reflect, JSON};
use resile_core::breaker::{BreakerSnapshot, HoldKind};
use resile_core::engine::EventKind;
use resile_core::paginate::{Body as PageBody, PageFailure, PageReply, Step, Walk};
use resile_core::sim::{
    has_date_headers, run_scenario, stop_label, verify, CallPlan, ControlAction, ControlStep,
    FallbackPlan, RealClock, Scenario, ScenarioResult, TokenPlan,
};
use resile_core::{Config, Event, FailureKind, Idempotency, Last, Method, TransportError, Why};
use resile_wasm::conformance::{browser_skip_reason, chaos_script};
use resile_wasm::driver::{
    Body, CallError, Driver, Fallback, FallbackSource, Grant, Options, Reply, RequestSpec,
    TokenProvider,
};
use resile_wasm::js::sleep;
use resile_wasm::js_api::{ClientConfig, JsClient, RequestOptions};
use resile_wasm::IdempotencyKey;
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(url: &str, init: &JsValue) -> Promise;
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn perf_now() -> f64;
}

// ---- helpers ------------------------------------------------------------------------------------

/// The chaos server's URL, compiled in by `scripts/test-wasm.sh`. Without it a test fails: a
/// browser run that reached no server proved nothing.
fn chaos() -> String {
    match option_env!("RESILE_CHAOS_URL") {
        Some(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => panic!(
            "RESILE_CHAOS_URL was not set when the tests were built: run scripts/test-wasm.sh, \
             which starts the chaos server and passes its URL"
        ),
    }
}

thread_local! {
    static COUNTER: Cell<u32> = const { Cell::new(0) };
    /// Final errors whose semantics the conformance replay compared with the sim's.
    static ERRORS_COMPARED: Cell<u32> = const { Cell::new(0) };
}

/// A name no earlier run of the tests used on this chaos server.
fn unique(prefix: &str) -> String {
    let n = COUNTER.with(|c| {
        c.set(c.get() + 1);
        c.get()
    });
    format!("{prefix}-{}-{n}", js_sys::Date::now() as u64)
}

/// A plain fetch, outside the engine (for the chaos server's control routes).
async fn raw(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, String), String> {
    let init = Object::new();
    let set = |k: &str, v: &JsValue| Reflect::set(&init, &k.into(), v).map(|_| ());
    set("method", &method.into()).map_err(|_| "init")?;
    if let Some(b) = body {
        set("body", &b.into()).map_err(|_| "init")?;
    }
    let h = Object::new();
    for (k, v) in headers {
        let _ = Reflect::set(&h, &(*k).into(), &(*v).into());
    }
    set("headers", &h.into()).map_err(|_| "init")?;
    let response: web_sys::Response = JsFuture::from(global_fetch(url, &init.into()))
        .await
        .map_err(|e| format!("fetch {url}: {e:?}"))?
        .dyn_into()
        .map_err(|_| "not a Response")?;
    let text = JsFuture::from(response.text().map_err(|_| "text")?)
        .await
        .map_err(|_| "body")?;
    Ok((response.status(), text.as_string().unwrap_or_default()))
}

async fn control(method: &str, url: &str, body: Option<&Value>) -> Value {
    let text = body.map(|b| b.to_string());
    let (status, reply) = raw(
        method,
        url,
        text.as_deref(),
        &[("content-type", "application/json")],
    )
    .await
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    assert!(
        (200..300).contains(&status),
        "{method} {url} answered {status}: {reply}"
    );
    serde_json::from_str(&reply).unwrap_or(Value::Null)
}

async fn stats(chaos: &str) -> Value {
    control("GET", &format!("{chaos}/stats"), None).await
}

fn counter(stats: &Value, name: &str) -> u64 {
    stats[name]
        .as_u64()
        .unwrap_or_else(|| panic!("/stats has no counter `{name}`: {stats}"))
}

/// A driver with a config from JSON, recording every event.
fn driver(config: Config, options: Options) -> (Driver, Rc<RefCell<Vec<Event>>>) {
    let d = Driver::new(config, options).expect("valid config");
    let events: Rc<RefCell<Vec<Event>>> = Rc::default();
    let sink = events.clone();
    d.add_listener(Rc::new(move |e: &Event, _| {
        sink.borrow_mut().push(e.clone())
    }));
    (d, events)
}

fn config(text: &str) -> Config {
    Config::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn failure(result: Result<Reply, CallError>) -> resile_core::Failure {
    match result {
        Err(CallError::Failed { failure, .. }) => failure,
        Err(CallError::Invalid(m)) => panic!("invalid request: {m}"),
        Err(CallError::Resume(e)) => panic!("download not resumed: {e}"),
        Ok(r) => panic!(
            "expected a failure, got status {} after {} attempts",
            r.status, r.attempts
        ),
    }
}

fn ok(result: Result<Reply, CallError>) -> Reply {
    match result {
        Ok(r) => r,
        Err(CallError::Failed { failure, .. }) => panic!("call failed: {failure:?}"),
        Err(CallError::Invalid(m)) => panic!("invalid request: {m}"),
        Err(CallError::Resume(e)) => panic!("download not resumed: {e}"),
    }
}

fn retries(events: &[Event]) -> Vec<(Duration, Why)> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { delay, why, .. } => Some((*delay, *why)),
            _ => None,
        })
        .collect()
}

/// A token provider for the chaos server's client-credentials endpoint; counts its calls.
fn chaos_tokens(chaos: &str, calls: Rc<Cell<u32>>) -> TokenProvider {
    let url = format!("{chaos}/oauth/token");
    Rc::new(move || {
        let (url, calls) = (url.clone(), calls.clone());
        Box::pin(async move {
            calls.set(calls.get() + 1);
            let form = "grant_type=client_credentials&client_id=demo&client_secret=demo";
            let (status, body) = raw(
                "POST",
                &url,
                Some(form),
                &[("content-type", "application/x-www-form-urlencoded")],
            )
            .await?;
            if status != 200 {
                return Err(format!("token endpoint answered {status}: {body}"));
            }
            let v: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            Ok(Grant {
                access_token: v["access_token"]
                    .as_str()
                    .ok_or("no access_token")?
                    .to_string(),
                expires_in: v["expires_in"].as_f64().map(Duration::from_secs_f64),
            })
        })
    })
}

/// A token provider playing a scenario's token endpoint; counts its fetches.
fn scenario_tokens(plan: &TokenPlan, fetches: Rc<Cell<u32>>) -> TokenProvider {
    let plan = plan.clone();
    Rc::new(move || {
        let (plan, fetches) = (plan.clone(), fetches.clone());
        Box::pin(async move {
            fetches.set(fetches.get() + 1);
            let n = fetches.get();
            sleep(Duration::from_millis(plan.latency_ms)).await;
            if plan.fail_fetches.contains(&n) {
                return Err(format!("scripted failure of fetch {n}"));
            }
            Ok(Grant {
                access_token: format!("scenario-token-{n}"),
                expires_in: plan.expires_in_ms.map(Duration::from_millis),
            })
        })
    })
}

fn js_client(config: Value) -> JsClient {
    let config: ClientConfig = JSON::parse(&config.to_string())
        .expect("json")
        .unchecked_into();
    JsClient::new(Some(config)).unwrap_or_else(|e| panic!("Client::new: {e:?}"))
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

fn prop(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

// ---- tests --------------------------------------------------------------------------------------

#[wasm_bindgen_test]
async fn retry_after_is_honoured() {
    let chaos = chaos();
    // Without Retry-After the backoff would retry after 10 ms.
    let (d, events) = driver(
        config(r#"{"backoff":{"base_ms":10,"jitter":"none"}}"#),
        Options::default(),
    );
    let key = unique("ra");
    let reply = ok(d
        .request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/flaky?key={key}&fail=1&status=429&retry_after=1"),
        ))
        .await);
    assert_eq!((reply.status, reply.attempts), (200, 2));
    assert!(reply.cross_origin, "the chaos server is another origin");
    // The second attempt started no earlier than the engine scheduled it (timers round up).
    let (scheduled, second) = {
        let events = events.borrow();
        let at =
            |pick: &dyn Fn(&EventKind) -> bool| events.iter().find(|e| pick(&e.kind)).map(|e| e.at);
        (
            at(&|k| matches!(k, EventKind::RetryScheduled { .. })).expect("a retry"),
            at(&|k| matches!(k, EventKind::AttemptStarted { attempt: 2, .. })).expect("attempt 2"),
        )
    };
    assert!(
        second >= scheduled + Duration::from_secs(1),
        "attempt 2 at {second:?}, retry scheduled at {scheduled:?} for 1 s"
    );
    let r = retries(&events.borrow());
    assert_eq!(r, [(Duration::from_secs(1), Why::RetryAfterHeader)]);
    assert!(events
        .borrow()
        .iter()
        .any(|e| matches!(e.kind, EventKind::HostHeld { .. })));
    assert!(!events
        .borrow()
        .iter()
        .any(|e| matches!(e.kind, EventKind::HintUnreadable { .. })));
}

#[wasm_bindgen_test]
async fn attempt_timeout_aborts_the_fetch() {
    let chaos = chaos();
    let before = counter(&stats(&chaos).await, "stalls");
    let (d, events) = driver(
        config(
            r#"{"retry":{"attempt_timeout_ms":300,"max_attempts":2},"backoff":{"base_ms":10,"jitter":"none"}}"#,
        ),
        Options::default(),
    );
    let f = failure(
        d.request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/stall?ms=20000"),
        ))
        .await,
    );
    assert_eq!(f.why, Why::MaxAttempts);
    assert_eq!(f.last, Some(Last::Transport(TransportError::Timeout)));
    assert_eq!(f.kind(), FailureKind::RetriesExhausted);
    let timeouts: Vec<Option<Duration>> = events
        .borrow()
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::AttemptStarted { timeout, .. } => Some(timeout),
            _ => None,
        })
        .collect();
    assert_eq!(timeouts, [Some(Duration::from_millis(300)); 2]);
    let timeouts = events
        .borrow()
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::AttemptFinished {
                    result: Last::Transport(TransportError::Timeout),
                    ..
                }
            )
        })
        .count();
    assert_eq!(timeouts, 2);
    let after = counter(&stats(&chaos).await, "stalls");
    assert_eq!(
        after - before,
        2,
        "both attempts reached the server and were abandoned"
    );
}

#[wasm_bindgen_test]
async fn breaker_opens_fails_fast_and_recovers_through_a_probe() {
    let chaos = chaos();
    let (d, events) = driver(
        config(
            r#"{"retry":{"max_attempts":1},"breaker":{"consecutive_failures":2,"failure_rate":null,"open_ms":1000}}"#,
        ),
        Options::default(),
    );
    for _ in 0..2 {
        let f = failure(
            d.request(RequestSpec::new(Method::Get, format!("{chaos}/status/503")))
                .await,
        );
        assert_eq!(f.last, Some(Last::Status(503)));
    }
    let now = d.now();
    let hosts = d.with_engine(|e| e.hosts(now));
    assert!(
        matches!(
            hosts[0].breaker,
            resile_core::breaker::BreakerState::Open { .. }
        ),
        "{hosts:?}"
    );

    let f = failure(
        d.request(RequestSpec::new(Method::Get, format!("{chaos}/status/200")))
            .await,
    );
    assert_eq!(
        (f.why, f.attempts, f.kind()),
        (Why::BreakerOpen, 0, FailureKind::Unavailable)
    );
    assert!(f.retry_at.is_some());

    sleep(Duration::from_millis(1100)).await;
    let reply = ok(d
        .request(RequestSpec::new(Method::Get, format!("{chaos}/status/200")))
        .await);
    assert_eq!(reply.status, 200);
    let kinds: Vec<&'static str> = events
        .borrow()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::BreakerOpened { .. } => Some("opened"),
            EventKind::BreakerHalfOpen { .. } => Some("half_open"),
            EventKind::AttemptStarted { probe: true, .. } => Some("probe"),
            EventKind::BreakerClosed { .. } => Some("closed"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["opened", "half_open", "probe", "closed"]);
}

#[wasm_bindgen_test]
async fn token_fetch_is_single_flight_for_concurrent_calls_and_401s() {
    let chaos = chaos();
    let issued = counter(&stats(&chaos).await, "tokens_issued");
    let provider_calls = Rc::new(Cell::new(0));
    let options = Options {
        token_provider: Some(chaos_tokens(&chaos, provider_calls.clone())),
        ..Options::default()
    };
    let (d, events) = driver(Config::default(), options);
    let calls = (0..20).map(|i| {
        d.request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/protected/a{i}"),
        ))
    });
    for r in join_all(calls).await {
        assert_eq!(ok(r).status, 200);
    }
    assert_eq!(
        provider_calls.get(),
        1,
        "20 concurrent calls share one token fetch"
    );
    assert_eq!(counter(&stats(&chaos).await, "tokens_issued") - issued, 1);

    // Every token stops working: the 401s force one refresh, not ten.
    control("POST", &format!("{chaos}/admin/expire-tokens"), None).await;
    let calls = (0..10).map(|i| {
        d.request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/protected/b{i}"),
        ))
    });
    for r in join_all(calls).await {
        let r = ok(r);
        assert_eq!(r.status, 200);
    }
    assert_eq!(provider_calls.get(), 2, "ten 401s share one forced refresh");
    assert_eq!(counter(&stats(&chaos).await, "tokens_issued") - issued, 2);
    let refreshed = events
        .borrow()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::TokenRefreshed { .. }))
        .count();
    assert_eq!(refreshed, 2);
}

#[wasm_bindgen_test]
async fn pagination_in_four_styles_under_faults() {
    let chaos = chaos();
    let client = js_client(json!({
        "baseUrl": chaos,
        "seed": 5,
        "retry": {"max_attempts": 8},
        "backoff": {"base_ms": 5, "cap_ms": 50, "jitter": "none"},
        "budget": {"reserve": 100, "max_saved": 100},
        "breaker": {"enabled": false},
    }));
    let q = "total=250&fail_rate=0.25";
    let cases = [
        (
            "link",
            format!("/items/link?page_size=100&{q}"),
            json!({"style": "link"}),
        ),
        (
            "cursor",
            format!("/items/cursor?limit=100&{q}"),
            json!({"style": "cursor"}),
        ),
        (
            "offset",
            format!("/items/offset?{q}"),
            json!({"style": "offset", "limit": 100}),
        ),
        (
            "page",
            format!("/items/page?{q}"),
            json!({"style": "page", "perPage": 100}),
        ),
    ];
    let failures_before = counter(&stats(&chaos).await, "page_failures");
    for (style, url, options) in cases {
        let options = JSON::parse(&options.to_string()).unwrap().unchecked_into();
        let pages = client
            .paginate(url.clone(), Some(options))
            .unwrap_or_else(|e| panic!("{style}: {e:?}"));
        let iterator = Reflect::get(&pages, &js_sys::Symbol::async_iterator()).unwrap();
        assert!(iterator.is_function(), "{style}: usable with for await");
        let next: Function = prop(&pages, "next").unchecked_into();
        let mut ids = Vec::new();
        for _ in 0..1000 {
            let step = settle(next.call0(&pages).unwrap().unchecked_into())
                .await
                .unwrap_or_else(|e| panic!("{style}: {:?}", prop(&e, "message")));
            if prop(&step, "done").as_bool() == Some(true) {
                break;
            }
            ids.push(prop(&prop(&step, "value"), "id").as_f64().unwrap() as u64);
        }
        assert_eq!(ids, (1..=250).collect::<Vec<u64>>(), "{style}");
        assert_eq!(prop(&pages, "pages").as_f64(), Some(3.0), "{style}");
    }
    let failed = counter(&stats(&chaos).await, "page_failures") - failures_before;
    assert!(
        failed > 0,
        "fail_rate=0.25 made some pages fail, and the retries hid it"
    );
}

/// A walk that fails says where to resume (the error's `resume`); walks resumed from there
/// get the rest, with no item lost or repeated.
#[wasm_bindgen_test]
async fn a_failed_walk_resumes_where_it_stopped() {
    let chaos = chaos();
    let client = js_client(json!({"baseUrl": chaos, "seed": 5, "breaker": {"enabled": false}}));
    let url = "/items/cursor?limit=10&total=200&fail_rate=0.35".to_string();
    let (mut ids, mut stops, mut resume) = (Vec::<u64>::new(), 0, None::<String>);
    for _ in 0..200 {
        // No retries: the first failed page request stops the walk.
        let mut options = json!({"style": "cursor", "retries": 0});
        if let Some(token) = &resume {
            options["resume"] = json!(token);
        }
        let options = JSON::parse(&options.to_string()).unwrap().unchecked_into();
        let pages = client.paginate(url.clone(), Some(options)).unwrap();
        let next: Function = prop(&pages, "next").unchecked_into();
        resume = None;
        for _ in 0..1000 {
            match settle(next.call0(&pages).unwrap().unchecked_into()).await {
                Ok(step) if prop(&step, "done").as_bool() == Some(true) => break,
                Ok(step) => ids.push(prop(&prop(&step, "value"), "id").as_f64().unwrap() as u64),
                Err(e) => {
                    assert_eq!(prop(&e, "retryable").as_bool(), Some(true));
                    resume = Some(
                        prop(&e, "resume")
                            .as_string()
                            .unwrap_or_else(|| panic!("no resume in {:?}", prop(&e, "message"))),
                    );
                    stops += 1;
                    break;
                }
            }
        }
        if resume.is_none() {
            break;
        }
    }
    assert!(resume.is_none(), "the walk got to its end");
    assert!(stops >= 1, "it stopped and was resumed");
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<u64>>(),
        "every item once, in order"
    );
}

#[wasm_bindgen_test]
async fn writes_carry_one_idempotency_key_on_every_attempt() {
    let chaos = chaos();
    let (d, _) = driver(
        config(r#"{"backoff":{"base_ms":20,"jitter":"none"}}"#),
        Options::default(),
    );
    // A body cut short after the headers: the write may have been applied.
    let script = json!({"replies": [{"fault": "truncate"}, {"status": 201, "body": {"id": 1}}]});
    let post = |id: &str, key: IdempotencyKey| {
        let mut spec = RequestSpec::new(Method::Post, format!("{chaos}/s/{id}"));
        spec.body = Some(Body::Text(r#"{"sku":7}"#.into()));
        spec.headers
            .push(("content-type".into(), "application/json".into()));
        spec.key = key;
        spec
    };
    let log_of = |id: String| {
        let url = format!("{chaos}/script/{id}/log");
        async move { control("GET", &url, None).await }
    };

    // Automatic key: the retry carries the same key and request id.
    let auto = unique("idem-auto");
    control("POST", &format!("{chaos}/script/{auto}"), Some(&script)).await;
    let reply = ok(d.request(post(&auto, IdempotencyKey::Auto)).await);
    assert_eq!((reply.status, reply.attempts), (201, 2));
    let log = log_of(auto).await;
    let seen = log["requests"].as_array().unwrap();
    assert_eq!(seen.len(), 2, "{log}");
    let key = seen[0]["idempotency_key"]
        .as_str()
        .expect("a generated Idempotency-Key");
    assert_eq!(key.len(), 36);
    assert_eq!(seen[1]["idempotency_key"], seen[0]["idempotency_key"]);
    assert_eq!(seen[1]["x_request_id"], seen[0]["x_request_id"]);
    assert_eq!(
        seen[0]["x_request_id"].as_str(),
        Some(reply.request_id.as_str())
    );

    // The caller's own key, sent as is on both attempts.
    let own = unique("idem-own");
    control("POST", &format!("{chaos}/script/{own}"), Some(&script)).await;
    ok(
        d.request(post(&own, IdempotencyKey::Explicit("order-7".into())))
            .await,
    );
    let log = log_of(own).await;
    let keys: Vec<&str> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["idempotency_key"].as_str())
        .collect();
    assert_eq!(keys, ["order-7", "order-7"]);

    // No key: a write that may have been applied is not repeated.
    let off = unique("idem-off");
    control("POST", &format!("{chaos}/script/{off}"), Some(&script)).await;
    let f = failure(d.request(post(&off, IdempotencyKey::Off)).await);
    assert_eq!(
        (f.why, f.attempts, f.last),
        (
            Why::NotIdempotent,
            1,
            Some(Last::Transport(TransportError::Truncated))
        )
    );
    assert_ne!(f.processed, resile_core::Processed::Never);
    let log = log_of(off).await;
    assert_eq!(log["count"], 1);
    assert_eq!(log["requests"][0]["idempotency_key"], Value::Null);

    // A connection closed without a response: Chromium itself resends the POST on a fresh
    // connection when the closed one was a reused keep-alive connection, below any JavaScript.
    // Whoever resends, the key is the same, so the server can tell.
    let reset = unique("idem-reset");
    let script = json!({"replies": [{"fault": "reset"}, {"status": 201}]});
    control("POST", &format!("{chaos}/script/{reset}"), Some(&script)).await;
    let reply = ok(d.request(post(&reset, IdempotencyKey::Auto)).await);
    let log = log_of(reset).await;
    let seen = log["requests"].as_array().unwrap();
    console_log!(
        "reset POST: {} attempt(s) by resile, {} request(s) at the server",
        reply.attempts,
        seen.len()
    );
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|r| r["idempotency_key"] == seen[0]["idempotency_key"]
            && r["idempotency_key"].is_string()));

    // A real commit-then-fail endpoint: one order however the first answer was lost.
    let before = stats(&chaos).await;
    let mut spec = RequestSpec::new(
        Method::Post,
        format!("{chaos}/orders?mode=commit_then_fail&fail=503"),
    );
    spec.body = Some(Body::Text(json!({"sku": unique("commit")}).to_string()));
    spec.headers
        .push(("content-type".into(), "application/json".into()));
    let reply = ok(d.request(spec).await);
    assert_eq!((reply.status, reply.attempts), (201, 2));
    let after = stats(&chaos).await;
    assert_eq!(
        counter(&after, "orders_created") - counter(&before, "orders_created"),
        1
    );
    assert_eq!(
        counter(&after, "duplicate_orders"),
        counter(&before, "duplicate_orders")
    );
}

#[wasm_bindgen_test]
async fn hidden_hints_are_reported_and_backoff_takes_over() {
    let chaos = chaos();
    let cfg = r#"{"retry":{"max_attempts":2},"backoff":{"base_ms":50,"jitter":"none"}}"#;

    let (d, events) = driver(config(cfg), Options::default());
    let f = failure(
        d.request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/status/429?retry_after=1&no_expose=1"),
        ))
        .await,
    );
    assert_eq!((f.why, f.attempts), (Why::MaxAttempts, 2));
    let unreadable = events
        .borrow()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::HintUnreadable { .. }))
        .count();
    assert_eq!(unreadable, 2, "each 429 without a readable hint says so");
    assert_eq!(
        retries(&events.borrow()),
        [(Duration::from_millis(50), Why::Backoff)]
    );

    // The same answer with the header exposed: the engine reads it.
    let (d, events) = driver(config(cfg), Options::default());
    let _ = d
        .request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/status/429?retry_after=1"),
        ))
        .await;
    assert!(!events
        .borrow()
        .iter()
        .any(|e| matches!(e.kind, EventKind::HintUnreadable { .. })));
    assert_eq!(
        retries(&events.borrow()),
        [(Duration::from_secs(1), Why::RetryAfterHeader)]
    );
}

fn js(text: &str) -> JsValue {
    JSON::parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"))
}

fn string(v: &JsValue, key: &str) -> Option<String> {
    prop(v, key).as_string()
}

/// Calls `object.method()` and awaits the promise it returns.
async fn call_async(object: &JsValue, method: &str) -> Result<JsValue, JsValue> {
    let f: Function = prop(object, method).unchecked_into();
    settle(f.call0(object).expect("callable").unchecked_into()).await
}

#[wasm_bindgen_test]
async fn the_js_api_is_shaped_like_fetch() {
    let chaos = chaos();
    // A bad config names its field, in either spelling.
    for bad in [
        r#"{"retry":{"max_attempts":0}}"#,
        r#"{"retry":{"maxAttempts":0}}"#,
    ] {
        let e = JsClient::new(Some(js(bad).unchecked_into()))
            .err()
            .expect("rejected");
        assert!(resile_wasm::js_api::is_resile_error(&e), "{bad}");
        assert!(e.is_instance_of::<js_sys::Error>());
        assert_eq!(string(&e, "name").as_deref(), Some("ResileError"));
        assert_eq!(string(&e, "code").as_deref(), Some("config"));
        assert!(string(&e, "message").unwrap().contains("retry.maxAttempts"));
        assert_eq!(string(&e, "field").as_deref(), Some("retry.maxAttempts"));
    }
    assert!(JsClient::new(Some(js(r#"{"retries":3}"#).unchecked_into())).is_err());
    assert!(!resile_wasm::js_api::is_resile_error(
        &js_sys::Error::new("plain").into()
    ));

    // camelCase config, as JavaScript writes it.
    let client = js_client(json!({
        "baseUrl": chaos,
        "headers": {"x-demo": "1"},
        "retry": {"maxAttempts": 2},
        "backoff": {"baseMs": 10, "jitter": "none"},
        "maxInFlight": 4,
    }));
    assert_eq!(
        prop(&prop(&client.config(), "retry"), "maxAttempts").as_f64(),
        Some(2.0),
        "config() answers in camelCase too"
    );
    let seen: Rc<RefCell<Vec<JsValue>>> = Rc::default();
    let sink = seen.clone();
    let callback = Closure::<dyn Fn(JsValue)>::new(move |e: JsValue| sink.borrow_mut().push(e));
    let dispose = client.on_event(callback.as_ref().unchecked_ref::<Function>().clone());
    assert!(dispose.is_function(), "onEvent returns a disposer");

    let response = settle(client.get("/status/200".into(), None))
        .await
        .expect("200");
    assert_eq!(prop(&response, "status").as_f64(), Some(200.0));
    assert_eq!(prop(&response, "ok").as_bool(), Some(true));
    assert_eq!(prop(&response, "attempts").as_f64(), Some(1.0));
    assert_eq!(string(&response, "requestId").map(|s| s.len()), Some(36));
    let headers: web_sys::Headers = prop(&response, "headers")
        .dyn_into()
        .expect("a Headers object");
    assert_eq!(
        headers.get("X-Request-ID").ok().flatten(),
        string(&response, "requestId"),
        "the server echoed it, CORS exposed it, and Headers reads it case-insensitively"
    );
    let text = call_async(&response, "text").await.expect("text()");
    assert!(text.is_string());
    let buffer = call_async(&response, "arrayBuffer")
        .await
        .expect("arrayBuffer()");
    assert!(buffer.is_instance_of::<js_sys::ArrayBuffer>());
    assert_eq!(
        js_sys::Uint8Array::new(&buffer).length() as usize,
        text.as_string().unwrap().len()
    );

    let not_found = settle(client.get_json("/status/404".into(), None))
        .await
        .expect_err("404 rejects getJson");
    assert_eq!(string(&not_found, "code").as_deref(), Some("status"));
    assert_eq!(prop(&not_found, "status").as_f64(), Some(404.0));

    let exhausted = settle(client.get("/status/503".into(), None))
        .await
        .expect_err("503s exhaust");
    assert!(resile_wasm::js_api::is_resile_error(&exhausted));
    assert!(exhausted.is_instance_of::<js_sys::Error>());
    assert_eq!(
        string(&exhausted, "code").as_deref(),
        Some("retries_exhausted")
    );
    assert_eq!(prop(&exhausted, "retryable").as_bool(), Some(true));
    assert_eq!(prop(&exhausted, "maybeProcessed").as_bool(), Some(true));
    assert_eq!(prop(&exhausted, "attempts").as_f64(), Some(2.0));
    assert_eq!(string(&exhausted, "why").as_deref(), Some("max_attempts"));
    assert!(string(&exhausted, "stack").is_some_and(|s| !s.is_empty()));

    let timeout = settle(client.get(
        "/stall?ms=5000".into(),
        Some(js(r#"{"deadlineMs":200}"#).unchecked_into()),
    ))
    .await
    .expect_err("the deadline ends it");
    assert_eq!(string(&timeout, "code").as_deref(), Some("timeout"));

    let controller = web_sys::AbortController::new().unwrap();
    let options = Object::new();
    Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    let pending = client.get("/stall?ms=5000".into(), Some(options.unchecked_into()));
    sleep(Duration::from_millis(150)).await;
    controller.abort();
    let cancelled = settle(pending).await.expect_err("the caller cancelled");
    assert_eq!(string(&cancelled, "code").as_deref(), Some("cancelled"));
    assert_eq!(
        string(&cancelled, "why").as_deref(),
        Some("cancelled"),
        "the engine decided it, with the attempt still in flight"
    );
    assert_eq!(prop(&cancelled, "attempts").as_f64(), Some(1.0));

    let posted = settle(client.post(
        "/orders".into(),
        Some(js(&json!({"json": {"sku": unique("js")}}).to_string()).unchecked_into()),
    ))
    .await
    .expect("order");
    assert_eq!(prop(&posted, "status").as_f64(), Some(201.0));
    let order = call_async(&posted, "json").await.expect("json()");
    assert_eq!(string(&order, "idempotency_key").map(|k| k.len()), Some(36));

    let events = seen.borrow().clone();
    let names: Vec<String> = events.iter().filter_map(|e| string(e, "event")).collect();
    assert!(
        names.iter().any(|n| n == "call_started") && names.iter().any(|n| n == "retry_scheduled"),
        "{names:?}"
    );
    for e in &events {
        assert!(
            prop(e, "atMs").as_f64().is_some(),
            "camelCase keys: {:?}",
            JSON::stringify(e)
        );
        assert!(prop(e, "at_ms").is_undefined());
    }
    let started = events
        .iter()
        .find(|e| string(e, "event").as_deref() == Some("call_started"))
        .unwrap();
    assert_eq!(string(started, "url"), Some(format!("{chaos}/status/200")));
    let retry = events
        .iter()
        .find(|e| string(e, "event").as_deref() == Some("retry_scheduled"))
        .unwrap();
    assert_eq!(
        string(retry, "explain").as_deref(),
        Some(Why::Backoff.explain())
    );
    assert!(prop(retry, "delayMs").as_f64().is_some());

    // The disposer removes the listener: no event reaches it afterwards.
    let dispose: Function = dispose.unchecked_into();
    dispose.call0(&JsValue::NULL).unwrap();
    dispose.call0(&JsValue::NULL).unwrap();
    let before = seen.borrow().len();
    settle(client.get("/status/200".into(), None))
        .await
        .expect("200");
    assert_eq!(seen.borrow().len(), before);

    let hosts = client.hosts();
    let host = Reflect::get_u32(&hosts, 0).unwrap();
    assert_eq!(string(&host, "host"), Some(chaos.clone()));
    assert_eq!(string(&host, "breaker").as_deref(), Some("closed"));
    assert!(prop(&host, "consecutiveFailures").as_f64().is_some());
    assert!(prop(&host, "activeCalls").as_f64().is_some());
    let token = client.token();
    assert_eq!(prop(&token, "generation").as_f64(), Some(0.0));
    assert!(prop(&token, "lastError").is_null());
    assert!(prop(&client.stats(), "breakerTrips").as_f64().is_some());
}

#[wasm_bindgen_test]
async fn paginate_stops_when_its_signal_aborts() {
    let chaos = chaos();
    let client = js_client(json!({"baseUrl": chaos, "seed": 3}));
    let controller = web_sys::AbortController::new().unwrap();
    let options = js(r#"{"style":"cursor"}"#);
    Reflect::set(&options, &"signal".into(), &controller.signal()).unwrap();
    let pages = client
        .paginate(
            "/items/cursor?limit=10&total=100".into(),
            Some(options.unchecked_into()),
        )
        .expect("a paginator");
    let first = call_async(&pages, "next").await.expect("the first item");
    assert_eq!(prop(&prop(&first, "value"), "id").as_f64(), Some(1.0));
    controller.abort();
    // The first page's items are buffered; the walk stops at the next page it would fetch.
    let mut cancelled = None;
    for _ in 0..20 {
        match call_async(&pages, "next").await {
            Ok(step) => assert_ne!(
                prop(&step, "done").as_bool(),
                Some(true),
                "cancelled, not finished"
            ),
            Err(e) => {
                cancelled = Some(e);
                break;
            }
        }
    }
    let e = cancelled.expect("next() rejected after the abort");
    assert_eq!(string(&e, "code").as_deref(), Some("cancelled"));
    assert_eq!(
        prop(&pages, "pages").as_f64(),
        Some(1.0),
        "no page after the abort"
    );
    let again = call_async(&pages, "next")
        .await
        .expect_err("still cancelled");
    assert_eq!(string(&again, "code").as_deref(), Some("cancelled"));
}

#[wasm_bindgen_test]
async fn the_bulkhead_bounds_calls_in_flight() {
    let chaos = chaos();
    // Client-wide: 6 calls to two hosts (two origins of one server), at most 2 at once.
    let (d, events) = driver(
        Config::default(),
        Options {
            max_in_flight: 2,
            ..Options::default()
        },
    );
    let other = chaos.replace("127.0.0.1", "localhost");
    let calls = (0..6).map(|i| {
        let base = if i % 2 == 0 { &chaos } else { &other };
        d.request(RequestSpec::new(
            Method::Get,
            format!("{base}/slow?ms=150&i={i}"),
        ))
    });
    for r in join_all(calls).await {
        assert_eq!(ok(r).status, 200);
    }
    assert_eq!(most_in_flight(&events.borrow(), None), 2);

    // Per host: 3 calls at once over the client, 1 per host; 4 calls to one host run one by one
    // while a call to the other host is not held up by them.
    let (d, events) = driver(
        Config::default(),
        Options {
            max_in_flight: 3,
            max_in_flight_per_host: Some(1),
            ..Options::default()
        },
    );
    let calls = (0..5).map(|i| {
        let base = if i == 4 { &other } else { &chaos };
        d.request(RequestSpec::new(
            Method::Get,
            format!("{base}/slow?ms=100&i={i}"),
        ))
    });
    for r in join_all(calls).await {
        assert_eq!(ok(r).status, 200);
    }
    let events = events.borrow();
    assert_eq!(most_in_flight(&events, Some(&chaos)), 1);
    assert_eq!(
        most_in_flight(&events, None),
        2,
        "the other host ran beside them"
    );
}

/// The most attempts the engine had out at once (for one host, or all); the engine queues the
/// calls over the limit.
fn most_in_flight(events: &[Event], host: Option<&str>) -> usize {
    let mut hosts = std::collections::HashMap::new();
    let (mut now, mut most) = (0usize, 0usize);
    let counts = |hosts: &std::collections::HashMap<_, String>, call| {
        host.is_none_or(|want| hosts.get(call).is_some_and(|h| h == want))
    };
    for e in events {
        match &e.kind {
            EventKind::CallStarted { call, host: h, .. } => {
                hosts.insert(*call, h.to_string());
            }
            EventKind::AttemptStarted { call, .. } if counts(&hosts, call) => {
                now += 1;
                most = most.max(now);
            }
            EventKind::AttemptFinished { call, .. } if counts(&hosts, call) => {
                now -= 1;
            }
            _ => {}
        }
    }
    most
}

#[wasm_bindgen_test]
async fn the_rust_api_mirrors_native() {
    use resile_wasm::{Client, ClientEvent, Error};

    let chaos = chaos();
    let seen: Rc<RefCell<Vec<ClientEvent>>> = Rc::default();
    let sink = seen.clone();
    let mut policy = Config::default();
    policy.retry.max_attempts = 3;
    policy.backoff.base_ms = 10;
    let client = Client::builder()
        .base_url(format!("{chaos}/s"))
        .default_header("x-app", "mirror")
        .engine(policy)
        .max_in_flight(4)
        .max_in_flight_per_host(2)
        .seed(9)
        .on_event(move |e: &ClientEvent| sink.borrow_mut().push(e.clone()))
        .build()
        .expect("a client");
    assert!(matches!(
        Client::builder().base_url("ftp://x").build(),
        Err(Error::InvalidUrl { .. })
    ));
    // fetch() refuses a URL with credentials: refused once, typed, and no secret is shown.
    let with_credentials = chaos.replacen("http://", "http://me:hunter2@", 1) + "/echo?token=t0p";
    match client.get(&with_credentials).send().await {
        Err(e @ Error::InvalidUrl { .. }) => {
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("t0p"),
                "{shown}"
            );
        }
        other => panic!("{:?}", other.map(|r| r.status())),
    }

    // A scripted write: a 503, then a 201 with a JSON body. The base URL got its trailing slash.
    let id = unique("mirror");
    let script =
        json!({"replies": [{"status": 503}, {"status": 201, "body": {"id": 7, "name": "seven"}}]});
    control("POST", &format!("{chaos}/script/{id}"), Some(&script)).await;
    let response = client
        .post(&id)
        .json(&json!({"name": "seven"}))
        .header("x-trace", "t-1")
        .query(&[("dry", "no")])
        .idempotency_key(IdempotencyKey::Auto)
        .deadline(Duration::from_secs(10))
        .max_attempts(3)
        .send()
        .await
        .expect("created");
    assert_eq!(response.status(), resile_wasm::http::StatusCode::CREATED);
    assert_eq!(response.attempts(), 2);
    assert_eq!(response.request_id().len(), 36);
    assert!(response.headers().get("x-request-id").is_some());
    let item: Value = response.json().expect("JSON");
    assert_eq!(item["id"], 7);
    let log = control("GET", &format!("{chaos}/script/{id}/log"), None).await;
    let requests = log["requests"].as_array().expect("a log");
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0]["idempotency_key"],
        requests[1]["idempotency_key"]
    );
    assert!(requests[0]["idempotency_key"].is_string());
    assert!(
        seen.borrow()
            .iter()
            .filter_map(ClientEvent::engine)
            .any(|e| matches!(e.kind, EventKind::RetryScheduled { .. })),
        "on_event saw the retry"
    );

    // Typed helpers and errors: the engine's failure answers the questions.
    let status = client
        .get_json::<Value>(format!("{chaos}/status/404"))
        .await
        .expect_err("a 404");
    assert!(matches!(status, Error::Status { status: 404, .. }));
    assert!(!status.is_retryable() && status.maybe_processed());
    let exhausted = client
        .get(format!("{chaos}/status/503"))
        .send()
        .await
        .expect_err("503s");
    let failure = *exhausted.failure().expect("an engine failure");
    assert_eq!(exhausted.is_retryable(), failure.is_retryable());
    assert_eq!(exhausted.why(), Some(Why::MaxAttempts));
    assert_eq!(exhausted.status(), Some(503));
    assert!(!exhausted.is_timeout());
    let timed_out = client
        .get(format!("{chaos}/stall?ms=5000"))
        .deadline(Duration::from_millis(200))
        .send()
        .await
        .expect_err("the deadline");
    assert!(timed_out.is_timeout(), "{timed_out}");
    assert!(!timed_out.to_string().contains('?'), "no query in messages");
    let bad = client
        .get("http://h.test/")
        .header("bad header", "x")
        .send()
        .await;
    assert!(matches!(bad, Err(Error::InvalidRequest { .. })));
    for method in [
        client.put(format!("{chaos}/status/200")),
        client
            .patch(format!("{chaos}/status/200"))
            .body(b"x".to_vec()),
        client.delete(format!("{chaos}/status/200")),
        client.head(format!("{chaos}/status/200")),
    ] {
        assert_eq!(method.send().await.expect("200").status().as_u16(), 200);
    }
    assert!(client.stats().calls >= 8);
    assert_eq!(client.hosts().len(), 1, "{:?}", client.hosts());
}

#[wasm_bindgen_test]
async fn conformance_scenarios_replay_like_the_sim() {
    let chaos = chaos();
    let mut failures = Vec::new();
    let (mut traced, mut checked, mut skipped) = (0, 0, 0);
    for (name, text) in scenarios::SCENARIOS {
        let s = Scenario::from_json(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(reason) = browser_skip_reason(&s) {
            console_log!("conformance {name}: skipped: {reason}");
            skipped += 1;
            continue;
        }
        // Real time runs under these decisions (a deadline of 1 s against 300 + 600 ms of
        // backoff leaves 100 ms for three round trips), so a scenario that differs is replayed
        // once more before it counts: a real difference repeats, a slow moment does not.
        let mut result = replay(&chaos, name, &s).await;
        if let Err(first) = &result {
            console_log!("conformance {name}: differed once, replaying: {first}");
            result = replay(&chaos, name, &s).await;
        }
        match result {
            Ok(summary) => {
                if s.compares_traces() {
                    traced += 1;
                } else {
                    checked += 1;
                }
                console_log!("conformance {name}: {summary}");
            }
            Err(e) => {
                console_log!("conformance {name}: DIFFERS: {e}");
                failures.push(e);
            }
        }
    }
    console_log!(
        "conformance: {traced} traces identical to the sim's, {checked} concurrent scenarios within their expectations, {skipped} skipped, {} differ",
        failures.len()
    );
    assert!(traced >= 10, "only {traced} traces compared");
    let errors = ERRORS_COMPARED.with(Cell::get);
    console_log!("conformance: {errors} final errors with the sim's kind, retryability, maybe-processed and retry_at");
    assert!(errors >= 5, "only {errors} final errors compared");
    assert_eq!(traced + checked + skipped, scenarios::SCENARIOS.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A scenario's fallback as the request's (a value: 200 `"fallback"`).
fn fallback_of(plan: FallbackPlan) -> Fallback {
    let (source, writes) = match plan {
        FallbackPlan::Value { writes } => (
            FallbackSource::Value {
                status: 200,
                headers: Vec::new(),
                body: b"fallback".to_vec(),
            },
            writes,
        ),
        FallbackPlan::LastGood { max_age_ms, writes } => (
            FallbackSource::LastGood {
                max_age: Duration::from_millis(max_age_ms),
            },
            writes,
        ),
    };
    Fallback { source, writes }
}

/// A scenario's breaker controls, each at its time (holds kept until `release`, the export kept
/// as JSON for `import`).
async fn run_controls(
    d: Driver,
    steps: Vec<ControlStep>,
    t0: f64,
    url: String,
) -> Result<(), String> {
    let mut holds = std::collections::VecDeque::new();
    let mut exported = None;
    for step in steps {
        let wait = t0 + step.at_ms as f64 - perf_now();
        if wait > 0.0 {
            sleep(Duration::from_secs_f64(wait / 1000.0)).await;
        }
        match step.action {
            ControlAction::Isolate => holds.push_back(d.hold_breaker(&url, HoldKind::Isolate)?),
            ControlAction::ForceClosed => {
                holds.push_back(d.hold_breaker(&url, HoldKind::ForceClosed)?)
            }
            ControlAction::Release => {
                if let Some(hold) = holds.pop_front() {
                    d.release_breaker(hold);
                }
            }
            ControlAction::Reset => d.reset_breaker(&url)?,
            ControlAction::Export => exported = Some(d.export_breakers().to_json()),
            ControlAction::Import => {
                if let Some(text) = &exported {
                    let snapshot = BreakerSnapshot::from_json(text).map_err(|e| e.to_string())?;
                    d.import_breakers(&snapshot).map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

/// Replays a scenario through this adapter against the chaos server: its expectations must hold
/// (with real-time slack on `finished_by_ms`) and, for a single call, its decisions must be the
/// sim's, line for line.
async fn replay(chaos: &str, name: &str, s: &Scenario) -> Result<String, String> {
    const SLACK_MS: u64 = 150;
    let sim = run_scenario(s).map_err(|e| format!("{name}: sim: {e}"))?;
    let mut starts: Vec<(u64, usize, &CallPlan)> = Vec::new();
    for plan in &s.calls {
        for i in 0..u64::from(plan.count) {
            starts.push((plan.at_ms + i * plan.spacing_ms, starts.len(), plan));
        }
    }
    starts.sort_by_key(|(at, i, _)| (*at, *i));

    // One script, or one per call for per-call replies.
    let script = chaos_script(s, if s.compares_traces() { &sim.trace } else { &[] });
    let base = unique(name);
    let ids: Vec<String> = if s.per_call {
        (0..starts.len()).map(|i| format!("{base}-{i}")).collect()
    } else {
        vec![base]
    };
    for id in &ids {
        control("POST", &format!("{chaos}/script/{id}"), Some(&script)).await;
    }

    let fetches = Rc::new(Cell::new(0u32));
    let uses_tokens = s.calls.iter().any(|c| c.token);
    let options = Options {
        seed: Some(s.seed),
        token_provider: uses_tokens.then(|| scenario_tokens(&s.token, fetches.clone())),
        ..Options::default()
    };
    let (d, events) = driver(s.config.clone(), options);
    if has_date_headers(s) {
        // An HTTP-date has whole seconds: keep the reply away from a second's edge, where the
        // rounded-up wait could differ by one from the sim's.
        let into_second = js_sys::Date::now() % 1000.0;
        if into_second > 700.0 {
            sleep(Duration::from_millis((1020.0 - into_second) as u64)).await;
        }
    }
    let t0 = perf_now();
    let (mut items, mut walk_error) = (Vec::new(), None);
    if let Some(walk) = &s.paginate {
        // The pages, one call after the other, walked by the core's walk from the last
        // page's (CORS-exposed) headers and body, as the JS API's paginate() does.
        let first = format!("{chaos}/s/{}", ids[0]);
        let mut pages = Walk::new(&first, walk.style.clone(), walk.items.clone())
            .map_err(|e| e.to_string())?
            .max_pages(walk.max_pages);
        let mut failed_as = String::new();
        for _ in 0..10_000 {
            match pages.poll(d.now()) {
                Step::Fetch(call) => {
                    let mut spec = RequestSpec::new(Method::Get, call.url.clone());
                    spec.max_attempts = Some(call.max_attempts);
                    spec.deadline = call.deadline;
                    match d.request(spec).await {
                        Ok(reply) => {
                            let body: Value =
                                serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                            let page =
                                PageReply::new(reply.status, &reply.headers, PageBody::Json(&body))
                                    .url(&reply.url)
                                    .attempts(reply.attempts);
                            items.extend(pages.accept(page).unwrap_or_default());
                        }
                        Err(e) => {
                            pages.failed(PageFailure::from(&e), d.now());
                            failed_as = format!("{e:?}");
                        }
                    }
                }
                Step::Wait { until, .. } => sleep(until.saturating_duration_since(d.now())).await,
                Step::Fail(e) => {
                    walk_error = Some(stop_label(&e.stop, &failed_as));
                    break;
                }
                Step::Done => break,
            }
        }
    }
    let calls = starts
        .iter()
        .enumerate()
        .filter(|_| s.paginate.is_none())
        .map(|(label, (at, _, plan))| {
            let id = &ids[if s.per_call { label } else { 0 }];
            let mut spec = RequestSpec::new(plan.method, format!("{chaos}/s/{id}"));
            spec.key = match plan.idempotency {
                Idempotency::Auto => IdempotencyKey::Auto,
                Idempotency::Off => IdempotencyKey::Off,
                _ => IdempotencyKey::Explicit(format!("own-{id}-{label}")),
            };
            spec.deadline = plan.deadline_ms.map(Duration::from_millis);
            spec.max_attempts = plan.max_attempts;
            spec.token = Some(plan.token);
            spec.fallback = plan.fallback.map(fallback_of);
            if !plan.method.is_idempotent() || plan.method == Method::Put {
                spec.body = Some(Body::Text("{}".into()));
            }
            let (d, at) = (d.clone(), *at);
            async move {
                let wait = t0 + at as f64 - perf_now();
                if wait > 0.0 {
                    sleep(Duration::from_secs_f64(wait / 1000.0)).await;
                }
                let result = d.request(spec).await;
                (result, perf_now())
            }
        });
    let steps = run_controls(d.clone(), s.controls.clone(), t0, format!("{chaos}/s/x"));
    let (results, controlled) = futures_util::future::join(join_all(calls), steps).await;
    controlled.map_err(|e| format!("{name}: control: {e}"))?;
    let semantics = if s.paginate.is_none() && starts.len() == 1 {
        same_failure_semantics(&sim.trace, &results[0].0)
    } else {
        Ok(())
    };

    let mut logs = Vec::new();
    for id in &ids {
        logs.push(control("GET", &format!("{chaos}/script/{id}/log"), None).await);
    }
    let trace = events.borrow().clone();
    let mut outcomes: Vec<String> = results
        .iter()
        .map(|(r, _)| match r {
            Ok(Reply {
                fallback: Some((failure, _)),
                ..
            }) => format!("fallback:{}", failure.why.name()),
            Ok(reply) => format!("done:{}", reply.status),
            Err(CallError::Failed { failure, .. }) => {
                format!("fail:{}", resile_wasm::translate::serde_name(&failure.why))
            }
            Err(CallError::Invalid(m)) => format!("invalid:{m}"),
            Err(CallError::Resume(e)) => format!("resume:{e}"),
        })
        .collect();
    if s.paginate.is_some() {
        // A walk's calls are its pages: their outcomes are read off the trace.
        outcomes = trace
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::CallSucceeded { status, .. } => Some(format!("done:{status}")),
                EventKind::CallFailed { failure, .. } => Some(format!(
                    "fail:{}",
                    resile_wasm::translate::serde_name(&failure.why)
                )),
                _ => None,
            })
            .collect();
    }
    let finished_ms = results
        .iter()
        .map(|(_, end)| (end - t0).max(0.0) as u64)
        .max()
        .unwrap_or(0);
    let result = ScenarioResult {
        name: s.name.clone(),
        attempts: trace
            .iter()
            .filter(|e| matches!(e.kind, EventKind::AttemptStarted { .. }))
            .count() as u64,
        side_effects: side_effects(s, &logs),
        token_fetches: fetches.get(),
        breaker_trips: d.with_engine(|e| e.stats().breaker_trips),
        finished_ms,
        outcomes,
        trace,
        items,
        walk_error,
        mismatches: Vec::new(),
    };
    // Side effects are read from the script log by reply index, which the 401s inserted for
    // rejected token generations shift.
    let clock = RealClock {
        slack_ms: SLACK_MS,
        side_effects: s.token.reject_generations.is_empty(),
    };
    semantics.map_err(|e| format!("{name}: {e}"))?;
    verify(s, "browser", &result, clock)
}

/// A single call that failed in the sim fails in the browser with the same semantics, read off
/// the public `Error`: its kind, `is_retryable()`, `maybe_processed()` and whether it says when
/// to try again. A call that succeeded in the sim must not fail here (`verify` compares the
/// outcomes themselves).
fn same_failure_semantics(
    sim_trace: &[Event],
    browser: &Result<Reply, CallError>,
) -> Result<(), String> {
    let sim = sim_trace.iter().rev().find_map(|e| match &e.kind {
        EventKind::CallFailed { failure, .. } => Some(*failure),
        _ => None,
    });
    let (Some(sim), Err(error)) = (sim, browser) else {
        return Ok(());
    };
    let (error, _) = error.clone().into_error("GET", "http://scenario.test/");
    let Some(failure) = error.failure() else {
        return Err(format!(
            "the sim's call failed ({:?}), the browser's is {error}",
            sim.why
        ));
    };
    let mine = (
        failure.kind(),
        error.is_retryable(),
        error.maybe_processed(),
        failure.retry_at.is_some(),
    );
    let theirs = (
        sim.kind(),
        sim.is_retryable(),
        sim.processed != resile_core::Processed::Never,
        sim.retry_at.is_some(),
    );
    if mine == theirs {
        ERRORS_COMPARED.with(|n| n.set(n.get() + 1));
        Ok(())
    } else {
        Err(format!(
            "final error (kind, retryable, maybe processed, retry_at known): browser {mine:?}, sim {theirs:?}"
        ))
    }
}

/// Writes the sim's server would have applied, from the chaos script logs: a POST or PATCH whose
/// reply was a success or a committed failure, once per Idempotency-Key.
fn side_effects(s: &Scenario, logs: &[Value]) -> u32 {
    let mut keys = std::collections::HashSet::new();
    let mut applied = 0;
    for entry in logs
        .iter()
        .filter_map(|l| l["requests"].as_array())
        .flatten()
    {
        let index = entry["reply"]
            .as_u64()
            .map_or(s.replies.len() - 1, |i| i as usize);
        let reply = &s.replies[index.min(s.replies.len() - 1)];
        let status = reply.status.unwrap_or(200);
        let applies = reply.commit || (reply.fault.is_none() && (200..300).contains(&status));
        let write = matches!(entry["method"].as_str(), Some("POST" | "PATCH"));
        if applies && write {
            let first = entry["idempotency_key"]
                .as_str()
                .is_none_or(|k| keys.insert(k.to_string()));
            if first {
                applied += 1;
            }
        }
    }
    applied
}

#[wasm_bindgen_test]
async fn dropping_a_call_cancels_it_and_frees_its_slot() {
    use futures_util::future::{select, Either};
    use resile_wasm::{Client, ClientEvent};

    let chaos = chaos();
    let seen: Rc<RefCell<Vec<Event>>> = Rc::default();
    let sink = seen.clone();
    let client = Client::builder()
        .base_url(&chaos)
        .max_in_flight(1)
        .on_event(move |e: &ClientEvent| {
            if let Some(e) = e.engine() {
                sink.borrow_mut().push(e.clone());
            }
        })
        .build()
        .expect("a client");
    // The only slot is taken by a stalled call; a second call waits behind it.
    let stalled = Box::pin(client.get("stall?ms=20000").send());
    let waiting = Box::pin(client.get("status/200").send());
    let both = Box::pin(async move {
        let _ = futures_util::future::join(stalled, waiting).await;
    });
    match select(both, Box::pin(sleep(Duration::from_millis(300)))).await {
        Either::Left(_) => panic!("a stalled call finished"),
        Either::Right(((), both)) => drop(both),
    }
    // The engine hears of the drop on the next turn of the event loop.
    sleep(Duration::from_millis(50)).await;
    let failed: Vec<Why> = seen
        .borrow()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CallFailed { failure, .. } => Some(failure.why),
            _ => None,
        })
        .collect();
    assert_eq!(
        failed,
        [Why::Cancelled, Why::Cancelled],
        "both calls were cancelled: the one in flight and the one queued behind it"
    );
    // The queued call sent nothing while the first held the only slot: an attempt of its
    // own can only come after the first call ended (its cancel may land just after).
    {
        let events = seen.borrow();
        let first_ended = events
            .iter()
            .position(|e| matches!(e.kind, EventKind::CallFailed { .. }))
            .expect("the first call ended");
        let early = events[..first_ended]
            .iter()
            .filter(|e| matches!(e.kind, EventKind::AttemptStarted { .. }))
            .count();
        assert_eq!(early, 1, "only the first call had an attempt out");
    }
    let queued = seen.borrow().iter().any(|e| {
        matches!(
            e.kind,
            EventKind::Queued {
                why: Why::ConcurrencyLimit,
                ..
            }
        )
    });
    assert!(queued, "the engine said why the second call waited");
    assert_eq!(client.hosts()[0].active_calls, 0);
    // The slot is free again.
    let response = client
        .get("status/200")
        .send()
        .await
        .expect("the slot is free");
    assert_eq!(response.status().as_u16(), 200);
}

/// A token source for the chaos server's client-credentials endpoint, as a Rust caller writes it.
struct ChaosCredentials {
    url: String,
    fetches: Rc<Cell<u32>>,
}

impl resile_wasm::TokenSource for ChaosCredentials {
    fn fetch(&self) -> resile_wasm::TokenFuture<'_> {
        Box::pin(async move {
            self.fetches.set(self.fetches.get() + 1);
            let form = "grant_type=client_credentials&client_id=demo&client_secret=demo";
            let (status, body) = raw(
                "POST",
                &self.url,
                Some(form),
                &[("content-type", "application/x-www-form-urlencoded")],
            )
            .await
            .map_err(|message| resile_wasm::Error::InvalidRequest { message })?;
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            match v["access_token"].as_str() {
                Some(token) if status == 200 => Ok(resile_wasm::AccessToken {
                    secret: token.into(),
                    expires_in: v["expires_in"].as_f64().map(Duration::from_secs_f64),
                }),
                _ => Err(resile_wasm::Error::Status {
                    status,
                    body_excerpt: body,
                }),
            }
        })
    }
}

#[wasm_bindgen_test]
async fn rust_token_sources_feed_the_engine() {
    use resile_wasm::{Client, Error, StaticBearer};

    let chaos = chaos();
    let fetches = Rc::new(Cell::new(0));
    let client = Client::builder()
        .base_url(&chaos)
        .token_source(ChaosCredentials {
            url: format!("{chaos}/oauth/token"),
            fetches: fetches.clone(),
        })
        .build()
        .expect("a client");
    let calls = (0..5).map(|i| client.get(format!("protected/rust{i}")).send());
    for r in join_all(calls).await {
        assert_eq!(r.expect("authorized").status().as_u16(), 200);
    }
    assert_eq!(fetches.get(), 1, "five calls, one fetch");
    let token = client.token();
    assert_eq!(token.generation, 1);

    // A token the server never issued: one forced refresh, then the engine gives up.
    let client = Client::builder()
        .base_url(&chaos)
        .token_source(StaticBearer::new("never-issued"))
        .build()
        .expect("a client");
    let e = client
        .get("protected/static")
        .send()
        .await
        .expect_err("rejected twice");
    assert_eq!(e.why(), Some(Why::TokenRejectedAgain), "{e}");
    assert!(!e.is_retryable());
    assert!(matches!(e, Error::Failed { .. }));
    assert!(
        !e.to_string().contains("never-issued"),
        "no secret in messages: {e}"
    );
}

// ---- presets from JavaScript --------------------------------------------------------------------

/// A JS value as serde JSON (through `JSON.stringify`).
fn json_of(v: &JsValue) -> Value {
    let text: String = JSON::stringify(v).expect("stringify").into();
    serde_json::from_str(&text).expect("json")
}

#[wasm_bindgen_test]
fn a_js_config_selects_a_preset_as_toml_and_json_do_natively() {
    // Every name `ClientConfig.preset` lists, alone and with a field written over it in
    // camelCase: the engine runs what the core reads from the same JSON, field by field.
    for preset in resile_core::preset::ALL {
        let name = preset.name();
        for (js_config, core_json) in [
            (json!({"preset": name}), json!({"preset": name})),
            (
                json!({"preset": name, "retry": {"maxAttempts": 2}, "backoff": {"baseMs": 7}}),
                json!({"preset": name, "retry": {"max_attempts": 2}, "backoff": {"base_ms": 7}}),
            ),
        ] {
            let client = js_client(js_config.clone());
            let mut got = json_of(&client.config());
            let core = Config::from_value(core_json).expect("core reads it");
            let core = resile_wasm::translate::camel_keys(serde_json::to_value(core).unwrap());
            // Through JavaScript too, so 2.0 and 2 read alike.
            let mut want = json_of(&js(&core.to_string()));
            // The client fills the concurrency limits the config leaves open (512 in flight).
            for v in [&mut got, &mut want] {
                v.as_object_mut().unwrap().remove("concurrency");
            }
            assert_eq!(got, want, "{js_config}");
            assert_eq!(got["preset"], json!(name));
        }
    }
    let adaptive = json_of(&js_client(json!({"preset": "aws-adaptive"})).config());
    assert_eq!(adaptive["adaptiveRate"]["enabled"], json!(true));
    assert_eq!(adaptive["retry"]["maxAttempts"], json!(3));
    // A name that is not a preset is a config error naming the field.
    for bad in [r#"{"preset":"aws-99"}"#, r#"{"preset":3}"#] {
        let e = JsClient::new(Some(js(bad).unchecked_into()))
            .err()
            .expect("rejected");
        assert_eq!(string(&e, "code").as_deref(), Some("config"), "{bad}");
        assert_eq!(string(&e, "field").as_deref(), Some("preset"), "{bad}");
        assert!(
            string(&e, "message").unwrap().contains("aws-adaptive"),
            "{bad}"
        );
    }
    // The adaptive sections read in camelCase too.
    let c = json_of(
        &js_client(json!({
            "adaptiveRate": {"enabled": true},
            "concurrency": {"adaptive": {"algorithm": "gradient2", "minLimit": 2, "initialLimit": 3}},
        }))
        .config(),
    );
    assert_eq!(c["adaptiveRate"]["enabled"], json!(true));
    assert_eq!(
        c["concurrency"]["adaptive"],
        json!({"algorithm": "gradient2", "initialLimit": 3, "minLimit": 2, "maxLimit": 200,
               "smoothing": 0.2, "queueSize": 4, "longWindow": 600, "rttTolerance": 1.5,
               "minWindowMs": 1000, "maxWindowMs": 1000, "windowSize": 10})
    );
}

#[wasm_bindgen_test]
async fn js_fallbacks_predicates_and_breakers_by_hand() {
    let chaos = chaos();
    let id = unique("ctl");
    control(
        "POST",
        &format!("{chaos}/script/{id}"),
        Some(&json!({"replies": [{"status": 200, "body": {"price": 7}}, {"status": 503}, {"status": 503}]})),
    )
    .await;
    let url = format!("{chaos}/s/{id}");
    let client = js_client(json!({
        "backoff": {"baseMs": 10, "jitter": "none"},
        "breaker": {"consecutiveFailures": 1, "failureRate": null, "openMs": 10000},
    }));
    let options = |text: &str| -> RequestOptions { js(text).unchecked_into() };
    let last_good = r#"{"maxAttempts": 1, "fallback": {"lastGoodMs": 60000}}"#;
    let first = settle(client.get(url.clone(), Some(options(last_good))))
        .await
        .expect("200");
    assert!(prop(&first, "fallback").is_undefined());
    // A 503 uses up the attempt (and trips the breaker): the stored 200 answers, saying why.
    let second = settle(client.get(url.clone(), Some(options(last_good))))
        .await
        .expect("the fallback");
    let info = prop(&second, "fallback");
    assert_eq!(string(&info, "why").as_deref(), Some("max_attempts"));
    assert_eq!(string(&info, "source").as_deref(), Some("last_good"));
    assert_eq!(prop(&second, "status").as_f64(), Some(200.0));
    // Open now: a value answers without a request; without a fallback the call fails.
    let value = settle(client.get(
        url.clone(),
        Some(options(
            r#"{"fallback": {"value": {"status": 203, "json": {"cached": true}}}}"#,
        )),
    ))
    .await
    .expect("the value");
    assert_eq!(prop(&value, "status").as_f64(), Some(203.0));
    assert_eq!(
        string(&prop(&value, "fallback"), "why").as_deref(),
        Some("breaker_open")
    );
    let e = settle(client.get(url.clone(), None)).await.unwrap_err();
    assert_eq!(string(&e, "why").as_deref(), Some("breaker_open"));
    let bad = settle(client.get(
        url.clone(),
        Some(options(r#"{"fallback": {"stale": true}}"#)),
    ))
    .await
    .unwrap_err();
    assert_eq!(string(&bad, "code").as_deref(), Some("invalid"));

    // Export, reset, import: open again.
    let snapshot = client.export_breakers();
    assert_eq!(prop(&snapshot, "version").as_f64(), Some(1.0));
    client.reset_breaker(&url).expect("reset");
    let text = JSON::stringify(&snapshot).unwrap().as_string().unwrap();
    assert_eq!(client.import_breakers(text.into()).expect("imports"), 1);
    let e = settle(client.get(url.clone(), None)).await.unwrap_err();
    assert_eq!(string(&e, "why").as_deref(), Some("breaker_open"));
    let refused = client
        .import_breakers(js(r#"{"version": 9, "hosts": []}"#))
        .unwrap_err();
    assert_eq!(string(&refused, "code").as_deref(), Some("invalid"));
    assert!(string(&refused, "message").unwrap().contains("version 9"));

    // Isolated: fails fast with its own reason until released; forced closed lets calls through.
    client.reset_breaker(&url).expect("reset");
    let hold = client.isolate(&url).expect("isolates");
    assert_eq!(hold.host(), chaos);
    let e = settle(client.get(url.clone(), None)).await.unwrap_err();
    assert_eq!(string(&e, "why").as_deref(), Some("breaker_isolated"));
    hold.release();
    hold.release();
    let closed = client.force_closed(&url).expect("holds closed");

    // A predicate that declines the 503: it is the answer, after one attempt, breaker held closed.
    let o = options(r#"{"maxAttempts": 3}"#);
    let f = Function::new_with_args(
        "check",
        "return check.status === 503 && check.headers instanceof Headers && check.method === 'GET' ? 'dontRetry' : undefined",
    );
    Reflect::set(&o, &"retryIf".into(), &f).unwrap();
    let declined = settle(client.get(url.clone(), Some(o))).await.expect("503");
    assert_eq!(prop(&declined, "status").as_f64(), Some(503.0));
    assert_eq!(prop(&declined, "attempts").as_f64(), Some(1.0));
    closed.release();
    let fallbacks = client.driver().with_engine(|e| e.stats().fallbacks);
    assert_eq!(fallbacks, 2, "two calls answered with their fallback");
}
