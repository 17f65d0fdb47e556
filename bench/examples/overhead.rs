//! Where the native client's per-call overhead goes: the same healthy load through variants.
//!
//! - `cargo run --release -p resile-bench --example overhead`: every variant, three rounds;
//! - `... --example overhead -- reqwest` (or `resile`, `resile-noid` with request ids off, or
//!   `middleware`: reqwest-middleware + reqwest-retry, as the load bench builds it): one client
//!   only, five rounds, for
//!   `CALLS=3000 valgrind --tool=callgrind target/release/examples/overhead resile`;
//! - `... --example overhead -- memory`: the size of a call's future, and the heap a call holds
//!   while it is in flight (on `/slow`) or queued behind `max_in_flight`, next to raw reqwest.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static CALLS: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000)
});
/// Calls in flight at once (`CONCURRENCY`, default 64).
static CONCURRENCY: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
});

struct Counting;
static ALLOCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static BYTES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Bytes allocated and not yet freed.
static LIVE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        LIVE.fetch_add(l.size() as i64, Ordering::Relaxed);
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        LIVE.fetch_sub(l.size() as i64, Ordering::Relaxed);
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}
#[global_allocator]
static A: Counting = Counting;

/// CPU seconds used by this process so far (user + system).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

async fn drive<F, Fut>(name: &str, f: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..*CONCURRENCY {
        let (f, next) = (f.clone(), next.clone());
        set.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < *CALLS {
                assert!(f().await);
            }
        });
    }
    let cpu0 = cpu();
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    while set.join_next().await.is_some() {}
    let cpu_us = (cpu() - cpu0) * 1e6 / *CALLS as f64;
    let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / *CALLS as f64;
    let bytes = (BYTES.load(Ordering::Relaxed) - b0) as f64 / *CALLS as f64;
    println!("    {allocs:.1} allocations, {bytes:.0} bytes per call (client + server)");
    println!(
        "{name:<40} {:>8.0} calls/s {cpu_us:>6.1} µs CPU per call (client + server)",
        *CALLS as f64 / started.elapsed().as_secs_f64()
    );
}

/// Five rounds of `drive`, for callgrind (`CALLS=3000 valgrind --tool=callgrind ...`).
async fn rounds<F, Fut>(name: &str, f: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    for _ in 0..5 {
        drive(name, f.clone()).await;
    }
}

/// Calls held open at once by the memory measurement.
const HELD: usize = 512;

/// The heap `HELD` calls hold while they wait (the server's share of an in-flight call
/// included, the same for every client), per call.
async fn held<F, Fut>(start: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let before = LIVE.load(Ordering::Relaxed);
    let tasks: Vec<_> = (0..HELD).map(|_| tokio::spawn(start())).collect();
    // Long enough for every call to be sent (or queued) and well before `/slow` answers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = LIVE.load(Ordering::Relaxed);
    for t in tasks {
        assert!(t.await.unwrap());
    }
    (during - before) as f64 / HELD as f64
}

async fn memory(base: &str) {
    let slow = format!("{base}/slow?ms=3000");
    let raw = reqwest::Client::builder()
        .pool_max_idle_per_host(HELD)
        .build()
        .unwrap();
    // `REQUEST_IDS=off`: the same with request ids off.
    let ids = match std::env::var("REQUEST_IDS").as_deref() {
        Ok("off") => resile::RequestIds::Off,
        _ => resile::RequestIds::Generate,
    };
    let resile = resile::Client::builder()
        .pool_max_idle_per_host(HELD)
        .max_in_flight(HELD)
        .request_ids(ids)
        .build()
        .unwrap();
    println!(
        "future of one call: reqwest `send()` {} B, resile `send()` {} B",
        std::mem::size_of_val(&raw.get(&slow).send()),
        std::mem::size_of_val(&resile.get(&slow).send()),
    );
    // Warm both pools to HELD connections, so connection set-up is not counted.
    for _ in 0..2 {
        let (c, u) = (raw.clone(), slow.replace("3000", "1"));
        held(|| {
            let (c, u) = (c.clone(), u.clone());
            async move { c.get(&u).send().await.unwrap().bytes().await.is_ok() }
        })
        .await;
        let (c, u) = (resile.clone(), slow.replace("3000", "1"));
        held(|| {
            let (c, u) = (c.clone(), u.clone());
            async move { c.get(&u).send().await.is_ok() }
        })
        .await;
    }
    let (c, u) = (raw.clone(), slow.clone());
    let reqwest_flight = held(|| {
        let (c, u) = (c.clone(), u.clone());
        async move { c.get(&u).send().await.unwrap().bytes().await.is_ok() }
    })
    .await;
    let (c, u) = (resile.clone(), slow.clone());
    let resile_flight = held(|| {
        let (c, u) = (c.clone(), u.clone());
        async move { c.get(&u).send().await.is_ok() }
    })
    .await;
    println!(
        "in flight: reqwest {reqwest_flight:.0} B per call, resile {resile_flight:.0} B per call ({:.2}x)",
        resile_flight / reqwest_flight
    );
    // One call in flight, the other HELD - 1 queued in the engine behind `max_in_flight`.
    let one = resile::Client::builder()
        .pool_max_idle_per_host(1)
        .max_in_flight(1)
        .build()
        .unwrap();
    let (c, u) = (one.clone(), slow.replace("3000", "1"));
    held(|| {
        let (c, u) = (c.clone(), u.clone());
        async move { c.get(&u).send().await.is_ok() }
    })
    .await;
    let (c, u) = (one.clone(), format!("{base}/slow?ms=2000"));
    let queued = held(|| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            // Queued calls wait up to max_queue_ms (10 s): only the first is sent in time.
            let _ = c.get(&u).send().await;
            true
        }
    })
    .await;
    println!("queued: resile {queued:.0} B per waiting call (one call in flight, the rest queued)");
}

fn main() {
    let server = resile_chaos::start_in_background(resile_chaos::ChaosConfig {
        max_connections: 4096,
        ..Default::default()
    })
    .unwrap();
    let url = format!("{}/status/200", server.url());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::args().nth(1);
    if only.as_deref() == Some("memory") {
        rt.block_on(memory(&server.url()));
        server.stop();
        return;
    }
    if let Some(which) = only {
        rt.block_on(async {
            let pool = || {
                reqwest::Client::builder()
                    .pool_max_idle_per_host(64)
                    .build()
                    .unwrap()
            };
            let u = url.clone();
            if which == "reqwest" {
                let raw = pool();
                rounds("reqwest", move || {
                    let (c, u) = (raw.clone(), u.clone());
                    async move { c.get(&u).send().await.unwrap().bytes().await.is_ok() }
                })
                .await;
            } else if which == "middleware" {
                let client = resile_bench::retry_transient(pool());
                rounds("middleware", move || {
                    let (c, u) = (client.clone(), u.clone());
                    async move { c.get(&u).send().await.unwrap().bytes().await.is_ok() }
                })
                .await;
            } else {
                // `resile-noid`: request ids off.
                let ids = match which.as_str() {
                    "resile-noid" => resile::RequestIds::Off,
                    _ => resile::RequestIds::Generate,
                };
                // `MAX_IN_FLIGHT=N`: the client-wide bound (default: the client's, 512).
                let mut builder = resile::Client::builder()
                    .pool_max_idle_per_host(64)
                    .request_ids(ids);
                if let Some(n) = std::env::var("MAX_IN_FLIGHT")
                    .ok()
                    .and_then(|v| v.parse().ok())
                {
                    builder = builder.max_in_flight(n);
                }
                let resile = builder.build().unwrap();
                rounds("resile", move || {
                    let (c, u) = (resile.clone(), u.clone());
                    async move { c.get(&u).send().await.is_ok() }
                })
                .await;
            }
        });
        server.stop();
        return;
    }
    rt.block_on(async {
        for round in 0..3 {
            println!("round {round}");
            let raw = reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap();
            let (c, u) = (raw.clone(), url.clone());
            drive("reqwest", move || {
                let (c, u) = (c.clone(), u.clone());
                async move { c.get(&u).send().await.unwrap().bytes().await.is_ok() }
            })
            .await;
            let (c, u) = (raw.clone(), url.clone());
            drive("reqwest + x-request-id", move || {
                let (c, u) = (c.clone(), u.clone());
                async move {
                    c.get(&u)
                        .header("x-request-id", "0c9f3d7e-6b0a-4a4e-9d55-2b1c3f5e7a90")
                        .send()
                        .await
                        .unwrap()
                        .bytes()
                        .await
                        .is_ok()
                }
            })
            .await;
            let (c, u) = (raw.clone(), url.clone());
            drive("reqwest + tokio timeout", move || {
                let (c, u) = (c.clone(), u.clone());
                async move {
                    tokio::time::timeout(Duration::from_secs(10), async {
                        c.get(&u).send().await.unwrap().bytes().await.is_ok()
                    })
                    .await
                    .unwrap()
                }
            })
            .await;
            let resile = resile::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap();
            let (c, u) = (resile.clone(), url.clone());
            drive("resile", move || {
                let (c, u) = (c.clone(), u.clone());
                async move { c.get(&u).send().await.is_ok() }
            })
            .await;
            let mut cfg = resile::ClientConfig::default();
            cfg.engine.retry.attempt_timeout_ms = None;
            cfg.engine.retry.deadline_ms = None;
            cfg.connect_timeout_ms = None;
            cfg.pool_max_idle_per_host = Some(64);
            let resile2 = resile::Client::from_config(cfg).unwrap();
            let (c, u) = (resile2.clone(), url.clone());
            drive("resile, no timeouts", move || {
                let (c, u) = (c.clone(), u.clone());
                async move { c.get(&u).send().await.is_ok() }
            })
            .await;
        }
    });
    server.stop();
}
