//! `ResileLayer` / `ResileService` around hyper-util's client and around test services, against
//! the chaos server: the conformance scenarios reach the same decisions as `resile::Client`,
//! bodies are replayed or sent once, and the layer works inside a `ServiceBuilder` with
//! tower-http layers.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{chaos, fast_policy, mini_server, MiniResponse, Recorder};
use http::header::{HeaderName, HeaderValue};
use resile::resile_core::engine::Idempotency;
use resile::resile_core::sim::{decision_lines, has_date_headers, Fault, Scenario};
use resile::tower::{CallOptions, ResileService};
use resile::{Client, Error, EventKind, IdempotencyKey, Why};
use resile_chaos::ChaosServer;
use tower::{service_fn, Layer};
use tower_http::trace::TraceLayer;

// README: begin
use http_body_util::Full;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use resile::tower::{CallReport, ResileBody, ResileLayer};
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::set_header::SetRequestHeaderLayer;

async fn get_status(resile: &resile::Client, url: &str) -> Result<u16, Box<dyn std::error::Error>> {
    // hyper-util sends each attempt; the resile client's engine decides every retry, wait and
    // refusal. Bodies up to 64 KiB are replayed (`ResileLayer::body_limit`), longer ones sent once.
    let hyper = HyperClient::builder(TokioExecutor::new()).build_http::<ResileBody<Full<Bytes>>>();
    let mut service = ServiceBuilder::new()
        .layer(ResileLayer::new(resile))
        // Layers below resile's run once per attempt.
        .layer(SetRequestHeaderLayer::overriding(
            http::header::USER_AGENT,
            HeaderValue::from_static("my-service/1.0"),
        ))
        .service(hyper);
    let request = http::Request::get(url).body(Full::default())?;
    let response = service.ready().await?.call(request).await?;
    let report = response
        .extensions()
        .get::<CallReport>()
        .expect("set by resile");
    eprintln!("{} after {} attempt(s)", response.status(), report.attempts);
    Ok(response.status().as_u16())
}
// README: end

type Hyper =
    HyperClient<hyper_util::client::legacy::connect::HttpConnector, ResileBody<Full<Bytes>>>;

/// Waits until `service` is ready (which it must become) and calls it with `request`.
async fn send<S, R>(service: &mut S, request: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
    S::Error: std::fmt::Debug,
{
    service.ready().await.expect("the service becomes ready");
    service.call(request).await
}

fn hyper() -> Hyper {
    HyperClient::builder(TokioExecutor::new()).build_http()
}

fn client_with(policy: resile::Config) -> Client {
    Client::builder().engine(policy).seed(7).build().unwrap()
}

fn report<B>(response: &http::Response<B>) -> CallReport {
    response
        .extensions()
        .get::<CallReport>()
        .cloned()
        .expect("the service puts a CallReport in the response's extensions")
}

/// `done:STATUS` or `fail:WHY`, as the conformance drivers label outcomes.
fn outcome(r: Result<u16, &Error>) -> String {
    match r {
        Ok(status) => format!("done:{status}"),
        Err(e) => format!("fail:{}", e.why().map_or("none", |w| w.name())),
    }
}

/// Whether a scenario can go through an integration as one request: one call, no
/// pagination, no token, no `connect` fault.
fn one_request(s: &Scenario) -> bool {
    let [plan] = s.calls.as_slice() else {
        return false;
    };
    s.compares_traces()
        && s.paginate.is_none()
        && !plan.token
        && !s.replies.iter().any(|r| r.fault == Some(Fault::Connect))
}

/// The scenario's key policy, the key of its own being `own-0`.
fn idempotency_key(plan: Idempotency) -> IdempotencyKey {
    match plan {
        Idempotency::Auto => IdempotencyKey::Auto,
        Idempotency::Off => IdempotencyKey::Off,
        Idempotency::Provided => IdempotencyKey::Explicit("own-0".into()),
    }
}

/// A client for the scenario whose engine events go to a recorder.
fn scenario_client(s: &Scenario) -> (Client, Recorder) {
    let recorder = Recorder::default();
    let client = Client::builder()
        .engine(s.config.clone())
        .seed(s.seed)
        .on_event(recorder.callback())
        .build()
        .unwrap();
    (client, recorder)
}

fn script(server: &ChaosServer, id: &str, s: &Scenario) -> String {
    server
        .state()
        .set_script(id, resile_chaos::scenario::script_for(s))
        .unwrap();
    format!("{}/s/{id}", server.url())
}

/// The scenario's call through `resile::Client`: its decision lines and outcome.
async fn through_client(server: &ChaosServer, s: &Scenario) -> (Vec<String>, String) {
    let (client, recorder) = scenario_client(s);
    let plan = &s.calls[0];
    let method = http::Method::from_bytes(plan.method.as_str().as_bytes()).unwrap();
    let url = script(server, &format!("tw-client-{}", s.name), s);
    let mut request = client
        .request(method, url)
        .idempotency_key(idempotency_key(plan.idempotency));
    if let Some(d) = plan.deadline_ms {
        request = request.deadline(Duration::from_millis(d));
    }
    if let Some(n) = plan.max_attempts {
        request = request.max_attempts(n);
    }

    let answer = request.send().await;
    let label = outcome(answer.as_ref().map(|r| r.status().as_u16()));
    (decision_lines(&recorder.engine()), label)
}

/// The same call through `ResileService` over hyper-util.
async fn through_tower(server: &ChaosServer, s: &Scenario) -> (Vec<String>, String) {
    let (client, recorder) = scenario_client(s);
    let plan = &s.calls[0];
    let mut request = http::Request::builder()
        .method(plan.method.as_str())
        .uri(script(server, &format!("tw-tower-{}", s.name), s))
        .body(Full::default())
        .unwrap();
    let mut options = CallOptions::default().idempotency_key(idempotency_key(plan.idempotency));
    options.deadline = plan.deadline_ms.map(Duration::from_millis);
    options.max_attempts = plan.max_attempts;
    request.extensions_mut().insert(options);
    let mut service = ResileLayer::new(&client).layer(hyper());
    let answer = send(&mut service, request).await;
    let label = outcome(answer.as_ref().map(|r| r.status().as_u16()));
    (decision_lines(&recorder.engine()), label)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_reach_the_same_decisions_as_the_client() {
    let server = chaos().await;
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios");
    let (mut compared, mut skipped, mut differ) = (Vec::new(), Vec::new(), Vec::new());
    for (_, s) in resile_chaos::scenario::load_all(&dir) {
        if !one_request(&s) {
            skipped.push(s.name.clone());
            continue;
        }
        if has_date_headers(&s) {
            // An HTTP-date has whole seconds: start both early in a second, as the native
            // conformance replay does, so both round the wait alike.
            let into = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .subsec_millis();
            if into > 600 {
                tokio::time::sleep(Duration::from_millis(u64::from(1_020 - into))).await;
            }
        }
        // Side by side, each on a script of its own.
        let (ours, theirs) = tokio::join!(through_tower(&server, &s), through_client(&server, &s));
        if ours != theirs {
            differ.push(format!(
                "{}:\n  tower  {ours:?}\n  client {theirs:?}",
                s.name
            ));
        }
        compared.push(s.name.clone());
    }
    eprintln!("compared {compared:?}; skipped {skipped:?}");
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(
        compared.len() >= 8,
        "too few scenarios compared: {compared:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_tower_http_layers_every_attempt_carries_their_headers_and_the_same_body() {
    let answered = Arc::new(AtomicU32::new(0));
    let count = answered.clone();
    let server = mini_server(move |_| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 => MiniResponse::status(503),
                _ => MiniResponse::status(201).body("created"),
            }
        }
    })
    .await;
    let client = client_with(fast_policy());
    let mut service = ServiceBuilder::new()
        .layer(TraceLayer::new_for_http())
        .layer(ResileLayer::new(&client))
        .layer(SetRequestHeaderLayer::overriding(
            HeaderName::from_static("x-tenant"),
            HeaderValue::from_static("blue"),
        ))
        .service(hyper());
    let request = http::Request::post(format!("{}/orders", server.url()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(br#"{"sku":"A-1"}"#)))
        .unwrap();
    let response = send(&mut service, request).await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(report(&response).attempts, 2);

    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    for r in &seen {
        assert_eq!(r.header("x-tenant"), Some("blue"), "{r:?}");
        assert_eq!(r.body, br#"{"sku":"A-1"}"#, "the body, again");
    }
    // One call: the same request id and the engine's idempotency key on both attempts.
    for name in ["x-request-id", "idempotency-key"] {
        assert!(seen[0].header(name).is_some(), "{name}");
        assert_eq!(seen[0].header(name), seen[1].header(name), "{name}");
    }
    assert_eq!(
        seen[0].header("x-request-id"),
        Some(report(&response).request_id.as_str())
    );
}

/// A PUT of `body` to a route that always answers 503: the call's error.
async fn put_503(
    service: &mut ResileService<Hyper>,
    server: &ChaosServer,
    body: &'static [u8],
) -> Error {
    let request = http::Request::put(format!("{}/status/503", server.url()))
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    send(service, request).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_sent_once_and_the_error_says_why() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let mut service = ResileLayer::new(&client).body_limit(4).layer(hyper());
    let before = server.stats().requests;
    let e = put_503(&mut service, &server, b"longer than four").await;
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

    // Within the limit: replayed until the engine gives up.
    let e = put_503(&mut service, &server, b"ok").await;
    let max = fast_policy().retry.max_attempts;
    assert!(
        matches!(e, Error::RetriesExhausted { attempts, .. } if attempts == max),
        "{e:?}"
    );
}

/// A body over the layer's limit is sent once; a `BodyFactory` in the extensions makes it
/// again for every attempt, so the upload the server failed is sent whole a second time, and
/// the request's own body is not sent at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_factory_in_the_extensions_retries_an_upload_over_the_limit() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let mut service = ResileLayer::new(&client).body_limit(4).layer(hyper());
    let whole = Bytes::from(
        (0..256 * 1024u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let made = Arc::new(AtomicU32::new(0));
    let (count, body) = (made.clone(), whole.clone());
    let factory = resile::tower::BodyFactory::new(move || {
        count.fetch_add(1, Ordering::SeqCst);
        Full::new(body.clone())
    });
    let request = http::Request::put(format!(
        "{}/upload-retry?key=tower-factory&fail=1",
        server.url()
    ))
    .extension(factory)
    .body(Full::new(Bytes::from_static(b"not sent")))
    .unwrap();
    let response = send(&mut service, request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(report(&response).attempts, 2);
    assert_eq!(made.load(Ordering::SeqCst), 2, "one body per attempt");
    let log = server.state().transfer_log("tower-factory").unwrap();
    let want = (whole.len() as u64, resile_chaos::sha256_hex(&whole));
    assert_eq!(
        log.uploads,
        vec![want.clone(), want],
        "the whole body, both times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inner_service_error_is_a_failed_attempt_the_engine_judges() {
    let calls = Arc::new(AtomicU32::new(0));
    let count = calls.clone();
    let inner = service_fn(move |req: http::Request<ResileBody<Full<Bytes>>>| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
            }
            let id = req.headers().get("x-request-id").cloned();
            let mut response = http::Response::new(format!("attempt {}", n + 1));
            if let Some(id) = id {
                response.headers_mut().insert("x-request-id", id);
            }
            Ok(response)
        }
    });
    let client = client_with(fast_policy());
    let mut service = ResileService::new(inner, &client);
    let request = http::Request::get("http://inner.test/x")
        .body(Full::default())
        .unwrap();
    let response = send(&mut service, request).await.unwrap();
    assert_eq!(response.body(), "attempt 2");
    let report = report(&response);
    let first = report.events.iter().find_map(|e| match &e.kind {
        EventKind::AttemptFinished {
            attempt: 1, result, ..
        } => Some(*result),
        _ => None,
    });
    assert_eq!(
        first,
        Some(resile::resile_core::Last::Transport(
            resile::TransportError::Reset
        )),
        "{:#?}",
        report.decisions()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(client.stats().retries, 1);

    // A request the engine cannot name a host for is refused before any attempt.
    let request = http::Request::get("/relative")
        .body(Full::default())
        .unwrap();
    let e = send(&mut service, request).await.unwrap_err();
    assert!(matches!(e, Error::InvalidUrl { .. }), "{e:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_options_in_the_extensions_set_the_calls_attempts_and_key() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let mut service = ResileLayer::new(&client).layer(hyper());
    let mut request = http::Request::get(format!("{}/status/503", server.url()))
        .body(Full::default())
        .unwrap();
    request
        .extensions_mut()
        .insert(CallOptions::default().max_attempts(2));
    let e = send(&mut service, request).await.unwrap_err();
    assert!(
        matches!(e, Error::RetriesExhausted { attempts: 2, .. }),
        "{e:?}"
    );

    // Keys off: a POST answered 503 after it may have been applied is not repeated.
    let mut request = http::Request::post(format!("{}/status/503", server.url()))
        .body(Full::default())
        .unwrap();
    request
        .extensions_mut()
        .insert(CallOptions::default().idempotency_key(IdempotencyKey::Off));
    let e = send(&mut service, request).await.unwrap_err();
    assert_eq!(e.why(), Some(Why::NotIdempotent), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_never_sent_and_retried() {
    let port = common::closed_port().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 2;
    let client = client_with(policy);
    let mut service = ResileLayer::new(&client).layer(hyper());
    let request = http::Request::post(format!("http://{port}/orders"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let e = send(&mut service, request).await.unwrap_err();
    // hyper-util's connect error is the engine's `connect`: never sent, so even a POST may be
    // tried again, and the error says it was not applied.
    assert!(
        matches!(
            e,
            Error::RetriesExhausted {
                attempts: 2,
                last: resile::LastCause::Transport {
                    kind: resile::TransportError::Connect,
                    ..
                },
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!e.maybe_processed(), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_hyper_cannot_read_is_tried_once_as_the_client_tries_it() {
    // hyper-util's error for a head over its limit is the client's `unreadable`: the server
    // would send it again, so it is not repeated (it was `other`, and retried).
    let server =
        mini_server(|_| async { MiniResponse::status(200).header("x-huge", &"a".repeat(1 << 20)) })
            .await;
    let client = client_with(fast_policy());
    let mut service = ResileLayer::new(&client).layer(hyper());
    let request = http::Request::get(format!("{}/big-head", server.url()))
        .body(Full::default())
        .unwrap();
    let e = send(&mut service, request).await.unwrap_err();
    assert_eq!(server.requests().len(), 1, "{e:?}");
    assert_eq!(e.why(), Some(Why::Unreadable), "{e:?}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("too large"), "{e}");
}

/// A service that counts how often it is asked whether it is ready.
#[derive(Clone)]
struct CountsReadiness {
    polled: Arc<AtomicU32>,
    called: Arc<AtomicU32>,
}

impl Service<http::Request<ResileBody<Full<Bytes>>>> for CountsReadiness {
    type Response = http::Response<String>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<http::Response<String>, std::io::Error>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.polled.fetch_add(1, Ordering::SeqCst);
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<ResileBody<Full<Bytes>>>) -> Self::Future {
        let n = self.called.fetch_add(1, Ordering::SeqCst);
        let status = if n == 0 { 503 } else { 200 };
        let mut response = http::Response::new(String::new());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        std::future::ready(Ok(response))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inner_service_is_made_ready_before_each_attempt_not_before_the_call() {
    let inner = CountsReadiness {
        polled: Arc::default(),
        called: Arc::default(),
    };
    let client = client_with(fast_policy());
    let mut service = ResileService::new(inner.clone(), &client);
    service.ready().await.unwrap();
    assert_eq!(
        inner.polled.load(Ordering::SeqCst),
        0,
        "always ready itself"
    );
    let request = http::Request::get("http://inner.test/x")
        .body(Full::default())
        .unwrap();
    let response = service.call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(inner.called.load(Ordering::SeqCst), 2);
    assert_eq!(inner.polled.load(Ordering::SeqCst), 2, "once per attempt");
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
    let mut service = ResileLayer::new(&client).layer(hyper());
    for _ in 0..3 {
        let request = http::Request::get(format!("{}/status/500", server.url()))
            .body(Full::default())
            .unwrap();
        let e = send(&mut service, request).await.unwrap_err();
        assert_eq!(e.status(), Some(500), "{e:?}");
    }
    let before = server.stats().requests;
    let e = client
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.why(), Some(Why::BreakerOpen), "{e:?}");
    assert_eq!(
        server.stats().requests,
        before,
        "an open breaker sends nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_runs() {
    let server = chaos().await;
    let client = client_with(fast_policy());
    let status = get_status(
        &client,
        &format!("{}/flaky?key=readme&fail=2", server.url()),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(client.stats().retries, 2);
}

#[test]
fn the_readme_shows_this_code() {
    resile_chaos::readme::assert_snippet_is_code(
        include_str!("../../README.md"),
        "## In a tower stack",
        include_str!("tower.rs"),
        "native/tests/tower.rs",
    );
}
