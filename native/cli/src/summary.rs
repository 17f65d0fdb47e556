//! A multi-call run in numbers: one JSON line per call, and at the end a latency histogram,
//! the count per status and per error, for people (on a terminal) and machines (`--report`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use resile::Why;

/// How one call of a run ended: what its JSON line says.
#[derive(Clone, Debug, Serialize)]
pub struct Record {
    /// Its position in the input (from 0).
    pub index: usize,
    /// The URL, redacted.
    pub url: String,
    /// The final status, when there was a response.
    pub status: Option<u16>,
    /// Attempts made, when known.
    pub attempts: Option<u32>,
    /// From the start of the call to its end, in milliseconds.
    pub duration_ms: f64,
    /// The body's length.
    pub bytes: Option<usize>,
    /// The error's kind (`timeout`, `retries_exhausted`, `http_status`, ...), `None` on success.
    pub error: Option<&'static str>,
    /// The engine's reason, when it decided.
    pub why: Option<Why>,
    /// The one-line explanation of the error.
    pub message: Option<String>,
}

impl Record {
    /// Whether the call succeeded: a response below 400 and no error.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Upper bounds of the latency buckets, in milliseconds; the last bucket is open.
const BUCKETS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// Totals over a run.
#[derive(Default)]
pub struct Summary {
    latencies_ms: Vec<f64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    succeeded: u64,
}

impl Summary {
    /// Counts one call.
    pub fn add(&mut self, r: &Record) {
        self.latencies_ms.push(r.duration_ms);
        if let Some(s) = r.status {
            *self.statuses.entry(s).or_default() += 1;
        }
        if let Some(e) = r.error {
            *self.errors.entry(e).or_default() += 1;
        }
        if r.ok() {
            self.succeeded += 1;
        }
    }

    /// Calls whose last answer was a 429 (a status of 400 or more is never a success).
    pub fn throttled(&self) -> u64 {
        self.statuses.get(&429).copied().unwrap_or(0)
    }

    /// Calls counted.
    pub fn calls(&self) -> usize {
        self.latencies_ms.len()
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    fn histogram(&self) -> Vec<u64> {
        let mut counts = vec![0u64; BUCKETS_MS.len() + 1];
        for ms in &self.latencies_ms {
            let i = BUCKETS_MS
                .iter()
                .position(|le| ms <= le)
                .unwrap_or(BUCKETS_MS.len());
            counts[i] += 1;
        }
        counts
    }

    /// The report for `--report`: counts, percentiles, the histogram, the client's totals.
    /// Attempts are the client's count: a call that failed after some (a breaker that opened
    /// under it) does not say how many it made.
    pub fn report(&self, wall: Duration, client: &resile::Stats) -> Value {
        let sorted = self.sorted();
        let pct = |p: f64| -> Option<f64> {
            if sorted.is_empty() {
                return None;
            }
            let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
            Some(round(sorted[rank.clamp(1, sorted.len()) - 1]))
        };
        let mean =
            (!sorted.is_empty()).then(|| round(sorted.iter().sum::<f64>() / sorted.len() as f64));
        let histogram: Vec<Value> = self
            .histogram()
            .iter()
            .enumerate()
            .map(|(i, count)| json!({ "le_ms": BUCKETS_MS.get(i), "count": count }))
            .collect();
        json!({
            "calls": self.calls(),
            "succeeded": self.succeeded,
            "failed": self.calls() as u64 - self.succeeded,
            "attempts": client.attempts,
            "wall_ms": millis(wall),
            "statuses": self.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "errors": self.errors,
            "latency_ms": {
                "min": sorted.first().copied().map(round),
                "p50": pct(50.0),
                "p90": pct(90.0),
                "p99": pct(99.0),
                "max": sorted.last().copied().map(round),
                "mean": mean,
            },
            "histogram": histogram,
            "client": client,
        })
    }

    /// The end-of-run summary for a terminal: per-status counts and a latency histogram, with
    /// the `attempts` the client counted.
    pub fn render(&self, wall: Duration, attempts: u64) -> String {
        let mut out = String::new();
        let calls = self.calls();
        let _ = writeln!(
            out,
            "{calls} call(s) in {:.2} s: {} succeeded, {} failed, {} attempt(s)",
            wall.as_secs_f64(),
            self.succeeded,
            calls as u64 - self.succeeded,
            attempts
        );
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            // A 4xx/5xx shows as its status already.
            .chain(
                self.errors
                    .iter()
                    .filter(|(e, _)| **e != "http_status")
                    .map(|(e, n)| format!("{e}: {n}")),
            )
            .collect();
        if !statuses.is_empty() {
            let _ = writeln!(out, "  {}", statuses.join("   "));
        }
        let counts = self.histogram();
        let Some(first) = counts.iter().position(|c| *c > 0) else {
            return out;
        };
        let last = counts.iter().rposition(|c| *c > 0).unwrap_or(first);
        let max = counts.iter().copied().max().unwrap_or(1).max(1);
        let _ = writeln!(out, "  latency");
        for (i, count) in counts.iter().enumerate().take(last + 1).skip(first) {
            let label = match BUCKETS_MS.get(i) {
                Some(le) => format!("≤ {}", ms_label(*le)),
                None => format!("> {}", ms_label(BUCKETS_MS[BUCKETS_MS.len() - 1])),
            };
            let width = ((*count as f64 / max as f64) * 40.0).ceil() as usize;
            let _ = writeln!(out, "  {label:>9} {:<40} {count}", "█".repeat(width));
        }
        out
    }
}

fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// A duration in milliseconds to the microsecond, as the JSON lines and the report show it
/// (`11.873`, not the `11.872630000000001` of a float product).
pub fn millis(d: std::time::Duration) -> f64 {
    round(d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize, ms: f64, status: Option<u16>, error: Option<&'static str>) -> Record {
        Record {
            index: i,
            url: "http://h/".into(),
            status,
            attempts: Some(1),
            duration_ms: ms,
            bytes: None,
            error,
            why: None,
            message: None,
        }
    }

    #[test]
    fn durations_are_shown_to_the_microsecond() {
        let d = std::time::Duration::from_nanos(11_872_630);
        assert_eq!(serde_json::to_string(&millis(d)).unwrap(), "11.873");
        let d = std::time::Duration::from_millis(2);
        assert_eq!(serde_json::to_string(&millis(d)).unwrap(), "2.0");
    }

    #[test]
    fn the_report_counts_statuses_errors_and_latencies() {
        let mut s = Summary::default();
        for i in 0..98 {
            s.add(&record(i, 3.0, Some(200), None));
        }
        s.add(&record(98, 150.0, Some(503), Some("http_status")));
        s.add(&record(99, 20_000.0, None, Some("timeout")));
        let client = resile::Stats {
            attempts: 130,
            ..resile::Stats::default()
        };
        let r = s.report(Duration::from_secs(2), &client);
        assert_eq!(r["calls"], 100);
        assert_eq!(r["attempts"], 130, "the client's count, not the calls'");
        assert_eq!(
            (r["succeeded"].as_u64(), r["failed"].as_u64()),
            (Some(98), Some(2))
        );
        assert_eq!(r["statuses"]["200"], 98);
        assert_eq!(r["statuses"]["503"], 1);
        assert_eq!(r["errors"]["timeout"], 1);
        assert_eq!(r["latency_ms"]["p50"], 3.0);
        assert_eq!(r["latency_ms"]["p99"], 150.0);
        assert_eq!(r["latency_ms"]["max"], 20000.0);
        let buckets = r["histogram"].as_array().unwrap();
        assert_eq!(buckets[2], json!({"le_ms": 5.0, "count": 98}));
        assert_eq!(buckets.last().unwrap(), &json!({"le_ms": null, "count": 1}));

        let text = s.render(Duration::from_secs(2), 130);
        assert!(
            text.contains("100 call(s)")
                && text.contains("130 attempt(s)")
                && text.contains("200: 98")
                && text.contains("timeout: 1"),
            "{text}"
        );
        assert!(text.contains("≤ 5 ms") && text.contains("> 10 s"), "{text}");
        assert!(
            !text.contains("http_status"),
            "a 4xx/5xx shows once, as its status: {text}"
        );
    }
}
