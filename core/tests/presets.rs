//! Presets: selectable by name from JSON and from Rust, overridable field by field, a typed
//! error for a name that is not one, and each one driving the engine as its peer would.

use std::time::Duration;

use resile_core::config::Jitter;
use resile_core::preset::{self, Preset};
use resile_core::sim::{CallResult, SimReply, SimRequest, World};
use resile_core::{CallSpec, Config, ConfigError, Engine, Instant, UnixTime};

const NAMES: [(&str, Preset); 5] = [
    ("aws-standard", Preset::AwsStandard),
    ("aws-adaptive", Preset::AwsAdaptive),
    ("aws-2.1", Preset::Aws21),
    ("grpc-a6", Preset::GrpcA6),
    ("dotnet-standard", Preset::DotnetStandard),
];

fn field_of(e: ConfigError) -> &'static str {
    match e {
        ConfigError::OutOfRange { field, .. } => field,
        other => panic!("expected an error naming a field, got {other:?}"),
    }
}

#[test]
fn every_preset_parses_from_json_and_from_rust_alike() {
    assert_eq!(preset::ALL.len(), NAMES.len());
    for (name, p) in NAMES {
        let from_json = Config::from_json(&format!(r#"{{"preset":"{name}"}}"#)).unwrap();
        let from_value = Config::from_value(serde_json::json!({ "preset": name })).unwrap();
        assert_eq!(from_json, Config::preset(p), "{name}");
        assert_eq!(from_value, from_json, "{name}");
        assert_eq!(Config::from_preset(name).unwrap(), from_json, "{name}");
        assert_eq!(from_json.preset, Some(p));
        assert_eq!(p.name(), name);
        assert_eq!(name.parse::<Preset>().unwrap(), p);
        from_json.validate().unwrap();
        assert_ne!(from_json, Config::default(), "{name} changes something");
        // What it serialises to reads back as itself.
        let text = serde_json::to_string(&from_json).unwrap();
        assert!(text.contains(&format!(r#""preset":"{name}""#)), "{text}");
        assert_eq!(Config::from_json(&text).unwrap(), from_json, "{name}");
    }
}

#[test]
fn the_grpc_a6_preset_from_the_brief() {
    let c = Config::from_json(r#"{"preset":"grpc-a6"}"#).unwrap();
    assert_eq!(c.retry.max_attempts, 4);
    assert_eq!(
        (c.backoff.base_ms, c.backoff.factor, c.backoff.cap_ms),
        (100, 2.0, 1_000)
    );
    assert_eq!(c.backoff.jitter, Jitter::Full);
    let t = Preset::GrpcA6.throttle().unwrap();
    assert_eq!((t.max_tokens, t.token_ratio), (10, 0.1));
}

#[test]
fn the_parameters_the_issue_lists() {
    let aws = Config::preset(Preset::AwsStandard);
    assert_eq!(aws.retry.max_attempts, 3);
    assert_eq!((aws.backoff.base_ms, aws.backoff.cap_ms), (1_000, 20_000));
    assert_eq!(aws.backoff.jitter, Jitter::Full);
    let q = Preset::AwsStandard.quota().unwrap();
    assert_eq!(
        (
            q.capacity,
            q.retry_cost,
            q.timeout_cost,
            q.success_increment
        ),
        (500, 5, 10, 1)
    );

    let v21 = Config::preset(Preset::Aws21);
    assert_eq!(v21.backoff.base_ms, 50);
    let q = Preset::Aws21.quota().unwrap();
    assert_eq!((q.retry_cost, q.throttling_cost), (14, 5));
    let d = Preset::Aws21.aws_backoff().unwrap();
    assert_eq!(d.throttling_base_ms, 1_000);

    let net = Config::preset(Preset::DotnetStandard);
    assert_eq!(net.retry.deadline_ms, Some(30_000));
    assert_eq!(net.retry.attempt_timeout_ms, Some(10_000));
    assert_eq!(net.retry.max_attempts, 4, "3 retries");
    assert_eq!(net.backoff.base_ms, 2_000);
    assert_eq!(net.breaker.failure_rate, Some(0.1));
    assert_eq!(net.breaker.min_calls, 100);
    assert_eq!(net.breaker.window_ms, 30_000);
    assert_eq!(
        (net.breaker.open_ms, net.breaker.max_open_ms),
        (5_000, 5_000)
    );
    for s in [408, 429, 500, 503, 599] {
        assert!(net.retry.retry_statuses.contains(&s), "{s}");
    }
}

#[test]
fn fields_written_next_to_a_preset_override_it_field_by_field() {
    for text in [
        r#"{"preset":"aws-standard","retry":{"max_attempts":5}}"#,
        r#"{"retry":{"max_attempts":5},"preset":"aws-standard"}"#,
    ] {
        let c = Config::from_json(text).unwrap();
        assert_eq!(c.retry.max_attempts, 5, "{text}");
        // The rest of the section stays the preset's, not resile's default.
        assert_eq!(c.retry.retry_statuses, vec![429, 500, 502, 503, 504]);
        assert_eq!(c.backoff.base_ms, 1_000);
        assert_eq!(c.preset, Some(Preset::AwsStandard));
    }
    let c = Config::from_json(
        r#"{"preset":"dotnet-standard","breaker":{"enabled":false},"limit":{"per_second":5}}"#,
    )
    .unwrap();
    assert!(!c.breaker.enabled);
    assert_eq!(c.breaker.failure_rate, Some(0.1));
    assert_eq!(c.limit.unwrap().per_second, 5.0);
    // An explicit null overrides too.
    let c =
        Config::from_json(r#"{"preset":"dotnet-standard","retry":{"deadline_ms":null}}"#).unwrap();
    assert_eq!(c.retry.deadline_ms, None);
    // `"preset": null` is no preset.
    assert_eq!(
        Config::from_json(r#"{"preset":null}"#).unwrap(),
        Config::default()
    );
    // Overrides are still validated.
    assert_eq!(
        field_of(
            Config::from_json(r#"{"preset":"aws-2.1","backoff":{"factor":0.5}}"#).unwrap_err()
        ),
        "backoff.factor"
    );
    // And unknown fields next to a preset are still refused.
    assert!(matches!(
        Config::from_json(r#"{"preset":"aws-2.1","retries":3}"#),
        Err(ConfigError::Parse(m)) if m.contains("retries")
    ));
}

#[test]
fn an_unknown_preset_is_a_typed_error_naming_the_field() {
    for text in [
        r#"{"preset":"aws-99"}"#,
        r#"{"preset":"AWS-STANDARD"}"#,
        r#"{"preset":3}"#,
        r#"{"preset":{"name":"aws-standard"}}"#,
    ] {
        let e = Config::from_json(text).unwrap_err();
        let message = e.to_string();
        assert_eq!(field_of(e), "preset", "{text}");
        assert!(message.contains("aws-standard, aws-adaptive, aws-2.1, grpc-a6, dotnet-standard"));
    }
    assert_eq!(
        field_of(Config::from_preset("polly").unwrap_err()),
        "preset"
    );
    assert_eq!(field_of("".parse::<Preset>().unwrap_err()), "preset");
}

#[test]
fn grpc_a6_caps_attempts_at_five() {
    let five = Config::from_json(r#"{"preset":"grpc-a6","retry":{"max_attempts":5}}"#).unwrap();
    assert_eq!(five.retry.max_attempts, 5);
    let six = Config::from_json(r#"{"preset":"grpc-a6","retry":{"max_attempts":6}}"#);
    assert_eq!(field_of(six.unwrap_err()), "retry.max_attempts");
    // Without the preset, 6 is fine.
    Config::from_json(r#"{"retry":{"max_attempts":6}}"#).unwrap();
}

/// Calls one after another against a host answering 503 forever (breaker off, so only the
/// retry rule decides): the attempts each call sent.
fn attempts_per_call(mut config: Config, calls: usize) -> Vec<u64> {
    config.breaker.enabled = false;
    let engine = Engine::new(config, 5, Instant::ZERO).unwrap();
    let server = |_: &SimRequest, _: Instant, _: UnixTime| SimReply::Status {
        status: 503,
        headers: vec![],
        body: None,
        latency: Duration::from_millis(5),
    };
    let mut world = World::new(engine, server);
    let mut per_call = Vec::new();
    for _ in 0..calls {
        let before = world.attempts;
        let call = world.start(CallSpec::get("https://api.test"));
        world.drive_bounded(10_000);
        assert!(matches!(
            world.results[call],
            Some(CallResult::Failed { .. })
        ));
        per_call.push(world.attempts - before);
    }
    per_call
}

// aws-standard's quota in the engine: 500 tokens, 5 per retry, never refunded while the host
// fails: 50 calls get their two retries (10 tokens each), then every call gets one attempt.
#[test]
fn the_aws_quota_bounds_retries_in_the_engine() {
    let per_call = attempts_per_call(Config::preset(Preset::AwsStandard), 53);
    assert_eq!(&per_call[..50], &[3; 50]);
    assert_eq!(&per_call[50..], &[1, 1, 1]);
    // aws-2.1 charges 14 per retry: 17 calls get two retries (28 tokens each), the 24 left
    // pay one more retry (10 left), then no call is retried.
    let per_call = attempts_per_call(Config::preset(Preset::Aws21), 20);
    assert_eq!(&per_call[..17], &[3; 17]);
    assert_eq!(&per_call[17..], &[2, 1, 1]);
}

// grpc-a6's throttle in the engine: 10 tokens, −1 per failed attempt, retries only above 5.
// The first call fails 4 attempts (10 → 6, retried at 9, 8, 7; the fourth is the last
// allowed); every later call's first failure leaves at most 5, so it is not retried.
#[test]
fn grpc_throttling_bounds_retries_in_the_engine() {
    let per_call = attempts_per_call(Config::preset(Preset::GrpcA6), 4);
    assert_eq!(per_call, [4, 1, 1, 1]);
}

// The default config has neither: the budget alone decides, as before (the recorded traces in
// tests/scenarios/traces pin that down too).
#[test]
fn without_a_preset_the_budget_alone_decides() {
    let per_call = attempts_per_call(Config::default(), 12);
    // Reserve 10 + 0.2 per call: the first calls get all three retries.
    assert_eq!(per_call[0], 4);
    assert!(per_call.iter().sum::<u64>() > 12 + 10);
}

/// One call against a host answering 503 forever: the attempts sent and when it ended.
fn against_a_dead_host(config: Config, seed: u64) -> (u64, Duration) {
    let engine = Engine::new(config, seed, Instant::ZERO).unwrap();
    let server = |_: &SimRequest, _: Instant, _: UnixTime| SimReply::Status {
        status: 503,
        headers: vec![],
        body: None,
        latency: Duration::from_millis(5),
    };
    let mut world = World::new(engine, server);
    let call = world.start(CallSpec::get("https://api.test"));
    world.drive_bounded(10_000);
    assert!(matches!(
        world.results[call],
        Some(CallResult::Failed { .. })
    ));
    let ended = world.now.saturating_duration_since(Instant::ZERO);
    (world.attempts, ended)
}

// Each preset drives the engine: without a deadline in the way, a host answering 503 forever
// sees exactly the preset's attempt count per call, and each wait stays under the preset's cap.
#[test]
fn each_preset_drives_the_engine_to_its_attempt_count() {
    for (name, p) in NAMES {
        let mut config = Config::preset(p);
        config.retry.deadline_ms = None;
        let attempts = config.retry.max_attempts;
        let cap = Duration::from_millis(config.backoff.cap_ms);
        for seed in 0..20 {
            let (sent, ended) = against_a_dead_host(config.clone(), seed);
            assert_eq!(sent, u64::from(attempts), "{name}, seed {seed}");
            let most = Duration::from_millis(5) * attempts + cap * (attempts - 1);
            assert!(ended <= most, "{name}, seed {seed}: {ended:?} > {most:?}");
        }
    }
}

// dotnet-standard's 30 s total timeout bounds the whole call, waits included, however the
// jitter falls.
#[test]
fn dotnet_standard_ends_every_call_within_its_total_timeout() {
    for seed in 0..20 {
        let (sent, ended) = against_a_dead_host(Config::preset(Preset::DotnetStandard), seed);
        assert!((1..=4).contains(&sent), "seed {seed}: {sent} attempts");
        assert!(ended <= Duration::from_secs(30), "seed {seed}: {ended:?}");
    }
}
