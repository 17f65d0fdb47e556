//! Every conformance scenario, embedded so the browser tests need no file system.
//! `scenario_list.rs` checks natively that the list names every file in tests/scenarios/.

/// `(name, JSON text)` of each scenario in `tests/scenarios/`.
pub const SCENARIOS: &[(&str, &str)] = &[
    ("429-retry-after-date", include_str!("../../../tests/scenarios/429-retry-after-date.json")),
    ("429-retry-after-seconds", include_str!("../../../tests/scenarios/429-retry-after-seconds.json")),
    ("503-burst-then-success", include_str!("../../../tests/scenarios/503-burst-then-success.json")),
    ("deadline-exhaustion", include_str!("../../../tests/scenarios/deadline-exhaustion.json")),
    ("max-attempts", include_str!("../../../tests/scenarios/max-attempts.json")),
    ("not-retryable-404", include_str!("../../../tests/scenarios/not-retryable-404.json")),
    ("post-429-without-key", include_str!("../../../tests/scenarios/post-429-without-key.json")),
    ("reset-get", include_str!("../../../tests/scenarios/reset-get.json")),
    ("reset-post-with-key", include_str!("../../../tests/scenarios/reset-post-with-key.json")),
    ("reset-post-without-key", include_str!("../../../tests/scenarios/reset-post-without-key.json")),
    ("retry-after-too-long", include_str!("../../../tests/scenarios/retry-after-too-long.json")),
    ("stall-attempt-timeout", include_str!("../../../tests/scenarios/stall-attempt-timeout.json")),
    ("token-401-forced-refresh", include_str!("../../../tests/scenarios/token-401-forced-refresh.json")),
    ("token-401-no-loop", include_str!("../../../tests/scenarios/token-401-no-loop.json")),
    ("token-expiry-concurrent", include_str!("../../../tests/scenarios/token-expiry-concurrent.json")),
    ("token-fetch-failure", include_str!("../../../tests/scenarios/token-fetch-failure.json")),
    ("total-outage-budget-breaker", include_str!("../../../tests/scenarios/total-outage-budget-breaker.json")),
];
