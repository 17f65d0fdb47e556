//! The conformance runner's verdict: one function every driver's replay ends in.
//!
//! A driver (the sim, the native adapter against the chaos server, the wasm adapter in a
//! browser) replays a [`Scenario`] and reports what happened as a [`ScenarioResult`]. [`verify`]
//! holds it to the scenario's rule-derived expectations and, where the scenario has a single
//! call, to the sim's decisions line by line ([`decision_lines`]). Real drivers run on real
//! clocks, so two expectations are read with the clock's grain: the end time gets
//! [`RealClock::slack_ms`], and a delay taken from an HTTP-date (one-second resolution) is
//! compared in whole seconds, as the decision lines show it.

use std::fmt::Write;

use super::decisions::{compare_decisions, decision_lines};
use super::scenario::{check, run_scenario, Scenario, ScenarioResult};
use crate::engine::EventKind;

/// How a real driver's run is read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RealClock {
    /// Extra time allowed on `finished_by_ms`.
    pub slack_ms: u64,
    /// Whether the driver can count side effects (a browser reading logs shifted by inserted
    /// replies may not).
    pub side_effects: bool,
}

impl Default for RealClock {
    fn default() -> Self {
        RealClock {
            slack_ms: 150,
            side_effects: true,
        }
    }
}

/// Whether any scripted reply carries a `{date±N}` header.
pub fn has_date_headers(s: &Scenario) -> bool {
    s.replies
        .iter()
        .any(|r| r.headers.values().any(|v| v.starts_with("{date")))
}

/// A driver's decision lines without its `hint unreadable` notes: a browser cannot tell a
/// header the server did not send from one CORS hides, so it notes every cross-origin 429/503
/// without a readable hint; the note changes no decision.
pub fn without_hint_notes(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| !l.ends_with(" hint unreadable"))
        .collect()
}

/// Holds a driver's run of `s` to the scenario's expectations and, for a single-call
/// scenario, to the sim's decisions. `Ok` says what was compared; `Err` says what differs.
pub fn verify(
    s: &Scenario,
    driver: &str,
    run: &ScenarioResult,
    clock: RealClock,
) -> Result<String, String> {
    let mut expect = s.expect.clone();
    expect.finished_by_ms = expect.finished_by_ms.map(|ms| ms + clock.slack_ms);
    if !clock.side_effects {
        expect.side_effects = None;
    }
    let mut mismatches = Vec::new();
    if has_date_headers(s) {
        if let Some(want) = expect.retry_delays_ms.take() {
            let got: Vec<u64> = run
                .trace
                .iter()
                .filter_map(|e| match &e.kind {
                    EventKind::RetryScheduled { delay, .. } => {
                        Some((delay.as_millis() as u64).div_ceil(1000))
                    }
                    _ => None,
                })
                .collect();
            let want: Vec<u64> = want.iter().map(|ms| ms.div_ceil(1000)).collect();
            if got != want {
                mismatches.push(format!(
                    "retry delays (whole seconds): expected {want:?}, got {got:?}"
                ));
            }
        }
    }
    mismatches.extend(check(&expect, run));
    let mut compared = "expectations".to_string();
    if s.compares_traces() {
        let sim = run_scenario(s).map_err(|e| e.to_string())?;
        let want = decision_lines(&sim.trace);
        let got = without_hint_notes(decision_lines(&run.trace));
        match compare_decisions(&want, &got) {
            Ok(()) => compared = format!("expectations and the sim's {} decisions", want.len()),
            Err(diff) => {
                let mut m = diff.replace("driver:", &format!("{driver}:"));
                let _ = write!(
                    m,
                    "\n  sim:\n    {}\n  {driver}:\n    {}",
                    want.join("\n    "),
                    got.join("\n    ")
                );
                mismatches.push(m);
            }
        }
    }
    if mismatches.is_empty() {
        Ok(format!("{}: {driver} meets the {compared}", s.name))
    } else {
        Err(format!(
            "{} on {driver}:\n  {}\n  outcomes: {:?}",
            s.name,
            mismatches.join("\n  "),
            run.outcomes
        ))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn scenario(json: &str) -> Scenario {
        Scenario::from_json(json).unwrap()
    }

    #[test]
    fn hint_notes_are_dropped_and_nothing_else() {
        let lines = [
            "#1 attempt 1 -> status 503 (retryable_status)",
            "#1 hint unreadable",
            "#1 retry 2 after 100ms (backoff)",
        ];
        let kept = without_hint_notes(lines.iter().map(|l| l.to_string()).collect());
        assert_eq!(kept, [lines[0], lines[2]]);
    }

    #[test]
    fn the_sim_verifies_against_itself_and_a_changed_run_does_not() {
        let s = scenario(
            r#"{"name":"t","calls":[{"method":"GET"}],
                "replies":[{"status":429,"headers":{"Retry-After":"{date+2}"}},{"status":200}],
                "expect":{"attempts":2,"retry_delays_ms":[2000],"finished_by_ms":2000}}"#,
        );
        let mut run = run_scenario(&s).unwrap();
        assert!(verify(&s, "sim", &run, RealClock::default())
            .unwrap()
            .contains("sim's 8 decisions"));
        // A real clock sits inside the second: 1.4 s to the date still reads as 2 s.
        for e in &mut run.trace {
            if let EventKind::RetryScheduled { delay, .. } = &mut e.kind {
                *delay = core::time::Duration::from_millis(1400);
            }
        }
        run.finished_ms = 2100;
        assert!(verify(&s, "native", &run, RealClock::default()).is_ok());
        run.attempts = 3;
        let err = verify(&s, "native", &run, RealClock::default()).unwrap_err();
        assert!(err.contains("attempts: expected 2, got 3"), "{err}");
    }
}
