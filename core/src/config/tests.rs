//! The config parser and its validation, from the rules.

use super::*;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

#[test]
fn defaults_are_valid_and_round_trip() {
    let c = Config::default();
    c.validate().unwrap();
    let text = serde_json::to_string(&c).unwrap();
    assert_eq!(Config::from_json(&text).unwrap(), c);
    assert_eq!(Config::from_json("{}").unwrap(), c);
}

#[test]
fn each_bad_value_names_its_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"retry":{"max_attempts":0}}"#, "retry.max_attempts"),
        (
            r#"{"retry":{"attempt_timeout_ms":0}}"#,
            "retry.attempt_timeout_ms",
        ),
        (
            r#"{"retry":{"retry_statuses":[700]}}"#,
            "retry.retry_statuses",
        ),
        (r#"{"backoff":{"factor":0.5}}"#, "backoff.factor"),
        (
            r#"{"backoff":{"base_ms":500,"cap_ms":100}}"#,
            "backoff.cap_ms",
        ),
        (r#"{"budget":{"ratio":1.5}}"#, "budget.ratio"),
        (r#"{"retry":{"hold_spread":2}}"#, "retry.hold_spread"),
        (r#"{"breaker":{"failure_rate":0}}"#, "breaker.failure_rate"),
        (
            r#"{"breaker":{"half_open_probes":0}}"#,
            "breaker.half_open_probes",
        ),
        (r#"{"breaker":{"open_growth":0.9}}"#, "breaker.open_growth"),
        (r#"{"limit":{"per_second":10,"burst":0}}"#, "limit.burst"),
        (r#"{"limit":{"per_second":-1}}"#, "limit.per_second"),
        (r#"{"max_hosts":0}"#, "max_hosts"),
        (r#"{"backoff":{"cap_ms":4000000000}}"#, "backoff.cap_ms"),
        (
            r#"{"retry":{"deadline_ms":2147483648}}"#,
            "retry.deadline_ms",
        ),
        (
            r#"{"breaker":{"max_open_ms":9999999999}}"#,
            "breaker.max_open_ms",
        ),
        (r#"{"limit":{"per_second":0.0001}}"#, "limit.per_second"),
        (r#"{"budget":{"window_ms":0}}"#, "budget.window_ms"),
        (r#"{"budget":{"window_ms":2147483648}}"#, "budget.window_ms"),
        (
            r#"{"token":{"fetch_backoff_ms":0}}"#,
            "token.fetch_backoff_ms",
        ),
        (
            r#"{"token":{"fetch_backoff_ms":5000,"max_fetch_backoff_ms":1000}}"#,
            "token.max_fetch_backoff_ms",
        ),
    ];
    for (text, field) in cases {
        match Config::from_json(text) {
            Err(ConfigError::OutOfRange { field: f, .. }) => assert_eq!(f, *field, "{text}"),
            other => panic!("{text}: expected an error naming {field}, got {other:?}"),
        }
    }
}

#[test]
fn unknown_fields_and_bad_json_are_parse_errors() {
    assert!(matches!(
        Config::from_json(r#"{"retries":3}"#),
        Err(ConfigError::Parse(_))
    ));
    assert!(matches!(Config::from_json("{"), Err(ConfigError::Parse(_))));
    let msg = Config::from_json(r#"{"backoff":{"factor":0.5}}"#)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("backoff.factor") && msg.contains("≥ 1"),
        "{msg}"
    );
}
