//! Reading a [`Config`] from a parsed JSON document: one table per config struct (field name →
//! setter) and one loop that walks any of them, instead of serde's derived `Deserialize`, which
//! is a map visitor, a sequence visitor and a field-name visitor per struct, each with its own
//! copy of serde_json's value deserializer (68 KB of the browser module's code before this
//! reader, 7.6 KB with it).
//!
//! It accepts what the derive accepts and fails with the derive's messages (`unknown field`,
//! `invalid type`, `missing field`, `unknown variant`), word for word: every error is built by
//! serde's own `serde::de::Error` constructors (into the reader's [`Error`], which keeps the
//! text), or (`invalid type`, `invalid value`) in serde_json's words. With the crate's
//! `deserialize` feature (the native client's typed configs need it) the derive exists too,
//! and the tests hold the two to the same answers. Validation is not done here:
//! [`Config::from_value`] validates.

use core::fmt;

use serde::de::Error as _;
use serde_json::{Map, Value};

use super::{
    AdaptiveConcurrency, AdaptiveRateConfig, AimdConfig, AwsRetryConfig, BackoffConfig,
    BreakerConfig, BudgetConfig, ConcurrencyConfig, Config, FleetConfig, Gradient2Config,
    HedgeConfig, Jitter, LimitConfig, PoolConfig, RequestIds, RetryConfig, TokenConfig,
};
use crate::aws_backoff::CapOrder;
use crate::breaker::{BreakerSnapshot, HostBreaker, SnapshotState};
use crate::preset::Preset;
use crate::quota::QuotaConfig;
use crate::slots::At;
use crate::throttle::ThrottleConfig;

/// A reading error: the message, as serde's constructors (`missing_field`, `unknown_field`, …)
/// or [`invalid_type`] and [`invalid_value`] wrote it. Not `serde_json::Error`: its `custom`
/// searches every message for a trailing " at line L column C" to keep apart (a substring
/// search that only this reader needed in the browser build, ≈ 4 KB), and a message of the
/// reader's never ends so; both print the same text.
#[derive(Debug)]
pub(crate) struct Error(String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl serde::de::Error for Error {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Error(message.to_string())
    }
}

/// The engine's config from a document, without validation and without applying a `preset`.
pub(crate) fn config(value: &Value) -> Result<Config, Error> {
    Config::read(value)
}

/// `value` laid over `base` (a preset's config), without validation: what reading `base`'s
/// serde form merged with `value` (objects key by key, anything else replaced) gives, without
/// that form. A struct written as an object keeps the fields it does not name; anything else
/// is read as it would be alone.
pub(crate) fn onto(mut base: Config, value: &Value) -> Result<Config, Error> {
    base.read_onto(value)?;
    Ok(base)
}

/// Serde's entry for a `Config` inside another document (a scenario's `config`): the value as
/// written, then this reader.
pub(crate) fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Config, D::Error> {
    let value = <Value as serde::Deserialize>::deserialize(d)?;
    config(&value).map_err(D::Error::custom)
}

/// A value that can be read from a JSON document.
trait Read: Sized {
    fn read(value: &Value) -> Result<Self, Error>;

    /// `value` laid over `self` (see [`onto`]); anything but a struct is replaced. Every
    /// field is set this way, also when a struct is read afresh: its fields then lie over the
    /// values the struct starts from, which are their types' defaults (a struct with fields
    /// that must be written, `limit` or `retry_throttling`, is an `Option` that starts as
    /// `None`, so it is read afresh, with its check).
    fn read_onto(&mut self, value: &Value) -> Result<(), Error> {
        *self = Self::read(value)?;
        Ok(())
    }
}

/// What serde_json calls the value in an `invalid type` message: its `Error::invalid_type`
/// writes `serde::de::Unexpected` with these words (a float through zmij, as here). The message
/// is built here rather than by that constructor because serde's `Unexpected` can also print a
/// float with `f64`'s `Display`, and that one reference keeps `core`'s float formatting (21 KB)
/// in the browser module.
fn unexpected(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => format!("integer `{u}`"),
            (None, Some(i)) => format!("integer `{i}`"),
            (None, None) => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                format!("floating point `{}`", zmij::Buffer::new().format(f))
            }
        },
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "sequence".to_owned(),
        Value::Object(_) => "map".to_owned(),
    }
}

fn invalid_type(value: &Value, expected: &str) -> Error {
    Error::custom(format_args!(
        "invalid type: {}, expected {expected}",
        unexpected(value)
    ))
}

/// serde_json's `invalid value` message (`what` in [`unexpected`]'s words).
fn invalid_value(what: fmt::Arguments<'_>, expected: &str) -> Error {
    Error::custom(format_args!("invalid value: {what}, expected {expected}"))
}

/// An unsigned integer of at most `max`, as serde's primitive visitors read one.
fn unsigned(value: &Value, max: u64, expected: &'static str) -> Result<u64, Error> {
    let Value::Number(n) = value else {
        return Err(invalid_type(value, expected));
    };
    match (n.as_u64(), n.as_i64()) {
        (Some(u), _) if u <= max => Ok(u),
        (Some(u), _) => Err(invalid_value(format_args!("integer `{u}`"), expected)),
        (None, Some(i)) => Err(invalid_value(format_args!("integer `{i}`"), expected)),
        (None, None) => Err(invalid_type(value, expected)),
    }
}

impl Read for u16 {
    fn read(value: &Value) -> Result<Self, Error> {
        unsigned(value, u16::MAX.into(), "u16").map(|u| u as u16)
    }
}

impl Read for u32 {
    fn read(value: &Value) -> Result<Self, Error> {
        unsigned(value, u32::MAX.into(), "u32").map(|u| u as u32)
    }
}

impl Read for u64 {
    fn read(value: &Value) -> Result<Self, Error> {
        unsigned(value, u64::MAX, "u64")
    }
}

impl Read for f64 {
    fn read(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Number(n) => Ok(n.as_f64().unwrap_or(f64::NAN)),
            other => Err(invalid_type(other, "f64")),
        }
    }
}

impl Read for bool {
    fn read(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Bool(b) => Ok(*b),
            other => Err(invalid_type(other, "a boolean")),
        }
    }
}

impl Read for String {
    fn read(value: &Value) -> Result<Self, Error> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(invalid_type(other, "a string")),
        }
    }
}

impl<T: Read> Read for Option<T> {
    fn read(value: &Value) -> Result<Self, Error> {
        match value {
            Value::Null => Ok(None),
            some => T::read(some).map(Some),
        }
    }

    fn read_onto(&mut self, value: &Value) -> Result<(), Error> {
        match (self, value) {
            (Some(inner), Value::Object(_)) => inner.read_onto(value),
            (slot, value) => {
                *slot = Self::read(value)?;
                Ok(())
            }
        }
    }
}

impl<T: Read> Read for Vec<T> {
    fn read(value: &Value) -> Result<Self, Error> {
        match value {
            // A loop, not `collect()` into a `Result<Vec<_>>`: that is an iterator adapter and
            // a `from_iter` per element type (≈ 1 KB each in the browser build).
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(T::read(item)?);
                }
                Ok(out)
            }
            other => Err(invalid_type(other, "a sequence")),
        }
    }
}

/// The index of a unit variant named in `value`: `"full"`, or serde's map form `{"full": null}`.
fn unit_variant(value: &Value, variants: &'static [&'static str]) -> Result<usize, Error> {
    let (name, payload) = match value {
        Value::String(name) => (name, None),
        Value::Object(map) => match (map.len(), map.iter().next()) {
            (1, Some((name, payload))) => (name, Some(payload)),
            _ => return Err(invalid_value(format_args!("map"), "map with a single key")),
        },
        other => return Err(invalid_type(other, "string or map")),
    };
    let index = variants
        .iter()
        .position(|v| v == name)
        .ok_or_else(|| Error::unknown_variant(name, variants))?;
    match payload {
        None | Some(Value::Null) => Ok(index),
        Some(other) => Err(invalid_type(other, "unit")),
    }
}

/// `Read` for an enum of unit variants, by their serde names.
macro_rules! unit_enum {
    ($T:ident { $($name:literal => $variant:ident),+ $(,)? }) => {
        impl Read for $T {
            fn read(value: &Value) -> Result<Self, Error> {
                const VARIANTS: &[&str] = &[$($name),+];
                const VALUES: &[$T] = &[$($T::$variant),+];
                unit_variant(value, VARIANTS).map(|i| *VALUES.at(i))
            }
        }
    };
}

unit_enum!(Jitter { "none" => None, "full" => Full, "equal" => Equal, "decorrelated" => Decorrelated });
unit_enum!(RequestIds { "generate" => Generate, "off" => Off });
unit_enum!(CapOrder { "after_jitter" => AfterJitter, "before_jitter" => BeforeJitter });
unit_enum!(Preset {
    "aws-standard" => AwsStandard,
    "aws-adaptive" => AwsAdaptive,
    "aws-2.1" => Aws21,
    "grpc-a6" => GrpcA6,
    "dotnet-standard" => DotnetStandard,
});

/// Sets one field of `T` from its value, laid over the one it has ([`Read::read_onto`]).
type Setter<T> = fn(&mut T, &Value) -> Result<(), Error>;

/// Sets field `i` of the struct being read.
type SetField<'a> = dyn FnMut(usize, &Value) -> Result<(), Error> + 'a;

/// A config struct's fields as the reader walks them: in declaration order (serde's order,
/// which is also the order of the sequence form), with the ones that have no default. Not
/// generic, so the walk exists once for every struct.
struct Fields {
    /// `struct RetryConfig`, as serde's messages name it.
    expecting: &'static str,
    names: &'static [&'static str],
    /// Bit `i` set: field `i` has no default and must be written.
    required: u64,
}

/// How the sequence form of a struct says it has too many elements: serde_json's reader of a
/// `Value` array and serde's reader of buffered content word it differently.
#[derive(Clone, Copy)]
enum SeqEnd {
    Array,
    Content,
}

impl Fields {
    fn read(&self, value: &Value, set: &mut SetField<'_>) -> Result<(), Error> {
        match value {
            Value::Object(map) => self.read_map(map, None, set),
            Value::Array(items) => self.read_seq(items, SeqEnd::Array, set),
            other => Err(invalid_type(other, self.expecting)),
        }
    }

    /// The fields written in `map`, every key but `skip` (an internal tag).
    fn read_map(
        &self,
        map: &Map<String, Value>,
        skip: Option<&str>,
        set: &mut SetField<'_>,
    ) -> Result<(), Error> {
        let seen = self.set_map(map, skip, set)?;
        match self.missing(seen) {
            Some(i) => Err(Error::missing_field(self.names.at(i))),
            None => Ok(()),
        }
    }

    /// Sets the fields written in `map` but `skip`; returns which (bit `i`: field `i`).
    fn set_map(
        &self,
        map: &Map<String, Value>,
        skip: Option<&str>,
        set: &mut SetField<'_>,
    ) -> Result<u64, Error> {
        let mut seen = 0u64;
        for (key, value) in map.iter().filter(|(k, _)| Some(k.as_str()) != skip) {
            let i = self
                .names
                .iter()
                .position(|n| n == key)
                .ok_or_else(|| Error::unknown_field(key, self.names))?;
            set(i, value)?;
            seen |= 1 << i;
        }
        Ok(seen)
    }

    /// serde's sequence form: the fields in declaration order.
    fn read_seq(&self, items: &[Value], end: SeqEnd, set: &mut SetField<'_>) -> Result<(), Error> {
        let fields = self.names.len();
        let mut seen = 0u64;
        for (i, item) in items.iter().take(fields).enumerate() {
            set(i, item)?;
            seen |= 1 << i;
        }
        let s = if fields == 1 { "" } else { "s" };
        if let Some(i) = self.missing(seen) {
            let expected = format!("{} with {fields} element{s}", self.expecting);
            return Err(Error::invalid_length(i, &expected.as_str()));
        }
        if items.len() > fields {
            return Err(match end {
                SeqEnd::Array => Error::invalid_length(items.len(), &"fewer elements in array"),
                SeqEnd::Content => {
                    let expected = format!("{fields} element{s} in sequence");
                    Error::invalid_length(items.len(), &expected.as_str())
                }
            });
        }
        Ok(())
    }

    /// The first required field not written.
    fn missing(&self, seen: u64) -> Option<usize> {
        (0..self.names.len()).find(|i| self.required & !seen & (1 << i) != 0)
    }
}

/// A config struct as the reader sees it: its [`Fields`], a setter for each, and the value
/// every field not written keeps.
struct Shape<T: 'static> {
    fields: Fields,
    setters: &'static [Setter<T>],
    start: fn() -> T,
}

/// A config struct's [`Shape`].
trait Shaped: Sized + 'static {
    fn shape() -> &'static Shape<Self>;
}

/// A config struct being read, its type erased, so that the reading itself ([`fill`],
/// [`lay_over`]) exists once for every struct: what is left per struct is its start value,
/// its setters' table and the move of the result.
trait Target {
    fn fields(&self) -> &'static Fields;
    fn set(&mut self, i: usize, value: &Value) -> Result<(), Error>;
    /// Back to the value every field not written keeps (reading afresh).
    fn restart(&mut self);
}

impl<T: Shaped> Target for T {
    fn fields(&self) -> &'static Fields {
        &T::shape().fields
    }

    fn set(&mut self, i: usize, value: &Value) -> Result<(), Error> {
        (T::shape().setters.at(i))(self, value)
    }

    fn restart(&mut self) {
        *self = (T::shape().start)();
    }
}

/// What a struct is read from: a whole value, or what is left of an internally tagged one.
#[derive(Clone, Copy)]
enum Source<'a> {
    Value(&'a Value),
    Rest(Rest<'a>, &'a str),
}

/// A `T` read from `source`, its fields set over its start value.
fn fresh<T: Shaped>(source: Source<'_>) -> Result<T, Error> {
    let mut out = (T::shape().start)();
    fill(&mut out, source)?;
    Ok(out)
}

/// Sets the fields `source` writes on `target`, checking that the required ones are there.
fn fill(target: &mut dyn Target, source: Source<'_>) -> Result<(), Error> {
    let fields = target.fields();
    let set = &mut |i: usize, v: &Value| target.set(i, v);
    match source {
        Source::Value(value) => fields.read(value, set),
        Source::Rest(Rest::Map(map), tag) => fields.read_map(map, Some(tag), set),
        Source::Rest(Rest::Seq(items), _) => fields.read_seq(items, SeqEnd::Content, set),
    }
}

/// [`Read::read_onto`] for a struct: an object sets the fields it names over the ones `target`
/// has (which are all there, so none is missing); anything else is read afresh. On an error
/// `target` may be left partly read: every caller then drops it (the whole read fails).
fn lay_over(target: &mut dyn Target, value: &Value) -> Result<(), Error> {
    if let Value::Object(map) = value {
        let fields = target.fields();
        return fields
            .set_map(map, None, &mut |i, v| target.set(i, v))
            .map(|_| ());
    }
    target.restart();
    fill(target, Source::Value(value))
}

impl<T: Shaped> Read for T {
    fn read(value: &Value) -> Result<Self, Error> {
        fresh(Source::Value(value))
    }

    fn read_onto(&mut self, value: &Value) -> Result<(), Error> {
        lay_over(self, value)
    }
}

/// [`Shaped`] for a config struct, listing its fields in declaration order.
macro_rules! shape {
    ($T:ident, start: $start:expr, required: $required:expr, [$($field:ident),+ $(,)?]) => {
        impl Shaped for $T {
            fn shape() -> &'static Shape<$T> {
                static SHAPE: Shape<$T> = Shape {
                    fields: Fields {
                        expecting: concat!("struct ", stringify!($T)),
                        names: &[$(stringify!($field)),+],
                        required: $required,
                    },
                    setters: &[$(|c: &mut $T, v: &Value| c.$field.read_onto(v)),+],
                    start: $start,
                };
                &SHAPE
            }
        }
    };
    ($T:ident, [$($field:ident),+ $(,)?]) => {
        shape!($T, start: $T::default, required: 0, [$($field),+]);
    };
}

shape!(
    Config,
    [
        preset,
        retry,
        backoff,
        budget,
        breaker,
        limit,
        learn_limits,
        token,
        max_hosts,
        max_queued_events,
        concurrency,
        pool,
        adaptive_rate,
        hedge,
        fleet,
        request_id,
        aws,
        retry_throttling,
    ]
);
shape!(
    RetryConfig,
    [
        max_attempts,
        attempt_timeout_ms,
        deadline_ms,
        retry_statuses,
        respect_retry_after,
        max_retry_after_ms,
        hold_spread,
    ]
);
shape!(BackoffConfig, [base_ms, factor, cap_ms, jitter]);
shape!(
    BudgetConfig,
    [enabled, ratio, reserve, max_saved, window_ms]
);
shape!(
    BreakerConfig,
    [
        enabled,
        consecutive_failures,
        failure_rate,
        window_ms,
        min_calls,
        open_ms,
        open_growth,
        max_open_ms,
        half_open_probes,
    ]
);
shape!(
    LimitConfig,
    start: || LimitConfig { per_second: 0.0, burst: super::one() },
    required: 0b01,
    [per_second, burst]
);
shape!(
    TokenConfig,
    [
        refresh_skew_ms,
        refresh_on_401,
        fetch_backoff_ms,
        max_fetch_backoff_ms
    ]
);
shape!(
    ConcurrencyConfig,
    [
        max_in_flight,
        max_in_flight_per_host,
        max_queue_ms,
        adaptive
    ]
);
shape!(PoolConfig, [recycle_after_failures]);
shape!(AdaptiveRateConfig, [enabled]);
shape!(
    AimdConfig,
    [
        initial_limit,
        min_limit,
        max_limit,
        backoff_ratio,
        timeout_ms
    ]
);
shape!(
    Gradient2Config,
    [
        initial_limit,
        min_limit,
        max_limit,
        smoothing,
        queue_size,
        long_window,
        rtt_tolerance,
        min_window_ms,
        max_window_ms,
        window_size,
    ]
);
shape!(
    HedgeConfig,
    [
        enabled,
        delay_ms,
        percentile,
        min_samples,
        min_delay_ms,
        max_delay_ms,
        max_hedges,
    ]
);
shape!(
    FleetConfig,
    [name, size, answer_within_ms, recheck_ms, share_breaker]
);
shape!(
    AwsRetryConfig,
    [
        quota,
        throttling_base_ms,
        cap,
        retry_after_slack_ms,
        long_polling
    ]
);
shape!(
    QuotaConfig,
    [
        capacity,
        retry_cost,
        timeout_cost,
        throttling_cost,
        success_increment
    ]
);
shape!(
    ThrottleConfig,
    start: || ThrottleConfig { max_tokens: 0, token_ratio: 0.0 },
    required: 0b11,
    [max_tokens, token_ratio]
);

/// A breaker snapshot ([`BreakerSnapshot::from_value`]) by the same walk as a config: serde's
/// derive over a `Value` would be the only typed read from a `Value` left in the browser
/// module (its visitors, serde_json's value deserializer, and through serde's `Unexpected`
/// `core`'s float formatting: ≈ 30 KB). The same values and messages as the derive.
pub(crate) fn breaker_snapshot(value: &Value) -> Result<BreakerSnapshot, Error> {
    BreakerSnapshot::read(value)
}

unit_enum!(SnapshotState { "closed" => Closed, "open" => Open, "half_open" => HalfOpen });
shape!(
    BreakerSnapshot,
    start: || BreakerSnapshot { version: 0, exported_at_unix_ms: None, hosts: Vec::new() },
    required: 0b101,
    [version, exported_at_unix_ms, hosts]
);
shape!(
    HostBreaker,
    start: || HostBreaker {
        host: String::new(),
        state: SnapshotState::Closed,
        open_remaining_ms: None,
        trips: 0,
        consecutive_failures: 0,
    },
    required: 0b11,
    [host, state, open_remaining_ms, trips, consecutive_failures]
);

/// The algorithm's struct under an internal `algorithm` tag, as serde reads an internally tagged
/// enum: the tag first (from anywhere in the map, or as the first element of a sequence), then
/// the other fields as the variant's struct.
impl Read for AdaptiveConcurrency {
    fn read(value: &Value) -> Result<Self, Error> {
        const TAG: &str = "algorithm";
        const VARIANTS: &[&str] = &["aimd", "gradient2"];
        const EXPECTING: &str = "internally tagged enum AdaptiveConcurrency";
        let variant = |tag: &Value| match tag {
            Value::String(name) => VARIANTS
                .iter()
                .position(|v| v == name)
                .ok_or_else(|| Error::unknown_variant(name, VARIANTS)),
            other => Err(invalid_type(other, "variant identifier")),
        };
        let (index, rest) = match value {
            Value::Object(map) => {
                let tag = map.get(TAG).ok_or_else(|| Error::missing_field(TAG))?;
                (variant(tag)?, Rest::Map(map))
            }
            Value::Array(items) => match items.split_first() {
                Some((tag, rest)) => (variant(tag)?, Rest::Seq(rest)),
                None => return Err(Error::missing_field(TAG)),
            },
            other => return Err(invalid_type(other, EXPECTING)),
        };
        match index {
            0 => rest.read(TAG).map(AdaptiveConcurrency::Aimd),
            _ => rest.read(TAG).map(AdaptiveConcurrency::Gradient2),
        }
    }
}

/// What is left of an internally tagged value once its tag is read.
#[derive(Clone, Copy)]
enum Rest<'a> {
    Map(&'a Map<String, Value>),
    Seq(&'a [Value]),
}

impl Rest<'_> {
    fn read<T: Shaped>(self, tag: &str) -> Result<T, Error> {
        fresh(Source::Rest(self, tag))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Documents the reader must take (or refuse) exactly as serde's derive does: every field
    /// type, every struct, both forms of a struct and of an enum, and each kind of mistake.
    fn documents() -> Vec<Value> {
        let adaptive = |a: Value| json!({"concurrency": {"adaptive": a}});
        vec![
            json!({}),
            serde_json::to_value(Config::default()).unwrap(),
            serde_json::to_value(Preset::AwsAdaptive.config()).unwrap(),
            serde_json::to_value(Preset::GrpcA6.config()).unwrap(),
            serde_json::to_value(Preset::Aws21.config()).unwrap(),
            json!({"retries": 3}),
            json!({"retry": {"max_attempts": 3, "retry_statuses": [503, 429]}}),
            json!({"retry": {"max_attempts": 1.5}}),
            json!({"retry": {"max_attempts": -1}}),
            json!({"retry": {"max_attempts": 5_000_000_000u64}}),
            json!({"retry": {"max_attempts": "3"}}),
            json!({"retry": {"max_attempts": null}}),
            json!({"retry": {"max_attempts": [3]}}),
            json!({"retry": {"max_attempts": {"a": 1}}}),
            json!({"retry": {"max_attempts": true}}),
            json!({"retry": {"deadline_ms": null, "attempt_timeout_ms": -5}}),
            json!({"retry": {"max_retry_after_ms": 3.0}}),
            json!({"retry": {"retry_statuses": [70000]}}),
            json!({"retry": {"retry_statuses": 503}}),
            json!({"retry": {"hold_spread": 1}}),
            json!({"retry": {"hold_spread": "x"}}),
            json!({"retry": {"respect_retry_after": 1}}),
            json!({"retry": 3}),
            json!({"retry": null}),
            json!({"retry": "x"}),
            json!({"retry": [2, 1000]}),
            json!({"retry": [2, 1000, null, [500], true, 1, 0.5, 9]}),
            json!({"retry": [2.5]}),
            json!({"backoff": {"jitter": "equal"}}),
            json!({"backoff": {"jitter": "sometimes"}}),
            json!({"backoff": {"jitter": {"none": null}}}),
            json!({"backoff": {"jitter": {"none": 1}}}),
            json!({"backoff": {"jitter": {"none": null, "full": null}}}),
            json!({"backoff": {"jitter": {}}}),
            json!({"backoff": {"jitter": 1}}),
            json!({"backoff": {"factor": 3, "base_ms": 7}}),
            json!({"limit": {"per_second": 5}}),
            json!({"limit": {"burst": 5}}),
            json!({"limit": {}}),
            json!({"limit": [5]}),
            json!({"limit": []}),
            json!({"limit": [5, 2, 1]}),
            json!({"limit": null}),
            json!({"limit": {"per_second": 5, "rate": 1}}),
            json!({"token": {"refresh_on_401": false, "skew": 1}}),
            json!({"fleet": {"name": "x", "size": 3}}),
            json!({"fleet": {"name": 7}}),
            json!({"request_id": "off"}),
            json!({"request_id": "on"}),
            json!({"preset": "grpc-a6"}),
            json!({"preset": "nope"}),
            json!({"preset": 3}),
            json!({"aws": {"cap": "before_jitter", "quota": {"capacity": 10}}}),
            json!({"aws": {"cap": "sometime"}}),
            json!({"aws": {"quota": {"cost": 1}}}),
            json!({"retry_throttling": {"max_tokens": 10, "token_ratio": 0.1}}),
            json!({"retry_throttling": {"max_tokens": 10}}),
            json!({"retry_throttling": {}}),
            json!({"retry_throttling": [10]}),
            json!({"hedge": {"enabled": true, "percentile": 0.9}}),
            json!({"hedge": {"percentile": "p90"}}),
            json!({"pool": {"recycle_after_failures": 2}, "adaptive_rate": {"enabled": true}}),
            json!({"pool": [1, 2]}),
            adaptive(json!({"algorithm": "aimd", "max_limit": 50})),
            adaptive(json!({"algorithm": "gradient2", "smoothing": 0.5})),
            adaptive(json!({"max_limit": 50})),
            adaptive(json!({"algorithm": "vegas"})),
            adaptive(json!({"algorithm": 1})),
            adaptive(json!({"algorithm": "aimd", "smoothing": 0.5})),
            adaptive(json!({"algorithm": "aimd", "max_limit": "lots"})),
            adaptive(json!(["aimd", 10, 5])),
            adaptive(json!(["aimd", 1, 2, 3, 0.9, 5, 6])),
            adaptive(json!([])),
            adaptive(json!(["vegas"])),
            adaptive(json!("aimd")),
            adaptive(json!(4)),
            adaptive(json!(null)),
            json!([]),
            json!(null),
            json!("config"),
        ]
    }

    /// The rule `onto` replaces: the preset's serde form, `over` laid on it key by key.
    fn merged(base: &Config, over: &Value) -> Result<Config, Error> {
        fn merge(base: &mut Value, over: &Value) {
            match (base, over) {
                (Value::Object(b), Value::Object(o)) => {
                    for (key, value) in o {
                        match b.get_mut(key) {
                            Some(slot) => merge(slot, value),
                            None => {
                                b.insert(key.clone(), value.clone());
                            }
                        }
                    }
                }
                (slot, value) => *slot = value.clone(),
            }
        }
        let mut doc = serde_json::to_value(base).unwrap();
        merge(&mut doc, over);
        config(&doc)
    }

    #[test]
    fn a_document_over_a_preset_reads_as_the_two_merged() {
        let mut docs = documents();
        docs.extend([
            json!({"retry": {"max_attempts": 2}, "backoff": {"base_ms": 7}}),
            json!({"aws": {"quota": {"capacity": 7}}, "backoff": {"jitter": {"equal": null}}}),
            json!({"aws": {"cap": "before_jitter", "throttling_base_ms": null}}),
            json!({"aws": null, "retry_throttling": null}),
            json!({"aws": [{"capacity": 1}]}),
            json!({"retry_throttling": {"token_ratio": 0.5}}),
            json!({"retry_throttling": [3, 0.5]}),
            json!({"retry_throttling": {"max_tokens": "many"}}),
            json!({"limit": {"burst": 3}}),
            json!({"limit": {"per_second": 2.5}, "adaptive_rate": {"enabled": false}}),
            json!({"retry": {"retry_statuses": [503], "maximum": 1}}),
            json!({"budget": [true]}),
        ]);
        let mut differ = Vec::new();
        for preset in crate::preset::ALL {
            let base = preset.config();
            assert_eq!(
                merged(&base, &json!({})).ok(),
                Some(base.clone()),
                "{preset:?}"
            );
            for doc in &docs {
                let Value::Object(_) = doc else { continue };
                let read = onto(base.clone(), doc).map_err(|e| e.to_string());
                let want = merged(&base, doc).map_err(|e| e.to_string());
                if read != want {
                    differ.push(format!(
                        "{preset:?} {doc}:\n  onto {read:?}\n  merged {want:?}"
                    ));
                }
            }
        }
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }

    #[cfg(feature = "deserialize")]
    #[test]
    fn reads_what_the_derive_reads_with_its_messages() {
        let differ: Vec<_> = documents()
            .into_iter()
            .filter_map(|doc| {
                let derived =
                    serde_json::from_value::<Config>(doc.clone()).map_err(|e| e.to_string());
                let read = config(&doc).map_err(|e| e.to_string());
                (read != derived).then(|| format!("{doc}:\n  read {read:?}\n  derive {derived:?}"))
            })
            .collect();
        assert!(differ.is_empty(), "{}", differ.join("\n"));
    }

    /// `value`'s fields as an array in the order `T`'s shape lists them (absent ones null).
    #[cfg(feature = "deserialize")]
    fn in_shape_order<T: Shaped + serde::Serialize>(value: &T) -> Value {
        let object = serde_json::to_value(value).unwrap();
        let fields = T::shape().fields.names.iter();
        Value::Array(
            fields
                .map(|n| object.get(*n).cloned().unwrap_or(Value::Null))
                .collect(),
        )
    }

    /// The sequence form reads fields by position, so each shape must list its struct's fields
    /// in declaration order, the order serde's derive reads them in: a struct's values in the
    /// shape's order read back as the same struct, by the reader and by the derive.
    #[cfg(feature = "deserialize")]
    #[test]
    fn shapes_list_the_fields_in_declaration_order() {
        fn check<T>(value: T)
        where
            T: Shaped
                + serde::Serialize
                + serde::de::DeserializeOwned
                + PartialEq
                + core::fmt::Debug,
        {
            let array = in_shape_order(&value);
            assert_eq!(T::read(&array).unwrap(), value, "{array}");
            let derived = serde_json::from_value::<T>(array.clone()).unwrap();
            assert_eq!(derived, value, "{array}");
        }
        let aws = Preset::AwsStandard.config();
        check(aws.clone());
        check(aws.retry);
        check(aws.backoff);
        check(aws.budget);
        check(aws.breaker);
        check(aws.token);
        check(aws.concurrency);
        check(aws.pool);
        check(AdaptiveRateConfig { enabled: true });
        check(aws.hedge);
        check(aws.aws.clone().unwrap());
        check(aws.aws.unwrap().quota);
        check(LimitConfig {
            per_second: 2.5,
            burst: 3,
        });
        check(ThrottleConfig::GRPC_A6);
        check(FleetConfig::default());
        check(AimdConfig::default());
        check(Gradient2Config::default());
    }

    #[test]
    fn every_document_gives_a_value_or_a_message() {
        // Without the derive to compare with (the browser build), the same documents still read
        // without a panic, and the messages name what was wrong.
        for doc in documents() {
            if let Err(e) = config(&doc) {
                assert!(!e.to_string().is_empty(), "{doc}");
            }
        }
        let e = config(&json!({"retry": {"max_attempts": 1.5}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid type: floating point `1.5`, expected u32"
        );
        let e = config(&json!({"retries": 3})).unwrap_err().to_string();
        assert!(
            e.starts_with("unknown field `retries`, expected one of `preset`, `retry`"),
            "{e}"
        );
        let e = config(&json!({"limit": {"burst": 2}})).unwrap_err();
        assert_eq!(e.to_string(), "missing field `per_second`");
        let c =
            config(&json!({"concurrency": {"adaptive": {"algorithm": "aimd", "max_limit": 50}}}))
                .unwrap();
        assert!(
            matches!(c.concurrency.adaptive, Some(AdaptiveConcurrency::Aimd(a)) if a.max_limit == 50)
        );
    }

    /// `invalid type` and `invalid value` in serde_json's own words, as its constructors write
    /// them from serde's `Unexpected`.
    #[test]
    fn invalid_type_and_value_in_serde_jsons_words() {
        use serde::de::Unexpected;
        let values = [
            json!(null),
            json!(true),
            json!(false),
            json!(7),
            json!(-7),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(5e-324),
            json!(0.1),
            json!(1e21),
            json!("a \"quoted\"\n string"),
            json!(""),
            json!([1]),
            json!({"a": 1}),
        ];
        for value in values {
            let serde = match &value {
                Value::Null => Unexpected::Unit,
                Value::Bool(b) => Unexpected::Bool(*b),
                Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                    (Some(u), _) => Unexpected::Unsigned(u),
                    (None, Some(i)) => Unexpected::Signed(i),
                    (None, None) => Unexpected::Float(n.as_f64().unwrap()),
                },
                Value::String(s) => Unexpected::Str(s),
                Value::Array(_) => Unexpected::Seq,
                Value::Object(_) => Unexpected::Map,
            };
            assert_eq!(
                invalid_type(&value, "u32").to_string(),
                serde_json::Error::invalid_type(serde, &"u32").to_string()
            );
        }
        assert_eq!(
            invalid_value(format_args!("integer `{}`", 70_000), "u16").to_string(),
            serde_json::Error::invalid_value(Unexpected::Unsigned(70_000), &"u16").to_string()
        );
        assert_eq!(
            invalid_value(format_args!("integer `{}`", -1), "u32").to_string(),
            serde_json::Error::invalid_value(Unexpected::Signed(-1), &"u32").to_string()
        );
        assert_eq!(
            invalid_value(format_args!("map"), "map with a single key").to_string(),
            serde_json::Error::invalid_value(Unexpected::Map, &"map with a single key").to_string()
        );
    }

    /// Breaker snapshots the reader must take (or refuse) exactly as the snapshot's derive does.
    #[test]
    fn reads_breaker_snapshots_as_the_derive_does() {
        let host =
            json!({"host": "https://a", "state": "open", "open_remaining_ms": 40, "trips": 2});
        let documents = [
            json!({"version": 1, "hosts": []}),
            json!({"version": 1, "exported_at_unix_ms": 7, "hosts": [host]}),
            json!({"version": 1, "exported_at_unix_ms": null, "hosts": [host, host]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": "half_open", "consecutive_failures": 3}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": "closed", "open_remaining_ms": null}]}),
            json!({"version": 1}),
            json!({"hosts": []}),
            json!({"version": 1.5, "hosts": []}),
            json!({"version": 1, "hosts": {}}),
            json!({"version": 1, "hosts": [], "extra": 1}),
            json!({"version": 1, "hosts": [{"state": "open"}]}),
            json!({"version": 1, "hosts": [{"host": "h"}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": "ajar"}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": {"open": null}}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": 3}]}),
            json!({"version": 1, "hosts": [{"host": 5, "state": "open"}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": "open", "trips": -1}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": "open", "trips": 2.5}]}),
            json!({"version": 1, "hosts": [{"host": "h", "state": "open", "why": 1}]}),
            json!({"version": 1, "hosts": [["h", "open", 5, 1, 0]]}),
            json!({"version": 1, "hosts": [["h"]]}),
            json!({"version": 1, "hosts": [["h", "open", 5, 1, 0, 9]]}),
            json!([1, 2, []]),
            json!([1]),
            json!("snapshot"),
            json!(null),
        ];
        for doc in documents {
            let derived =
                serde_json::from_value::<BreakerSnapshot>(doc.clone()).map_err(|e| e.to_string());
            let read = breaker_snapshot(&doc).map_err(|e| e.to_string());
            assert_eq!(read, derived, "{doc}");
        }
    }
}
