//! Every scenario in `tests/scenarios/` replayed through this adapter against the chaos server's
//! scripted endpoint, in real time: the expectations must hold, and single-call scenarios must
//! make the same decisions as the sim driver, line for line.
//!
//! How the sim's scripted server maps onto the real one:
//! - each reply becomes a chaos script reply (status, headers, `delay_ms`, fault `reset` /
//!   `stall` / `truncate`); `{date+N}` headers are expanded by the chaos server when it sends
//!   the reply. A `connect` fault cannot be scripted on a server that accepted the connection;
//!   no scenario uses one today, and one that does is reported as skipped.
//! - side effects (a POST/PATCH answered 2xx, or scripted with `commit`, applies once per
//!   `Idempotency-Key`) are counted from the chaos script log, which records each request's key
//!   and the reply it got.
//! - tokens come from a scripted `TokenSource` that follows the scenario's token plan (latency,
//!   lifetime, failing fetches) and hands out `gen-N` for the N-th token. A chaos script answers
//!   strictly in order and cannot look at the token, so for scenarios that reject generations a
//!   small gate in front of the chaos server answers 401 to those tokens (without using up a
//!   reply, as the sim's server does) and forwards everything else.
//! - a call plan's fallback becomes the request's [`Fallback`] (a value: 200 `"fallback"`; the
//!   last good response: the client's own store, all calls being one URL), and a fall-back
//!   answer is labelled `fallback:WHY` as the sim labels it.
//! - control steps run at their times on the client: isolate and force closed keep their
//!   [`resile::BreakerOverride`], `release` gives back the oldest, `export` keeps the JSON for
//!   `import`.
//! - the verdict is the core's [`verify`], shared with the browser driver: real time adds
//!   latency the virtual clock has not, so `finished_by_ms` gets [`SLACK_MS`] of slack, and a
//!   date-form `Retry-After` (one-second resolution) is compared in whole seconds.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{chaos, mini_server, MiniResponse, MiniServer, Recorder};
use futures::FutureExt;
use resile::resile_core::engine::Idempotency;
use resile::resile_core::sim::{
    has_date_headers, verify, walk_error_label, ControlAction, FallbackPlan, Fault, RealClock,
    Scenario, ScenarioResult,
};
use resile::resile_core::FallbackWrites;
use resile::{
    AccessToken, BreakerSnapshot, Client, Error, EventKind, Fallback, IdempotencyKey, Secret,
    TokenFuture, TokenSource, Why,
};
use resile_chaos::{ChaosServer, ScriptLog};

/// Real-time slack on `finished_by_ms`: request latency and timer granularity.
const SLACK_MS: u64 = 150;

/// How late a 5 ms timer on the test's runtime may wake before a replay counts as disturbed:
/// scenarios space their calls 25 ms apart or more, and a machine that stalls the runtime for
/// longer replays a different scenario than the one written.
const STEADY_MS: u64 = 10;

/// Replays a scenario; a failure seen while the runtime was stalled longer than [`STEADY_MS`]
/// (measured by a 5 ms ticker running beside the replay) is replayed again, at most twice,
/// and the note says so. A failure on a steady runtime fails at once.
async fn replay_steady(
    server: &ChaosServer,
    s: &Scenario,
    via: Via,
) -> Result<Vec<String>, String> {
    let mut disturbed = Vec::new();
    loop {
        let late = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ticker = tokio::spawn({
            let late = late.clone();
            async move {
                loop {
                    let due = tokio::time::Instant::now() + Duration::from_millis(5);
                    tokio::time::sleep_until(due).await;
                    let by = due.elapsed().as_millis() as u64;
                    late.fetch_max(by, Ordering::Relaxed);
                }
            }
        });
        let result = replay(server, s, via).await;
        ticker.abort();
        let late_ms = late.load(Ordering::Relaxed);
        match result {
            Ok(mut notes) => {
                if !disturbed.is_empty() {
                    notes.push(format!("replayed after disturbed runs: {disturbed:?}"));
                }
                return Ok(notes);
            }
            Err(why) if late_ms > STEADY_MS && disturbed.len() < 2 => {
                disturbed.push(format!(
                    "a 5 ms timer woke {late_ms} ms late; failed: {why}"
                ));
                eprintln!(
                    "{}: disturbed run ({late_ms} ms late), replaying: {why}",
                    s.name
                );
            }
            Err(why) => {
                return Err(format!(
                    "{why} (timer lateness {late_ms} ms; earlier disturbed runs: {disturbed:?})"
                ))
            }
        }
    }
}

fn load_all() -> Vec<(String, Scenario)> {
    resile_chaos::scenario::load_all(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios"),
    )
}

/// The token endpoint of a scenario: latency, lifetime, failing fetches; the N-th token issued
/// is `gen-N`, so its number is the engine's generation.
struct ScriptedTokens {
    latency: Duration,
    expires_in: Option<Duration>,
    fail: Vec<u32>,
    fetches: AtomicU32,
    issued: AtomicU32,
}

struct TokenScript(Arc<ScriptedTokens>);

impl TokenSource for TokenScript {
    fn fetch<'a>(&'a self, _http: &'a resile::reqwest::Client) -> TokenFuture<'a> {
        Box::pin(async move {
            let t = &self.0;
            let n = t.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(t.latency).await;
            if t.fail.contains(&n) {
                return Err(Error::Auth {
                    why: Why::TokenFetchFailed,
                    detail: Some(format!("scripted failure of fetch {n}")),
                });
            }
            let generation = t.issued.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(AccessToken {
                secret: Secret::new(format!("gen-{generation}")),
                expires_in: t.expires_in,
            })
        })
    }
}

/// Answers 401 to the rejected token generations, forwards everything else to the chaos server.
async fn token_gate(upstream: String, reject: Vec<u32>) -> MiniServer {
    let http = resile::reqwest::Client::new();
    mini_server(move |req| {
        let (http, upstream, reject) = (http.clone(), upstream.clone(), reject.clone());
        async move {
            let generation = req
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer gen-"))
                .and_then(|g| g.parse::<u32>().ok());
            if generation.is_some_and(|g| reject.contains(&g)) {
                return MiniResponse::status(401)
                    .header("www-authenticate", "Bearer error=\"invalid_token\"");
            }
            let method =
                resile::reqwest::Method::from_bytes(req.method.as_bytes()).unwrap_or_default();
            let mut forward = http.request(method, format!("{upstream}{}", req.path));
            for name in ["idempotency-key", "x-request-id", "authorization"] {
                if let Some(v) = req.header(name) {
                    forward = forward.header(name, v);
                }
            }
            match forward.body(req.body.clone()).send().await {
                Ok(r) => {
                    let mut out = MiniResponse::status(r.status().as_u16());
                    for (k, v) in r.headers() {
                        if !matches!(
                            k.as_str(),
                            "content-length" | "connection" | "transfer-encoding"
                        ) {
                            out = out.header(k.as_str(), v.to_str().unwrap_or_default());
                        }
                    }
                    out.body(r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
                }
                Err(_) => MiniResponse::status(502),
            }
        }
    })
    .await
}

/// Writes the sim's server would have applied, from what the chaos server logged.
fn side_effects(s: &Scenario, logs: &[ScriptLog]) -> u32 {
    let mut keys = HashSet::new();
    let mut applied = 0;
    for entry in logs.iter().flat_map(|l| &l.requests) {
        let Some(reply) = entry
            .reply
            .and_then(|i| s.replies.get(i.min(s.replies.len() - 1)))
        else {
            continue;
        };
        let status = reply.status.unwrap_or(200);
        let applies = reply.commit || (reply.fault.is_none() && (200..300).contains(&status));
        if applies && matches!(entry.method.as_str(), "POST" | "PATCH") {
            let first = entry
                .idempotency_key
                .as_ref()
                .is_none_or(|k| keys.insert(k.clone()));
            if first {
                applied += 1;
            }
        }
    }
    applied
}

/// Which adapter sends the scenario's calls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `resile::Client`'s own requests.
    Client,
    /// A reqwest-middleware stack with `ResileMiddleware`, built from the same client.
    #[cfg(feature = "reqwest-middleware")]
    Middleware,
}

/// `r` carries `done:STATUS` or `fallback:WHY` for an answer.
fn outcome(r: &Result<String, Error>) -> String {
    match r {
        Ok(answer) => answer.clone(),
        Err(e) => match e.why() {
            Some(why) => format!(
                "fail:{}",
                serde_json::to_value(why).unwrap().as_str().unwrap()
            ),
            None => format!("fail:{e}"),
        },
    }
}

/// Replays one scenario; `Ok` carries notes about what was adapted or skipped.
async fn replay(server: &ChaosServer, s: &Scenario, via: Via) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    if s.replies.iter().any(|r| r.fault == Some(Fault::Connect)) {
        notes.push("skipped: a `connect` fault cannot be scripted on a server that accepted the connection".into());
        return Ok(notes);
    }
    if s.paginate.is_some() && via != Via::Client {
        notes.push("skipped: pagination is the client's own".into());
        return Ok(notes);
    }
    let by_hand = !s.controls.is_empty() || s.calls.iter().any(|c| c.fallback.is_some());
    if by_hand && via != Via::Client {
        notes.push("skipped: fallbacks and breaker control are the client's own".into());
        return Ok(notes);
    }
    // Starts in time order, stable for equal times, as the sim orders them.
    let mut starts: Vec<(u64, usize, &resile::resile_core::sim::CallPlan)> = Vec::new();
    for plan in &s.calls {
        for i in 0..u64::from(plan.count) {
            starts.push((plan.at_ms + i * plan.spacing_ms, starts.len(), plan));
        }
    }
    starts.sort_by_key(|(at, i, _)| (*at, *i));

    let script_ids: Vec<String> = if s.per_call {
        (0..starts.len())
            .map(|i| format!("conf-{}-{i}", s.name))
            .collect()
    } else {
        vec![format!("conf-{}", s.name)]
    };
    for id in &script_ids {
        server
            .state()
            .set_script(id, resile_chaos::scenario::script_for(s))
            .map_err(|e| format!("script: {e}"))?;
    }
    let uses_tokens = s.calls.iter().any(|c| c.token);
    let gate = if uses_tokens && !s.token.reject_generations.is_empty() {
        notes.push(
            "401s to rejected generations come from a gate in front of the chaos server".into(),
        );
        Some(token_gate(server.url(), s.token.reject_generations.clone()).await)
    } else {
        None
    };
    let base = gate.as_ref().map_or_else(|| server.url(), MiniServer::url);

    let tokens = Arc::new(ScriptedTokens {
        latency: Duration::from_millis(s.token.latency_ms),
        expires_in: s.token.expires_in_ms.map(Duration::from_millis),
        fail: s.token.fail_fetches.clone(),
        fetches: AtomicU32::new(0),
        issued: AtomicU32::new(0),
    });
    let recorder = Recorder::default();
    let mut builder = Client::builder()
        .engine(s.config.clone())
        .seed(s.seed)
        .max_in_flight(4096)
        .on_event(recorder.callback());
    if uses_tokens {
        builder = builder.token_source(TokenScript(tokens.clone()));
    }
    let client = builder.build().map_err(|e| e.to_string())?;
    #[cfg(feature = "reqwest-middleware")]
    let stack = reqwest_middleware::ClientBuilder::new(resile::reqwest::Client::new())
        .with(resile::middleware::ResileMiddleware::new(&client))
        .build();

    if has_date_headers(s) {
        // The server writes an HTTP-date (whole seconds) N seconds ahead; starting early in a
        // second keeps the wait within (N-1, N] seconds, which rounds up to N.
        let into_second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_millis();
        if into_second > 600 {
            tokio::time::sleep(Duration::from_millis(u64::from(1_020 - into_second))).await;
        }
    }
    let t0 = tokio::time::Instant::now();
    let origin = client.now();
    let (mut items, mut walk_error) = (Vec::new(), None);
    if let Some(walk) = &s.paginate {
        // The pages, through the client's own pagination stream.
        let mut stream = client
            .paginate(
                format!("{base}/s/{}", script_ids[0]),
                walk.style.clone(),
                walk.items.as_deref(),
            )
            .max_pages(walk.max_pages)
            .items::<serde_json::Value>();
        while let Some(item) = futures::StreamExt::next(&mut stream).await {
            match item {
                Ok(v) => items.push(v),
                Err(e) => {
                    let cause = match &e {
                        Error::Walk { cause, .. } => cause.as_ref(),
                        other => other,
                    };
                    walk_error = Some(match cause {
                        Error::Pagination(p) => walk_error_label(p),
                        other => format!("call:{other}"),
                    });
                    break;
                }
            }
        }
    }
    let mut calls = Vec::new();
    for (label, (at, _, plan)) in starts.iter().enumerate().filter(|_| s.paginate.is_none()) {
        let script = &script_ids[if s.per_call { label } else { 0 }];
        let url = format!("{base}/s/{script}");
        let start = t0 + Duration::from_millis(*at);
        let send = match via {
            Via::Client => through_client(&client, plan, label, url).boxed(),
            #[cfg(feature = "reqwest-middleware")]
            Via::Middleware => through_middleware(&stack, plan, label, url).boxed(),
        };
        calls.push(tokio::spawn(async move {
            tokio::time::sleep_until(start).await;
            send.await
        }));
    }
    let controls = {
        let (client, steps, url) = (client.clone(), s.controls.clone(), format!("{base}/s/x"));
        tokio::spawn(async move {
            let mut holds = std::collections::VecDeque::new();
            let mut exported = None;
            for step in steps {
                // A control at a call's start time goes first: the call waits for its time.
                tokio::time::sleep_until(t0 + Duration::from_millis(step.at_ms)).await;
                match step.action {
                    ControlAction::Isolate => holds.push_back(client.isolate(&url)?),
                    ControlAction::ForceClosed => holds.push_back(client.force_closed(&url)?),
                    ControlAction::Release => drop(holds.pop_front()),
                    ControlAction::Reset => client.reset_breaker(&url)?,
                    ControlAction::Export => exported = Some(client.export_breakers()?.to_json()),
                    ControlAction::Import => {
                        if let Some(text) = &exported {
                            let snapshot = BreakerSnapshot::from_json(text)
                                .map_err(resile::ControlError::from)?;
                            client.import_breakers(&snapshot)?;
                        }
                    }
                }
            }
            Ok::<_, Error>(holds)
        })
    };
    let mut outcomes = Vec::new();
    let mut results = Vec::new();
    for c in calls {
        let r = c.await.map_err(|e| format!("call task: {e}"))??;
        outcomes.push(outcome(&r));
        results.push(r);
    }

    let holds = controls
        .await
        .map_err(|e| format!("control task: {e}"))?
        .map_err(|e| format!("control: {e}"))?;
    drop(holds);
    let trace = recorder.engine();
    if let ([Err(e)], true) = (results.as_slice(), s.compares_traces()) {
        // The adapter's error says what the engine's failure says: one source of semantics.
        let failure = trace.iter().find_map(|ev| match &ev.kind {
            EventKind::CallFailed { failure, .. } => Some(*failure),
            _ => None,
        });
        if let Some(f) = failure {
            let agree = e.why() == Some(f.why)
                && e.is_retryable() == f.is_retryable()
                && e.maybe_processed() == f.maybe_processed();
            if !agree {
                return Err(format!(
                    "{}: the error disagrees with the engine: {e:?} (retryable {}, maybe processed {}) vs {f:?}",
                    s.name,
                    e.is_retryable(),
                    e.maybe_processed()
                ));
            }
        }
    }
    if s.paginate.is_some() {
        // A walk's calls are its pages: their outcomes are read off the trace.
        outcomes = trace
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::CallSucceeded { status, .. } => Some(format!("done:{status}")),
                EventKind::CallFailed { failure, .. } => Some(format!(
                    "fail:{}",
                    serde_json::to_value(failure.why)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                )),
                _ => None,
            })
            .collect();
    }
    let logs: Vec<ScriptLog> = script_ids
        .iter()
        .filter_map(|id| server.state().script_log(id))
        .collect();
    let stats = client.stats();
    let finished_ms = trace
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::CallSucceeded { .. } | EventKind::CallFailed { .. }
            )
        })
        .map(|e| (e.at - origin).as_millis() as u64)
        .max()
        .unwrap_or(0);
    let result = ScenarioResult {
        name: s.name.clone(),
        trace: trace.clone(),
        outcomes,
        attempts: stats.attempts,
        side_effects: side_effects(s, &logs),
        token_fetches: tokens.fetches.load(Ordering::SeqCst),
        breaker_trips: stats.breaker_trips,
        finished_ms,
        items,
        walk_error,
        mismatches: Vec::new(),
    };

    let driver = match via {
        Via::Client => "native",
        #[cfg(feature = "reqwest-middleware")]
        Via::Middleware => "reqwest-middleware",
    };
    let verdict = verify(
        s,
        driver,
        &result,
        RealClock {
            slack_ms: SLACK_MS,
            side_effects: true,
        },
    )?;
    if !s.compares_traces() {
        notes.push(format!(
            "{} concurrent calls: expectations only, no trace comparison",
            s.total_calls()
        ));
    }
    notes.push(verdict);
    Ok(notes)
}

/// A scenario's fallback as the request's.
fn fallback_of(plan: FallbackPlan) -> Fallback {
    let (f, writes) = match plan {
        FallbackPlan::Value { writes } => (
            Fallback::value(resile::http::StatusCode::OK, "fallback"),
            writes,
        ),
        FallbackPlan::LastGood { max_age_ms, writes } => (
            Fallback::last_good(Duration::from_millis(max_age_ms)),
            writes,
        ),
    };
    match writes {
        FallbackWrites::Allow => f.allow_writes(),
        FallbackWrites::Refuse => f,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_replays_on_the_native_adapter() {
    let server = chaos().await;
    let all = load_all();
    assert!(
        all.len() >= 15,
        "expected the full scenario set, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    let mut report = BTreeMap::new();
    for (path, s) in &all {
        let started = std::time::Instant::now();
        match replay_steady(&server, s, Via::Client).await {
            Ok(notes) => {
                report.insert(
                    s.name.clone(),
                    format!("ok in {:?} {notes:?}", started.elapsed()),
                );
            }
            Err(why) => failures.push(format!("{path}:\n  {why}")),
        }
    }
    for (name, line) in &report {
        eprintln!("{name}: {line}");
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// One scenario call as the client's own request.
fn through_client(
    client: &Client,
    plan: &resile::resile_core::sim::CallPlan,
    label: usize,
    url: String,
) -> impl std::future::Future<Output = Result<Result<String, Error>, String>> + Send + 'static {
    let method = resile::http::Method::from_bytes(plan.method.as_str().as_bytes()).unwrap();
    let mut request = client
        .request(method, url)
        .idempotency_key(match plan.idempotency {
            Idempotency::Auto => IdempotencyKey::Auto,
            Idempotency::Off => IdempotencyKey::Off,
            Idempotency::Provided => IdempotencyKey::Explicit(format!("own-{label}")),
        });
    if !plan.token {
        request = request.without_token();
    }
    if let Some(d) = plan.deadline_ms {
        request = request.deadline(Duration::from_millis(d));
    }
    if let Some(n) = plan.max_attempts {
        request = request.max_attempts(n);
    }
    if let Some(plan) = plan.fallback {
        request = request.fallback(fallback_of(plan));
    }
    async move {
        Ok(request.send().await.map(|r| match r.fallback() {
            Some(f) => format!("fallback:{}", f.why().name()),
            None => format!("done:{}", r.status().as_u16()),
        }))
    }
}

/// One scenario call through a reqwest-middleware stack: the plan's key, token, deadline and
/// attempts as the request's own header and `CallOptions`.
#[cfg(feature = "reqwest-middleware")]
fn through_middleware(
    stack: &reqwest_middleware::ClientWithMiddleware,
    plan: &resile::resile_core::sim::CallPlan,
    label: usize,
    url: String,
) -> impl std::future::Future<Output = Result<Result<String, Error>, String>> + Send + 'static {
    use resile::middleware::CallOptions;
    let method = resile::http::Method::from_bytes(plan.method.as_str().as_bytes()).unwrap();
    let mut options = CallOptions::new();
    let mut request = stack.request(method, url);
    match plan.idempotency {
        Idempotency::Auto => {}
        Idempotency::Off => options = options.without_idempotency_key(),
        Idempotency::Provided => {
            request = request.header("idempotency-key", format!("own-{label}"))
        }
    }
    if !plan.token {
        options = options.without_token();
    }
    if let Some(d) = plan.deadline_ms {
        options = options.deadline(Duration::from_millis(d));
    }
    if let Some(n) = plan.max_attempts {
        options = options.max_attempts(n);
    }
    let request = request.with_extension(options);
    async move {
        match request.send().await {
            Ok(response) => Ok(Ok(format!("done:{}", response.status().as_u16()))),
            Err(reqwest_middleware::Error::Middleware(e)) => match e.downcast::<Error>() {
                Ok(e) => Ok(Err(e)),
                Err(other) => Err(format!("not resile's error: {other:#}")),
            },
            Err(other) => Err(format!("not resile's error: {other}")),
        }
    }
}

/// The same scenarios through `ResileMiddleware` in a reqwest-middleware stack: the same
/// decisions, line for line, as the sim (pagination is the client's own, so walks are skipped).
#[cfg(feature = "reqwest-middleware")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_replays_through_the_reqwest_middleware() {
    let server = chaos().await;
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (path, s) in &load_all() {
        match replay_steady(&server, s, Via::Middleware).await {
            Ok(notes) => {
                replayed += usize::from(!notes.iter().any(|n| n.starts_with("skipped")));
                eprintln!("{}: {notes:?}", s.name);
            }
            Err(why) => failures.push(format!("{path}:\n  {why}")),
        }
    }
    assert!(replayed >= 15, "only {replayed} scenarios replayed");
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
