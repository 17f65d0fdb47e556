//! The JavaScript / TypeScript API: `Client`, `ResileResponse`, `Paginator`, `ResileError`,
//! `isResileError`, shaped like `fetch`: camelCase at the boundary (config, options, events,
//! host and token views), a response with a `Headers` object and async `json()`, `text()`,
//! `arrayBuffer()`; every rejection a `ResileError` built from the Rust [`Error`].

use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, JSON};
use resile_core::paginate::{
    Again, Body as PageBody, PageFailure, PageReply, PageStyle, PaginateError, Step, Stop, Walk,
    WalkError, WalkPolicy,
};
use resile_core::{Config, Event, Instant, Method};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::driver::{Body, CallError, Driver, Grant, Options, Reply, RequestSpec, TokenProvider};
use crate::error::{request_text, Error};
use crate::js;
use crate::lend::Lend;
use crate::to_js::{to_js, Keys};
use crate::translate::{self, ErrorFields, IdempotencyKey, CLIENT_ONLY_KEYS};

/// The declarations of everything the API takes and hands out (config, options, events, views,
/// errors); `wasm/tests/contract.rs` checks `Why` and `ResileEvent` against the core's serde
/// output.
#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = include_str!("types.d.ts");

#[wasm_bindgen]
extern "C" {
    /// See the TypeScript declarations.
    #[wasm_bindgen(typescript_type = "ClientConfig")]
    pub type ClientConfig;
    /// See the TypeScript declarations.
    #[wasm_bindgen(typescript_type = "RequestOptions")]
    pub type RequestOptions;
    /// See the TypeScript declarations.
    #[wasm_bindgen(typescript_type = "PaginateOptions")]
    pub type PaginateOptions;
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str, value: &JsValue);
}

mod control;
pub(crate) use control::judging;
pub use control::BreakerOverride;

// ---- errors -------------------------------------------------------------------------------------

/// The class of every rejection: `e instanceof ResileError` (and `instanceof Error`), or
/// `isResileError(e)`. Its instances are real `Error`s (message, stack) with the fields of the
/// `ResileError` declaration as plain properties; JavaScript cannot construct one.
#[wasm_bindgen]
pub struct ResileError {
    _private: (),
}

thread_local! {
    /// `ResileError.prototype`, re-parented onto `Error.prototype` the first time it is needed.
    static ERROR_PROTOTYPE: Object = {
        let probe: JsValue = ResileError { _private: () }.into();
        let prototype = Reflect::get_prototype_of(&probe).unwrap_or_else(|_| Object::new());
        if let Ok(error_prototype) = Reflect::get_prototype_of(&js_sys::Error::new("")) {
            let _ = Reflect::set_prototype_of(&prototype, &error_prototype);
        }
        prototype
    };
}

/// Whether `value` is an error this API rejected with.
#[wasm_bindgen(js_name = isResileError, unchecked_return_type = "value is ResileError")]
pub fn is_resile_error(value: &JsValue) -> bool {
    value.is_object() && ERROR_PROTOTYPE.with(|p| p.is_prototype_of(value))
}

/// The promise of every async method: one instantiation of `future_to_promise` (one copy of
/// the glue that settles a promise) for all of them.
fn promise(task: Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>) -> Promise {
    future_to_promise(task)
}

/// A `ResileError` with `code` and `message`; `retryable` and `maybeProcessed` default to
/// `false`, `fields` sets the rest.
pub(crate) fn resile_error(code: &str, message: &str, fields: Option<&ErrorFields>) -> JsValue {
    let error = js_sys::Error::new(message);
    ERROR_PROTOTYPE.with(|p| {
        let _ = Reflect::set_prototype_of(&error, p);
    });
    error.set_name("ResileError");
    let object: &JsValue = error.as_ref();
    let _ = Reflect::set(object, &"code".into(), &code.into());
    let _ = Reflect::set(object, &"retryable".into(), &false.into());
    let _ = Reflect::set(object, &"maybeProcessed".into(), &false.into());
    if let Some(fields) = fields {
        Object::assign(&error, to_js(fields, Keys::Camel).unchecked_ref());
    }
    error.into()
}

/// The `ResileError` for a Rust [`Error`] decided at `at` (for `retryAfterMs`).
fn js_error(error: &Error, at: Instant) -> JsValue {
    resile_error(
        error.code(),
        &error.to_string(),
        Some(&translate::error_fields(error, at)),
    )
}

fn call_error(method: Method, url: &str, error: CallError) -> JsValue {
    let (error, at) = error.into_error(method.as_str(), url);
    js_error(&error, at)
}

fn status_error(method: Method, reply: &Reply) -> JsValue {
    let error = Error::Status {
        status: reply.status,
        body_excerpt: resile_core::excerpt::excerpt(
            &reply.body,
            resile_core::excerpt::EXCERPT_BYTES,
        ),
    };
    let mut fields = translate::error_fields(&error, js::now());
    fields.attempts = Some(reply.attempts);
    resile_error(
        error.code(),
        &format!(
            "{} answered {} after {} attempt(s)",
            request_text(method.as_str(), &reply.url),
            reply.status,
            reply.attempts
        ),
        Some(&fields),
    )
}

fn decode_error(what: &str, detail: &str) -> JsValue {
    resile_error(
        "decode",
        &format!("{what}: {detail}"),
        Some(&ErrorFields {
            maybe_processed: true,
            ..ErrorFields::default()
        }),
    )
}

fn invalid(message: impl AsRef<str>) -> JsValue {
    js_error(
        &Error::InvalidRequest {
            message: message.as_ref().to_string(),
        },
        js::now(),
    )
}

fn config_error(message: impl AsRef<str>) -> JsValue {
    js_error(
        &Error::Config {
            field: None,
            message: message.as_ref().to_string(),
        },
        js::now(),
    )
}

// ---- reading JS values --------------------------------------------------------------------------

fn get(object: &JsValue, key: &str) -> JsValue {
    if object.is_object() {
        Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

/// A config field by its camelCase name, or its snake_case one.
fn get_either(object: &JsValue, camel: &str) -> JsValue {
    let v = get(object, camel);
    if present(&v) {
        v
    } else {
        get(object, &translate::snake(camel))
    }
}

fn present(value: &JsValue) -> bool {
    !value.is_undefined() && !value.is_null()
}

fn string_field(object: &JsValue, key: &str) -> Result<Option<String>, JsValue> {
    let v = get(object, key);
    if !present(&v) {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| invalid(format!("`{key}` must be a string")))
}

fn number_field(object: &JsValue, key: &str) -> Result<Option<f64>, JsValue> {
    let v = get(object, key);
    if !present(&v) {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(invalid(format!("`{key}` must be a non-negative number"))),
    }
}

fn headers_field(object: &JsValue, key: &str) -> Result<Vec<(String, String)>, JsValue> {
    headers_value(&get(object, key), key)
}

fn headers_value(v: &JsValue, key: &str) -> Result<Vec<(String, String)>, JsValue> {
    if !present(v) {
        return Ok(Vec::new());
    }
    if !v.is_object() {
        return Err(invalid(format!(
            "`{key}` must be an object of header names to strings"
        )));
    }
    let mut out = Vec::new();
    for entry in Object::entries(v.unchecked_ref()).iter() {
        let pair = Array::from(&entry);
        let (Some(k), Some(val)) = (pair.get(0).as_string(), pair.get(1).as_string()) else {
            return Err(invalid(format!(
                "`{key}`: every header value must be a string"
            )));
        };
        out.push((k, val));
    }
    Ok(out)
}

/// Reads request options into a spec for `method` and `url`.
fn request_spec(method: Method, url: String, options: &JsValue) -> Result<RequestSpec, JsValue> {
    let mut spec = RequestSpec::new(method, url);
    spec.headers = headers_field(options, "headers")?;
    let key = string_field(options, "idempotencyKey")?;
    spec.key = IdempotencyKey::parse(key.as_deref());
    spec.deadline = number_field(options, "deadlineMs")?.map(translate::duration_ms);
    spec.max_attempts = number_field(options, "maxAttempts")?.map(|n| n.clamp(1.0, 100.0) as u32);
    let token = get(options, "token");
    spec.token = token.as_bool();
    spec.fallback = control::fallback_option(options)?;
    spec.retry_if = control::retry_if_option(options, method, &spec.url)?;
    let signal = get(options, "signal");
    if present(&signal) {
        spec.signal = Some(
            signal
                .dyn_into()
                .map_err(|_| invalid("`signal` must be an AbortSignal"))?,
        );
    }
    let body = get(options, "body");
    let json_body = get(options, "json");
    if present(&json_body) {
        let text =
            JSON::stringify(&json_body).map_err(|_| invalid("`json` cannot be serialized"))?;
        spec.body = Some(Body::Text(String::from(text)));
        if !spec
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            spec.headers
                .push(("content-type".into(), "application/json".into()));
        }
    } else if let Some(text) = body.as_string() {
        spec.body = Some(Body::Text(text));
    } else if body.is_instance_of::<Uint8Array>() || body.is_instance_of::<js_sys::ArrayBuffer>() {
        spec.body = Some(Body::Bytes(Uint8Array::new(&body).to_vec()));
    } else if let Some(make) = body.dyn_ref::<Function>() {
        spec.body = Some(Body::Factory(make.clone()));
    } else if crate::driver::is_stream(&body) {
        spec.body = Some(Body::Stream(Rc::new(RefCell::new(Some(body)))));
    } else if present(&body) {
        return Err(invalid(
            "`body` must be a string, a Uint8Array, an ArrayBuffer, a ReadableStream, or a \
             function returning one per attempt (or use `json`)",
        ));
    }
    Ok(spec)
}

fn js_provider(f: Function) -> TokenProvider {
    Rc::new(move || {
        let f = f.clone();
        Box::pin(async move {
            let describe = |e: JsValue| -> String {
                match e.dyn_ref::<js_sys::Error>() {
                    Some(e) => format!("tokenProvider failed: {}", String::from(e.message())),
                    None => format!(
                        "tokenProvider failed: {}",
                        e.as_string().unwrap_or_else(|| "(not an Error)".into())
                    ),
                }
            };
            let value = f.call0(&JsValue::UNDEFINED).map_err(describe)?;
            let value = JsFuture::from(Promise::resolve(&value))
                .await
                .map_err(describe)?;
            let token = get(&value, "accessToken")
                .as_string()
                .or_else(|| get(&value, "access_token").as_string());
            let Some(access_token) = token else {
                return Err("tokenProvider must resolve to {accessToken, expiresIn}".to_string());
            };
            let seconds = get(&value, "expiresIn")
                .as_f64()
                .or_else(|| get(&value, "expires_in").as_f64());
            Ok(Grant {
                access_token,
                expires_in: translate::expires_in(seconds),
            })
        }) as crate::driver::TokenFuture
    })
}

fn parse_seed(value: &JsValue) -> Result<Option<u64>, JsValue> {
    if !present(value) {
        return Ok(None);
    }
    if let Some(n) = value.as_f64() {
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
            return Ok(Some(n as u64));
        }
    }
    if value.is_bigint() {
        if let Ok(n) = u64::try_from(value.clone()) {
            return Ok(Some(n));
        }
    }
    Err(config_error(
        "config field `seed` must be a whole number from 0 to 2^53 - 1, or a BigInt below 2^64",
    ))
}

fn limit_field(config: &JsValue, camel: &str) -> Result<Option<usize>, JsValue> {
    let v = get_either(config, camel);
    if !present(&v) {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 1.0 && n.fract() == 0.0 => Ok(Some(n as usize)),
        _ => Err(config_error(format!(
            "config field `{camel}` must be a whole number of calls, at least 1"
        ))),
    }
}

/// The engine's part of a JS config: the client's own keys left out, every key snake_case.
fn engine_config(config: &JsValue) -> Result<Config, JsValue> {
    if !present(config) {
        return Ok(Config::default());
    }
    let rest = Object::assign(&Object::new(), config.unchecked_ref());
    for key in CLIENT_ONLY_KEYS {
        let _ = Reflect::delete_property(&rest, &key.into());
        let _ = Reflect::delete_property(&rest, &translate::snake(key).into());
    }
    let text = JSON::stringify(&rest)
        .map(String::from)
        .map_err(|_| config_error("the config cannot be read as JSON"))?;
    let value = translate::parse(&text).map_err(|e| config_error(format!("the config: {e}")))?;
    Config::from_value(translate::snake_keys(value))
        .map_err(|e| js_error(&translate::camel_config_error(e.into()), js::now()))
}

/// An event as `onEvent` hands it out (without the call's `url`): the engine's serde form with
/// camelCase keys and, where that form carries a `why`, its `explain` (what
/// `translate::event_json` makes as JSON).
pub(crate) fn event_js(event: &Event) -> JsValue {
    let value = to_js(event, Keys::Camel);
    let has_why = |o: &JsValue| o.is_object() && Reflect::has(o, &"why".into()).unwrap_or(false);
    if has_why(&value) || has_why(&get(&value, "failure")) {
        if let Some(why) = event.kind.why() {
            let _ = Reflect::set(&value, &"explain".into(), &why.explain().into());
        }
    }
    value
}

/// A plain callback for `onEvent`: the engine's event as the JS API spells it.
fn event_listener(callback: Function) -> crate::driver::Listener {
    Rc::new(move |event: &Event, info: Option<(&str, &str)>| {
        let value = event_js(event);
        if let Some((_, url)) = info {
            let _ = Reflect::set(&value, &"url".into(), &url.into());
        }
        if let Err(e) = callback.call1(&JsValue::NULL, &value) {
            console_error("resile: an onEvent callback threw", &e);
        }
    })
}

// ---- Client -------------------------------------------------------------------------------------

/// A resilient HTTP client: retries with backoff and Retry-After, a retry budget, a circuit
/// breaker, rate limits, a concurrency bulkhead and access tokens per host, all decided by
/// resile's engine. JavaScript's `Client`.
#[wasm_bindgen(js_name = Client)]
pub struct JsClient {
    driver: Driver,
}

#[wasm_bindgen(js_class = Client)]
impl JsClient {
    /// A client from a plain config object (see `ClientConfig`). Throws a `ResileError` with
    /// `code: "config"` naming the first bad field.
    #[wasm_bindgen(constructor)]
    pub fn new(config: Option<ClientConfig>) -> Result<JsClient, JsValue> {
        let config: JsValue = config.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        if present(&config) && !config.is_object() {
            return Err(config_error("the config must be an object"));
        }
        let base_url = get_either(&config, "baseUrl");
        let base_url = match present(&base_url) {
            false => None,
            true => Some(
                base_url
                    .as_string()
                    .ok_or_else(|| config_error("config field `baseUrl` must be a string"))?,
            ),
        };
        let mut options = Options {
            base_url,
            headers: headers_value(&get(&config, "headers"), "headers")?,
            seed: parse_seed(&get(&config, "seed"))?,
            token_provider: None,
            max_in_flight_per_host: limit_field(&config, "maxInFlightPerHost")?,
            ..Options::default()
        };
        if let Some(n) = limit_field(&config, "maxInFlight")? {
            options.max_in_flight = n;
        }
        let provider = get_either(&config, "tokenProvider");
        if present(&provider) {
            let f = provider
                .dyn_into::<Function>()
                .map_err(|_| config_error("config field `tokenProvider` must be a function"))?;
            options.token_provider = Some(js_provider(f));
        }
        let driver = Driver::new(engine_config(&config)?, options)
            .map_err(|e| js_error(&translate::camel_config_error(e.into()), js::now()))?;
        Ok(JsClient { driver })
    }

    /// Sends one logical request with any method; resolves to a `ResileResponse` for the final
    /// status (whatever it is: a 404 resolves), rejects with a `ResileError`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn request(&self, method: &str, url: String, options: Option<RequestOptions>) -> Promise {
        let Some(method) = Method::parse(method) else {
            return Promise::reject(&invalid(format!(
                "`{method}` is not a method this client sends"
            )));
        };
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        match request_spec(method, url, &options) {
            Ok(spec) => self.respond(method, spec),
            Err(e) => Promise::reject(&e),
        }
    }

    /// Runs `spec` to a `ResileResponse`, or a `ResileError`.
    fn respond(&self, method: Method, spec: RequestSpec) -> Promise {
        let driver = self.driver.clone();
        promise(Box::pin(async move {
            let url = driver
                .resolve(&spec.url)
                .unwrap_or_else(|_| spec.url.clone());
            match driver.request(spec).await {
                Ok(reply) => Ok(JsResponse::new(reply).into()),
                Err(e) => Err(call_error(method, &url, e)),
            }
        }))
    }

    /// `request("GET", url, options)`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn get(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("GET", url, options)
    }

    /// A GET whose body is read as it arrives and, where it breaks, taken up with `Range` /
    /// `If-Range` as the call's next attempt (same deadline, attempts and request id); a server
    /// that ignores `Range` sends the body again and only that one is kept. Resolves to a
    /// `ResileResponse` with the whole body; a resumed answer that cannot be used (416, a
    /// partial answer that is not the range asked for) rejects with `code: "resume"`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn download(&self, url: String, options: Option<RequestOptions>) -> Promise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        match request_spec(Method::Get, url, &options) {
            Ok(mut spec) => {
                spec.ends = resile_core::CallEnd::AfterBody;
                self.respond(Method::Get, spec)
            }
            Err(e) => Promise::reject(&e),
        }
    }

    /// `request("HEAD", url, options)`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn head(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("HEAD", url, options)
    }

    /// `request("POST", url, options)`: gets an automatic Idempotency-Key unless told otherwise.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn post(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("POST", url, options)
    }

    /// `request("PUT", url, options)`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn put(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("PUT", url, options)
    }

    /// `request("PATCH", url, options)`: gets an automatic Idempotency-Key unless told otherwise.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn patch(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("PATCH", url, options)
    }

    /// `request("DELETE", url, options)`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn delete(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("DELETE", url, options)
    }

    /// GETs and parses JSON; a final status outside 2xx rejects with `code: "status"`, a body
    /// that is not JSON with `code: "decode"`.
    #[wasm_bindgen(js_name = getJson, unchecked_return_type = "Promise<any>")]
    pub fn get_json(&self, url: String, options: Option<RequestOptions>) -> Promise {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let spec = match request_spec(Method::Get, url, &options) {
            Ok(s) => s,
            Err(e) => return Promise::reject(&e),
        };
        let driver = self.driver.clone();
        promise(Box::pin(async move {
            let url = driver
                .resolve(&spec.url)
                .unwrap_or_else(|_| spec.url.clone());
            let reply = driver
                .request(spec)
                .await
                .map_err(|e| call_error(Method::Get, &url, e))?;
            if !(200..300).contains(&reply.status) {
                return Err(status_error(Method::Get, &reply));
            }
            parse_json(&reply)
        }))
    }

    /// Pages through a collection, one item at a time: `for await (const item of
    /// client.paginate(url, {style: "cursor"}))`. Each page is a GET whose attempts and
    /// deadline come from the walk's shared allowance (the core's `WalkPolicy`); a walk that
    /// fails for good rejects `next()` with an error whose `resume` (and `resumeUrl`) says
    /// where to go on: `client.paginate(url, {...options, resume: error.resume})`. Its `signal`
    /// (an `AbortSignal`) stops the walk: the page in flight is cancelled and `next()` rejects
    /// with `code: "cancelled"`.
    #[wasm_bindgen(unchecked_return_type = "Paginator")]
    pub fn paginate(
        &self,
        url: String,
        options: Option<PaginateOptions>,
    ) -> Result<JsValue, JsValue> {
        let options: JsValue = options.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        let style_name = string_field(&options, "style")?.unwrap_or_else(|| "link".into());
        let count = |key: &str| -> Result<u64, JsValue> {
            Ok(number_field(&options, key)?.map_or(100, |n| n.max(1.0) as u64))
        };
        let (style, default_items) = match style_name.as_str() {
            "link" => (PageStyle::Link, None),
            "cursor" => {
                let pointer =
                    string_field(&options, "pointer")?.unwrap_or_else(|| "/next_cursor".into());
                let param = string_field(&options, "param")?.unwrap_or_else(|| "cursor".into());
                (
                    PageStyle::cursor(&pointer, &param),
                    Some("/items".to_string()),
                )
            }
            "offset" => (PageStyle::offset(count("limit")?), None),
            "page" => (PageStyle::page(count("perPage")?), None),
            other => {
                return Err(invalid(format!(
                    "`style` must be link, cursor, offset or page, not `{other}`"
                )))
            }
        };
        let items = string_field(&options, "items")?.or(default_items);
        let template = request_spec(Method::Get, String::new(), &options)?;
        let first = self.driver.resolve(&url).map_err(invalid)?;
        let walk = match string_field(&options, "resume")? {
            Some(token) => Walk::resume(&first, style, items, &token),
            None => Walk::new(&first, style, items),
        }
        .map_err(|e| invalid(e.to_string()))?;
        let defaults = WalkPolicy::default();
        let policy = WalkPolicy {
            retries: number_field(&options, "retries")?.map_or(defaults.retries, |n| {
                n.clamp(0.0, f64::from(u32::MAX)) as u32
            }),
            deadline_ms: template.deadline.map(|d| d.as_millis() as u64),
            ..defaults
        };
        let walk = walk.policy(policy);
        let walk = match number_field(&options, "maxPages")? {
            Some(max) => walk.max_pages(max as u64),
            None => walk,
        };
        Ok(iterable(Paginator {
            inner: Rc::new(PaginatorInner {
                driver: self.driver.clone(),
                template,
                walk: RefCell::new(walk),
                buffer: RefCell::new(VecDeque::new()),
                last: RefCell::new(None),
            }),
            tail: RefCell::new(Promise::resolve(&JsValue::UNDEFINED)),
        }))
    }

    /// Calls `callback` with every engine event, as a plain object with camelCase keys and an
    /// `explain` sentence for its `why` (see `ResileEvent`). Returns a function that removes it.
    #[wasm_bindgen(js_name = onEvent, unchecked_return_type = "() => void")]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ResileEvent) => void")] callback: Function,
    ) -> JsValue {
        let id = self.driver.add_listener(event_listener(callback));
        let driver = self.driver.downgrade();
        Closure::<dyn FnMut()>::new(move || {
            if let Some(d) = driver.upgrade() {
                d.remove_listener(id);
            }
        })
        .into_js_value()
    }

    /// Every known host's breaker, budget, limiter and server hold (see `HostState`).
    #[wasm_bindgen(unchecked_return_type = "HostState[]")]
    pub fn hosts(&self) -> JsValue {
        let now = self.driver.now();
        // Pushed one by one: `Array`'s `FromIterator` would be a copy of js-sys's collecting
        // code (1.5 KB of the module) for this one list.
        let hosts = Array::new();
        self.driver.with_engine(|e| {
            for h in e.hosts(now).iter() {
                hosts.push(&to_js(&translate::host_state(h, now), Keys::Camel));
            }
        });
        hosts.into()
    }

    /// The access token's state (see `TokenState`); never the token itself.
    #[wasm_bindgen(unchecked_return_type = "TokenState")]
    pub fn token(&self) -> JsValue {
        let now = self.driver.now();
        let last_error = self.driver.last_token_error();
        let state = self
            .driver
            .with_engine(|e| translate::token_state(&e.token_view(), now, last_error));
        to_js(&state, Keys::Camel)
    }

    /// Running totals: calls, attempts, retries, breaker trips, budget refusals, token fetches.
    #[wasm_bindgen(unchecked_return_type = "Stats")]
    pub fn stats(&self) -> JsValue {
        let stats = self.driver.with_engine(|e| e.stats());
        to_js(&stats, Keys::Camel)
    }

    /// The engine's config in force, with every default filled in (camelCase).
    #[wasm_bindgen(unchecked_return_type = "ClientConfig")]
    pub fn config(&self) -> JsValue {
        self.driver.with_engine(|e| to_js(e.config(), Keys::Camel))
    }
}

impl JsClient {
    /// The driver underneath, for Rust callers and tests.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }
}

// ---- ResileResponse -----------------------------------------------------------------------------

fn parse_json(reply: &Reply) -> Result<JsValue, JsValue> {
    JSON::parse(&String::from_utf8_lossy(&reply.body)).map_err(|e| {
        let detail = e
            .dyn_ref::<js_sys::Error>()
            .map(|e| String::from(e.message()))
            .unwrap_or_default();
        decode_error(&format!("the body of {} is not JSON", reply.url), &detail)
    })
}

/// A call's final response, body already read; shaped like fetch's `Response`. JavaScript's
/// `ResileResponse`.
#[wasm_bindgen(js_name = ResileResponse)]
pub struct JsResponse {
    reply: Reply,
    headers: web_sys::Headers,
}

impl JsResponse {
    fn new(reply: Reply) -> JsResponse {
        let headers = web_sys::Headers::new().unwrap_or_else(|_| {
            // `new Headers()` does not throw; a bare object keeps the API usable if it ever did.
            Object::new().unchecked_into()
        });
        for (k, v) in &reply.headers {
            // The browser handed these out, so it accepts them back.
            let _ = headers.append(k, v);
        }
        JsResponse { reply, headers }
    }

    /// The reply underneath.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }
}

#[wasm_bindgen(js_class = ResileResponse)]
impl JsResponse {
    /// The final status.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> u16 {
        self.reply.status
    }

    /// `status` is 2xx.
    #[wasm_bindgen(getter)]
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.reply.status)
    }

    /// The headers JavaScript may read, as fetch's `Headers` (cross-origin: only those the
    /// server exposes with Access-Control-Expose-Headers).
    #[wasm_bindgen(getter)]
    pub fn headers(&self) -> web_sys::Headers {
        self.headers.clone()
    }

    /// Attempts the call made.
    #[wasm_bindgen(getter)]
    pub fn attempts(&self) -> u32 {
        self.reply.attempts
    }

    /// The `X-Request-ID` sent on every attempt.
    #[wasm_bindgen(getter, js_name = requestId)]
    pub fn request_id(&self) -> String {
        self.reply.request_id.clone()
    }

    /// The URL that answered.
    #[wasm_bindgen(getter)]
    pub fn url(&self) -> String {
        self.reply.url.clone()
    }

    /// The call's number in the events (`call`).
    #[wasm_bindgen(getter)]
    pub fn call(&self) -> u32 {
        self.reply.call
    }

    /// A cross-origin response (CORS may hide headers).
    #[wasm_bindgen(getter, js_name = crossOrigin)]
    pub fn cross_origin(&self) -> bool {
        self.reply.cross_origin
    }

    /// The body as text (invalid UTF-8 replaced). The body was read before the engine decided,
    /// so unlike fetch's it can be read any number of times.
    #[wasm_bindgen(unchecked_return_type = "Promise<string>")]
    pub fn text(&self) -> Promise {
        Promise::resolve(&JsValue::from_str(&String::from_utf8_lossy(
            &self.reply.body,
        )))
    }

    /// The body parsed as JSON; rejects with a `ResileError` with `code: "decode"` if it is not.
    #[wasm_bindgen(unchecked_return_type = "Promise<any>")]
    pub fn json(&self) -> Promise {
        match parse_json(&self.reply) {
            Ok(v) => Promise::resolve(&v),
            Err(e) => Promise::reject(&e),
        }
    }

    /// The body as an `ArrayBuffer`.
    #[wasm_bindgen(js_name = arrayBuffer, unchecked_return_type = "Promise<ArrayBuffer>")]
    pub fn array_buffer(&self) -> Promise {
        Promise::resolve(&JsValue::from(
            Uint8Array::from(self.reply.body.as_slice()).buffer(),
        ))
    }

    /// The body as a `Uint8Array`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Uint8Array>")]
    pub fn bytes(&self) -> Promise {
        Promise::resolve(&JsValue::from(Uint8Array::from(self.reply.body.as_slice())))
    }
}

// ---- Paginator ----------------------------------------------------------------------------------
//
// The walk itself (`PaginatorInner::step`) is the pagination change's; this API only hands it a
// request template, which carries the caller's `signal`: aborting it cancels the page in flight,
// and every later `next()` rejects with `code: "cancelled"`.

/// The browser's driver of the core's [`Walk`]: it makes the page calls and sleeps when told;
/// the walk decides the rest.
struct PaginatorInner {
    driver: Driver,
    template: RequestSpec,
    walk: RefCell<Walk>,
    buffer: RefCell<VecDeque<JsValue>>,
    /// The last page call's URL and result when the walk did not take it in, for the error.
    last: RefCell<Option<(String, Result<Reply, CallError>)>>,
}

/// An async iterator over a collection's items (`for await`, or `next()` by hand). `next()`
/// calls are served in order; each resolves to `{value, done}`.
#[wasm_bindgen]
pub struct Paginator {
    inner: Rc<PaginatorInner>,
    tail: RefCell<Promise>,
}

fn iter_result(value: &JsValue, done: bool) -> JsValue {
    let o = Object::new();
    let _ = Reflect::set(&o, &"value".into(), value);
    let _ = Reflect::set(&o, &"done".into(), &done.into());
    o.into()
}

fn page_error(e: PaginateError) -> JsValue {
    js_error(&Error::Pagination(e), js::now())
}

/// What the walk needs to know of a failed page call (a request that could not start is a
/// failure no wait cures).
impl From<&CallError> for PageFailure {
    fn from(e: &CallError) -> Self {
        match e {
            CallError::Failed { failure, .. } => PageFailure::from(failure),
            CallError::Invalid(_) | CallError::Resume(_) => PageFailure {
                attempts: 0,
                again: Again::Never,
            },
        }
    }
}

/// Turns of [`PaginatorInner::step`] before it gives up on a walk that neither yields nor ends
/// (each turn feeds the walk one input, so a real walk never needs this many in a row).
const MAX_TURNS: u32 = 10_000;

impl PaginatorInner {
    async fn step(self: Rc<Self>) -> Result<JsValue, JsValue> {
        for _ in 0..MAX_TURNS {
            if let Some(item) = self.buffer.lend_mut().pop_front() {
                return Ok(iter_result(&item, false));
            }
            let step = self.walk.lend_mut().poll(self.driver.now());
            match step {
                Step::Done => return Ok(iter_result(&JsValue::UNDEFINED, true)),
                Step::Fail(e) => return Err(self.error(e)),
                Step::Wait { until, .. } => {
                    js::sleep(until.saturating_duration_since(self.driver.now())).await
                }
                Step::Fetch(call) => {
                    let mut spec = self.template.clone();
                    spec.url = call.url.clone();
                    spec.max_attempts = Some(call.max_attempts);
                    spec.deadline = call.deadline;
                    match self.driver.request(spec).await {
                        Ok(reply) => self.accept(call.url, reply),
                        Err(e) => {
                            let now = self.driver.now();
                            self.walk.lend_mut().failed(PageFailure::from(&e), now);
                            *self.last.lend_mut() = Some((call.url, Err(e)));
                        }
                    }
                }
            }
        }
        Err(resile_error(
            "pagination",
            "the walk made no progress",
            None,
        ))
    }

    fn accept(&self, url: String, reply: Reply) {
        let decoded = translate::parse_bytes(&reply.body).ok();
        let body = match &decoded {
            Some(v) => PageBody::Json(v),
            None => PageBody::Bytes(&reply.body),
        };
        let mut page = PageReply::new(reply.status, &reply.headers, body).attempts(reply.attempts);
        if !reply.url.is_empty() {
            page = page.url(&reply.url);
        }
        let taken = self.walk.lend_mut().accept(page);
        match taken {
            // Pushed one by one: `VecDeque::extend` from a mapped iterator is 2 KB of its own.
            Some(items) => {
                let mut buffer = self.buffer.lend_mut();
                for item in &items {
                    buffer.push_back(to_js(item, Keys::AsWritten));
                }
            }
            None => *self.last.lend_mut() = Some((url, Ok(reply))),
        }
    }

    /// The JS error for a stopped walk, with `resume` (the token) and `resumeUrl`.
    fn error(&self, e: WalkError) -> JsValue {
        let last = self.last.lend_mut().take();
        let error = match (e.stop, last) {
            (Stop::Call { .. }, Some((url, Err(error)))) => call_error(Method::Get, &url, error),
            (Stop::Status { .. }, Some((_, Ok(reply)))) => status_error(Method::Get, &reply),
            (Stop::NotJson { message }, Some((url, Ok(_)))) => {
                decode_error(&format!("the page {url} is not JSON"), &message)
            }
            (Stop::Page(p), _) => page_error(p),
            (Stop::Deadline, _) => resile_error(
                "timeout",
                "the walk's deadline passed before its next page",
                None,
            ),
            (stop, _) => resile_error("pagination", &stop.to_string(), None),
        };
        if let Some(resume) = &e.resume {
            let _ = Reflect::set(&error, &"resume".into(), &resume.token().into());
            let _ = Reflect::set(&error, &"resumeUrl".into(), &resume.url().into());
        }
        error
    }
}

#[wasm_bindgen]
impl Paginator {
    /// The next item: resolves to `{value, done: false}`, then `{value: undefined, done: true}`.
    #[wasm_bindgen(unchecked_return_type = "Promise<IteratorResult<any>>")]
    pub fn next(&self) -> Promise {
        let previous = self.tail.lend().clone();
        let inner = self.inner.clone();
        let promise = promise(Box::pin(async move {
            // Serve calls in order: a second next() waits for the first.
            let _ = JsFuture::from(previous).await;
            if inner.template.signal.as_ref().is_some_and(|s| s.aborted()) {
                // The engine cancels a call whose signal has aborted: one more (empty) call
                // gives the caller the engine's own `cancelled` error.
                let url = inner
                    .walk
                    .lend()
                    .resume_point()
                    .map(|r| r.url().to_string())
                    .unwrap_or_else(|| inner.template.url.clone());
                let mut spec = inner.template.clone();
                spec.url = url.clone();
                return match inner.driver.request(spec).await {
                    Err(e) => Err(call_error(Method::Get, &url, e)),
                    Ok(_) => Ok(iter_result(&JsValue::UNDEFINED, true)),
                };
            }
            inner.step().await
        }));
        *self.tail.lend_mut() = promise.clone();
        promise
    }

    /// Stops early (called by `for await` on `break`).
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<any>>"
    )]
    pub fn stop(&self) -> Promise {
        self.inner.walk.lend_mut().finish();
        // Replaced rather than cleared: `clear` is `truncate`, a copy of its own, where the
        // old buffer's drop is the one the paginator has anyway.
        *self.inner.buffer.lend_mut() = VecDeque::new();
        Promise::resolve(&iter_result(&JsValue::UNDEFINED, true))
    }

    /// Pages fetched so far.
    #[wasm_bindgen(getter)]
    pub fn pages(&self) -> f64 {
        self.inner.walk.lend().progress().0 as f64
    }

    /// Items received so far.
    #[wasm_bindgen(getter)]
    pub fn items(&self) -> f64 {
        self.inner.walk.lend().progress().1 as f64
    }

    /// Where the walk would go on now (pass it as the `resume` option), or `undefined` at the
    /// end of the collection.
    #[wasm_bindgen(getter)]
    pub fn resume(&self) -> Option<String> {
        let walk = self.inner.walk.lend();
        walk.resume_point().map(|r| r.token().to_string())
    }
}

/// Makes a `Paginator` usable with `for await` (`paginate` returns it through this).
fn iterable(p: Paginator) -> JsValue {
    js::async_iterable(p.into())
}
