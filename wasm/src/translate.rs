//! Pure translations between the engine's values and what JavaScript sees.
//!
//! Nothing here touches JavaScript, so it compiles and is tested on every target. The wasm
//! side turns the `serde_json::Value`s into JS objects with `JSON.parse`.

use core::time::Duration;

use resile_core::breaker::BreakerState;
use resile_core::engine::{EventKind, HostView};
use resile_core::token::TokenView;
use resile_core::{Event, Failure, FailureKind, Idempotency, Instant, Last, Processed, Why};
use serde_json::{json, Map, Value};

/// Option and config keys the JS API adds on top of the core's serde `Config`.
pub const CLIENT_ONLY_KEYS: [&str; 4] = ["baseUrl", "headers", "seed", "tokenProvider"];

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
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// How the last attempt of a call ended, as short text: `status 503`, `transport timeout`.
pub fn last_text(last: &Last) -> String {
    match last {
        Last::Status(s) => format!("status {s}"),
        Last::Transport(e) => format!("transport {}", serde_name(e)),
    }
}

/// A one-line message for a failed call, e.g. `GET http://h/x failed after 3 attempts (last:
/// status 503): the call used all of its attempts`.
pub fn failure_message(method: &str, url: &str, failure: &Failure) -> String {
    let last = failure
        .last
        .as_ref()
        .map(|l| format!(", last: {}", last_text(l)))
        .unwrap_or_default();
    let plural = if failure.attempts == 1 { "" } else { "s" };
    format!(
        "{method} {url} failed after {} attempt{plural}{last}: {}",
        failure.attempts,
        failure.why.explain()
    )
}

/// The extra fields of a `ResileError` for a failed call (besides `name`, `code`, `message`).
pub fn failure_fields(failure: &Failure, now: Instant) -> Value {
    let mut fields = json!({
        "retryable": failure.is_retryable(),
        "maybeProcessed": failure.processed != Processed::Never,
        "why": serde_name(&failure.why),
        "explain": failure.why.explain(),
        "attempts": failure.attempts,
    });
    if let Some(last) = &failure.last {
        match last {
            Last::Status(s) => fields["status"] = json!(s),
            Last::Transport(e) => fields["transport"] = json!(serde_name(e)),
        }
    }
    if let Some(at) = failure.retry_at {
        fields["retryAfterMs"] = json!(ms(at - now));
    }
    fields
}

/// The `why` an event carries, if any (`CallFailed` carries its failure's).
pub fn event_why(value: &Value) -> Option<Why> {
    let why = value
        .get("why")
        .or_else(|| value.get("failure").and_then(|f| f.get("why")))?;
    serde_json::from_value(why.clone()).ok()
}

/// An event as the JS API hands it out: the engine's serde form plus `explain`, the one-line
/// reason of its `why`, with a failure's `retry_at` (an instant) as `retry_at_ms` like every
/// other time in events.
pub fn event_json(event: &Event) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let EventKind::CallFailed { failure, .. } = &event.kind {
        if let Some(Value::Object(f)) = value.get_mut("failure") {
            f.remove("retry_at");
            f.insert(
                "retry_at_ms".into(),
                json!(failure.retry_at.map(instant_ms)),
            );
        }
    }
    if let Some(why) = event_why(&value) {
        if let Value::Object(map) = &mut value {
            map.insert("explain".into(), Value::String(why.explain().into()));
        }
    }
    value
}

/// The `idempotencyKey` request option: `"auto"` (default), `"off"`, or the caller's own key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOption {
    /// The engine generates a key for POST and PATCH.
    Auto,
    /// No key.
    Off,
    /// The caller's key, sent on every attempt.
    Own(String),
}

impl KeyOption {
    /// Reads the option; `None` means the default.
    pub fn parse(value: Option<&str>) -> KeyOption {
        match value {
            None | Some("auto") => KeyOption::Auto,
            Some("off") => KeyOption::Off,
            Some(own) => KeyOption::Own(own.to_string()),
        }
    }

    /// What the engine is told.
    pub fn idempotency(&self) -> Idempotency {
        match self {
            KeyOption::Auto => Idempotency::Auto,
            KeyOption::Off => Idempotency::Off,
            KeyOption::Own(_) => Idempotency::Provided,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn instant_ms(t: Instant) -> f64 {
    t.as_nanos() as f64 / 1e6
}

/// One host's breaker, limiter, budget and hold, with times in milliseconds on the same clock as
/// events' `at_ms` (`performance.now()`).
pub fn host_json(view: &HostView, now: Instant) -> Value {
    let (breaker, open_until) = match view.breaker {
        BreakerState::Closed => ("closed", None),
        BreakerState::Open { until } => ("open", Some(instant_ms(until))),
        BreakerState::HalfOpen => ("half_open", None),
        #[allow(unreachable_patterns)]
        _ => ("unknown", None),
    };
    let mut m = Map::new();
    m.insert("host".into(), json!(&*view.host));
    m.insert("breaker".into(), json!(breaker));
    m.insert("open_until_ms".into(), json!(open_until));
    m.insert(
        "consecutive_failures".into(),
        json!(view.consecutive_failures),
    );
    m.insert("budget_available".into(), json!(view.budget_available));
    m.insert(
        "limiter_next_free_ms".into(),
        json!(view.limiter_next_free.map(instant_ms)),
    );
    m.insert(
        "held_until_ms".into(),
        json!(view.held_until.map(instant_ms)),
    );
    m.insert("active_calls".into(), json!(view.active_calls));
    m.insert("now_ms".into(), json!(instant_ms(now)));
    Value::Object(m)
}

/// The token's state, times in milliseconds like [`host_json`].
pub fn token_json(view: &TokenView, now: Instant) -> Value {
    json!({
        "generation": view.generation,
        "valid": view.valid,
        "fetching": view.fetching,
        "expires_at_ms": view.expires_at.map(instant_ms),
        "expires_in_ms": view.expires_at.map(|at| ms(at - now)),
        "now_ms": instant_ms(now),
    })
}

/// A token lifetime given in seconds (OAuth2 `expires_in`); nonsense means "unknown".
pub fn expires_in(seconds: Option<f64>) -> Option<Duration> {
    seconds
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    // On wasm32 the same tests run under wasm-bindgen-test-runner (in Node).
    use resile_core::{CallSpec, Config, Engine};
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
    fn events_carry_their_explanation() {
        let mut engine = Engine::new(Config::default(), 1, Instant::ZERO).unwrap();
        let _ = engine.start(CallSpec::get("http://a.test"), Instant::ZERO);
        let mut saw_started = false;
        while let Some(e) = engine.poll_event() {
            let v = event_json(&e);
            if matches!(e.kind, EventKind::CallStarted { .. }) {
                saw_started = true;
                assert_eq!(v["event"], "call_started");
                assert!(v.get("explain").is_none());
            }
        }
        assert!(saw_started);
        let failed = json!({"event": "call_failed", "failure": {"why": "max_attempts"}});
        assert_eq!(event_why(&failed), Some(Why::MaxAttempts));
    }

    #[test]
    fn failure_message_and_fields() {
        let f = Failure::new(
            Why::MaxAttempts,
            3,
            Some(Last::Status(503)),
            Processed::Maybe,
        )
        .retry_at(Some(Instant::from_millis(1500)));
        let msg = failure_message("GET", "http://h/x", &f);
        assert_eq!(msg, "GET http://h/x failed after 3 attempts, last: status 503: the call used all of its attempts");
        let v = failure_fields(&f, Instant::from_millis(500));
        assert_eq!(v["status"], 503);
        assert_eq!(v["retryable"], true);
        assert_eq!(v["maybeProcessed"], true);
        assert_eq!(v["retryAfterMs"], 1000.0);
        assert_eq!(v["why"], "max_attempts");
    }

    #[test]
    fn key_option() {
        assert_eq!(KeyOption::parse(None), KeyOption::Auto);
        assert_eq!(
            KeyOption::parse(Some("off")).idempotency(),
            Idempotency::Off
        );
        assert_eq!(KeyOption::parse(Some("k-1")), KeyOption::Own("k-1".into()));
        assert_eq!(
            KeyOption::parse(Some("k-1")).idempotency(),
            Idempotency::Provided
        );
    }

    #[test]
    fn lifetimes() {
        assert_eq!(expires_in(Some(1.5)), Some(Duration::from_millis(1500)));
        assert_eq!(expires_in(Some(-1.0)), None);
        assert_eq!(expires_in(Some(f64::NAN)), None);
        assert_eq!(expires_in(None), None);
    }
}
