//! The reqwest-middleware integration's overhead: the same load through raw reqwest, an empty
//! reqwest-middleware stack, `RetryTransientMiddleware` and `ResileMiddleware`, side by side in
//! one run, against the chaos server started in-process, at concurrency 64.
//!
//! ```text
//! cargo bench -p resile-bench --bench middleware            # CALLS=10000 ROUNDS=3 by default
//! ```
//!
//! - healthy: `GET /status/200`, `ROUNDS` rotated rounds of `CALLS` calls per stack; the median
//!   round is reported, with the CPU time the whole process (clients and server) spent per call,
//!   which a machine shared with other work disturbs less than throughput does;
//! - total outage: `GET /status/503`, what each stack sends to a host that is down.
//!
//! Both retrying stacks have 4 attempts and a 100 ms base backoff (10 s cap). Not a test:
//! `cargo test` does not build it. Prints a markdown table, and the machine's load.

use std::time::Duration;

use reqwest_middleware::ClientWithMiddleware;
use resile_bench::{drive, Sample};
use resile_chaos::BackgroundServer;

const CONCURRENCY: usize = 64;
const OUTAGE_CALLS: usize = 1_000;
const CAP: Duration = Duration::from_secs(20);
const WARMUP: usize = 256;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone)]
enum Stack {
    Reqwest(reqwest::Client),
    Middleware(&'static str, ClientWithMiddleware),
}

impl Stack {
    fn name(&self) -> &'static str {
        match self {
            Stack::Reqwest(_) => "reqwest, no middleware",
            Stack::Middleware(name, _) => name,
        }
    }

    /// One logical call: `true` for a 2xx with its body read.
    async fn call(&self, url: &str) -> bool {
        let answer = match self {
            Stack::Reqwest(c) => c.get(url).send().await.ok(),
            Stack::Middleware(_, c) => c.get(url).send().await.ok(),
        };
        match answer {
            Some(r) => r.status().is_success() && r.bytes().await.is_ok(),
            None => false,
        }
    }
}

/// A reqwest client of its own for each stack (its own pool), sized for the load.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("reqwest client")
}

fn stacks() -> Vec<Stack> {
    let retry_transient = resile_bench::retry_transient(http());
    let mut policy = resile::Config::default();
    policy.retry.max_attempts = 4;
    policy.backoff.base_ms = 100;
    policy.backoff.cap_ms = 10_000;
    let engine = resile::Client::builder()
        .engine(policy)
        .build()
        .expect("resile client");
    let resile = reqwest_middleware::ClientBuilder::new(http())
        .with(resile::middleware::ResileMiddleware::new(&engine))
        .build();
    vec![
        Stack::Reqwest(http()),
        Stack::Middleware(
            "reqwest-middleware, empty stack",
            reqwest_middleware::ClientBuilder::new(http()).build(),
        ),
        Stack::Middleware("+ RetryTransientMiddleware", retry_transient),
        Stack::Middleware("+ ResileMiddleware", resile),
    ]
}

/// CPU time this process has used so far, every thread (Linux: `/proc/self/task/*/schedstat`);
/// `None` elsewhere.
fn cpu_time() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

fn load_average() -> String {
    resile_bench::load_averages()
        .map(|avg| avg.join(" "))
        .unwrap_or_else(|| "unknown".into())
}

struct Row {
    phase: &'static str,
    stack: &'static str,
    sample: Sample,
    cpu_per_call: Option<Duration>,
    attempts: u64,
}

async fn run(stack: &Stack, url: &str, calls: usize) -> Sample {
    let (stack, url) = (stack.clone(), url.to_string());
    let call = move || {
        let (stack, url) = (stack.clone(), url.clone());
        async move { stack.call(&url).await }
    };
    drive(call, calls, CONCURRENCY, CAP).await
}

async fn phase(
    server: &BackgroundServer,
    phase: &'static str,
    path: &str,
    calls: usize,
    rotate: usize,
) -> Vec<Row> {
    let url = format!("{}{path}", server.url());
    let mut all = stacks();
    let n = all.len();
    all.rotate_left(rotate % n);
    let mut rows = Vec::new();
    for stack in all {
        // Warm the pool on the healthy route, then count from zero.
        run(&stack, &format!("{}/status/200", server.url()), WARMUP).await;
        server.state().reset();
        let before = cpu_time();
        let sample = run(&stack, &url, calls).await;
        let cpu_per_call = before
            .zip(cpu_time())
            .map(|(a, b)| b.saturating_sub(a) / u32::try_from(sample.calls.max(1)).unwrap_or(1));
        let attempts = server
            .stats()
            .requests_by_route
            .get("/status/{code}")
            .copied()
            .unwrap_or(0);
        eprintln!(
            "{phase}: {} done, {:.0} calls/s",
            stack.name(),
            sample.rate()
        );
        rows.push(Row {
            phase,
            stack: stack.name(),
            sample,
            cpu_per_call,
            attempts,
        });
    }
    rows
}

fn main() {
    let calls = env_or("CALLS", 10_000);
    let rounds = env_or("ROUNDS", 3).max(1);
    let load_before = load_average();
    let (server, runtime) = resile_bench::setup();
    let mut healthy: Vec<Row> = Vec::new();
    for round in 0..rounds {
        healthy.extend(runtime.block_on(phase(&server, "healthy", "/status/200", calls, round)));
    }
    // The median round of each stack, by wall time.
    let mut rows = Vec::new();
    for name in stacks().iter().map(Stack::name) {
        let mut mine: Vec<Row> = Vec::new();
        let mut rest = Vec::new();
        for row in healthy.drain(..) {
            if row.stack == name {
                mine.push(row);
            } else {
                rest.push(row);
            }
        }
        healthy = rest;
        mine.sort_by_key(|r| r.sample.wall);
        let rates: Vec<String> = mine
            .iter()
            .map(|r| format!("{:.0}", r.sample.rate()))
            .collect();
        eprintln!(
            "healthy {name}: calls/s per round (sorted) {}",
            rates.join(", ")
        );
        rows.push(mine.swap_remove(mine.len() / 2));
    }
    let raw_rate = rows[0].sample.rate();
    let raw_cpu = rows[0].cpu_per_call;
    rows.extend(runtime.block_on(phase(
        &server,
        "total outage",
        "/status/503",
        OUTAGE_CALLS,
        0,
    )));
    let load_after = load_average();
    server.stop();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "concurrency {CONCURRENCY}; healthy: {calls} calls per stack per round, median of {rounds} rotated rounds; \
         outage: up to {OUTAGE_CALLS} calls, capped at {} s. {cores} cores; load average (1/5/15 min) \
         {load_before} before, {load_after} after\n",
        CAP.as_secs()
    );
    println!("| phase | stack | calls | ok | calls/s | × raw | p50 (ms) | p99 (ms) | CPU µs/call | CPU − raw (µs) | server attempts/call |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let s = &r.sample;
        let cpu = r
            .cpu_per_call
            .map_or("–".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e6));
        let (ratio, extra) = if r.phase == "healthy" {
            let extra = r.cpu_per_call.zip(raw_cpu).map_or("–".into(), |(d, raw)| {
                format!("{:+.1}", (d.as_secs_f64() - raw.as_secs_f64()) * 1e6)
            });
            (format!("{:.2}", s.rate() / raw_rate.max(1e-9)), extra)
        } else {
            ("–".into(), "–".into())
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {} | {:.2} | {:.2} | {} | {} | {:.2} |",
            r.phase,
            r.stack,
            s.calls,
            s.ok,
            s.rate(),
            ratio,
            s.percentile(0.50).as_secs_f64() * 1e3,
            s.percentile(0.99).as_secs_f64() * 1e3,
            cpu,
            extra,
            r.attempts as f64 / s.calls.max(1) as f64,
        );
    }
}
