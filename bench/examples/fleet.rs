//! What fleet mode costs: the same calls through a client alone and through a client that asks
//! a Redis on loopback before every attempt, side by side in one run (interleaved rounds).
//! `cargo run --release -p resile-bench --features fleet --example fleet`
//! (needs `redis-server` on PATH; it starts one on a free loopback port and stops it).
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use resile_chaos::redis::RedisServer;
use resile_core::config::LimitConfig;

const ROUNDS: usize = 3;
const SEQUENTIAL: usize = 1_000;
const WORKERS: usize = 16;
const LOAD: Duration = Duration::from_secs(2);

fn client(redis: Option<&str>, fallbacks: Arc<AtomicU64>) -> resile::Client {
    let mut c = resile::ClientConfig::default();
    // A limit far above what one instance sends: the store is asked, and never makes it wait.
    c.engine.limit = Some(LimitConfig {
        per_second: 1e6,
        burst: 1_000_000,
    });
    if let Some(url) = redis {
        c.redis_url = Some(url.to_string());
        c.engine.fleet = Some(resile_core::FleetConfig {
            name: "bench".into(),
            // A loaded machine: room enough that the figures are Redis's, not fallbacks'.
            answer_within_ms: 50,
            ..resile_core::FleetConfig::default()
        });
    }
    resile::Client::builder()
        .config(c)
        .on_event(move |e| {
            if let Some(resile::EventKind::FleetFallback { .. }) = e.engine().map(|e| &e.kind) {
                fallbacks.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .expect("client")
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6
}

#[derive(Default)]
struct Totals {
    latencies: Vec<Duration>,
    calls: u64,
    secs: f64,
}

async fn sequential(c: &resile::Client, url: &str, t: &mut Totals) {
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        c.get(url).send().await.expect("200");
        t.latencies.push(started.elapsed());
    }
}

async fn load(c: &resile::Client, url: &str, t: &mut Totals) {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + LOAD;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let (c, url, done) = (c.clone(), url.to_string(), done.clone());
        set.spawn(async move {
            while Instant::now() < end {
                c.get(&url).send().await.expect("200");
                done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    while set.join_next().await.is_some() {}
    t.calls += done.load(Ordering::Relaxed);
    t.secs += started.elapsed().as_secs_f64();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let redis = RedisServer::start();
    let chaos = resile_chaos::start(resile_chaos::ChaosConfig::default())
        .await
        .expect("chaos server");
    let url = format!("{}/status/200", chaos.url());
    let fallbacks = Arc::new(AtomicU64::new(0));
    let alone = client(None, fallbacks.clone());
    let fleet = client(Some(&redis.url()), fallbacks.clone());
    // Warm both: connections, the script loaded.
    for c in [&alone, &fleet] {
        for _ in 0..200 {
            c.get(&url).send().await.expect("200");
        }
    }
    let (mut a, mut f) = (Totals::default(), Totals::default());
    for _ in 0..ROUNDS {
        sequential(&alone, &url, &mut a).await;
        sequential(&fleet, &url, &mut f).await;
        load(&alone, &url, &mut a).await;
        load(&fleet, &url, &mut f).await;
    }
    println!("| client | p50 µs | p99 µs | calls/s ({WORKERS} in flight) |");
    println!("|---|---:|---:|---:|");
    for (name, t) in [("alone", &mut a), ("fleet (Redis on loopback)", &mut f)] {
        t.latencies.sort();
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            pct(&t.latencies, 0.5),
            pct(&t.latencies, 0.99),
            t.calls as f64 / t.secs
        );
    }
    a.latencies.sort();
    f.latencies.sort();
    println!(
        "\nadded per attempt: p50 {:.0} µs, p99 {:.0} µs; fallbacks during the run: {}",
        pct(&f.latencies, 0.5) - pct(&a.latencies, 0.5),
        pct(&f.latencies, 0.99) - pct(&a.latencies, 0.99),
        fallbacks.load(Ordering::Relaxed)
    );
    chaos.shutdown().await;
    drop(redis);
}
