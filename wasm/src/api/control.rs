//! The JavaScript side of fallbacks, breakers by hand and retry predicates: the request options
//! `fallback` and `retryIf`, `ResileResponse.fallback`, and the client's `isolate`,
//! `forceClosed`, `resetBreaker`, `exportBreakers` and `importBreakers`. The decisions are the
//! engine's; this reads JavaScript values into the driver's and back.

use core::cell::{Cell, RefCell};

use js_sys::{Function, Object, Reflect};
use resile_core::breaker::{BreakerHold, BreakerSnapshot, HoldKind, SnapshotError};
use resile_core::map::SortedMap;
use resile_core::{
    Attempted, FallbackUsed, FallbackWrites, Method, Predicate, RetryPredicate, RetryVerdict, Seen,
};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::{get, headers_value, invalid, number_field, present, JsClient, JsResponse};
use crate::driver::{Fallback, FallbackSource, WeakDriver};
use crate::lend::Lend;
use crate::to_js::{to_js, Keys};
use crate::translate;

/// Reads the `fallback` option: `{value: {status?, headers?, body?, json?}}` or
/// `{lastGoodMs}`, with `allowWrites`.
pub(super) fn fallback_option(options: &JsValue) -> Result<Option<Fallback>, JsValue> {
    let f = get(options, "fallback");
    if !present(&f) {
        return Ok(None);
    }
    let writes = match get(&f, "allowWrites").as_bool() {
        Some(true) => FallbackWrites::Allow,
        _ => FallbackWrites::Refuse,
    };
    let value = get(&f, "value");
    let source = if present(&value) {
        let status = number_field(&value, "status")?.map_or(200, |s| s as u16);
        if !(200..=599).contains(&status) {
            return Err(invalid(
                "`fallback.value.status` must be a status from 200 to 599",
            ));
        }
        let mut headers = headers_value(&get(&value, "headers"), "fallback.value.headers")?;
        let json_value = get(&value, "json");
        let body = if present(&json_value) {
            headers.push(("content-type".into(), "application/json".into()));
            js_sys::JSON::stringify(&json_value)
                .map(String::from)
                .map_err(|_| invalid("`fallback.value.json` cannot be serialized"))?
        } else {
            get(&value, "body").as_string().unwrap_or_default()
        };
        FallbackSource::Value {
            status,
            headers,
            body: body.into_bytes(),
        }
    } else if let Some(ms) = number_field(&f, "lastGoodMs")? {
        FallbackSource::LastGood {
            max_age: crate::translate::duration_ms(ms),
        }
    } else {
        return Err(invalid(
            "`fallback` must be `{value: {...}}` or `{lastGoodMs: number}`",
        ));
    };
    Ok(Some(Fallback { source, writes }))
}

/// JavaScript's `FallbackInfo` (keys camelCase there).
#[derive(serde::Serialize)]
struct FallbackInfo {
    why: &'static str,
    explain: &'static str,
    attempts: u32,
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    age_ms: Option<f64>,
}

/// `ResileResponse.fallback`: why the call answered with its fallback, or `undefined`.
pub(super) fn fallback_json(response: &JsResponse) -> JsValue {
    let Some((failure, used)) = &response.reply().fallback else {
        return JsValue::UNDEFINED;
    };
    let (source, age_ms) = match used {
        FallbackUsed::Value => ("value", None),
        FallbackUsed::LastGood { age } => ("last_good", Some(age.as_secs_f64() * 1000.0)),
    };
    let info = FallbackInfo {
        why: failure.why.name(),
        explain: failure.why.explain(),
        attempts: failure.attempts,
        source,
        age_ms,
    };
    to_js(&info, Keys::Camel)
}

thread_local! {
    /// The JavaScript predicates of calls in flight, by id: the engine holds a `JsJudge` (plain
    /// data, so the engine stays `Send`), which finds its function here. Sorted by id (ids are
    /// handed out in order, so an insert is nearly always a push): core's sorted map, as the
    /// driver's calls, so the browser build carries no hash table for it.
    static JUDGES: RefCell<SortedMap<u32, Function>> = const { RefCell::new(SortedMap::new()) };
    static NEXT_JUDGE: Cell<u32> = const { Cell::new(1) };
    /// The headers of the response being judged, set by the driver while it reports it.
    static JUDGED: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `report` with `headers` visible to the JavaScript predicates it may ask.
pub(crate) fn judging<R>(headers: &[(String, String)], report: impl FnOnce() -> R) -> R {
    JUDGED.with(|j| *j.lend_mut() = headers.to_vec());
    let r = report();
    JUDGED.with(|j| j.lend_mut().clear());
    r
}

/// A call's JavaScript predicate, as the engine holds it.
struct JsJudge {
    id: u32,
    method: Method,
    url: String,
}

impl Drop for JsJudge {
    fn drop(&mut self) {
        JUDGES.with(|j| j.lend_mut().remove(&self.id));
    }
}

impl RetryPredicate for JsJudge {
    fn judge(&self, a: &Attempted<'_>) -> RetryVerdict {
        let Some(f) = JUDGES.with(|j| j.lend().get(&self.id).cloned()) else {
            return RetryVerdict::Decide;
        };
        let check = Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&check, &k.into(), &v);
        };
        set("method", self.method.as_str().into());
        set("url", self.url.as_str().into());
        set("attempt", a.attempt.into());
        match a.outcome {
            Seen::Response { status, .. } => {
                set("status", status.into());
                let headers = web_sys::Headers::new().ok();
                if let Some(h) = &headers {
                    JUDGED.with(|j| {
                        for (k, v) in j.lend().iter() {
                            let _ = h.append(k, v);
                        }
                    });
                }
                set("headers", headers.map_or(JsValue::UNDEFINED, Into::into));
            }
            Seen::Transport(e) => set("error", translate::serde_name(&e).into()),
        }
        match f.call1(&JsValue::UNDEFINED, &check) {
            Ok(v) => verdict(&v),
            Err(e) => {
                super::console_error("resile: retryIf threw; the engine decides", &e);
                RetryVerdict::Decide
            }
        }
    }
}

/// A predicate's answer: `"retry"`, `"dontRetry"`, `{retryAfterMs}`; anything else (`undefined`,
/// `"decide"`) leaves the decision to the engine.
fn verdict(v: &JsValue) -> RetryVerdict {
    match v.as_string().as_deref() {
        Some("retry") => return RetryVerdict::Retry,
        Some("dontRetry") => return RetryVerdict::DontRetry,
        _ => {}
    }
    match get(v, "retryAfterMs").as_f64() {
        Some(ms) if ms.is_finite() && ms >= 0.0 => {
            RetryVerdict::RetryAfter(crate::translate::duration_ms(ms))
        }
        _ => RetryVerdict::Decide,
    }
}

/// Reads the `retryIf` option.
pub(super) fn retry_if_option(
    options: &JsValue,
    method: Method,
    url: &str,
) -> Result<Option<Predicate>, JsValue> {
    let f = get(options, "retryIf");
    if !present(&f) {
        return Ok(None);
    }
    let f: Function = f
        .dyn_into()
        .map_err(|_| invalid("`retryIf` must be a function"))?;
    let id = NEXT_JUDGE.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1).max(1));
        id
    });
    JUDGES.with(|j| {
        j.lend_mut().insert(id, f);
    });
    Ok(Some(Predicate::new(JsJudge {
        id,
        method,
        url: url.to_string(),
    })))
}

/// A hold on one host's breaker (JavaScript's `BreakerOverride`): isolated (held open) or
/// forced closed until `release()`. Holds count; when the last isolation is released the
/// breaker is closed afresh.
#[wasm_bindgen]
pub struct BreakerOverride {
    driver: WeakDriver,
    hold: RefCell<Option<BreakerHold>>,
    host: String,
}

#[wasm_bindgen]
impl BreakerOverride {
    /// The host held (`scheme://host:port`).
    #[wasm_bindgen(getter)]
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// Gives the hold back (a second call does nothing).
    pub fn release(&self) {
        let hold = self.hold.lend_mut().take();
        if let (Some(hold), Some(d)) = (hold, self.driver.upgrade()) {
            d.release_breaker(hold);
        }
    }
}

fn control_error(message: String) -> JsValue {
    invalid(message)
}

#[wasm_bindgen(js_class = Client)]
impl JsClient {
    /// Holds the breaker of `url`'s host open: calls to it fail fast (`why:
    /// "breaker_isolated"`) or answer with their fallback, until the override is released.
    pub fn isolate(&self, url: &str) -> Result<BreakerOverride, JsValue> {
        self.hold(url, HoldKind::Isolate)
    }

    /// Holds the breaker of `url`'s host closed: nothing trips it until the override is
    /// released. An isolation wins over it.
    #[wasm_bindgen(js_name = forceClosed)]
    pub fn force_closed(&self, url: &str) -> Result<BreakerOverride, JsValue> {
        self.hold(url, HoldKind::ForceClosed)
    }

    /// Closes the breaker of `url`'s host now, with a fresh failure window.
    #[wasm_bindgen(js_name = resetBreaker)]
    pub fn reset_breaker(&self, url: &str) -> Result<(), JsValue> {
        self.driver().reset_breaker(url).map_err(control_error)
    }

    /// Every known host's breaker as a versioned snapshot (open times relative to now, plus the
    /// wall clock), the same JSON the native client writes: `JSON.stringify` it to keep it.
    #[wasm_bindgen(js_name = exportBreakers, unchecked_return_type = "BreakerSnapshot")]
    pub fn export_breakers(&self) -> JsValue {
        to_js(&self.driver().export_breakers(), Keys::AsWritten)
    }

    /// Takes each host's breaker from a snapshot (the object or its JSON text), less the
    /// wall-clock time since it was exported; returns the number of hosts. A snapshot of another
    /// version, or one that does not parse, throws a `ResileError` (`code: "invalid"`).
    #[wasm_bindgen(js_name = importBreakers)]
    pub fn import_breakers(
        &self,
        #[wasm_bindgen(unchecked_param_type = "BreakerSnapshot | string")] snapshot: JsValue,
    ) -> Result<u32, JsValue> {
        let text = match snapshot.as_string() {
            Some(text) => text,
            None => js_sys::JSON::stringify(&snapshot)
                .map(String::from)
                .map_err(|_| invalid("the snapshot cannot be serialized"))?,
        };
        // The same reader as every other JSON text here (not `BreakerSnapshot::from_json`'s),
        // so the module holds one copy of serde_json's parser.
        let snapshot = translate::parse(&text)
            .map_err(|e| SnapshotError::Malformed {
                message: e.to_string(),
            })
            .and_then(BreakerSnapshot::from_value)
            .map_err(|e| invalid(e.to_string()))?;
        self.driver()
            .import_breakers(&snapshot)
            .map(|n| n as u32)
            .map_err(|e| invalid(e.to_string()))
    }

    fn hold(&self, url: &str, kind: HoldKind) -> Result<BreakerOverride, JsValue> {
        let hold = self
            .driver()
            .hold_breaker(url, kind)
            .map_err(control_error)?;
        Ok(BreakerOverride {
            driver: self.driver().downgrade(),
            host: hold.host().to_string(),
            hold: RefCell::new(Some(hold)),
        })
    }
}

#[wasm_bindgen(js_class = ResileResponse)]
impl JsResponse {
    /// Set when the call answered with its fallback: `{why, explain, attempts, source, ageMs?}`.
    #[wasm_bindgen(getter, unchecked_return_type = "FallbackInfo | undefined")]
    pub fn fallback(&self) -> JsValue {
        fallback_json(self)
    }
}
