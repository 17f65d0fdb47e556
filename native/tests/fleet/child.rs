//! One client process of a fleet: the test binary run again with a spec in its environment
//! (`RESILE_FLEET_CHILD`), so each instance is its own process with its own engine and its own
//! connection to Redis. It sends as fast as its workers can until its time is up and prints one
//! `FLEET-RESULT {json}` line.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use resile::{Client, ClientConfig, ClientEvent, EventKind};
use resile_core::config::LimitConfig;
use resile_core::FleetConfig;
use serde::{Deserialize, Serialize};

pub const ENV: &str = "RESILE_FLEET_CHILD";
const MARK: &str = "FLEET-RESULT ";

/// What one process does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    /// The `/quota` URL to call (its `instance` parameter is added).
    pub url: String,
    /// The fleet's Redis; `None`: each process alone with the whole limit.
    pub redis: Option<String>,
    pub instance: u32,
    pub secs: f64,
    pub workers: usize,
    /// The fleet's limit.
    pub rate: f64,
    pub burst: u32,
    pub size: u32,
    pub deadline_ms: u64,
    pub answer_within_ms: u64,
}

/// What it saw.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub instance: u32,
    pub ok: u64,
    /// Failed calls by the engine's reason (`"untyped"` if an error had none).
    pub failed: BTreeMap<String, u64>,
    /// Calls that took longer than their deadline plus a second.
    pub over_deadline: u64,
    pub longest_ms: u64,
    pub fallbacks: u64,
    pub resumes: u64,
}

impl Report {
    pub fn calls(&self) -> u64 {
        self.ok + self.failed.values().sum::<u64>()
    }
}

/// Starts the processes of a fleet; [`collect`] waits for their reports.
pub fn spawn(specs: &[Spec]) -> Vec<std::process::Child> {
    let exe = std::env::current_exe().expect("the test binary");
    specs
        .iter()
        .map(|spec| {
            Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "fleet_client_process",
                    "--nocapture",
                ])
                .env(ENV, serde_json::to_string(spec).expect("a spec serializes"))
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("a fleet client process starts")
        })
        .collect()
}

pub fn collect(children: Vec<std::process::Child>) -> Vec<Report> {
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().expect("the process ends");
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(MARK))
                .unwrap_or_else(|| {
                    panic!("no report from a fleet process ({}):\n{text}", out.status)
                });
            serde_json::from_str(line).expect("a report parses")
        })
        .collect()
}

/// The body of the child process.
pub fn run(spec: Spec) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let report = runtime.block_on(drive(spec));
    println!(
        "{MARK}{}",
        serde_json::to_string(&report).expect("serializes")
    );
}

async fn drive(spec: Spec) -> Report {
    let mut config = ClientConfig::default();
    config.engine.limit = Some(LimitConfig {
        per_second: spec.rate,
        burst: spec.burst,
    });
    config.engine.retry.deadline_ms = Some(spec.deadline_ms);
    config.engine.retry.max_attempts = 3;
    config.engine.learn_limits = false;
    if let Some(redis) = &spec.redis {
        config.redis_url = Some(redis.clone());
        config.engine.fleet = Some(FleetConfig {
            name: "fleet-test".into(),
            size: spec.size,
            answer_within_ms: spec.answer_within_ms,
            recheck_ms: 200,
            ..FleetConfig::default()
        });
    }
    let fallbacks = Arc::new(AtomicU64::new(0));
    let resumes = Arc::new(AtomicU64::new(0));
    let (f, r) = (fallbacks.clone(), resumes.clone());
    let client = Client::builder()
        .config(config)
        .on_event(move |e: &ClientEvent| match e.engine().map(|e| &e.kind) {
            Some(EventKind::FleetFallback { .. }) => {
                f.fetch_add(1, Ordering::Relaxed);
            }
            Some(EventKind::FleetResumed { .. }) => {
                r.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        })
        .build()
        .expect("a client");
    let url = format!("{}&instance={}", spec.url, spec.instance);
    // The client connects to Redis in the background as it is built; the processes of a fleet
    // start within a few milliseconds of each other, and all begin with a connection.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let end = Instant::now() + Duration::from_secs_f64(spec.secs);
    let report = Arc::new(Mutex::new(Report {
        instance: spec.instance,
        ..Report::default()
    }));
    let limit = Duration::from_millis(spec.deadline_ms + 1_000);
    let workers: Vec<_> = (0..spec.workers)
        .map(|_| {
            let (client, url, report) = (client.clone(), url.clone(), report.clone());
            tokio::spawn(async move {
                while Instant::now() < end {
                    let started = Instant::now();
                    let result = client.get(&url).send().await;
                    let took = started.elapsed();
                    let mut r = report.lock().unwrap_or_else(|p| p.into_inner());
                    match result {
                        Ok(_) => r.ok += 1,
                        Err(e) => {
                            let why = e
                                .why()
                                .map_or("untyped".to_string(), |w| w.name().to_string());
                            *r.failed.entry(why).or_default() += 1;
                        }
                    }
                    r.over_deadline += u64::from(took > limit);
                    r.longest_ms = r.longest_ms.max(took.as_millis() as u64);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("a worker ends");
    }
    let mut report = report.lock().unwrap_or_else(|p| p.into_inner()).clone();
    report.fallbacks = fallbacks.load(Ordering::Relaxed);
    report.resumes = resumes.load(Ordering::Relaxed);
    report
}
