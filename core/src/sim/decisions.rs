//! A trace's decisions as lines two drivers can compare: what was decided and why, without the
//! timing a real driver cannot reproduce exactly.

use crate::engine::{Event, EventKind};
use crate::sim::scenario::Scenario;

impl Scenario {
    /// Total logical calls the scenario starts.
    pub fn total_calls(&self) -> u64 {
        self.calls.iter().map(|c| u64::from(c.count)).sum()
    }

    /// Whether drivers must produce identical decision traces (one call, or calls marked
    /// `sequential`: yes; many concurrent calls: their interleaving depends on real timing, so
    /// only the expectations are compared).
    pub fn compares_traces(&self) -> bool {
        self.total_calls() == 1 || self.sequential
    }
}

/// The decisions in a trace, one line each, without the timing a real driver cannot reproduce
/// exactly (event times, attempt timeouts shortened by elapsed time). A `Retry-After` delay is
/// shown in whole seconds rounded up, because an HTTP-date has one-second resolution and a real
/// clock is somewhere inside that second. Two drivers that decided the same way produce the same
/// lines.
pub fn decision_lines(trace: &[Event]) -> Vec<String> {
    fn why(w: &crate::Why) -> &'static str {
        w.name()
    }
    fn last(l: &crate::Last) -> String {
        match l {
            crate::Last::Status(s) => format!("status {s}"),
            crate::Last::Transport(e) => format!(
                "transport {}",
                serde_json::to_value(e)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        }
    }
    trace
        .iter()
        .map(|e| match &e.kind {
            EventKind::CallStarted { call, method, .. } => format!("{call} start {method}"),
            EventKind::AttemptStarted {
                call,
                attempt,
                probe,
                ..
            } => {
                format!(
                    "{call} attempt {attempt}{}",
                    if *probe { " (probe)" } else { "" }
                )
            }
            EventKind::AttemptFinished {
                call,
                attempt,
                result,
                why: w,
            } => {
                format!("{call} attempt {attempt} -> {} ({})", last(result), why(w))
            }
            EventKind::RetryScheduled {
                call,
                attempt,
                delay,
                why: w,
            } => {
                let shown = if *w == crate::Why::RetryAfterHeader {
                    format!("{}s", delay.as_millis().div_ceil(1000))
                } else {
                    format!("{}ms", delay.as_millis())
                };
                format!("{call} retry {attempt} after {shown} ({})", why(w))
            }
            EventKind::AttemptAborted {
                call,
                attempt,
                why: w,
            } => format!("{call} attempt {attempt} aborted ({})", why(w)),
            EventKind::ConnectionsRecycled { failures, .. } => {
                format!("pool recycled after {failures} connection failures")
            }
            EventKind::Queued { call, why: w } => format!("{call} queued ({})", why(w)),
            EventKind::Waiting { call, why: w, .. } => format!("{call} wait ({})", why(w)),
            EventKind::WaitingForToken { call, why: w } => {
                format!("{call} wait for token ({})", why(w))
            }
            EventKind::HostHeld { why: w, .. } => format!("host held ({})", why(w)),
            EventKind::HintUnreadable { call } => format!("{call} hint unreadable"),
            EventKind::LimitLearned {
                per_second, burst, ..
            } => {
                format!("limit learned ({per_second:.3}/s, burst {burst})")
            }
            EventKind::BreakerOpened { trips, .. } => format!("breaker opened (trip {trips})"),
            EventKind::BreakerHalfOpen { .. } => "breaker half-open".to_string(),
            EventKind::BreakerClosed { .. } => "breaker closed".to_string(),
            EventKind::BudgetExhausted { call, .. } => format!("{call} budget exhausted"),
            EventKind::HedgeSent {
                call,
                attempt,
                why: w,
                ..
            } => format!("{call} hedge {attempt} ({})", why(w)),
            EventKind::HedgeRefused { call, why: w } => {
                format!("{call} hedge refused ({})", why(w))
            }
            EventKind::TokenFetchStarted { why: w } => format!("token fetch ({})", why(w)),
            EventKind::TokenRefreshed { generation, .. } => format!("token {generation} ready"),
            EventKind::TokenFetchFailed { calls_failed } => {
                format!("token fetch failed ({calls_failed} calls)")
            }
            EventKind::CallSucceeded {
                call,
                status,
                attempts,
                ..
            } => {
                format!("{call} done status {status} after {attempts} attempts")
            }
            EventKind::AdaptiveRateChanged { why: w, .. } => {
                format!("adaptive rate changed ({})", why(w))
            }
            EventKind::ConcurrencyLimitChanged {
                limit,
                previous,
                why: w,
                ..
            } => format!("concurrency limit {previous} -> {limit} ({})", why(w)),
            EventKind::CallFellBack {
                call,
                failure,
                used,
                ..
            } => format!(
                "{call} fell back to {} ({}) after {} attempts",
                match used {
                    crate::engine::FallbackUsed::Value => "its value",
                    crate::engine::FallbackUsed::LastGood { .. } => "the last good response",
                },
                why(&failure.why),
                failure.attempts
            ),
            EventKind::BreakerControlled { control, .. } => {
                format!("breaker {}", control.name())
            }
            EventKind::CallFailed { call, failure, .. } => format!(
                "{call} failed ({}) after {} attempts{}; {}, {}, {}{}",
                why(&failure.why),
                failure.attempts,
                failure
                    .last
                    .as_ref()
                    .map(|l| format!(", last {}", last(l)))
                    .unwrap_or_default(),
                serde_json::to_value(failure.kind())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                if failure.is_retryable() {
                    "retryable"
                } else {
                    "not retryable"
                },
                if failure.maybe_processed() {
                    "maybe processed"
                } else {
                    "not processed"
                },
                if failure.retry_at.is_some() {
                    ", retry at a known time"
                } else {
                    ""
                },
            ),
            EventKind::FleetFallback { problem, .. } => {
                format!("fleet fallback ({})", problem.explain())
            }
            EventKind::FleetResumed { .. } => "fleet resumed".to_string(),
        })
        .collect()
}

/// Compares two drivers' decision lines; `Err` names the first line that differs.
pub fn compare_decisions(expected: &[String], actual: &[String]) -> Result<(), String> {
    for (i, (a, b)) in expected.iter().zip(actual).enumerate() {
        if a != b {
            return Err(format!(
                "decision {} differs:\n  sim:    {a}\n  driver: {b}",
                i + 1
            ));
        }
    }
    if expected.len() != actual.len() {
        let (longer, who) = if expected.len() > actual.len() {
            (expected, "sim")
        } else {
            (actual, "driver")
        };
        let extra = &longer[expected.len().min(actual.len())];
        return Err(format!(
            "{} decisions from the sim, {} from the driver; first extra ({who}): {extra}",
            expected.len(),
            actual.len()
        ));
    }
    Ok(())
}
