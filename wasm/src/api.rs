//! The JavaScript / TypeScript API: `Client`, `ResileResponse`, `Paginator`, `ResileError`.

use core::cell::RefCell;
use core::time::Duration;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array, JSON};
use resile_core::paginate::{
    Again, Body as PageBody, PageFailure, PageReply, PageStyle, PaginateError, Step, Stop, Walk,
    WalkError, WalkPolicy,
};
use resile_core::{Config, Event, Method};
use serde_json::{json, Value};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::driver::{Body, CallError, Driver, Grant, Options, Reply, RequestSpec, TokenProvider};
use crate::js;
use crate::translate::{self, KeyOption, CLIENT_ONLY_KEYS};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Jitter of the exponential backoff (Brooker, "Exponential Backoff And Jitter"). */
export type Jitter = "none" | "full" | "equal" | "decorrelated";

/**
 * The client's configuration. Engine fields are the same (snake_case) as resile-core's serde
 * `Config`, every duration in whole milliseconds in a field ending in `_ms`; missing fields take
 * the core's production defaults, unknown fields are an error (`code: "config"`, the message
 * names the field). `baseUrl`, `headers`, `seed` and `tokenProvider` belong to the client.
 */
export interface ClientConfig {
  /** Relative URLs resolve against it (default: the page's location). */
  baseUrl?: string;
  /** Sent on every request. */
  headers?: Record<string, string>;
  /** The engine's seed (jitter, request ids, idempotency keys); default: crypto.getRandomValues. */
  seed?: number | bigint;
  /**
   * Fetches an access token. Called by the engine, one fetch at a time however many calls wait
   * (single flight), early when the token is within `token.refresh_skew_ms` of expiring, and once
   * after a 401. Calls carry `Authorization: Bearer …` when the client has a provider.
   */
  tokenProvider?: () => Promise<TokenGrant> | TokenGrant;
  retry?: {
    max_attempts?: number;
    attempt_timeout_ms?: number | null;
    deadline_ms?: number | null;
    retry_statuses?: number[];
    respect_retry_after?: boolean;
    max_retry_after_ms?: number;
    /** Calls waiting out a server hold wake spread over this fraction of their wait after it ends. */
    hold_spread?: number;
  };
  backoff?: { base_ms?: number; factor?: number; cap_ms?: number; jitter?: Jitter };
  budget?: { enabled?: boolean; ratio?: number; reserve?: number; max_saved?: number };
  breaker?: {
    enabled?: boolean;
    consecutive_failures?: number;
    failure_rate?: number | null;
    window_ms?: number;
    min_calls?: number;
    open_ms?: number;
    open_growth?: number;
    max_open_ms?: number;
    half_open_probes?: number;
  };
  limit?: { per_second: number; burst?: number } | null;
  /** Learn each host's pace from its RateLimit-Policy / remaining quota (tightens only). */
  learn_limits?: boolean;
  token?: { refresh_skew_ms?: number; refresh_on_401?: boolean };
  max_hosts?: number;
  max_queued_events?: number;
}

/** What a token provider resolves to. `expiresIn` is in seconds, like OAuth2's `expires_in`. */
export interface TokenGrant {
  accessToken: string;
  expiresIn?: number;
}

/** Options of one call. */
export interface RequestOptions {
  headers?: Record<string, string>;
  /** A body sent as is (kept, so every attempt can send it again). */
  body?: string | Uint8Array | ArrayBuffer;
  /** A value sent as JSON (sets Content-Type: application/json). */
  json?: unknown;
  /**
   * "auto" (default): POST and PATCH get a generated key, the same on every attempt, so they can
   * be retried safely; "off": no key, a write that may have been applied is never repeated; any
   * other string: your own key, sent on every attempt.
   */
  idempotencyKey?: "auto" | "off" | string;
  /** The call's total time, waits included (default `retry.deadline_ms`). */
  deadlineMs?: number;
  /** Attempts for this call (default `retry.max_attempts`). */
  maxAttempts?: number;
  /** Attach the access token (default: when the client has a tokenProvider). */
  token?: boolean;
  /** Aborting it cancels the call: the attempt in flight is aborted, the promise rejects with `code: "cancelled"`. */
  signal?: AbortSignal;
}

/** How to page through a collection. */
export interface PaginateOptions extends Omit<RequestOptions, "body" | "json" | "idempotencyKey" | "signal" | "maxAttempts" | "deadlineMs"> {
  /** Retries the whole walk may spend over all its pages; each page that arrives earns one
   * back (default 10). A page takes as many attempts as the walk has left. */
  retries?: number;
  /** The whole walk's deadline; each page gets the time left (default: none, each page keeps
   * the configured per-call deadline). */
  deadlineMs?: number;
  /** "link" (default): RFC 8288 `Link: <…>; rel="next"`; "cursor": a cursor in the body;
   * "offset": offset/limit; "page": page/per_page (stops at X-Total-Count). */
  style?: "link" | "cursor" | "offset" | "page";
  /** Cursor style: JSON pointer to the next cursor in the body (default "/next_cursor"). */
  pointer?: string;
  /** Cursor style: the query parameter that sends it back (default "cursor"). */
  param?: string;
  /** Offset style: items per page (default 100). */
  limit?: number;
  /** Page style: items per page (default 100). */
  perPage?: number;
  /** JSON pointer to the items in a page body (default: the body is the array; "/items" for cursor style). */
  items?: string;
  /** Safety bound on pages (default one million). */
  maxPages?: number;
  /** Start where an earlier walk over the same URL stopped: the `resume` of its error. */
  resume?: string;
}

export type ResileErrorCode =
  | "timeout" | "unavailable" | "rate_limited" | "retries_exhausted" | "not_retried" | "auth"
  | "cancelled" | "overloaded" | "status" | "decode" | "pagination" | "config" | "invalid";

/** Every rejection of this API is an `Error` with `name === "ResileError"`. */
export interface ResileError extends Error {
  name: "ResileError";
  code: ResileErrorCode;
  /** Whether trying the whole call again later could succeed. */
  retryable: boolean;
  /** Whether the server may have applied the request (a write may have happened). */
  maybeProcessed: boolean;
  /** The engine's reason (snake_case `Why`) and its one-line explanation. */
  why?: string;
  explain?: string;
  attempts?: number;
  /** The last status, or the last transport failure ("timeout", "reset", "truncated"). */
  status?: number;
  transport?: string;
  /** When the host may be tried again (breaker open), in ms from the failure. */
  retryAfterMs?: number;
  tokenError?: string;
  /** A paginated walk that stopped: pass this as `paginate`'s `resume` option to go on. */
  resume?: string;
  /** The same resume point as a whole URL. */
  resumeUrl?: string;
}

export type Why = string;
export type AttemptResult = { status: number } | { transport: string };

interface EventBase { at_ms: number; explain?: string }
/** The engine's events, as plain objects (times in ms on the `performance.now()` clock). */
export type ResileEvent = EventBase & (
  | { event: "call_started"; call: number; host: string; method: string; url?: string }
  | { event: "attempt_started"; call: number; attempt: number; timeout_ms: number | null; probe: boolean }
  | { event: "attempt_finished"; call: number; attempt: number; result: AttemptResult; why: Why }
  | { event: "retry_scheduled"; call: number; attempt: number; delay_ms: number; why: Why }
  | { event: "waiting"; call: number; until_ms: number; why: Why }
  | { event: "waiting_for_token"; call: number; why: Why }
  | { event: "host_held"; host: string; until_ms: number; why: Why }
  | { event: "hint_unreadable"; call: number }
  | { event: "breaker_opened"; host: string; until_ms: number; trips: number }
  | { event: "breaker_half_open"; host: string }
  | { event: "breaker_closed"; host: string }
  | { event: "budget_exhausted"; host: string; call: number }
  | { event: "token_fetch_started"; why: Why }
  | { event: "token_refreshed"; generation: number; expires_in_ms: number | null }
  | { event: "token_fetch_failed"; calls_failed: number }
  | { event: "call_succeeded"; call: number; status: number; attempts: number; elapsed_ms: number }
  | { event: "call_failed"; call: number; elapsed_ms: number;
      failure: { why: Why; attempts: number; last: AttemptResult | null; retry_at_ms: number | null; processed: "never" | "maybe" | "yes" } }
);

/** One host's state (times in ms on the `performance.now()` clock, like `now_ms`). */
export interface HostState {
  host: string;
  breaker: "closed" | "open" | "half_open";
  open_until_ms: number | null;
  consecutive_failures: number;
  budget_available: number;
  limiter_next_free_ms: number | null;
  held_until_ms: number | null;
  active_calls: number;
  now_ms: number;
}

/** The access token's state. */
export interface TokenState {
  generation: number;
  valid: boolean;
  fetching: boolean;
  expires_at_ms: number | null;
  expires_in_ms: number | null;
  now_ms: number;
  last_error: string | null;
}

export interface Paginator {
  [Symbol.asyncIterator](): Paginator;
}
"#;

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

// ---- errors -------------------------------------------------------------------------------------

fn to_js(value: &Value) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| JSON::parse(&text).ok())
        .unwrap_or(JsValue::NULL)
}

/// A `ResileError`: an `Error` with a stable `name` and `code`, `retryable`, `maybeProcessed`,
/// and whatever else `fields` holds.
pub(crate) fn resile_error(code: &str, message: &str, fields: &Value) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("ResileError");
    let object: &JsValue = error.as_ref();
    let _ = Reflect::set(object, &"code".into(), &code.into());
    let _ = Reflect::set(object, &"retryable".into(), &false.into());
    let _ = Reflect::set(object, &"maybeProcessed".into(), &false.into());
    if let Value::Object(map) = fields {
        for (k, v) in map {
            let _ = Reflect::set(object, &k.as_str().into(), &to_js(v));
        }
    }
    error.into()
}

fn call_error(method: Method, url: &str, error: CallError) -> JsValue {
    match error {
        CallError::Failed {
            failure,
            at,
            token_error,
        } => {
            let mut message = translate::failure_message(method.as_str(), url, &failure);
            let mut fields = translate::failure_fields(&failure, at);
            if let Some(t) = token_error {
                message.push_str(&format!(" ({t})"));
                fields["tokenError"] = json!(t);
            }
            resile_error(translate::failure_code(failure.kind()), &message, &fields)
        }
        CallError::Invalid(message) => resile_error("invalid", &message, &Value::Null),
    }
}

fn status_error(method: Method, reply: &Reply) -> JsValue {
    resile_error(
        "status",
        &format!(
            "{method} {} answered {} after {} attempt(s)",
            reply.url, reply.status, reply.attempts
        ),
        &json!({
            "status": reply.status,
            "attempts": reply.attempts,
            "maybeProcessed": true,
        }),
    )
}

fn decode_error(what: &str, detail: &str) -> JsValue {
    resile_error("decode", &format!("{what}: {detail}"), &Value::Null)
}

fn invalid(message: impl AsRef<str>) -> JsValue {
    resile_error("invalid", message.as_ref(), &Value::Null)
}

// ---- reading JS values --------------------------------------------------------------------------

fn get(object: &JsValue, key: &str) -> JsValue {
    if object.is_object() {
        Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
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
    let v = get(object, key);
    if !present(&v) {
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
    spec.key = KeyOption::parse(key.as_deref());
    spec.deadline =
        number_field(options, "deadlineMs")?.map(|ms| Duration::from_secs_f64(ms / 1000.0));
    spec.max_attempts = number_field(options, "maxAttempts")?.map(|n| n.clamp(1.0, 100.0) as u32);
    let token = get(options, "token");
    spec.token = token.as_bool();
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
    } else if present(&body) {
        return Err(invalid(
            "`body` must be a string, a Uint8Array or an ArrayBuffer (or use `json`)",
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
    Err(resile_error(
        "config",
        "config field `seed` must be a whole number from 0 to 2^53 - 1, or a BigInt below 2^64",
        &Value::Null,
    ))
}

// ---- Client -------------------------------------------------------------------------------------

/// A resilient HTTP client: retries with backoff and Retry-After, a retry budget, a circuit
/// breaker, rate limits and access tokens per host, all decided by resile's engine.
#[wasm_bindgen]
pub struct Client {
    driver: Driver,
}

#[wasm_bindgen]
impl Client {
    /// A client from a plain config object (see `ClientConfig`). Throws a `ResileError` with
    /// `code: "config"` naming the first bad field.
    #[wasm_bindgen(constructor)]
    pub fn new(config: Option<ClientConfig>) -> Result<Client, JsValue> {
        let config: JsValue = config.map(Into::into).unwrap_or(JsValue::UNDEFINED);
        if present(&config) && !config.is_object() {
            return Err(resile_error(
                "config",
                "the config must be an object",
                &Value::Null,
            ));
        }
        let mut options = Options {
            base_url: string_field(&config, "baseUrl")?,
            headers: headers_field(&config, "headers")?,
            seed: parse_seed(&get(&config, "seed"))?,
            token_provider: None,
        };
        let provider = get(&config, "tokenProvider");
        if present(&provider) {
            let f = provider.dyn_into::<Function>().map_err(|_| {
                resile_error(
                    "config",
                    "config field `tokenProvider` must be a function",
                    &Value::Null,
                )
            })?;
            options.token_provider = Some(js_provider(f));
        }
        let engine_config = if present(&config) {
            let rest = Object::assign(&Object::new(), config.unchecked_ref());
            for key in CLIENT_ONLY_KEYS {
                let _ = Reflect::delete_property(&rest, &key.into());
            }
            let text = JSON::stringify(&rest).map(String::from).map_err(|_| {
                resile_error("config", "the config cannot be read as JSON", &Value::Null)
            })?;
            Config::from_json(&text)
                .map_err(|e| resile_error("config", &e.to_string(), &Value::Null))?
        } else {
            Config::default()
        };
        let driver = Driver::new(engine_config, options)
            .map_err(|e| resile_error("config", &e.to_string(), &Value::Null))?;
        Ok(Client { driver })
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
        let spec = match request_spec(method, url, &options) {
            Ok(s) => s,
            Err(e) => return Promise::reject(&e),
        };
        let driver = self.driver.clone();
        future_to_promise(async move {
            let url = driver
                .resolve(&spec.url)
                .unwrap_or_else(|_| spec.url.clone());
            match driver.request(spec).await {
                Ok(reply) => Ok(ResileResponse { reply }.into()),
                Err(e) => Err(call_error(method, &url, e)),
            }
        })
    }

    /// `request("GET", url, options)`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ResileResponse>")]
    pub fn get(&self, url: String, options: Option<RequestOptions>) -> Promise {
        self.request("GET", url, options)
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
        future_to_promise(async move {
            let url = driver
                .resolve(&spec.url)
                .unwrap_or_else(|_| spec.url.clone());
            let reply = driver
                .request(spec)
                .await
                .map_err(|e| call_error(Method::Get, &url, e))?;
            let response = ResileResponse { reply };
            if !response.ok() {
                return Err(status_error(Method::Get, &response.reply));
            }
            response.json()
        })
    }

    /// Pages through a collection, one item at a time: `for await (const item of
    /// client.paginate(url, {style: "cursor"}))`. Each page is a GET whose attempts and
    /// deadline come from the walk's shared allowance (the core's `WalkPolicy`); a walk that
    /// fails for good rejects `next()` with an error whose `resume` (and `resumeUrl`) says
    /// where to go on: `client.paginate(url, {...options, resume: error.resume})`.
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

    /// Calls `callback` with every engine event, as a plain object with an `explain` sentence
    /// for its `why` (see `ResileEvent`). Returns an id for `offEvent`.
    #[wasm_bindgen(js_name = onEvent)]
    pub fn on_event(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: ResileEvent) => void")] callback: Function,
    ) -> u32 {
        self.driver
            .add_listener(Rc::new(move |event: &Event, info: Option<(&str, &str)>| {
                let mut value = translate::event_json(event);
                if let (Some((_, url)), Value::Object(map)) = (info, &mut value) {
                    map.insert("url".into(), json!(url));
                }
                if let Err(e) = callback.call1(&JsValue::NULL, &to_js(&value)) {
                    console_error("resile: an onEvent callback threw", &e);
                }
            }))
    }

    /// Removes an `onEvent` callback; `false` when the id is unknown.
    #[wasm_bindgen(js_name = offEvent)]
    pub fn off_event(&self, id: u32) -> bool {
        self.driver.remove_listener(id)
    }

    /// Every known host's breaker, budget, limiter and server hold (see `HostState`).
    #[wasm_bindgen(unchecked_return_type = "HostState[]")]
    pub fn hosts(&self) -> JsValue {
        let now = self.driver.now();
        let hosts: Vec<Value> = self.driver.with_engine(|e| {
            e.hosts(now)
                .iter()
                .map(|h| translate::host_json(h, now))
                .collect()
        });
        to_js(&Value::Array(hosts))
    }

    /// The access token's state (see `TokenState`); never the token itself.
    #[wasm_bindgen(unchecked_return_type = "TokenState")]
    pub fn token(&self) -> JsValue {
        let now = self.driver.now();
        let mut value = self
            .driver
            .with_engine(|e| translate::token_json(&e.token_view(), now));
        value["last_error"] = json!(self.driver.last_token_error());
        to_js(&value)
    }

    /// Running totals: calls, attempts, retries, breaker trips, budget refusals, token fetches.
    #[wasm_bindgen(unchecked_return_type = "Record<string, number>")]
    pub fn stats(&self) -> JsValue {
        let stats = self.driver.with_engine(|e| e.stats());
        to_js(&serde_json::to_value(stats).unwrap_or(Value::Null))
    }

    /// The engine's config in force, with every default filled in.
    #[wasm_bindgen(unchecked_return_type = "ClientConfig")]
    pub fn config(&self) -> JsValue {
        let config = self
            .driver
            .with_engine(|e| serde_json::to_value(e.config()).unwrap_or(Value::Null));
        to_js(&config)
    }
}

impl Client {
    /// The driver underneath, for Rust callers and tests.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }
}

// ---- ResileResponse -----------------------------------------------------------------------------

/// A call's final response, body already read.
#[wasm_bindgen]
pub struct ResileResponse {
    reply: Reply,
}

impl ResileResponse {
    /// The reply underneath.
    pub fn reply(&self) -> &Reply {
        &self.reply
    }
}

#[wasm_bindgen]
impl ResileResponse {
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

    /// The headers JavaScript may read, lowercase names (cross-origin: only those the server
    /// exposes with Access-Control-Expose-Headers).
    #[wasm_bindgen(getter, unchecked_return_type = "Record<string, string>")]
    pub fn headers(&self) -> JsValue {
        let map: serde_json::Map<String, Value> = self
            .reply
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        to_js(&Value::Object(map))
    }

    /// One header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<String> {
        self.reply
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
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

    /// The body as text (invalid UTF-8 replaced). Synchronous: the body is already read, but
    /// `await response.text()` works as with fetch.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.reply.body).into_owned()
    }

    /// The body parsed as JSON; a `ResileError` with `code: "decode"` if it is not JSON.
    pub fn json(&self) -> Result<JsValue, JsValue> {
        JSON::parse(&self.text()).map_err(|e| {
            let detail = e
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
                .unwrap_or_default();
            decode_error(
                &format!("the body of {} is not JSON", self.reply.url),
                &detail,
            )
        })
    }

    /// The body as bytes.
    pub fn bytes(&self) -> Uint8Array {
        Uint8Array::from(self.reply.body.as_slice())
    }
}

// ---- Paginator ----------------------------------------------------------------------------------

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
    let code = match e {
        PaginateError::Repeated(_) | PaginateError::TooManyPages { .. } => "pagination",
        _ => "decode",
    };
    resile_error(code, &e.to_string(), &Value::Null)
}

/// What the walk needs to know of a failed page call (a request that could not start is a
/// failure no wait cures).
impl From<&CallError> for PageFailure {
    fn from(e: &CallError) -> Self {
        match e {
            CallError::Failed { failure, .. } => PageFailure::from(failure),
            CallError::Invalid(_) => PageFailure {
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
            if let Some(item) = self.buffer.borrow_mut().pop_front() {
                return Ok(iter_result(&item, false));
            }
            let step = self.walk.borrow_mut().poll(self.driver.now());
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
                            self.walk.borrow_mut().failed(PageFailure::from(&e), now);
                            *self.last.borrow_mut() = Some((call.url, Err(e)));
                        }
                    }
                }
            }
        }
        Err(resile_error(
            "pagination",
            "the walk made no progress",
            &Value::Null,
        ))
    }

    fn accept(&self, url: String, reply: Reply) {
        let decoded = serde_json::from_slice::<Value>(&reply.body).ok();
        let body = match &decoded {
            Some(v) => PageBody::Json(v),
            None => PageBody::Bytes(&reply.body),
        };
        let mut page = PageReply::new(reply.status, &reply.headers, body).attempts(reply.attempts);
        if !reply.url.is_empty() {
            page = page.url(&reply.url);
        }
        let taken = self.walk.borrow_mut().accept(page);
        match taken {
            Some(items) => self.buffer.borrow_mut().extend(items.iter().map(to_js)),
            None => *self.last.borrow_mut() = Some((url, Ok(reply))),
        }
    }

    /// The JS error for a stopped walk, with `resume` (the token) and `resumeUrl`.
    fn error(&self, e: WalkError) -> JsValue {
        let last = self.last.borrow_mut().take();
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
                &Value::Null,
            ),
            (stop, _) => resile_error("pagination", &stop.to_string(), &Value::Null),
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
        let previous = self.tail.borrow().clone();
        let inner = self.inner.clone();
        let promise = future_to_promise(async move {
            // Serve calls in order: a second next() waits for the first.
            let _ = JsFuture::from(previous).await;
            inner.step().await
        });
        *self.tail.borrow_mut() = promise.clone();
        promise
    }

    /// Stops early (called by `for await` on `break`).
    #[wasm_bindgen(
        js_name = "return",
        unchecked_return_type = "Promise<IteratorResult<any>>"
    )]
    pub fn stop(&self) -> Promise {
        self.inner.walk.borrow_mut().finish();
        self.inner.buffer.borrow_mut().clear();
        Promise::resolve(&iter_result(&JsValue::UNDEFINED, true))
    }

    /// Pages fetched so far.
    #[wasm_bindgen(getter)]
    pub fn pages(&self) -> f64 {
        self.inner.walk.borrow().progress().0 as f64
    }

    /// Items received so far.
    #[wasm_bindgen(getter)]
    pub fn items(&self) -> f64 {
        self.inner.walk.borrow().progress().1 as f64
    }

    /// Where the walk would go on now (pass it as the `resume` option), or `undefined` at the
    /// end of the collection.
    #[wasm_bindgen(getter)]
    pub fn resume(&self) -> Option<String> {
        let walk = self.inner.walk.borrow();
        walk.resume_point().map(|r| r.token().to_string())
    }
}

/// Makes a `Paginator` usable with `for await` (`paginate` returns it through this).
fn iterable(p: Paginator) -> JsValue {
    js::async_iterable(p.into())
}
