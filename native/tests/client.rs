//! The adapter against a real server: retries, waits, errors, writes, concurrency, batches,
//! cancellation, redirects, limits, and the pool.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{chaos, closed_port, fast_policy, mini_server, MiniResponse, Recorder};
use resile::{
    BatchMode, Client, ClientEvent, Error, EventKind, IdempotencyKey, LastCause, TransportError,
    Why,
};
use serde_json::{json, Value};

fn client_with(policy: resile::Config) -> Client {
    Client::builder().engine(policy).seed(7).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_503_then_succeeds_with_one_request_id() {
    let server = chaos().await;
    let state = server.state();
    let replies = json!({"replies": [{"status": 503}, {"status": 503}, {"status": 200, "body": {"ok": true}}]});
    state
        .set_script("flaky", serde_json::from_value(replies).unwrap())
        .unwrap();
    let client = client_with(fast_policy());
    let response = client
        .get(format!("{}/s/flaky", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.attempts(), 3);
    assert_eq!(response.json::<Value>().unwrap(), json!({"ok": true}));
    let log = state.script_log("flaky").unwrap();
    assert_eq!(log.count, 3);
    let ids: HashSet<_> = log
        .requests
        .iter()
        .map(|r| r.x_request_id.clone())
        .collect();
    assert_eq!(
        ids.len(),
        1,
        "the same X-Request-ID on every attempt: {ids:?}"
    );
    assert_eq!(
        log.requests[0].x_request_id.as_deref(),
        Some(response.request_id())
    );
    assert!(
        log.requests.iter().all(|r| r.idempotency_key.is_none()),
        "a GET carries no key"
    );
    assert_eq!(client.stats().retries, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_statuses_come_back_as_responses_and_typed_helpers_turn_them_into_errors() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let response = client
        .get(format!("{}/status/404", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), response.attempts()), (404, 1));

    let e = client
        .get_json::<Value>(format!("{}/status/404", server.url()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Status { status: 404, body_excerpt } if body_excerpt.contains("404")),
        "{e:?}"
    );
    assert!(!e.is_retryable());

    // A body that is not the JSON asked for: a bounded excerpt and serde's message.
    let long = "x".repeat(2_000);
    let script = json!({"replies": [{"status": 200, "body": long}]});
    server
        .state()
        .set_script("text", serde_json::from_value(script).unwrap())
        .unwrap();
    let e = client
        .get_json::<Value>(format!("{}/s/text", server.url()))
        .await
        .unwrap_err();
    match &e {
        Error::Decode {
            status,
            excerpt,
            message,
        } => {
            assert_eq!(*status, 200);
            assert!(
                excerpt.len() <= 520,
                "excerpt bounded: {} bytes",
                excerpt.len()
            );
            assert!(!message.is_empty());
        }
        other => panic!("expected Decode, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_is_json_null_for_the_typed_helpers() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let script = json!({"replies": [{"status": 200, "body": ""}]});
    server
        .state()
        .set_script("empty", serde_json::from_value(script).unwrap())
        .unwrap();
    for url in [
        format!("{}/status/204", server.url()),
        format!("{}/s/empty", server.url()),
    ] {
        // What a DELETE or PUT answered with no content decodes into.
        client.get_json::<()>(&url).await.unwrap();
        assert_eq!(client.get_json::<Option<Value>>(&url).await.unwrap(), None);
        assert_eq!(client.get_json::<Value>(&url).await.unwrap(), Value::Null);
        let sent: Option<Value> = client.post_json(&url, &json!({"a": 1})).await.unwrap();
        assert_eq!(sent, None);

        // Any other type says the body was empty, and quotes no body.
        let e = client.get_json::<Vec<u32>>(&url).await.unwrap_err();
        match &e {
            Error::Decode {
                message, excerpt, ..
            } => {
                assert_eq!(
                    message,
                    "the body is empty: invalid type: null, expected a sequence"
                );
                assert_eq!(excerpt, "");
            }
            other => panic!("expected Decode, got {other:?}"),
        }
        assert!(!e.to_string().contains("body starts with"), "{e}");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.json::<Option<u32>>().unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_map_to_engine_kinds() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 2;
    policy.breaker.enabled = false;
    let client = client_with(policy.clone());

    // The server closes the socket after reading the request: maybe processed.
    let e = client
        .get(format!("{}/reset", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::RetriesExhausted {
                attempts: 2,
                last: LastCause::Transport {
                    kind: TransportError::Reset,
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.maybe_processed());

    // Nothing listens: never sent.
    let port = closed_port().await;
    let e = client
        .get(format!("http://{port}/x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::RetriesExhausted {
                last: LastCause::Transport {
                    kind: TransportError::Connect,
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        !e.maybe_processed(),
        "a refused connection never reached the server"
    );

    // A body cut short is an attempt failure, not a broken response.
    let e = client
        .get(format!("{}/truncate?len=1000", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::RetriesExhausted {
                last: LastCause::Transport {
                    kind: TransportError::Truncated,
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );

    // ... and the retry after one succeeds.
    let script = json!({"replies": [{"fault": "truncate", "body": "0123456789"}, {"status": 200, "body": {"n": 1}}]});
    server
        .state()
        .set_script("trunc", serde_json::from_value(script).unwrap())
        .unwrap();
    let v: Value = client
        .get_json(format!("{}/s/trunc", server.url()))
        .await
        .unwrap();
    assert_eq!(v, json!({"n": 1}));

    // An attempt that never answers times out after the engine's attempt timeout.
    policy.retry.attempt_timeout_ms = Some(150);
    let client = client_with(policy);
    let started = Instant::now();
    let e = client
        .get(format!("{}/stall?ms=2000", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_waits_are_honoured_and_capped() {
    let server = chaos().await;
    let client = client_with(fast_policy());

    // Retry-After: 1 on a 429 is waited out, then the call succeeds.
    let started = Instant::now();
    let url = format!(
        "{}/flaky?key=ra&fail=1&status=429&retry_after=1",
        server.url()
    );
    let response = client.get(url).send().await.unwrap();
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(950) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // An hour is over the cap: the call fails at once and says so.
    let started = Instant::now();
    let e = client
        .get(format!("{}/status/503?retry_after=3600", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed fast, not after an hour"
    );
    match &e {
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
}

/// The breaker opens while a call waits to retry: the error still counts the attempts made,
/// says what the last one was, and that a write may have been applied (the attempts timed out
/// with the PUT on the wire).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_that_opens_between_attempts_keeps_what_they_were() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 5;
    policy.retry.attempt_timeout_ms = Some(100);
    policy.breaker.consecutive_failures = 2;
    policy.breaker.failure_rate = None;
    policy.breaker.open_ms = 60_000;
    policy.breaker.max_open_ms = 60_000;
    let client = Client::builder().engine(policy).build().unwrap();
    let e = client
        .put(format!("{}/slow?ms=2000", server.url()))
        .body("x")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Unavailable {
                why: Why::BreakerOpen,
                attempts: 2,
                last: Some(resile::LastCause::Transport {
                    kind: resile::TransportError::Timeout,
                    ..
                }),
                maybe_processed: true,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.attempts(), Some(2));
    assert!(e.maybe_processed());
    // The message says what the attempts ended with, as every error with attempts does.
    assert!(
        e.to_string().contains("; last attempt: attempt timed out"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_fails_fast_and_says_when_to_come_back() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 1;
    policy.breaker.consecutive_failures = 3;
    policy.breaker.open_ms = 60_000;
    policy.breaker.max_open_ms = 60_000;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(policy)
        .on_event(events.callback())
        .build()
        .unwrap();
    let url = format!("{}/status/503", server.url());
    for _ in 0..3 {
        let e = client.get(&url).send().await.unwrap_err();
        assert!(matches!(e, Error::RetriesExhausted { .. }), "{e:?}");
    }
    let before = server.stats().requests;
    let e = client.get(&url).send().await.unwrap_err();
    match &e {
        Error::Unavailable {
            why,
            retry_at,
            attempts,
            ..
        } => {
            assert_eq!(*why, Why::BreakerOpen);
            assert_eq!(*attempts, 0);
            let wait = retry_at
                .expect("an open breaker says until when")
                .duration_since(std::time::SystemTime::now())
                .unwrap();
            assert!(wait > Duration::from_secs(50), "{wait:?}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(e.is_retryable() && !e.maybe_processed());
    assert_eq!(
        server.stats().requests,
        before,
        "an open breaker sends nothing"
    );
    assert!(events
        .engine()
        .iter()
        .any(|e| matches!(e.kind, EventKind::BreakerOpened { .. })));
    let hosts = client.hosts();
    assert_eq!(hosts.len(), 1);
    assert!(matches!(
        hosts[0].breaker,
        resile::resile_core::breaker::BreakerState::Open { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_carry_one_idempotency_key_and_are_applied_once() {
    let server = chaos().await;
    let state = server.state();
    let client = client_with(fast_policy());
    let url = format!("{}/orders?mode=commit_then_fail&fail=reset", server.url());

    // Auto: the engine's key, the same on the retry; the server applies the order once.
    let response = client
        .post(&url)
        .json(&json!({"sku": "auto"}))
        .send()
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), response.attempts()), (201, 2));
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

    // Explicit: the caller's key on every attempt.
    let response = client
        .post(&url)
        .json(&json!({"sku": "explicit"}))
        .idempotency_key(IdempotencyKey::Explicit("order-77".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        state.orders()[1].idempotency_key.as_deref(),
        Some("order-77")
    );

    // Off: the write may have been applied, so it is not repeated, and the error says why.
    let before = server.stats().requests;
    let e = client
        .post(&url)
        .json(&json!({"sku": "off"}))
        .idempotency_key(IdempotencyKey::Off)
        .send()
        .await
        .unwrap_err();
    match &e {
        Error::NotRetried {
            why,
            maybe_processed,
            attempts,
            ..
        } => {
            assert_eq!(
                (*why, *maybe_processed, *attempts),
                (Why::NotIdempotent, true, 1)
            );
        }
        other => panic!("expected NotRetried, got {other:?}"),
    }
    assert!(!e.is_retryable());
    assert_eq!(server.stats().requests, before + 1, "exactly one attempt");
    assert_eq!(state.orders().len(), 3, "applied once, not duplicated");
    assert_eq!(server.stats().duplicate_orders, 0);

    // A streamed body cannot be sent twice: even an idempotent PUT is not retried.
    let chunks = futures::stream::iter(vec![
        Ok::<_, std::io::Error>(r#"{"sku":"#),
        Ok(r#""stream"}"#),
    ]);
    let e = client
        .put(format!("{}/reset", server.url()))
        .body_stream(chunks)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::NotRetried {
                why: Why::BodyNotReplayable,
                ..
            }
        ),
        "{e:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_calls_are_bounded_per_client_and_per_host() {
    let a = chaos().await;
    let b = chaos().await;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .max_in_flight(4)
        .max_in_flight_per_host(2)
        .on_event(events.callback())
        .build()
        .unwrap();
    let mut calls = Vec::new();
    for i in 0..12 {
        let host = if i % 2 == 0 { a.url() } else { b.url() };
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            client.get(format!("{host}/slow?ms=60")).send().await
        }));
    }
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().status(), 200);
    }
    // Replay the events: attempts in flight overall and per host never exceed the bounds
    // (the engine queues the rest).
    let (mut total, mut max_total) = (0i32, 0);
    let mut per_host = std::collections::HashMap::<u32, String>::new();
    let mut active = std::collections::HashMap::<String, i32>::new();
    let mut max_host = 0;
    for e in events.engine() {
        match e.kind {
            EventKind::CallStarted { call, host, .. } => {
                per_host.insert(call.number(), host.to_string());
            }
            EventKind::AttemptStarted { call, .. } => {
                total += 1;
                max_total = max_total.max(total);
                let n = active.entry(per_host[&call.number()].clone()).or_default();
                *n += 1;
                max_host = max_host.max(*n);
            }
            EventKind::AttemptFinished { call, .. } => {
                total -= 1;
                *active.get_mut(&per_host[&call.number()]).unwrap() -= 1;
            }
            _ => {}
        }
    }
    assert!(
        (2..=4).contains(&max_total),
        "client-wide in flight peaked at {max_total}"
    );
    assert!(max_host <= 2, "per-host in flight peaked at {max_host}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_future_cancels_its_call() {
    let server = chaos().await;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .on_event(events.callback())
        .build()
        .unwrap();
    let call = client.get(format!("{}/slow?ms=3000", server.url())).send();
    assert!(tokio::time::timeout(Duration::from_millis(100), call)
        .await
        .is_err());
    assert_eq!(client.active_calls(), 0, "the engine forgot the call");
    let cancelled = events.engine().into_iter().any(|e| {
        matches!(e.kind, EventKind::CallFailed { failure, .. } if failure.why == Why::Cancelled)
    });
    assert!(cancelled, "a cancel reached the engine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_starts_at_its_first_poll_and_a_queued_one_dropped_is_cancelled() {
    let server = chaos().await;
    let client = Client::builder()
        .engine(fast_policy())
        .max_in_flight(1)
        .build()
        .unwrap();
    let url = format!("{}/slow?ms=3000", server.url());
    // Made and never polled: the engine never hears of it.
    let unpolled = client.get(&url).send();
    assert_eq!(client.active_calls(), 0);
    drop(unpolled);
    assert_eq!(client.active_calls(), 0);
    // One in flight, one queued behind it.
    let mut first = Box::pin(client.get(&url).send());
    let mut queued = Box::pin(client.get(&url).send());
    let wait = Duration::from_millis(50);
    assert!(tokio::time::timeout(wait, first.as_mut()).await.is_err());
    assert!(tokio::time::timeout(wait, queued.as_mut()).await.is_err());
    assert_eq!(client.active_calls(), 2);
    drop(queued);
    assert_eq!(client.active_calls(), 1, "the queued call was cancelled");
    drop(first);
    assert_eq!(client.active_calls(), 0, "and the one in flight");
}

type PendingCall =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<resile::Response, Error>> + Send>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_inside_the_event_callback_is_cancelled_too() {
    let server = chaos().await;
    let slot: std::sync::Arc<std::sync::Mutex<Option<PendingCall>>> = Default::default();
    let in_callback = slot.clone();
    let client = Client::builder()
        .engine(fast_policy())
        .on_event(move |e| {
            if matches!(
                e.engine().map(|e| &e.kind),
                Some(EventKind::CallSucceeded { .. })
            ) {
                // Drops the slow call's future while the client is emitting events.
                drop(in_callback.lock().unwrap().take());
            }
        })
        .build()
        .unwrap();
    let mut slow: PendingCall =
        Box::pin(client.get(format!("{}/slow?ms=3000", server.url())).send());
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow.as_mut())
            .await
            .is_err()
    );
    assert_eq!(client.active_calls(), 1);
    *slot.lock().unwrap() = Some(slow);
    client
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap();
    assert!(slot.lock().unwrap().is_none(), "the callback dropped it");
    assert_eq!(client.active_calls(), 0, "and the engine cancelled it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_keep_input_order_or_fail_as_a_whole() {
    let server = chaos().await;
    let client = Client::builder()
        .engine(fast_policy())
        .batch_concurrency(3)
        .build()
        .unwrap();
    let base = server.url();
    let urls: Vec<String> = (0..6)
        .map(|i| {
            if i == 2 {
                format!("{base}/status/404")
            } else {
                format!("{base}/flaky?key=b{i}&fail=1")
            }
        })
        .collect();
    let results = client
        .get_many::<Value, _, _>(&urls, BatchMode::Partial)
        .await
        .unwrap();
    assert_eq!(results.len(), 6);
    for (i, r) in results.iter().enumerate() {
        match (i, r) {
            (2, Err(Error::Status { status: 404, .. })) => {}
            (_, Ok(v)) => assert_eq!(
                v["key"],
                json!(format!("b{i}")),
                "result {i} in input order"
            ),
            (_, other) => panic!("result {i}: {other:?}"),
        }
    }

    // All or nothing: the 404 ends the batch at once; the slow calls are cancelled.
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .batch_concurrency(4)
        .on_event(events.callback())
        .build()
        .unwrap();
    let urls = [
        format!("{base}/slow?ms=5000"),
        format!("{base}/slow?ms=5000"),
        format!("{base}/status/404"),
        format!("{base}/slow?ms=5000"),
        format!("{base}/slow?ms=5000"),
    ];
    let started = Instant::now();
    let e = client
        .get_many::<Value, _, _>(&urls, BatchMode::AllOrNothing)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Status { status: 404, .. }), "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.active_calls(), 0);
    let cancelled = events
        .engine()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CallFailed { failure, .. } if failure.why == Why::Cancelled))
        .count();
    // Up to four calls start (the batch's concurrency); the 404 may come back before the last
    // of them has reached the engine, so count what started rather than assume three.
    let started_calls = events
        .engine()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::CallStarted { .. }))
        .count();
    assert!(
        (3..=4).contains(&started_calls),
        "the fifth never started: {started_calls} started"
    );
    assert_eq!(
        cancelled,
        started_calls - 1,
        "every slow call that started was cancelled"
    );
    assert_eq!(client.stats().calls, started_calls as u64);
    let all = client
        .get_all::<Value, _, _>([format!("{base}/flaky?key=x&fail=0")])
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_refused() {
    let server = chaos().await;
    let client = Client::builder()
        .engine(fast_policy())
        .max_response_bytes(100)
        .build()
        .unwrap();
    let e = client
        .get(format!("{}/items/offset?limit=50", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BodyTooLarge { limit: 100 }), "{e:?}");
    let ok = client
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

/// A header given more than once (in a `HeaderMap`, or as a client default) is sent with every
/// value; a request's own header replaces the client's default of that name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_headers_keep_every_value() {
    let server = mini_server(|_| async { MiniResponse::status(200) }).await;
    let mut map = http::HeaderMap::new();
    map.append("accept", "application/json".parse().unwrap());
    map.append("accept", "text/plain".parse().unwrap());
    map.append("x-tag", "a".parse().unwrap());
    map.append("x-tag", "b".parse().unwrap());
    for (client, team) in [
        (Client::builder().build().unwrap(), None),
        (
            Client::builder()
                .default_header("x-tag", "default")
                .default_header("x-team", "core")
                .build()
                .unwrap(),
            Some("core"),
        ),
    ] {
        client
            .get(format!("{}/h", server.url()))
            .headers(map.clone())
            .send()
            .await
            .unwrap();
        let seen = server.requests().pop().unwrap();
        let values = |name: &str| -> Vec<String> {
            seen.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .flat_map(|(_, v)| v.split(", ").map(str::to_string))
                .collect()
        };
        assert_eq!(values("accept"), ["application/json", "text/plain"]);
        assert_eq!(values("x-tag"), ["a", "b"]);
        assert_eq!(seen.header("x-team"), team);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_keep_credentials_within_their_origin() {
    let other = mini_server(|_| async { MiniResponse::status(200).body("other") }).await;
    let target = format!("{}/landing", other.url());
    let first = mini_server(move |req| {
        let target = target.clone();
        async move {
            match req.path.as_str() {
                "/cross" => MiniResponse::status(302).header("location", &target),
                "/same" => MiniResponse::status(307).header("location", "/final"),
                _ => MiniResponse::status(200)
                    .header("content-type", "application/json")
                    .body(r#"{"final":true}"#),
            }
        }
    })
    .await;
    let client = Client::builder().engine(fast_policy()).build().unwrap();

    // Same origin: the credentials go along, and a 307 keeps the method and body.
    let response = client
        .post(format!("{}/same", first.url()))
        .bearer("same-origin-token")
        .header("cookie", "session=abc")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.url().path(), "/final");
    let last = first.requests().pop().unwrap();
    assert_eq!(last.path, "/final");
    assert_eq!(last.method, "POST");
    assert_eq!(last.body, b"payload");
    assert_eq!(
        last.header("authorization"),
        Some("Bearer same-origin-token")
    );
    assert_eq!(last.header("cookie"), Some("session=abc"));

    // Another origin (another port): Authorization, Cookie and API keys stay behind; the
    // request id, the idempotency key and ordinary headers go.
    let response = client
        .post(format!("{}/cross", first.url()))
        .bearer("must-not-leak")
        .header("cookie", "session=abc")
        .header("x-api-key", "key-must-not-leak")
        .header("private-token", "gitlab-must-not-leak")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text(), "other");
    let first_seen = first.requests().pop().unwrap();
    assert_eq!(first_seen.header("x-api-key"), Some("key-must-not-leak"));
    let seen = other.requests().pop().unwrap();
    assert_eq!(seen.path, "/landing");
    for secret in ["authorization", "cookie", "x-api-key", "private-token"] {
        assert_eq!(seen.header(secret), None, "{secret} went to another origin");
    }
    assert_eq!(seen.header("accept-language"), Some("en"));
    assert_eq!(seen.header("x-request-id"), Some(response.request_id()));
    assert!(first_seen.header("idempotency-key").is_some());
    assert_eq!(
        seen.header("idempotency-key"),
        first_seen.header("idempotency-key")
    );

    // With redirects off, the 3xx is the answer.
    let client = Client::builder().max_redirects(0).build().unwrap();
    let response = client
        .get(format!("{}/cross", first.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_rebuilt_after_connection_failures_in_a_row() {
    let port = closed_port().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 1;
    policy.breaker.enabled = false;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(policy)
        .recycle_pool_after(3)
        .on_event(events.callback())
        .build()
        .unwrap();
    for _ in 0..7 {
        let e = client
            .get(format!("http://{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(!e.maybe_processed());
    }
    assert_eq!(
        client.pool_recycles(),
        2,
        "one rebuild per three failures in a row"
    );
    let recycled: Vec<_> = events
        .all()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                ClientEvent::Engine(resile_core::Event {
                    kind: EventKind::ConnectionsRecycled { failures: 3, .. },
                    ..
                })
            )
        })
        .collect();
    assert_eq!(recycled.len(), 2, "{recycled:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_task_ends_with_the_last_client() {
    let port = closed_port().await;
    let runtime = tokio::runtime::Handle::current();
    let before = runtime.metrics().num_alive_tasks();
    let mut policy = fast_policy();
    policy.retry.max_attempts = 2;
    let client = client_with(policy);
    let clone = client.clone();
    let _ = clone.get(format!("http://{port}/")).send().await;
    assert!(
        runtime.metrics().num_alive_tasks() > before,
        "the timer task runs"
    );
    drop(client);
    drop(clone);
    let mut alive = usize::MAX;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        alive = runtime.metrics().num_alive_tasks();
        if alive == before {
            break;
        }
    }
    assert_eq!(alive, before, "the timer task ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_urls_default_headers_and_query() {
    let server = chaos().await;
    server
        .state()
        .set_script(
            "q",
            serde_json::from_value(json!({"replies": [{"status": 200}]})).unwrap(),
        )
        .unwrap();
    let client = Client::builder()
        .base_url(server.url())
        .default_header("x-tenant", "acme")
        .build()
        .unwrap();
    let response = client
        .get("s/q")
        .query(&[("a", "1"), ("b", "two words")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let log = server.state().script_log("q").unwrap();
    assert_eq!(log.requests[0].path, "/s/q?a=1&b=two+words");
    let e = Client::new().get("relative/path").send().await.unwrap_err();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e:?}");
    let e = client
        .get("s/q")
        .header("bad header", "x")
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_answer_inside_the_event_callback_and_outside_it() {
    let server = chaos().await;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<u64>>> = Default::default();
    let in_callback = seen.clone();
    let slot: std::sync::Arc<std::sync::OnceLock<Client>> = Default::default();
    let client_slot = slot.clone();
    let client = Client::builder()
        .engine(fast_policy())
        .on_event(move |e| {
            // The callback runs under the engine's lock: the figures come from the copy made
            // at the end of the previous drain, without taking the lock again.
            if let (Some(EventKind::CallSucceeded { .. }), Some(c)) =
                (e.engine().map(|e| &e.kind), client_slot.get())
            {
                in_callback.lock().unwrap().push(c.stats().calls);
            }
        })
        .build()
        .unwrap();
    assert!(slot.set(client.clone()).is_ok());
    for _ in 0..2 {
        let call = client.get(format!("{}/status/200", server.url())).send();
        tokio::time::timeout(Duration::from_secs(5), call)
            .await
            .expect("a stats read inside the callback does not block the call")
            .unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    let stats = client.stats();
    assert_eq!((stats.calls, stats.attempts, stats.succeeded), (2, 2, 2));

    // Without a callback the figures are the engine's own.
    let plain = Client::builder().engine(fast_policy()).build().unwrap();
    plain
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!((plain.stats().calls, plain.stats().succeeded), (1, 1));
}
