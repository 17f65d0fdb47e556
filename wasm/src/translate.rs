//! Pure translations between the engine's values and what JavaScript sees.
//!
//! Nothing here touches JavaScript, so it compiles and is tested on every target. The views
//! ([`ErrorFields`], [`HostState`], [`TokenState`]) are plain `Serialize` structs; the wasm side
//! serializes them, events, stats and the config straight into JS objects with camelCase keys
//! (its `to_js` module, tested there against [`event_json`] and [`camel_keys`], the same
//! values as JSON, which the contract test checks against `types.d.ts`).

use core::time::Duration;

use resile_core::breaker::{BreakerState, HoldKind};
use resile_core::engine::{AdaptiveRateView, HostView};
use resile_core::token::TokenView;
use resile_core::{Event, FailureKind, Instant, Last};

use crate::error::Error;
use serde::Serialize;
use serde_json::Value;

/// Config keys the JS API adds on top of the core's serde `Config`, as JavaScript spells them
/// (their snake_case spellings are accepted too, see [`snake_keys`]).
pub const CLIENT_ONLY_KEYS: [&str; 6] = [
    "baseUrl",
    "headers",
    "seed",
    "tokenProvider",
    "maxInFlight",
    "maxInFlightPerHost",
];

/// A JSON text as a [`Value`]. Every JSON text the module reads (configs, breaker snapshots,
/// pages) goes through this one reader, and typed values are then taken from the `Value`
/// (`from_value`): each (reader, type) pair would be its own copy of the derive's code.
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    parse_bytes(text.as_bytes())
}

/// [`parse`] for bytes that may not be UTF-8 (a response body).
pub fn parse_bytes(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// The stable `code` of a `ResileError` for a failed call.
pub fn failure_code(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Timeout => "timeout",
        FailureKind::Unavailable => "unavailable",
        FailureKind::RateLimited => "rate_limited",
        FailureKind::RetriesExhausted => "retries_exhausted",
        FailureKind::NotRetried => "not_retried",
        FailureKind::Auth => "auth",
        FailureKind::Cancelled => "cancelled",
        FailureKind::Overloaded => "overloaded",
        _ => "failed",
    }
}

/// The snake_case name serde gives a value (`Why::RetryAfterHeader` → `retry_after_header`).
pub fn serde_name<T: serde::Serialize>(value: &T) -> String {
    // In the browser through the serializer every JS value is made with, so the module carries
    // no JSON serializer for it.
    #[cfg(target_arch = "wasm32")]
    let name = crate::to_js::to_js(value, crate::to_js::Keys::AsWritten).as_string();
    #[cfg(not(target_arch = "wasm32"))]
    let name = match serde_json::to_value(value) {
        Ok(Value::String(s)) => Some(s),
        _ => None,
    };
    name.unwrap_or_default()
}

/// The fields of a JavaScript `ResileError` besides `name`, `code` and `message` (their keys
/// camelCase at the boundary): `retryable`, `maybeProcessed`, and what the error knows of `why`,
/// `explain`, `attempts`, `status` or `transport`, `retryAfterMs`, `tokenError` and a config
/// `field`. Unknown ones are left out.
#[derive(Debug, Default, Serialize)]
pub struct ErrorFields {
    /// Another call may succeed.
    pub retryable: bool,
    /// The server may have acted on the request.
    pub maybe_processed: bool,
    /// The final status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The config field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The engine's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<&'static str>,
    /// Its one-line explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<&'static str>,
    /// Attempts made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// The last attempt's transport failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// When the host may be tried again, in milliseconds from the error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<f64>,
    /// The token source's failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_error: Option<String>,
}

/// The [`ErrorFields`] of `error`, decided at `now` (for `retryAfterMs`).
pub fn error_fields(error: &Error, now: Instant) -> ErrorFields {
    let mut fields = ErrorFields {
        retryable: error.is_retryable(),
        maybe_processed: error.maybe_processed(),
        status: error.status(),
        ..ErrorFields::default()
    };
    if let Error::Config {
        field: Some(field), ..
    } = error
    {
        fields.field = Some(field.clone());
    }
    if let Error::Failed {
        failure, detail, ..
    } = error
    {
        fields.why = Some(failure.why.name());
        fields.explain = Some(failure.why.explain());
        fields.attempts = Some(failure.attempts);
        if let Some(Last::Transport(e)) = &failure.last {
            fields.transport = Some(serde_name(e));
        }
        fields.retry_after_ms = failure.retry_at.map(|at| ms(at - now));
        fields.token_error = detail.clone();
    }
    fields
}

/// `snake_case` → `camelCase`, a digit run starting a new word: `refresh_on_401` → `refreshOn401`.
/// Only ASCII letters change case (every name the core has is ASCII; Unicode's case tables
/// would be 26 KB of the module).
pub fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `camelCase` → `snake_case`, the inverse of [`camel`]: `refreshOn401` → `refresh_on_401`.
/// A name that is already snake_case is left as it is; as in [`camel`], only ASCII letters
/// change case.
pub fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let boundary = match prev {
            Some(p) if p != '_' => {
                c.is_ascii_uppercase() || (c.is_ascii_digit() && !p.is_ascii_digit())
            }
            _ => false,
        };
        if boundary {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
        prev = Some(c);
    }
    out
}

/// A configuration error as JavaScript spells the config: the field path and every name in
/// backticks in the message camelCase (`retry.max_attempts` → `retry.maxAttempts`).
pub fn camel_config_error(error: Error) -> Error {
    match error {
        Error::Config { field, message } => Error::Config {
            field: field.as_deref().map(|path| {
                let mut out = String::with_capacity(path.len());
                push_dotted(&mut out, path);
                out
            }),
            message: {
                let mut out = String::with_capacity(message.len());
                for (i, part) in message.split('`').enumerate() {
                    if i > 0 {
                        out.push('`');
                    }
                    if i % 2 == 1 {
                        push_dotted(&mut out, part);
                    } else {
                        out.push_str(part);
                    }
                }
                out
            },
        },
        other => other,
    }
}

/// `path`'s dot-separated names, each [`camel`], onto `out` (written into one string rather
/// than collected and joined: no copy of `Vec`'s collecting and `join`'s code for it).
fn push_dotted(out: &mut String, path: &str) {
    for (i, name) in path.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&camel(name));
    }
}

/// Every object key in `value`, at any depth, renamed by `rename`.
fn rename_keys(value: Value, rename: &dyn Fn(&str) -> String) -> Value {
    match value {
        // Inserted one by one, not collected: `Map`'s `FromIterator` is `BTreeMap`'s, which
        // sorts its input (a stable sort, ≈ 3.7 KB of the browser module) and builds the tree
        // in bulk (≈ 1.5 KB more), where `insert` is the code serde_json's parser already has.
        // The result is the same map: keys sorted either way, a repeated key keeps its last value.
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(rename(&k), rename_keys(v, rename));
            }
            Value::Object(out)
        }
        Value::Array(mut items) => {
            for item in &mut items {
                *item = rename_keys(core::mem::take(item), rename);
            }
            Value::Array(items)
        }
        other => other,
    }
}

/// The JS boundary's spelling of an engine value: every key camelCase (values, such as event
/// names and `why`s, stay as the core names them).
pub fn camel_keys(value: Value) -> Value {
    rename_keys(value, &camel)
}

/// The core's spelling of a JS config: every key snake_case, so `{retry: {maxAttempts: 3}}` and
/// `{retry: {max_attempts: 3}}` both read.
pub fn snake_keys(value: Value) -> Value {
    rename_keys(value, &snake)
}

/// Whether an event's serde form carries a `why` (`CallFailed` and `CallFellBack` carry their
/// failure's): those events get an `explain`. The `why` itself is [`EventKind::why`], so no
/// `Why` is read back from JSON.
fn carries_why(value: &Value) -> bool {
    value.get("why").is_some() || value.get("failure").is_some_and(|f| f.get("why").is_some())
}

/// An event as the JS API hands it out, as JSON: the engine's serde form (a failure's
/// `retry_at` is `retry_at_ms` there, like every other time in events) with camelCase keys,
/// plus `explain`, the one-line reason of its `why`. The browser builds the same object
/// without JSON in between.
pub fn event_json(event: &Event) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let (true, Some(why)) = (carries_why(&value), event.kind.why()) {
        if let Value::Object(map) = &mut value {
            map.insert("explain".into(), Value::String(why.explain().into()));
        }
    }
    camel_keys(value)
}

pub use resile_core::IdempotencyKey;

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn instant_ms(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e6
}

/// One host's breaker, limiter, budget and hold, with times in milliseconds on the same clock as
/// events' `atMs` (`performance.now()`): JavaScript's `HostState` (keys camelCase there).
#[derive(Debug, Serialize)]
pub struct HostState<'a> {
    host: &'a str,
    breaker: &'static str,
    open_until_ms: Option<f64>,
    consecutive_failures: u32,
    budget_available: f64,
    limiter_next_free_ms: Option<f64>,
    held_until_ms: Option<f64>,
    active_calls: u32,
    in_flight: u32,
    breaker_hold: Option<HoldKind>,
    adaptive_rate: Option<AdaptiveRateView>,
    concurrency_limit: Option<u32>,
    retry_quota: Option<u32>,
    retry_throttle_tokens: Option<f64>,
    now_ms: f64,
}

/// The [`HostState`] of `view` at `now`.
pub fn host_state(view: &HostView, now: Instant) -> HostState<'_> {
    let (breaker, open_until) = match view.breaker {
        BreakerState::Closed => ("closed", None),
        BreakerState::Open { until } => ("open", Some(instant_ms(until))),
        BreakerState::HalfOpen => ("half_open", None),
        #[allow(unreachable_patterns)]
        _ => ("unknown", None),
    };
    HostState {
        host: &view.host,
        breaker,
        open_until_ms: open_until,
        consecutive_failures: view.consecutive_failures,
        budget_available: view.budget_available,
        limiter_next_free_ms: view.limiter_next_free.map(instant_ms),
        held_until_ms: view.held_until.map(instant_ms),
        active_calls: view.active_calls,
        in_flight: view.in_flight,
        breaker_hold: view.breaker_hold,
        adaptive_rate: view.adaptive_rate,
        concurrency_limit: view.concurrency_limit,
        retry_quota: view.retry_quota,
        retry_throttle_tokens: view.retry_throttle_milli.map(|t| t as f64 / 1e3),
        now_ms: instant_ms(now),
    }
}

/// The token's state, times in milliseconds like [`HostState`]: JavaScript's `TokenState`.
#[derive(Debug, Serialize)]
pub struct TokenState {
    generation: u32,
    valid: bool,
    fetching: bool,
    expires_at_ms: Option<f64>,
    expires_in_ms: Option<f64>,
    now_ms: f64,
    last_error: Option<String>,
}

/// The [`TokenState`] of `view` at `now`, with the token source's last failure.
pub fn token_state(view: &TokenView, now: Instant, last_error: Option<String>) -> TokenState {
    TokenState {
        generation: view.generation,
        valid: view.valid,
        fetching: view.fetching,
        expires_at_ms: view.expires_at.map(instant_ms),
        expires_in_ms: view.expires_at.map(|at| ms(at - now)),
        now_ms: instant_ms(now),
        last_error,
    }
}

/// A token lifetime given in seconds (OAuth2 `expires_in`); nonsense means "unknown".
pub fn expires_in(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// A non-negative number of milliseconds from JavaScript as a `Duration`; one too large for a
/// `Duration` (`1e300`) is the longest there is, not a panic (`Duration::from_secs_f64` panics
/// there, and its panic message is the only user of `core`'s float-to-Duration error text).
pub fn duration_ms(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    // On wasm32 the same tests run under wasm-bindgen-test-runner (in Node).
    use resile_core::{CallSpec, Config, Engine, Why};
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn codes_are_stable() {
        let table = [
            (FailureKind::Timeout, "timeout"),
            (FailureKind::Unavailable, "unavailable"),
            (FailureKind::RetriesExhausted, "retries_exhausted"),
            (FailureKind::NotRetried, "not_retried"),
            (FailureKind::Auth, "auth"),
            (FailureKind::Cancelled, "cancelled"),
            (FailureKind::RateLimited, "rate_limited"),
        ];
        for (kind, code) in table {
            assert_eq!(failure_code(kind), code);
        }
    }

    #[test]
    fn events_carry_their_explanation_in_camel_case() {
        let mut engine = Engine::new(Config::default(), 1, Instant::ZERO).unwrap();
        let _ = engine.start(CallSpec::get("http://a.test"), Instant::ZERO);
        let mut saw_started = false;
        while let Some(e) = engine.poll_event() {
            let v = event_json(&e);
            assert!(v.get("atMs").is_some() && v.get("at_ms").is_none(), "{v}");
            if matches!(e.kind, resile_core::engine::EventKind::CallStarted { .. }) {
                saw_started = true;
                assert_eq!(v["event"], "call_started", "names stay the core's");
                assert!(v.get("explain").is_none());
            }
        }
        assert!(saw_started);
        let failed = json!({"event": "call_failed", "failure": {"why": "max_attempts"}});
        assert!(carries_why(&failed));
        assert!(!carries_why(&json!({"event": "call_started", "call": 1})));
    }

    #[test]
    fn names_convert_both_ways() {
        let table = [
            ("max_attempts", "maxAttempts"),
            ("attempt_timeout_ms", "attemptTimeoutMs"),
            ("refresh_on_401", "refreshOn401"),
            ("at_ms", "atMs"),
            ("seed", "seed"),
        ];
        for (snake_name, camel_name) in table {
            assert_eq!(camel(snake_name), camel_name);
            assert_eq!(snake(camel_name), snake_name);
            assert_eq!(
                snake(snake_name),
                snake_name,
                "snake_case is accepted as is"
            );
        }
        // Only ASCII letters change case: a name outside ASCII reads (and is reported) as written.
        assert_eq!(snake("größeLimit"), "größe_limit");
        assert_eq!(camel("größe_älter"), "größeälter");
        let config = json!({"retry": {"maxAttempts": 3, "retryStatuses": [503]}, "token": {"refreshOn401": false}});
        let parsed = Config::from_json(&snake_keys(config).to_string()).unwrap();
        assert_eq!(parsed.retry.max_attempts, 3);
        assert_eq!(parsed.retry.retry_statuses, [503]);
        assert!(!parsed.token.refresh_on_401);
    }

    #[test]
    fn config_errors_speak_camel_case() {
        let e: Error = Config::from_json(r#"{"retry":{"max_attempts":0}}"#)
            .unwrap_err()
            .into();
        let e = camel_config_error(e);
        assert!(
            matches!(&e, Error::Config { field: Some(f), .. } if f == "retry.maxAttempts"),
            "{e:?}"
        );
        assert!(e.to_string().contains("`retry.maxAttempts`"), "{e}");
        // A preset that is not a name is shown as its compact JSON.
        let preset = Config::from_value(json!({"preset": {"name": "aws-standard"}})).unwrap_err();
        assert!(
            preset
                .to_string()
                .contains(r#"is {"name":"aws-standard"}, but"#),
            "{preset}"
        );
        let unknown: Error = Config::from_json(r#"{"retries":3}"#).unwrap_err().into();
        let text = camel_config_error(unknown).to_string();
        assert!(
            text.contains("`retries`") && text.contains("`learnLimits`"),
            "{text}"
        );
    }

    #[test]
    fn error_fields_come_from_the_error() {
        let f = resile_core::Failure::new(
            Why::MaxAttempts,
            3,
            Some(Last::Status(503)),
            resile_core::Processed::Maybe,
        )
        .retry_at(Some(Instant::from_millis(1500)));
        let e = Error::Failed {
            failure: f,
            request: "GET http://h/x".into(),
            detail: None,
        };
        let v =
            camel_keys(serde_json::to_value(error_fields(&e, Instant::from_millis(500))).unwrap());
        assert_eq!(v["status"], 503);
        assert_eq!(v["retryable"], e.is_retryable());
        assert_eq!(v["maybeProcessed"], e.maybe_processed());
        assert_eq!(v["retryAfterMs"], 1000.0);
        assert_eq!(v["why"], "max_attempts");
        assert_eq!(v["attempts"], 3);
    }

    #[test]
    fn idempotency_key_option() {
        assert_eq!(IdempotencyKey::parse(None), IdempotencyKey::Auto);
        assert_eq!(
            IdempotencyKey::parse(Some("off")).idempotency(),
            resile_core::Idempotency::Off
        );
        assert_eq!(
            IdempotencyKey::parse(Some("k-1")),
            IdempotencyKey::Explicit("k-1".into())
        );
        assert_eq!(
            IdempotencyKey::parse(Some("k-1")).idempotency(),
            resile_core::Idempotency::Provided
        );
    }

    #[test]
    fn lifetimes() {
        assert_eq!(expires_in(Some(1.5)), Some(Duration::from_millis(1500)));
        assert_eq!(expires_in(Some(-1.0)), None);
        assert_eq!(expires_in(Some(f64::NAN)), None);
        assert_eq!(expires_in(None), None);
    }

    #[test]
    fn milliseconds_saturate_instead_of_panicking() {
        assert_eq!(duration_ms(0.0), Duration::ZERO);
        assert_eq!(duration_ms(1500.0), Duration::from_millis(1500));
        assert_eq!(duration_ms(0.5), Duration::from_micros(500));
        assert_eq!(duration_ms(1e300), Duration::MAX);
        assert_eq!(duration_ms(f64::MAX), Duration::MAX);
    }
}
