//! Every conformance scenario in `tests/scenarios/` holds on the sim driver, and replays to the
//! same trace.

use std::path::PathBuf;

use resile_core::sim::{run_scenario, Scenario};

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios")
}

fn load_all() -> Vec<(String, Scenario)> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(scenario_dir())
        .expect("tests/scenarios exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("readable scenario");
        let scenario =
            Scenario::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((path.display().to_string(), scenario));
    }
    out
}

#[test]
fn every_scenario_meets_its_expectations() {
    let all = load_all();
    assert!(
        all.len() >= 15,
        "expected the full scenario set, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    for (path, s) in &all {
        let result = run_scenario(s).expect("valid config");
        if !result.mismatches.is_empty() {
            failures.push(format!(
                "{path}:\n  {}\n  outcomes: {:?}",
                result.mismatches.join("\n  "),
                result.outcomes
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn scenarios_replay_to_identical_traces() {
    for (path, s) in load_all() {
        let a = run_scenario(&s).expect("valid config");
        let b = run_scenario(&s).expect("valid config");
        assert_eq!(a.trace, b.trace, "{path}: same seed, different trace");
    }
}

#[test]
fn a_different_seed_changes_jittered_delays_only() {
    let text = r#"{"name":"j","calls":[{"method":"GET"}],"replies":[{"status":503},{"status":503},{"status":200}]}"#;
    let mut s = Scenario::from_json(text).unwrap();
    let a = run_scenario(&s).unwrap();
    s.seed = 99;
    let b = run_scenario(&s).unwrap();
    assert_eq!(a.outcomes, b.outcomes);
    assert_eq!(a.attempts, b.attempts);
    assert_ne!(a.trace, b.trace, "full jitter should differ between seeds");
}

#[test]
fn bad_scenarios_are_clear_errors() {
    assert!(Scenario::from_json("{").unwrap_err().contains("scenario"));
    let empty = r#"{"name":"x","calls":[],"replies":[]}"#;
    assert!(Scenario::from_json(empty).unwrap_err().contains("replies"));
    let bad_config =
        r#"{"name":"x","calls":[],"replies":[{}],"config":{"retry":{"max_attempts":0}}}"#;
    assert!(Scenario::from_json(bad_config)
        .unwrap_err()
        .contains("retry.max_attempts"));
}

#[test]
fn decision_lines_read_like_the_rules() {
    let text = std::fs::read_to_string(scenario_dir().join("429-retry-after-date.json")).unwrap();
    let r = run_scenario(&Scenario::from_json(&text).unwrap()).unwrap();
    let lines = resile_core::sim::decision_lines(&r.trace);
    assert_eq!(
        lines,
        [
            "#1 start GET",
            "#1 attempt 1",
            "#1 attempt 1 -> status 429 (too_many_requests)",
            "host held (server_retry_after_hold)",
            "#1 retry 2 after 3s (retry_after_header)",
            "#1 attempt 2",
            "#1 attempt 2 -> status 200 (success)",
            "#1 done status 200 after 2 attempts",
        ]
    );
    let mut other = lines.clone();
    other[4] = "#1 retry 2 after 2s (retry_after_header)".into();
    let err = resile_core::sim::compare_decisions(&lines, &other).unwrap_err();
    assert!(err.contains("decision 5 differs"), "{err}");
    let err = resile_core::sim::compare_decisions(&lines, &lines[..7]).unwrap_err();
    assert!(err.contains("first extra (sim): #1 done"), "{err}");
}

/// The decision trace of every scenario is recorded in `tests/scenarios/traces/NAME.txt`; any
/// change in behaviour shows up as a diff there. Re-record with `RESILE_BLESS=1`.
#[test]
fn decision_traces_match_the_recorded_ones() {
    let dir = scenario_dir().join("traces");
    let bless = std::env::var_os("RESILE_BLESS").is_some();
    let mut stale = Vec::new();
    for (path, s) in load_all() {
        let lines = resile_core::sim::decision_lines(&run_scenario(&s).unwrap().trace);
        let text = lines.join("\n") + "\n";
        let file = dir.join(format!("{}.txt", s.name));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(recorded) if recorded == text => {}
            Ok(recorded) => {
                let a: Vec<String> = recorded.lines().map(str::to_string).collect();
                let why = resile_core::sim::compare_decisions(&a, &lines)
                    .err()
                    .unwrap_or_default();
                stale.push(format!("{path}: {why}"));
            }
            Err(_) => stale.push(format!("{path}: no recorded trace at {}", file.display())),
        }
    }
    assert!(
        stale.is_empty(),
        "re-record with RESILE_BLESS=1 if the change is intended:\n{}",
        stale.join("\n")
    );
}
