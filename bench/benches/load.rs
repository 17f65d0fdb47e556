//! Load benchmark: resile against raw reqwest and reqwest-middleware + reqwest-retry, on the
//! chaos server started in-process, at concurrency 64.
//!
//! ```text
//! cargo bench -p resile-bench --bench load
//! ```
//!
//! Two phases per client, each a bounded number of logical calls with a 30 s cap:
//! - healthy: `GET /status/200`; throughput and latency;
//! - total outage: `GET /status/503`; what each client does to a host that is down, counted by
//!   the server (attempts per logical call) and how fast callers learn of it.
//!
//! Not a test: `cargo test` does not build it. Prints a markdown table.
//!
//! Short runs on a busy machine: `LOAD_CONCURRENCY=1024 LOAD_CALLS=5000 LOAD_ROUNDS=5
//! LOAD_OUTAGE=off cargo bench -p resile-bench --bench load` (defaults: 64, 30 000, 3, on).

use std::time::Duration;

use resile_bench::Sample;
use resile_chaos::BackgroundServer;

/// A setting from the environment, or its default.
fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

static CONCURRENCY: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| env("LOAD_CONCURRENCY", 64));
static HEALTHY_CALLS: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| env("LOAD_CALLS", 30_000));
/// Healthy rounds, each contender once per round in a rotated order; the median round counts.
static ROUNDS: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| env("LOAD_ROUNDS", 3));
const OUTAGE_CALLS: usize = 2_000;
const CAP: Duration = Duration::from_secs(30);
const WARMUP: usize = 256;

#[derive(Clone)]
enum Contender {
    Resile(resile::Client),
    Reqwest(reqwest::Client),
    Middleware(reqwest_middleware::ClientWithMiddleware),
}

impl Contender {
    fn name(&self) -> &'static str {
        match self {
            Contender::Resile(_) => "resile",
            Contender::Reqwest(_) => "reqwest (no retries)",
            Contender::Middleware(_) => "reqwest-retry (4 attempts)",
        }
    }

    /// One logical call: `true` for a 2xx with its body read.
    async fn call(&self, url: &str) -> bool {
        match self {
            Contender::Resile(c) => {
                matches!(c.get(url).send().await, Ok(r) if r.status().is_success())
            }
            Contender::Reqwest(c) => match c.get(url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            },
            Contender::Middleware(c) => match c.get(url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            },
        }
    }
}

/// The three clients, each with a policy of 4 attempts and 100 ms base backoff (10 s cap).
fn contenders() -> Vec<Contender> {
    let resile = resile::Client::builder()
        .pool_max_idle_per_host(*CONCURRENCY)
        .build()
        .expect("resile client");
    let reqwest = reqwest::Client::builder()
        .pool_max_idle_per_host(*CONCURRENCY)
        .build()
        .expect("reqwest client");
    let middleware = resile_bench::retry_transient(reqwest.clone());
    vec![
        Contender::Resile(resile),
        Contender::Reqwest(reqwest),
        Contender::Middleware(middleware),
    ]
}

#[derive(Clone)]
struct Row {
    phase: &'static str,
    client: &'static str,
    calls: usize,
    ok: usize,
    wall: Duration,
    p50: Duration,
    p99: Duration,
    attempts: u64,
}

async fn run(contender: &Contender, url: &str, calls: usize) -> Sample {
    let (contender, url) = (contender.clone(), url.to_string());
    let call = move || {
        let (contender, url) = (contender.clone(), url.clone());
        async move { contender.call(&url).await }
    };
    resile_bench::drive(call, calls, *CONCURRENCY, CAP).await
}

async fn phase(
    server: &BackgroundServer,
    phase: &'static str,
    path: &str,
    calls: usize,
    rotate: usize,
) -> Vec<Row> {
    let url = format!("{}{path}", server.url());
    let mut rows = Vec::new();
    let mut all = contenders();
    let n = all.len();
    all.rotate_left(rotate % n);
    for contender in all {
        // Warm the pool on the healthy route, then count from zero.
        let _ = run(&contender, &format!("{}/status/200", server.url()), WARMUP).await;
        server.state().reset();
        let sample = run(&contender, &url, calls).await;
        let attempts = server
            .stats()
            .requests_by_route
            .get("/status/{code}")
            .copied()
            .unwrap_or(0);
        rows.push(Row {
            phase,
            client: contender.name(),
            calls: sample.calls,
            ok: sample.ok,
            wall: sample.wall,
            p50: sample.percentile(0.50),
            p99: sample.percentile(0.99),
            attempts,
        });
        eprintln!("{phase}: {} done", contender.name());
    }
    rows
}

/// The load averages, to read the figures by.
fn uptime() -> String {
    resile_bench::load_averages()
        .map(|avg| format!("load average {}", avg.join(", ")))
        .unwrap_or_default()
}

fn main() {
    let (server, runtime) = resile_bench::setup();
    let mut rounds: Vec<Row> = Vec::new();
    for round in 0..*ROUNDS {
        eprintln!("round {round}: {}", uptime());
        rounds.extend(runtime.block_on(phase(
            &server,
            "healthy",
            "/status/200",
            *HEALTHY_CALLS,
            round,
        )));
    }
    let mut rows = Vec::new();
    for name in contenders().iter().map(Contender::name) {
        let mut mine: Vec<Row> = rounds
            .iter()
            .filter(|r| r.client == name)
            .cloned()
            .collect();
        mine.sort_by_key(|r| r.wall);
        let walls: Vec<String> = mine
            .iter()
            .map(|r| format!("{:.0}", r.calls as f64 / r.wall.as_secs_f64()))
            .collect();
        eprintln!(
            "healthy {name}: calls/s per round (sorted) {}",
            walls.join(", ")
        );
        rows.push(mine.swap_remove(mine.len() / 2));
    }
    if std::env::var("LOAD_OUTAGE").as_deref() != Ok("off") {
        rows.extend(runtime.block_on(phase(
            &server,
            "total outage",
            "/status/503",
            OUTAGE_CALLS,
            0,
        )));
    }

    println!(
        "concurrency {}; healthy: up to {} calls, median of {} rotated rounds; outage: up to {OUTAGE_CALLS} calls, each capped at {} s; \
         server-side attempts from the chaos server's /stats; load after the run: {}\n",
        *CONCURRENCY,
        *HEALTHY_CALLS,
        *ROUNDS,
        CAP.as_secs(),
        uptime()
    );
    println!("| phase | client | calls | ok | wall (s) | calls/s | p50 (ms) | p99 (ms) | server attempts | attempts/call |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.2} | {:.2} | {} | {:.2} |",
            r.phase,
            r.client,
            r.calls,
            r.ok,
            r.wall.as_secs_f64(),
            r.calls as f64 / r.wall.as_secs_f64().max(1e-9),
            r.p50.as_secs_f64() * 1e3,
            r.p99.as_secs_f64() * 1e3,
            r.attempts,
            r.attempts as f64 / (r.calls.max(1)) as f64,
        );
    }
    server.stop();
}
