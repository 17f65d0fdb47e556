//! The demo's fleet phase: four clients (each its own engine, as four instances of a service
//! would be) against one upstream quota, alone and then sharing it through Redis.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use resile::EventKind;
use resile_chaos::redis::RedisServer;
use resile_core::config::LimitConfig;
use serde::Serialize;

/// The upstream's quota and the fleet's limit (a smaller burst, so a slot a little late still
/// finds a token).
const RATE: f64 = 40.0;
const UPSTREAM_BURST: u32 = 20;
const FLEET_BURST: u32 = 10;
const CLIENTS: u32 = 4;
const WORKERS: usize = 8;

/// One run: what the upstream saw.
#[derive(Clone, Debug, Serialize)]
pub struct FleetRun {
    pub mode: &'static str,
    pub clients: u32,
    pub seconds: f64,
    /// Requests that reached the upstream.
    pub attempts: u64,
    pub admitted: u64,
    pub rejected_429: u64,
    /// What the upstream allows over the time it saw requests: `rate · span + burst`.
    pub quota: u64,
    /// Times a client fell back to its local share (Redis slower than `answer_within_ms`).
    pub fallbacks: u64,
}

/// The phase: both runs, or why it was skipped.
#[derive(Clone, Debug, Serialize)]
pub struct FleetReport {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<FleetRun>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl FleetReport {
    /// The phase as text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "\nfleet: {CLIENTS} clients, one upstream quota of {RATE}/s (burst {UPSTREAM_BURST})\n"
        );
        if let Some(why) = &self.skipped {
            out.push_str(&format!("  skipped: {why}\n"));
            return out;
        }
        out.push_str(&format!(
            "  {:<24}{:>10}{:>10}{:>10}{:>10}{:>11}\n",
            "", "attempts", "admitted", "429s", "quota", "fallbacks"
        ));
        for r in &self.runs {
            out.push_str(&format!(
                "  {:<24}{:>10}{:>10}{:>10}{:>10}{:>11}\n",
                r.mode, r.attempts, r.admitted, r.rejected_429, r.quota, r.fallbacks
            ));
        }
        out
    }
}

/// Runs the phase against `base` (the chaos server) for `seconds` per run, on `redis` if given,
/// else on a `redis-server` of its own when one is on PATH.
pub async fn run(base: &str, redis: Option<String>, seconds: f64) -> FleetReport {
    let own;
    let url = match redis {
        Some(url) => url,
        None => match RedisServer::try_start() {
            Ok(server) => {
                own = server;
                own.url()
            }
            Err(e) => {
                return FleetReport {
                    runs: Vec::new(),
                    skipped: Some(format!(
                        "{e}. Or pass --redis redis://HOST:PORT. The other phases ran as usual."
                    )),
                }
            }
        },
    };
    let mut runs = Vec::new();
    for (mode, store) in [("alone", None), ("sharing Redis", Some(url.as_str()))] {
        match one_run(base, mode, store, seconds).await {
            Ok(r) => runs.push(r),
            Err(e) => {
                return FleetReport {
                    runs,
                    skipped: Some(e),
                }
            }
        }
    }
    FleetReport {
        runs,
        skipped: None,
    }
}

fn config(store: Option<&str>) -> resile::ClientConfig {
    let mut c = resile::ClientConfig::default();
    c.engine.limit = Some(LimitConfig {
        per_second: RATE,
        burst: FLEET_BURST,
    });
    c.engine.learn_limits = false;
    c.engine.retry.deadline_ms = Some(3_000);
    if let Some(url) = store {
        c.redis_url = Some(url.to_string());
        c.engine.fleet = Some(resile_core::FleetConfig {
            name: "resile-demo".into(),
            size: CLIENTS,
            // The four clients share one process and its runtime (and the demo may run a
            // debug build): a little more room than the 5 ms default before falling back.
            answer_within_ms: 25,
            ..resile_core::FleetConfig::default()
        });
    }
    c
}

async fn one_run(
    base: &str,
    mode: &'static str,
    store: Option<&str>,
    seconds: f64,
) -> Result<FleetRun, String> {
    let key = format!("fleet-{}", mode.replace(' ', "-"));
    let url = format!("{base}/quota?key={key}&rate={RATE}&burst={UPSTREAM_BURST}");
    let fallbacks = Arc::new(AtomicU64::new(0));
    let clients = (0..CLIENTS)
        .map(|_| {
            let fallbacks = fallbacks.clone();
            resile::Client::builder()
                .config(config(store))
                .on_event(move |e| {
                    if let Some(EventKind::FleetFallback { .. }) = e.engine().map(|e| &e.kind) {
                        fallbacks.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .build()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Let the clients connect to Redis before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for (i, client) in clients.iter().enumerate() {
        for _ in 0..WORKERS {
            let (client, url) = (client.clone(), format!("{url}&instance={i}"));
            tasks.push(tokio::spawn(async move {
                while Instant::now() < end {
                    let _ = client.get(&url).send().await;
                }
            }));
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let log: serde_json::Value = reqwest::get(format!("{base}/quota/log?key={key}"))
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let entries = log["entries"].as_array().cloned().unwrap_or_default();
    let status = |s: u64| entries.iter().filter(|e| e[1].as_u64() == Some(s)).count() as u64;
    let at = |e: Option<&serde_json::Value>| e.and_then(|e| e[0].as_u64()).unwrap_or(0);
    let span = at(entries.last()).saturating_sub(at(entries.first())) as f64 / 1e6;
    Ok(FleetRun {
        mode,
        clients: CLIENTS,
        seconds,
        attempts: entries.len() as u64,
        admitted: status(200),
        rejected_429: status(429),
        quota: (RATE * span) as u64 + u64::from(UPSTREAM_BURST),
        fallbacks: fallbacks.load(Ordering::Relaxed),
    })
}
