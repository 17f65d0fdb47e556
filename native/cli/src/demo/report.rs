//! The demo's report: per phase, resile next to the naive client.

use std::fmt::Write;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::Outcome;

/// A report line: its label and how to read it from a phase.
type Row = (&'static str, fn(&PhaseReport) -> Option<String>);

/// One phase's numbers for one contender. Attempts are counted by the server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PhaseReport {
    pub phase: String,
    pub calls: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub attempts: u64,
    pub attempts_per_call: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_429: Option<u64>,
    /// Time from the end of the outage to the first successful call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered_after_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breaker_trips: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_fetches: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages_failed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orders_created: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_orders: Option<u64>,
    /// The most common error, if any call failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_error: Option<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

impl PhaseReport {
    pub fn from_calls(phase: &str, outcomes: &[Outcome], attempts: u64) -> Self {
        let mut latencies: Vec<Duration> = outcomes.iter().map(|o| o.latency).collect();
        latencies.sort();
        let succeeded = outcomes.iter().filter(|o| o.ok).count() as u64;
        let mut errors: std::collections::BTreeMap<String, usize> = Default::default();
        for e in outcomes.iter().filter_map(|o| o.error.as_ref()) {
            // Grouped by the message's first 120 characters (the reason and the last attempt
            // come first), shown cut at a word, never in the middle of one.
            *errors.entry(cut_at_word(e, 120)).or_default() += 1;
        }
        let calls = outcomes.len() as u64;
        PhaseReport {
            phase: phase.to_string(),
            calls,
            succeeded,
            failed: calls - succeeded,
            attempts,
            attempts_per_call: if calls == 0 {
                0.0
            } else {
                attempts as f64 / calls as f64
            },
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: percentile(&latencies, 0.99),
            top_error: errors
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(e, n)| format!("{n}× {e}")),
            ..PhaseReport::default()
        }
    }
}

/// `text` up to `max` characters, cut after the last whole word that fits, with `…` when cut.
fn cut_at_word(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((end, _)) => {
            let head = &text[..end];
            let head = head.rfind(' ').map_or(head, |space| &head[..space]);
            format!("{}…", head.trim_end_matches([' ', ',', ';', ':']))
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ContenderReport {
    pub name: String,
    pub phases: Vec<PhaseReport>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub server: String,
    pub seed: u64,
    pub duration_ms: u64,
    pub resile_policy: Value,
    pub contenders: Vec<ContenderReport>,
    /// The fleet phase (several clients, one quota, with and without Redis).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<super::fleet::FleetReport>,
}

impl Report {
    pub fn new(server: &str, seed: u64, policy: Value) -> Self {
        Report {
            server: server.to_string(),
            seed,
            duration_ms: 0,
            resile_policy: policy,
            contenders: Vec::new(),
            fleet: None,
        }
    }

    pub fn add(&mut self, name: &str, phases: Vec<PhaseReport>) {
        self.contenders.push(ContenderReport {
            name: name.to_string(),
            phases,
        });
    }

    /// The phases of each contender side by side, as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let names: Vec<&str> = self.contenders.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(
            out,
            "resile demo — {} — seed {} — {:.1} s",
            self.server,
            self.seed,
            self.duration_ms as f64 / 1000.0
        );
        let Some(first) = self.contenders.first() else {
            return out;
        };
        for (i, phase) in first.phases.iter().enumerate() {
            let _ = writeln!(out, "\n{}", phase.phase);
            let rows: [Row; 14] = [
                ("calls ok / failed", |p| {
                    Some(format!("{} / {}", p.succeeded, p.failed))
                }),
                ("attempts (server-side)", |p| Some(p.attempts.to_string())),
                ("attempts per call", |p| {
                    Some(format!("{:.2}", p.attempts_per_call))
                }),
                ("latency p50 / p99 ms", |p| {
                    Some(format!("{:.0} / {:.0}", p.p50_ms, p.p99_ms))
                }),
                ("429s received", |p| p.rejected_429.map(|n| n.to_string())),
                ("first success after ms", |p| {
                    p.recovered_after_ms.map(|n| n.to_string())
                }),
                ("breaker trips", |p| p.breaker_trips.map(|n| n.to_string())),
                ("token fetches", |p| p.token_fetches.map(|n| n.to_string())),
                ("items paged", |p| p.items.map(|n| n.to_string())),
                ("duplicate items", |p| p.duplicates.map(|n| n.to_string())),
                ("lost items", |p| p.lost.map(|n| n.to_string())),
                ("page requests failed", |p| {
                    p.pages_failed.map(|n| n.to_string())
                }),
                ("orders created", |p| {
                    p.orders_created.map(|n| n.to_string())
                }),
                ("duplicate orders", |p| {
                    p.duplicate_orders.map(|n| n.to_string())
                }),
            ];
            let _ = write!(out, "  {:<24}", "");
            for n in &names {
                let _ = write!(out, "{n:>22}");
            }
            let _ = writeln!(out);
            for (label, get) in &rows {
                let cells: Vec<Option<String>> = self
                    .contenders
                    .iter()
                    .map(|c| c.phases.get(i).and_then(get))
                    .collect();
                if cells.iter().all(Option::is_none) {
                    continue;
                }
                let _ = write!(out, "  {label:<24}");
                for cell in cells {
                    let _ = write!(out, "{:>22}", cell.unwrap_or_else(|| "-".into()));
                }
                let _ = writeln!(out);
            }
            for c in &self.contenders {
                if let Some(e) = c.phases.get(i).and_then(|p| p.top_error.as_ref()) {
                    let _ = writeln!(out, "  {} failures: {e}", c.name);
                }
            }
        }
        if let Some(fleet) = &self.fleet {
            out.push_str(&fleet.render());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::cut_at_word;

    #[test]
    fn a_long_message_is_cut_after_a_whole_word() {
        assert_eq!(cut_at_word("short", 120), "short");
        let long =
            "gave up after 1 attempt(s): the retry budget is spent; last attempt: status 503";
        assert_eq!(
            cut_at_word(long, 50),
            "gave up after 1 attempt(s): the retry budget is…"
        );
        assert_eq!(cut_at_word(long, long.chars().count()), long);
        assert_eq!(cut_at_word("ünïcödé wörds hërë", 9), "ünïcödé…");
    }
}
