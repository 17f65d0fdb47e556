//! Fallbacks, breakers by hand and retry predicates, through the client against the chaos
//! server on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{chaos, fast_policy, Recorder};
use resile::reqwest::StatusCode;
use resile::{
    BreakerSnapshot, Client, ControlError, Error, EventKind, Fallback, FallbackUsed,
    IdempotencyKey, RetryVerdict, Seen, SnapshotError, Why,
};
use resile_chaos::ChaosServer;
use serde_json::{json, Value};

fn script(server: &ChaosServer, id: &str, replies: Value) -> String {
    server
        .state()
        .set_script(
            id,
            serde_json::from_value(json!({ "replies": replies })).unwrap(),
        )
        .unwrap();
    format!("{}/s/{id}", server.url())
}

fn requests(server: &ChaosServer, id: &str) -> u64 {
    server.state().script_log(id).map_or(0, |l| l.count)
}

/// A breaker that opens after two failures in a row and stays open 10 s.
fn touchy() -> resile::Config {
    let mut c = fast_policy();
    c.breaker.consecutive_failures = 2;
    c.breaker.failure_rate = None;
    c.breaker.open_ms = 10_000;
    c
}

fn client(config: resile::Config, recorder: &Recorder) -> Client {
    Client::builder()
        .engine(config)
        .seed(5)
        .on_event(recorder.callback())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_response_stands_in_while_the_host_fails_and_is_refused() {
    let server = chaos().await;
    let url = script(
        &server,
        "lg",
        json!([{"status": 200, "body": {"price": 7}}, {"status": 503}]),
    );
    let recorder = Recorder::default();
    let mut policy = touchy();
    policy.breaker.consecutive_failures = 1;
    let client = client(policy, &recorder);
    let get = || {
        client
            .get(&url)
            .max_attempts(1)
            .fallback(Fallback::last_good(Duration::from_secs(60)))
    };
    let first = get().send().await.unwrap();
    assert!(first.fallback().is_none());

    // Attempts run out on a 503 (and the breaker trips): the stored 200 answers.
    let second = get().send().await.unwrap();
    let answer = second.fallback().expect("a fallback");
    assert_eq!(answer.why(), Why::MaxAttempts);
    assert!(matches!(answer.used(), FallbackUsed::LastGood { .. }));
    assert_eq!(second.status(), 200);
    assert_eq!(second.json::<Value>().unwrap(), json!({"price": 7}));

    // The breaker is open now: no request, the same stand-in, typed through send_json.
    let before = requests(&server, "lg");
    let price: Value = get().send_json().await.unwrap();
    assert_eq!(price, json!({"price": 7}));
    assert_eq!(requests(&server, "lg"), before);

    // Without a fallback the same call fails as it would.
    let plain = client.get(&url).send().await.unwrap_err();
    assert_eq!(plain.why(), Some(Why::BreakerOpen));
    // Too old a stand-in is no stand-in.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let stale = client
        .get(&url)
        .fallback(Fallback::last_good(Duration::from_millis(10)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(stale.why(), Some(Why::BreakerOpen));

    let fell_back: Vec<Why> = recorder
        .engine()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CallFellBack { failure, .. } => Some(failure.why),
            _ => None,
        })
        .collect();
    assert_eq!(fell_back, [Why::MaxAttempts, Why::BreakerOpen]);
    assert_eq!(client.stats().fallbacks, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_falls_back_but_not_for_a_write_that_may_have_been_applied() {
    let server = chaos().await;
    let url = script(&server, "down", json!([{"status": 503}]));
    let mut policy = fast_policy();
    policy.breaker.enabled = false;
    let recorder = Recorder::default();
    let client = client(policy, &recorder);
    let value = || Fallback::value(StatusCode::OK, "cached");

    let get = client
        .get(&url)
        .max_attempts(2)
        .fallback(value())
        .send()
        .await
        .unwrap();
    assert_eq!((get.status().as_u16(), get.text()), (200, "cached".into()));
    assert_eq!(get.attempts(), 2);

    let post = client
        .post(&url)
        .body("x")
        .max_attempts(2)
        .fallback(value())
        .send()
        .await
        .unwrap_err();
    assert_eq!(post.why(), Some(Why::MaxAttempts));
    assert!(post.maybe_processed());

    let allowed = client
        .post(&url)
        .body("x")
        .max_attempts(2)
        .fallback(value().allow_writes())
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.fallback().map(|f| f.why()), Some(Why::MaxAttempts));

    // A final status is an answer, not a failure: no fallback.
    let gone = script(&server, "gone", json!([{"status": 404}]));
    let r = client.get(&gone).fallback(value()).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.fallback().is_none()), (404, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_store_keeps_within_its_bounds() {
    let server = chaos().await;
    let a = script(
        &server,
        "a",
        json!([{"status": 200, "body": "a"}, {"status": 503}]),
    );
    let b = script(
        &server,
        "b",
        json!([{"status": 200, "body": "b"}, {"status": 503}]),
    );
    let mut policy = fast_policy();
    policy.breaker.enabled = false;
    let client = Client::builder()
        .engine(policy)
        .fallback_store(1, 1 << 20)
        .build()
        .unwrap();
    let get = |url: &str| {
        client
            .get(url)
            .max_attempts(1)
            .fallback(Fallback::last_good(Duration::from_secs(60)))
            .send()
    };
    get(&a).await.unwrap();
    get(&b).await.unwrap();
    // One entry: b's answer pushed a's out.
    assert_eq!(get(&a).await.unwrap_err().why(), Some(Why::MaxAttempts));
    assert_eq!(get(&b).await.unwrap().text(), "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolate_force_closed_reset_with_events() {
    let server = chaos().await;
    let url = script(
        &server,
        "iso",
        json!([{"status": 503}, {"status": 503}, {"status": 200}]),
    );
    let recorder = Recorder::default();
    let client = client(touchy(), &recorder);

    let hold = client.isolate(&url).unwrap();
    assert_eq!(hold.host(), server.url());
    let e = client.get(&url).send().await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unavailable {
                why: Why::BreakerIsolated,
                retry_at: None,
                attempts: 0,
                last: None,
                maybe_processed: false,
            }
        ),
        "{e:?}"
    );
    // Holds count: a second isolation outlives the first.
    let second = client.isolate(&format!("{url}?other=path")).unwrap();
    hold.release();
    assert_eq!(
        client.get(&url).send().await.unwrap_err().why(),
        Some(Why::BreakerIsolated)
    );
    drop(second);
    assert_eq!(requests(&server, "iso"), 0);

    // Forced closed: two 503s would trip it, but nothing trips while held.
    let closed = client.force_closed(&url).unwrap();
    for _ in 0..2 {
        let e = client.get(&url).max_attempts(1).send().await.unwrap_err();
        assert_eq!(e.why(), Some(Why::MaxAttempts));
    }
    assert_eq!(client.stats().breaker_trips, 0);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    drop(closed);

    client.reset_breaker(&url).unwrap();
    let controls: Vec<String> = recorder
        .engine()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::BreakerControlled { control, .. } => Some(control.name().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        controls,
        [
            "isolated",
            "isolated",
            "isolation_released",
            "isolation_released",
            "forced_closed",
            "force_released",
            "reset"
        ]
    );
    assert!(matches!(
        client.isolate("not a url"),
        Err(Error::InvalidUrl { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_carries_over_to_a_new_client_through_json() {
    let server = chaos().await;
    let url = script(&server, "trip", json!([{"status": 503}]));
    let recorder = Recorder::default();
    let before = client(touchy(), &recorder);
    for _ in 0..2 {
        let _ = before.get(&url).max_attempts(1).send().await;
    }
    let text = before.export_breakers().unwrap().to_json();
    let snapshot = BreakerSnapshot::from_json(&text).unwrap();
    let entry = &snapshot.hosts[0];
    assert_eq!(entry.host, server.url());
    let remaining = entry.open_remaining_ms.expect("open");
    assert!(remaining > 5_000 && remaining <= 10_000, "{remaining}");
    assert!(!text.contains("until"), "no process clock in {text}");

    let after = client(touchy(), &Recorder::default());
    assert_eq!(after.import_breakers(&snapshot).unwrap(), 1);
    let e = after.get(&url).send().await.unwrap_err();
    assert_eq!(e.why(), Some(Why::BreakerOpen));
    assert_eq!(requests(&server, "trip"), 2);

    // Bad input is a typed error, and imports nothing.
    let bad = BreakerSnapshot::from_json(r#"{"version":7,"hosts":[]}"#).unwrap_err();
    assert!(matches!(
        bad,
        SnapshotError::UnsupportedVersion { found: 7, .. }
    ));
    let mut tiny = touchy();
    tiny.max_hosts = 1;
    let small = client(tiny, &Recorder::default());
    let mut two = snapshot.clone();
    two.hosts.push(resile::resile_core::breaker::HostBreaker {
        host: "http://127.0.0.1:1".into(),
        ..entry.clone()
    });
    assert!(matches!(
        small.import_breakers(&two),
        Err(Error::BreakerControl(ControlError::Snapshot(
            SnapshotError::TooManyHosts {
                hosts: 2,
                max_hosts: 1
            }
        )))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_predicate_sees_the_request_and_the_head_and_only_narrows() {
    let server = chaos().await;
    let recorder = Recorder::default();
    let client = client(fast_policy(), &recorder);
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();

    // 409 with a hint: retried after the predicate's wait; 503: not retried.
    let url = script(
        &server,
        "pending",
        json!([{"status": 409, "headers": {"x-state": "pending"}}, {"status": 200}]),
    );
    let log = seen.clone();
    let r = client
        .get(&url)
        .header("x-tenant", "acme")
        .retry_if(move |c| {
            log.lock().unwrap().push(format!(
                "{} {} {:?}",
                c.method,
                c.headers
                    .get("x-tenant")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-"),
                c.outcome
            ));
            match c.outcome {
                Seen::Response {
                    status: 409,
                    headers,
                } if headers.get("x-state") == Some("pending") => {
                    RetryVerdict::RetryAfter(Duration::from_millis(20))
                }
                _ => RetryVerdict::Decide,
            }
        })
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.attempts()), (200, 2));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "GET acme Response { status: 409, .. }",
            "GET acme Response { status: 200, .. }"
        ]
    );
    let waits: Vec<(Why, u128)> = recorder
        .engine()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { why, delay, .. } => Some((*why, delay.as_millis())),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [(Why::RetryPredicate, 20)]);

    let busy = script(&server, "busy", json!([{"status": 503}, {"status": 200}]));
    let r = client
        .get(&busy)
        .retry_if(|c| match c.outcome {
            Seen::Response { status: 503, .. } => RetryVerdict::DontRetry,
            _ => RetryVerdict::Decide,
        })
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), r.attempts()), (503, 1));

    // A reset POST without a key may have been applied: "retry" cannot make it repeatable.
    let reset = script(
        &server,
        "reset",
        json!([{"fault": "reset"}, {"status": 201}]),
    );
    let e = client
        .post(&reset)
        .body("order")
        .idempotency_key(IdempotencyKey::Off)
        .retry_if(|_| RetryVerdict::Retry)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.why(), Some(Why::NotIdempotent));
    assert_eq!(requests(&server, "reset"), 1);

    // A wait over the cap fails as a server's would, and a panicking predicate has no opinion.
    let mut capped = fast_policy();
    capped.retry.max_retry_after_ms = 100;
    let strict = Client::builder().engine(capped).build().unwrap();
    let slow = script(&server, "slow", json!([{"status": 503}, {"status": 200}]));
    let e = strict
        .get(&slow)
        .retry_if(|_| RetryVerdict::RetryAfter(Duration::from_secs(5)))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.why(), Some(Why::RetryAfterTooLong));
    let r = strict
        .get(&slow)
        .retry_if(|_| panic!("a bug in the predicate"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
