//! `resile demo`: the same workload through resile and through a naive client, on an embedded
//! chaos server, with progress, live host state, and a side-by-side report.
//!
//! Phases, in order (each contender gets a freshly reset server):
//! 1. healthy: plain GETs, for the baseline latency;
//! 2. 429 storm: a burst against a 50/s token bucket that answers 429 with Retry-After;
//! 3. outage: every request 503 for a few seconds, calls keep arriving;
//! 4. recovery: calls right after the outage ends;
//! 5. token expiry: OAuth2-protected calls, all tokens revoked halfway;
//! 6. paging: 10 000 items by cursor with 20% of page requests failing;
//! 7. writes: POSTs the server commits and then answers 503 (commit-then-fail);
//! 8. fleet (resile only): four clients against one upstream quota, alone and then sharing it
//!    through Redis (`--redis URL`, or a `redis-server` on PATH the demo starts and stops; the
//!    phase says how to get one when there is neither).

mod fleet;
mod naive;
mod report;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::stream::{FuturesUnordered, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use resile_core::paginate::PageStyle;
use serde_json::{json, Value};

use crate::exit::Exit;
use crate::Failed;
use naive::Naive;
pub use report::{PhaseReport, Report};

/// `resile demo` flags.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Print the report as JSON (no progress bars).
    #[arg(long)]
    pub json: bool,
    /// A small workload (a few seconds), for a quick look and for tests.
    #[arg(long)]
    pub quick: bool,
    /// Seed for the chaos server's faults and resile's jitter.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Run resile only, without the naive client for comparison.
    #[arg(long)]
    pub no_naive: bool,
    /// The Redis for the fleet phase; default: a `redis-server` from PATH on a loopback port.
    #[arg(long, value_name = "URL", env = "RESILE_REDIS")]
    pub redis: Option<String>,
}

/// The workload's size.
#[derive(Clone, Copy, Debug)]
struct Workload {
    healthy: usize,
    storm: usize,
    outage: Duration,
    outage_calls: usize,
    recovery: Duration,
    recovery_calls: usize,
    token_calls: usize,
    items: u64,
    orders: usize,
    /// Each fleet run's length, in seconds.
    fleet_secs: f64,
}

impl Workload {
    fn full() -> Self {
        Workload {
            healthy: 2000,
            storm: 200,
            outage: Duration::from_secs(3),
            outage_calls: 300,
            recovery: Duration::from_millis(2500),
            recovery_calls: 250,
            token_calls: 200,
            items: 10_000,
            orders: 200,
            fleet_secs: 3.0,
        }
    }

    fn quick() -> Self {
        Workload {
            healthy: 100,
            storm: 80,
            outage: Duration::from_millis(1200),
            outage_calls: 60,
            recovery: Duration::from_millis(1500),
            recovery_calls: 60,
            token_calls: 40,
            items: 1_000,
            orders: 30,
            fleet_secs: 1.5,
        }
    }
}

/// The policy resile runs the demo with (printed in the report).
fn resile_config(seed: u64) -> resile::ClientConfig {
    let mut c = resile::ClientConfig::default();
    let e = &mut c.engine;
    e.retry.max_attempts = 4;
    e.retry.attempt_timeout_ms = Some(2_000);
    e.retry.deadline_ms = Some(15_000);
    e.backoff.base_ms = 50;
    e.backoff.cap_ms = 2_000;
    e.breaker.consecutive_failures = 5;
    e.breaker.open_ms = 250;
    e.breaker.open_growth = 2.0;
    e.breaker.max_open_ms = 1_000;
    c.max_in_flight = 256;
    c.seed = Some(seed);
    c
}

/// One logical call's result, as the demo counts it.
#[derive(Clone, Debug)]
pub struct Outcome {
    ok: bool,
    latency: Duration,
    error: Option<String>,
}

/// The two contenders behind one interface.
#[derive(Clone)]
enum Contender {
    Resile(resile::Client),
    Naive(Arc<Naive>),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Resile(_) => "resile",
            Contender::Naive(_) => "naive",
        }
    }

    async fn get(&self, url: String, protected: bool) -> Outcome {
        let start = Instant::now();
        let result = match self {
            Contender::Resile(c) => {
                let mut r = c.get(&url);
                if !protected {
                    r = r.without_token();
                }
                match r.send().await {
                    Ok(resp) if resp.status().is_success() => Ok(()),
                    Ok(resp) => Err(format!("status {}", resp.status().as_u16())),
                    Err(e) => Err(e.to_string()),
                }
            }
            Contender::Naive(n) => n
                .call(reqwest::Method::GET, &url, None, protected)
                .await
                .map(|_| ()),
        };
        outcome(start, result)
    }

    async fn post(&self, url: String, body: Value) -> Outcome {
        let start = Instant::now();
        let result = match self {
            Contender::Resile(c) => match c.post(&url).without_token().json(&body).send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => Err(format!("status {}", resp.status().as_u16())),
                Err(e) => Err(e.to_string()),
            },
            Contender::Naive(n) => n
                .call(reqwest::Method::POST, &url, Some(&body), false)
                .await
                .map(|_| ()),
        };
        outcome(start, result)
    }

    /// Walks the cursor-paged collection; returns every item id seen and the error, if any.
    async fn page_all(&self, url: String, bar: &ProgressBar) -> (Vec<u64>, Option<String>) {
        let mut ids = Vec::new();
        match self {
            Contender::Resile(c) => {
                let mut items = c
                    .paginate(
                        &url,
                        PageStyle::cursor("/next_cursor", "cursor"),
                        Some("/items"),
                    )
                    .items::<Value>();
                while let Some(item) = items.next().await {
                    match item {
                        Ok(v) => {
                            ids.push(v["id"].as_u64().unwrap_or(0));
                            bar.inc(1);
                        }
                        Err(e) => return (ids, Some(e.to_string())),
                    }
                }
                (ids, None)
            }
            Contender::Naive(n) => {
                let mut cursor: Option<String> = None;
                loop {
                    let page_url = match &cursor {
                        Some(c) => format!("{url}&cursor={c}"),
                        None => url.clone(),
                    };
                    let page = match n.call(reqwest::Method::GET, &page_url, None, false).await {
                        Ok(body) => body,
                        Err(e) => return (ids, Some(e)),
                    };
                    let Ok(page) = serde_json::from_slice::<Value>(&page) else {
                        return (ids, Some("a page was not JSON".into()));
                    };
                    let items = page["items"].as_array().cloned().unwrap_or_default();
                    for v in &items {
                        ids.push(v["id"].as_u64().unwrap_or(0));
                    }
                    bar.inc(items.len() as u64);
                    match page["next_cursor"].as_str() {
                        Some(next) if !items.is_empty() => cursor = Some(next.to_string()),
                        _ => return (ids, None),
                    }
                }
            }
        }
    }

    fn live_state(&self) -> String {
        match self {
            Contender::Resile(c) => {
                let hosts = c.hosts();
                let token = c.token();
                let host = hosts.first().map(|h| {
                    let breaker = match h.breaker {
                        resile_core::breaker::BreakerState::Closed => "closed".to_string(),
                        resile_core::breaker::BreakerState::Open { .. } => "OPEN".to_string(),
                        resile_core::breaker::BreakerState::HalfOpen => "half-open".to_string(),
                    };
                    let limit = match h.limiter_next_free {
                        Some(_) => "paced",
                        None => "none",
                    };
                    let held = if h.held_until.is_some() {
                        ", held by server"
                    } else {
                        ""
                    };
                    format!(
                        "breaker {breaker}, budget {:.1}, limiter {limit}{held}, in flight {}",
                        h.budget_available, h.active_calls
                    )
                });
                format!(
                    "{} | token gen {}{}",
                    host.unwrap_or_else(|| "no host yet".into()),
                    token.generation,
                    if token.fetching { " (fetching)" } else { "" }
                )
            }
            Contender::Naive(n) => n.live_state(),
        }
    }
}

fn outcome(start: Instant, result: Result<(), String>) -> Outcome {
    Outcome {
        ok: result.is_ok(),
        latency: start.elapsed(),
        error: result.err(),
    }
}

/// Runs `n` calls with at most `concurrency` at once.
async fn burst<F, Fut>(n: usize, concurrency: usize, bar: &ProgressBar, make: F) -> Vec<Outcome>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let mut out = Vec::with_capacity(n);
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    while next < n || !running.is_empty() {
        while next < n && running.len() < concurrency {
            running.push(make(next));
            next += 1;
        }
        if let Some(o) = running.next().await {
            bar.inc(1);
            out.push(o);
        }
    }
    out
}

/// Starts `n` calls spread evenly over `over`, all running at once.
async fn paced<F, Fut>(n: usize, over: Duration, bar: &ProgressBar, make: F) -> Vec<Outcome>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Outcome>,
{
    let start = tokio::time::Instant::now();
    let step = over / n.max(1) as u32;
    let mut running = FuturesUnordered::new();
    for i in 0..n {
        let at = start + step * i as u32;
        let f = make(i);
        running.push(async move {
            tokio::time::sleep_until(at).await;
            f.await
        });
    }
    let mut out = Vec::with_capacity(n);
    while let Some(o) = running.next().await {
        bar.inc(1);
        out.push(o);
    }
    out
}

struct Ui {
    multi: MultiProgress,
    status: ProgressBar,
    enabled: bool,
}

impl Ui {
    fn new(enabled: bool) -> Self {
        let multi = MultiProgress::with_draw_target(if enabled {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        });
        let status = multi.add(ProgressBar::new_spinner());
        status.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Ui {
            multi,
            status,
            enabled,
        }
    }

    fn bar(&self, contender: &str, phase: &str, len: u64) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.status, ProgressBar::new(len));
        let style = ProgressStyle::with_template(
            "{prefix:>24} [{bar:32.cyan/blue}] {pos:>5}/{len:5} {elapsed:>4} {msg}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(format!("{contender}: {phase}"));
        bar
    }
}

/// Runs the demo.
pub async fn run(args: DemoArgs) -> Result<Exit, Failed> {
    let workload = if args.quick {
        Workload::quick()
    } else {
        Workload::full()
    };
    let server = resile_chaos::start(resile_chaos::ChaosConfig {
        seed: args.seed,
        collection_size: workload.items,
        max_stall: Duration::from_secs(5),
        ..resile_chaos::ChaosConfig::default()
    })
    .await
    .map_err(|e| {
        (
            Exit::Other,
            format!("cannot start the chaos server on 127.0.0.1: {e}"),
        )
    })?;
    let base = server.url();
    let ui = Ui::new(!args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if !args.json {
        note!("resile demo: chaos server at {base}; the same workload through resile and a naive client\n");
    }
    let started = Instant::now();

    let mut contenders = Vec::new();
    let config = resile_config(args.seed);
    let policy = serde_json::to_value(&config.engine).unwrap_or(Value::Null);
    let resile_client = resile::Client::builder()
        .config(config)
        .token_source(resile::ClientCredentials {
            token_url: format!("{base}/oauth/token"),
            client_id: "demo".into(),
            client_secret: resile::Secret::new("demo"),
            scope: None,
            auth: resile::ClientAuth::Basic,
        })
        .build()
        .map_err(|e| (Exit::Config, e.to_string()))?;
    contenders.push(Contender::Resile(resile_client));
    if !args.no_naive {
        let naive = Naive::new(format!("{base}/oauth/token")).map_err(|e| (Exit::Other, e))?;
        contenders.push(Contender::Naive(Arc::new(naive)));
    }

    let mut report = Report::new(&base, args.seed, policy);
    for contender in contenders {
        server.state().reset();
        let phases = run_phases(&contender, &server, &base, workload, &ui).await;
        report.add(contender.name(), phases);
    }
    ui.status.finish_and_clear();
    if ui.enabled {
        let _ = ui.multi.clear();
    }
    if !args.json {
        note!("fleet: four clients on one quota, alone and then sharing Redis ...");
    }
    report.fleet = Some(fleet::run(&base, args.redis.clone(), workload.fleet_secs).await);
    report.duration_ms = started.elapsed().as_millis() as u64;
    server.shutdown().await;

    if args.json {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| (Exit::Other, e.to_string()))?
        );
    } else {
        let _ = std::io::Write::write_all(&mut std::io::stdout(), report.render().as_bytes());
    }
    Ok(Exit::Ok)
}

/// The server's counters between two points, for one route.
fn diff(before: &resile_chaos::Stats, after: &resile_chaos::Stats, route: &str) -> u64 {
    let a = after.requests_by_route.get(route).copied().unwrap_or(0);
    let b = before.requests_by_route.get(route).copied().unwrap_or(0);
    a.saturating_sub(b)
}

async fn run_phases(
    contender: &Contender,
    server: &resile_chaos::ChaosServer,
    base: &str,
    w: Workload,
    ui: &Ui,
) -> Vec<PhaseReport> {
    let name = contender.name();
    let handle = server.state();
    let mut phases = Vec::new();

    // The live line: host state, refreshed while the phases run.
    let live = Arc::new(AtomicBool::new(true));
    let ticker = {
        let (c, status, live) = (contender.clone(), ui.status.clone(), live.clone());
        tokio::spawn(async move {
            while live.load(Ordering::Relaxed) {
                status.set_message(format!("{}: {}", c.name(), c.live_state()));
                status.tick();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let trips_before = |c: &Contender| match c {
        Contender::Resile(c) => c.stats().breaker_trips,
        Contender::Naive(_) => 0,
    };

    // 1. healthy
    let bar = ui.bar(name, "healthy", w.healthy as u64);
    let before = handle.stats();
    let outcomes = burst(w.healthy, 64, &bar, |_| {
        contender.get(format!("{base}/slow?ms=2"), false)
    })
    .await;
    bar.finish();
    let after = handle.stats();
    phases.push(PhaseReport::from_calls(
        "healthy",
        &outcomes,
        diff(&before, &after, "/slow"),
    ));

    // 2. 429 storm
    let bar = ui.bar(name, "429 storm", w.storm as u64);
    let before = handle.stats();
    let trips = trips_before(contender);
    let outcomes = burst(w.storm, 200, &bar, |_| {
        contender.get(
            format!("{base}/ratelimited?rate=50&burst=50&key=storm"),
            false,
        )
    })
    .await;
    bar.finish();
    let after = handle.stats();
    let mut p = PhaseReport::from_calls(
        "429 storm",
        &outcomes,
        diff(&before, &after, "/ratelimited"),
    );
    p.rejected_429 = Some(after.rate_limited - before.rate_limited);
    p.breaker_trips = Some(trips_before(contender) - trips);
    phases.push(p);

    // 3. outage, 4. recovery
    let bar = ui.bar(name, "outage", w.outage_calls as u64);
    let before = handle.stats();
    let trips = trips_before(contender);
    handle.outage_for(w.outage, None);
    let outcomes = paced(w.outage_calls, w.outage, &bar, |_| {
        contender.get(format!("{base}/slow?ms=2"), false)
    })
    .await;
    bar.finish();
    let after = handle.stats();
    let mut p = PhaseReport::from_calls("total outage", &outcomes, diff(&before, &after, "/slow"));
    p.breaker_trips = Some(trips_before(contender) - trips);
    phases.push(p);

    let bar = ui.bar(name, "recovery", w.recovery_calls as u64);
    let before = handle.stats();
    let outcomes = paced(w.recovery_calls, w.recovery, &bar, |_| {
        contender.get(format!("{base}/slow?ms=2"), false)
    })
    .await;
    bar.finish();
    let after = handle.stats();
    let mut p = PhaseReport::from_calls("recovery", &outcomes, diff(&before, &after, "/slow"));
    p.recovered_after_ms = outcomes
        .iter()
        .position(|o| o.ok)
        .map(|i| (w.recovery * i as u32 / w.recovery_calls.max(1) as u32).as_millis() as u64);
    phases.push(p);
    // The next phases start on a healthy host: wait (bounded) for the breaker to close.
    if let Contender::Resile(c) = contender {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline
            && c.hosts()
                .iter()
                .any(|h| h.breaker != resile_core::breaker::BreakerState::Closed)
        {
            let _ = c
                .get(format!("{base}/slow?ms=1"))
                .without_token()
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // 5. token expiry: half the calls, revoke every token, the other half.
    let bar = ui.bar(name, "token expiry", w.token_calls as u64);
    let before = handle.stats();
    let half = w.token_calls / 2;
    let mut outcomes = burst(half, half.max(1), &bar, |i| {
        contender.get(format!("{base}/protected/item/{i}"), true)
    })
    .await;
    handle.expire_tokens();
    outcomes.extend(
        burst(w.token_calls - half, w.token_calls.max(1), &bar, |i| {
            contender.get(format!("{base}/protected/item/{i}"), true)
        })
        .await,
    );
    bar.finish();
    let after = handle.stats();
    let mut p = PhaseReport::from_calls(
        "token expiry",
        &outcomes,
        diff(&before, &after, "/protected/{path}"),
    );
    p.token_fetches = Some(after.tokens_issued - before.tokens_issued);
    phases.push(p);

    // 6. paging under 20% faults
    let bar = ui.bar(name, "paging", w.items);
    let before = handle.stats();
    let start = Instant::now();
    let (ids, error) = contender
        .page_all(format!("{base}/items/cursor?limit=100&fail_rate=0.2"), &bar)
        .await;
    bar.finish();
    let after = handle.stats();
    let unique: HashSet<u64> = ids.iter().copied().collect();
    let mut p = PhaseReport::from_calls(
        "paging 20% faults",
        &[Outcome {
            ok: error.is_none(),
            latency: start.elapsed(),
            error,
        }],
        diff(&before, &after, "/items/cursor"),
    );
    p.items = Some(ids.len() as u64);
    p.duplicates = Some((ids.len() - unique.len()) as u64);
    p.lost = Some(w.items.saturating_sub(unique.len() as u64));
    p.pages_failed = Some(after.page_failures - before.page_failures);
    phases.push(p);

    // 7. writes that the server commits and then answers 503
    let bar = ui.bar(name, "commit-then-fail", w.orders as u64);
    let before = handle.stats();
    let outcomes = burst(w.orders, 32, &bar, |i| {
        contender.post(
            format!("{base}/orders?mode=commit_then_fail&fail=503&times=1&rate=0.25"),
            json!({"order": i, "sku": format!("SKU-{i}"), "qty": 1 + i % 3}),
        )
    })
    .await;
    bar.finish();
    let after = handle.stats();
    let mut p = PhaseReport::from_calls(
        "POST commit-then-fail",
        &outcomes,
        diff(&before, &after, "/orders"),
    );
    p.orders_created = Some(after.orders_created - before.orders_created);
    p.duplicate_orders = Some(after.duplicate_orders - before.duplicate_orders);
    phases.push(p);

    live.store(false, Ordering::Relaxed);
    let _ = ticker.await;
    phases
}
