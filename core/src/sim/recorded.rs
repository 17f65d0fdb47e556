//! Replays every conformance scenario and compares its decisions with the trace recorded on
//! the native build (`tests/scenarios/traces/`). Compiled into the unit tests, so
//! `cargo test -p resile-core --lib --target wasm32-unknown-unknown` proves the wasm build
//! decides exactly as the native one does.
#![cfg(test)]

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use super::{decision_lines, run_scenario, Scenario};

macro_rules! scenarios {
    ($($name:literal),* $(,)?) => {
        [$((
            $name,
            include_str!(concat!("../../../tests/scenarios/", $name, ".json")),
            include_str!(concat!("../../../tests/scenarios/traces/", $name, ".txt")),
        )),*]
    };
}

#[test]
fn every_scenario_decides_as_recorded() {
    let all = scenarios![
        "429-retry-after-date",
        "429-retry-after-seconds",
        "503-burst-then-success",
        "deadline-exhaustion",
        "max-attempts",
        "not-retryable-404",
        "paginate-cursor",
        "paginate-link",
        "paginate-offset",
        "paginate-page",
        "paginate-repeated-cursor",
        "post-429-without-key",
        "reset-get",
        "reset-post-with-key",
        "reset-post-without-key",
        "retry-after-too-long",
        "stall-attempt-timeout",
        "token-401-forced-refresh",
        "token-401-no-loop",
        "token-expiry-concurrent",
        "token-fetch-failure",
        "total-outage-budget-breaker",
    ];
    for (name, json, recorded) in all {
        let scenario = Scenario::from_json(json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = run_scenario(&scenario).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            result.mismatches.is_empty(),
            "{name}: {:?}",
            result.mismatches
        );
        let lines = decision_lines(&result.trace);
        let expected: Vec<&str> = recorded.lines().collect();
        assert_eq!(
            lines, expected,
            "{name}: decisions differ from the recorded trace"
        );
    }
}
