//! gRPC A6 retry throttling, replayed through the engine under the `grpc-a6` preset.
//!
//! Source: grpc/grpc-go `test/retry_test.go`, `TestRetryThrottling`: `maxAttempts` 4,
//! `retryThrottling` `maxTokens` 10, `tokenRatio` 0.5; the server answers OK to the requests
//! numbered 0, 3, 6, 10, 11, 12, 13, 14, 16 and 18 (counted across calls) and UNAVAILABLE (a 503
//! here, which the preset retries as gRPC's UNAVAILABLE) to the others. Each row is one call,
//! made after the one before ended: whether it succeeded, the number of its last request, and
//! the host's tokens after it. The first two columns are grpc-go's; the tokens are A6's rule
//! (grpc-go's comments say 6 after the third call, 5.5 after the eleventh and 4.5 after the
//! twelfth; the rule, which its request counts bear out, gives 7, 6 and 5), as in
//! `resile_core::throttle`'s own table, which this replays through the engine.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{CallSpec, Config, Engine, Instant, UnixTime, Why};
use serde_json::json;

#[test]
fn grpc_go_retry_throttling_through_the_engine() {
    let config = Config::from_value(json!({
        "preset": "grpc-a6",
        "retry_throttling": {"token_ratio": 0.5},
        // grpc-go's channel has no breaker; resile's default one would trip on the failures
        // in a row of calls 4 and 5.
        "breaker": {"enabled": false},
    }))
    .unwrap();
    assert_eq!(config.retry.max_attempts, 4);
    let ok_at = [0, 3, 6, 10, 11, 12, 13, 14, 16, 18];
    let table: [(bool, u32, u64); 12] = [
        (true, 0, 10_000),
        (true, 3, 8_500),
        (true, 6, 7_000),
        (false, 8, 5_000), // the first failure retried; the second refused
        (false, 9, 4_000),
        (true, 10, 4_500),
        (true, 11, 5_000),
        (true, 12, 5_500),
        (true, 13, 6_000),
        (true, 14, 6_500),
        (true, 16, 6_000),
        (false, 17, 5_000),
    ];
    let seen = Rc::new(Cell::new(0u32));
    let count = seen.clone();
    let server = move |_: &SimRequest, _: Instant, _: UnixTime| {
        let n = count.get();
        count.set(n + 1);
        SimReply::Status {
            status: if ok_at.contains(&n) { 200 } else { 503 },
            headers: vec![],
            body: None,
            latency: Duration::from_millis(5),
        }
    };
    let engine = Engine::new(config, 4, Instant::ZERO).unwrap();
    let mut world = World::new(engine, server);
    for (row, (ok, last, tokens)) in table.into_iter().enumerate() {
        let call = world.start(CallSpec::get("https://grpc.test/"));
        world.drive_bounded(10_000);
        let result = world.results[call].as_ref().expect("the call ended");
        match (ok, result) {
            (true, CallResult::Done { status: 200, .. }) => {}
            (false, CallResult::Failed { failure, .. }) => assert!(
                matches!(failure.why, Why::BudgetExhausted | Why::MaxAttempts),
                "call {row}: {:?}",
                failure.why
            ),
            other => panic!("call {row}: {other:?}"),
        }
        assert_eq!(seen.get() - 1, last, "call {row}: its last request");
        let host = &world.engine.hosts(world.now)[0];
        assert_eq!(
            host.retry_throttle_milli,
            Some(tokens),
            "call {row}: tokens"
        );
    }
}

// The section is checked: A6 bounds `maxTokens` to (0, 1000] and the ratio to (0, maxTokens].
#[test]
fn retry_throttling_out_of_range_names_its_field() {
    for (section, field) in [
        (
            json!({"max_tokens": 0, "token_ratio": 0.1}),
            "retry_throttling.max_tokens",
        ),
        (
            json!({"max_tokens": 1001, "token_ratio": 0.1}),
            "retry_throttling.max_tokens",
        ),
        (
            json!({"max_tokens": 10, "token_ratio": 0.0}),
            "retry_throttling.token_ratio",
        ),
        (
            json!({"max_tokens": 10, "token_ratio": 11.0}),
            "retry_throttling.token_ratio",
        ),
    ] {
        match Config::from_value(json!({ "retry_throttling": section })) {
            Err(resile_core::ConfigError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}
