//! Fleet mode against a real `redis-server`: client *processes* sharing one upstream quota
//! (the chaos server's `/quota`, which logs every request it sees).
//!
//! Run with `cargo test -p resile --features redis --test fleet` (needs `redis-server` on PATH;
//! each test starts its own on a free loopback port, persistence off, and kills it).

mod child;

use std::time::Duration;

use child::{Report, Spec};
use resile_chaos::redis::RedisServer;
use resile_chaos::ChaosConfig;

/// Not a test: the body of one fleet client process (see `child.rs`). It does nothing unless
/// the fleet tests start it with a spec.
#[test]
#[ignore = "a client process the fleet tests start"]
fn fleet_client_process() {
    if let Ok(spec) = std::env::var(child::ENV) {
        child::run(serde_json::from_str(&spec).expect("a spec parses"));
    }
}

/// `(µs since the key's first request, status, instance)` for every request `/quota` saw.
async fn quota_log(chaos: &str, key: &str) -> Vec<(u64, u16, u32)> {
    let body = reqwest::get(format!("{chaos}/quota/log?key={key}"))
        .await
        .expect("the log")
        .bytes()
        .await
        .expect("the log's body");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("the log is JSON");
    serde_json::from_value(v["entries"].clone()).expect("entries")
}

/// The most requests in any window of `w` (starting at a request).
fn busiest(log: &[(u64, u16, u32)], w: Duration) -> usize {
    let w = w.as_micros() as u64;
    (0..log.len())
        .map(|a| log[a..].iter().take_while(|e| e.0 < log[a].0 + w).count())
        .max()
        .unwrap_or(0)
}

fn specs(url: &str, redis: Option<&str>, secs: f64, rate: f64, burst: u32) -> Vec<Spec> {
    (0..4)
        .map(|instance| Spec {
            url: url.to_string(),
            redis: redis.map(str::to_string),
            instance,
            secs,
            workers: 8,
            rate,
            burst,
            size: 4,
            deadline_ms: 3_000,
            // Generous for a loaded test machine: these tests are about what is shared, not
            // how fast (BENCHMARKS.md measures that).
            answer_within_ms: 100,
        })
        .collect()
}

async fn run_fleet(specs: Vec<Spec>) -> Vec<Report> {
    let children = child::spawn(&specs);
    tokio::task::spawn_blocking(move || child::collect(children))
        .await
        .expect("the fleet ends")
}

fn count(log: &[(u64, u16, u32)], status: u16) -> usize {
    log.iter().filter(|e| e.1 == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_on_one_store_send_one_quota() {
    let redis = RedisServer::start();
    let chaos = resile_chaos::start(ChaosConfig::default())
        .await
        .expect("chaos");
    // The upstream allows 20/s with a burst of 10; the fleet's limit is the same rate with a
    // burst of 5, so a slot sent a little late still finds a token.
    let (rate, burst, secs) = (20.0, 5, 3.0);
    let url = |key: &str| format!("{}/quota?key={key}&rate=20&burst=10", chaos.url());
    let shared = run_fleet(specs(&url("shared"), Some(&redis.url()), secs, rate, burst)).await;
    let alone = run_fleet(specs(&url("alone"), None, secs, rate, burst)).await;
    let with = quota_log(&chaos.url(), "shared").await;
    let without = quota_log(&chaos.url(), "alone").await;
    println!(
        "with the store: {} attempts, {} admitted, {} answered 429 ({:?})",
        with.len(),
        count(&with, 200),
        count(&with, 429),
        shared
    );
    println!(
        "without it:     {} attempts, {} admitted, {} answered 429 ({:?})",
        without.len(),
        count(&without, 200),
        count(&without, 429),
        alone
    );
    // With the store the fleet sends what the quota allows: rate·t + burst in every window
    // (+1 for a slot that the latency moved into the next window).
    for w in [500u64, 1_000, 2_000] {
        let bound = (rate * w as f64 / 1_000.0) as usize + burst as usize + 1;
        let seen = busiest(&with, Duration::from_millis(w));
        assert!(
            seen <= bound,
            "{seen} attempts in {w} ms with the store (bound {bound})"
        );
    }
    assert!(
        count(&with, 200) >= 40,
        "the fleet used its quota: {}",
        count(&with, 200)
    );
    for r in &shared {
        assert!(r.ok > 0, "instance {} got its share: {r:?}", r.instance);
    }
    let refused_with = count(&with, 429);
    let refused_without = count(&without, 429);
    assert!(
        refused_with * 50 <= with.len().max(50),
        "almost no 429s with the store: {refused_with} of {}",
        with.len()
    );
    assert!(
        refused_without > 5 * refused_with + 10,
        "alone, the processes walk into 429s: {refused_without} against {refused_with}"
    );
    chaos.shutdown().await;
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_seen_by_one_process_holds_all_four() {
    let redis = RedisServer::start();
    let chaos = resile_chaos::start(ChaosConfig::default())
        .await
        .expect("chaos");
    // A roomy upstream whose 40th request answers 429 Retry-After: 2; the fleet sends 40/s.
    let url = format!(
        "{}/quota?key=hold&rate=1000&burst=1000&refuse_at=40&retry_after=2",
        chaos.url()
    );
    let reports = run_fleet(specs(&url, Some(&redis.url()), 4.5, 40.0, 4)).await;
    let log = quota_log(&chaos.url(), "hold").await;
    let (t429, _, who) = log[39];
    assert_eq!(log[39].1, 429);
    let hold = |from_ms: u64, to_ms: u64| {
        log.iter()
            .filter(|e| e.0 > t429 + from_ms * 1_000 && e.0 < t429 + to_ms * 1_000)
            .count()
    };
    println!(
        "429 to instance {who} at {} ms; requests in the 2 s after it: {} (the first 100 ms: {}); {reports:?}",
        t429 / 1_000,
        hold(0, 2_000),
        hold(0, 100)
    );
    // Attempts already on the wire when the 429 came may land in its first 100 ms; after that
    // nobody sends until the hold ends, by the upstream's own log.
    assert_eq!(
        hold(100, 1_950),
        0,
        "the whole fleet waits out the Retry-After"
    );
    let instances_after: std::collections::BTreeSet<u32> = log
        .iter()
        .filter(|e| e.0 >= t429 + 2_000_000)
        .map(|e| e.2)
        .collect();
    let instances_before: std::collections::BTreeSet<u32> = log[..39].iter().map(|e| e.2).collect();
    assert_eq!(instances_before.len(), 4, "all four sent before the 429");
    assert_eq!(
        instances_after.len(),
        4,
        "all four send again after the hold"
    );
    chaos.shutdown().await;
    drop(redis);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_falls_back_and_the_fleet_resumes() {
    let mut redis = RedisServer::start();
    let port = redis.port;
    let chaos = resile_chaos::start(ChaosConfig::default())
        .await
        .expect("chaos");
    let url = format!("{}/quota?key=fault&rate=40&burst=20", chaos.url());
    let mut fleet = specs(&url, Some(&redis.url()), 6.0, 40.0, 5);
    for s in &mut fleet {
        // The default bound: a store that is gone costs a call at most this much.
        s.answer_within_ms = 5;
        s.deadline_ms = 1_000;
    }
    let children = child::spawn(&fleet);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let restarted = RedisServer::start_on(port);
    let reports = tokio::task::spawn_blocking(move || child::collect(children))
        .await
        .expect("the fleet ends");
    let log = quota_log(&chaos.url(), "fault").await;
    println!(
        "{} attempts, {} answered 429; {reports:#?}",
        log.len(),
        count(&log, 429)
    );
    for r in &reports {
        assert!(r.calls() > 0, "{r:?}");
        assert_eq!(
            r.over_deadline, 0,
            "no call waited past its deadline: {r:?}"
        );
        assert!(
            !r.failed.contains_key("untyped"),
            "every failure says why: {r:?}"
        );
        assert!(r.fallbacks >= 1, "the fallback was announced: {r:?}");
        assert!(
            r.resumes >= 1,
            "shared mode resumed after the restart: {r:?}"
        );
        assert!(r.ok > 0, "{r:?}");
    }
    chaos.shutdown().await;
    drop(restarted);
}

#[test]
fn fleet_settings_are_checked_and_the_password_never_prints() {
    let mut config = resile::ClientConfig {
        redis_url: Some("redis://:hunter2@127.0.0.1:6379/".into()),
        ..Default::default()
    };
    assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    config
        .validate()
        .expect("a Redis URL alone is fleet mode with defaults");
    config.redis_url = Some("memcached://:hunter2@127.0.0.1/".into());
    let e = resile::Client::from_config(config.clone()).unwrap_err();
    assert!(e.to_string().contains("redis_url"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
    config.redis_url = None;
    config.engine.fleet = Some(resile_core::FleetConfig::default());
    let e = config.validate().unwrap_err();
    assert!(e.to_string().contains("engine.fleet"), "{e}");
    config.redis_url = Some("redis://127.0.0.1:6379/".into());
    config.engine.fleet = Some(resile_core::FleetConfig {
        size: 0,
        ..Default::default()
    });
    let e = config.validate().unwrap_err();
    assert!(e.to_string().contains("fleet.size"), "{e}");
}

/// With Redis unreachable from the start, calls still go, at the local share, and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_redis_at_all_runs_on_the_local_share() {
    let chaos = resile_chaos::start(ChaosConfig::default())
        .await
        .expect("chaos");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let fallbacks = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = fallbacks.clone();
    let mut config = resile::ClientConfig {
        redis_url: Some(format!("redis://127.0.0.1:{port}/")),
        ..Default::default()
    };
    config.engine.limit = Some(resile_core::config::LimitConfig {
        per_second: 40.0,
        burst: 4,
    });
    config.engine.fleet = Some(resile_core::FleetConfig {
        size: 4,
        ..Default::default()
    });
    let client = resile::Client::builder()
        .config(config)
        .on_event(move |e| {
            if let Some(resile::EventKind::FleetFallback { .. }) = e.engine().map(|e| &e.kind) {
                seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
        .build()
        .expect("a client builds while Redis is down");
    let url = format!("{}/quota?key=no-redis&rate=1000&burst=1000", chaos.url());
    for _ in 0..12 {
        client
            .get(&url)
            .send()
            .await
            .expect("a call succeeds on the local share");
    }
    assert!(fallbacks.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    // The local share is 10/s (burst 1): twelve calls take at least a second on the upstream's
    // own clock.
    let log = quota_log(&chaos.url(), "no-redis").await;
    assert_eq!(log.len(), 12);
    assert!(log[11].0 - log[0].0 >= 1_000_000, "{log:?}");
    chaos.shutdown().await;
}
