//! Request bodies in headless Chromium against the chaos server: a body factory makes a fresh
//! `ReadableStream` for every attempt (read into a Blob before it is sent, since Chromium
//! streams request bodies only over HTTP/2), and a `ReadableStream` given as is is sent once.
//!
//! Built and run by `scripts/test-wasm.sh`, which passes the chaos server's URL.
#![cfg(target_arch = "wasm32")]

use core::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use resile_core::{Config, Method, Why};
use resile_wasm::driver::{Body, CallError, Driver, Options, RequestSpec};
use resile_wasm::js_api::{ClientConfig, JsClient};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const LEN: usize = 64 << 10;

/// The chaos server's URL, compiled in by `scripts/test-wasm.sh` (a run without it fails).
fn chaos() -> String {
    match option_env!("RESILE_CHAOS_URL") {
        Some(url) if !url.is_empty() => url.trim_end_matches('/').to_string(),
        _ => panic!(
            "RESILE_CHAOS_URL was not set when the tests were built: run scripts/test-wasm.sh"
        ),
    }
}

/// A key no earlier run used on this server.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", js_sys::Date::now() as u64)
}

fn driver() -> Driver {
    let config = Config::from_json(r#"{"backoff":{"base_ms":10,"jitter":"none"}}"#).unwrap();
    Driver::new(config, Options::default()).expect("valid config")
}

/// A JS function that returns a new two-chunk `ReadableStream` of `LEN` bytes on every call,
/// counting its calls in `globalThis[counter]`.
fn stream_factory(counter: &str) -> Function {
    let half = LEN / 2;
    Function::new_no_args(&format!(
        "globalThis['{counter}'] = (globalThis['{counter}'] || 0) + 1;
         const bytes = new Uint8Array({LEN}).map((_, i) => i % 251);
         return new ReadableStream({{ start(c) {{
             c.enqueue(bytes.subarray(0, {half})); c.enqueue(bytes.subarray({half})); c.close();
         }} }});"
    ))
}

fn made(counter: &str) -> f64 {
    Reflect::get(&js_sys::global(), &JsValue::from_str(counter))
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0)
}

/// What `/upload-retry` logged for `key`: the length of every body received.
async fn uploads(d: &Driver, chaos: &str, key: &str) -> Vec<u64> {
    let reply = d
        .request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/transfers/{key}"),
        ))
        .await
        .unwrap_or_else(|_| panic!("the log of {key}"));
    let log: Value = serde_json::from_slice(&reply.body).expect("JSON log");
    log["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .map(|u| u[0].as_u64().expect("a length"))
        .collect()
}

#[wasm_bindgen_test]
async fn a_streamed_upload_is_retried_through_its_factory() {
    let chaos = chaos();
    let d = driver();
    let key = unique("factory-put");
    let mut spec = RequestSpec::new(
        Method::Put,
        format!("{chaos}/upload-retry?key={key}&fail=2"),
    );
    spec.body = Some(Body::Factory(stream_factory(&key)));
    let reply = match d.request(spec).await {
        Ok(r) => r,
        Err(_) => panic!("the upload failed"),
    };
    assert_eq!((reply.status, reply.attempts), (200, 3));
    assert_eq!(made(&key), 3.0, "one stream per attempt");
    assert_eq!(
        uploads(&d, &chaos, &key).await,
        vec![LEN as u64; 3],
        "the whole body every time"
    );
}

#[wasm_bindgen_test]
async fn a_one_shot_stream_is_sent_once_and_its_retry_refused() {
    let chaos = chaos();
    let d = driver();
    let key = unique("stream-once");
    let stream = stream_factory(&key).call0(&JsValue::NULL).unwrap();
    let mut spec = RequestSpec::new(
        Method::Put,
        format!("{chaos}/upload-retry?key={key}&fail=1"),
    );
    spec.body = Some(Body::Stream(Rc::new(RefCell::new(Some(stream)))));
    match d.request(spec).await {
        Err(CallError::Failed { failure, .. }) => {
            assert_eq!((failure.why, failure.attempts), (Why::BodyNotReplayable, 1))
        }
        _ => panic!("a one-shot stream must not be retried"),
    }
    assert_eq!(uploads(&d, &chaos, &key).await, vec![LEN as u64]);
}

#[wasm_bindgen_test]
async fn the_js_api_takes_a_function_as_body() {
    let chaos = chaos();
    let config: ClientConfig = js_sys::JSON::parse(r#"{"backoff":{"baseMs":10,"jitter":"none"}}"#)
        .unwrap()
        .unchecked_into();
    let client = JsClient::new(Some(config)).expect("client");
    let key = unique("js-factory");
    let options = Object::new();
    Reflect::set(&options, &"body".into(), &stream_factory(&key)).unwrap();
    let url = format!("{chaos}/upload-retry?key={key}&fail=1");
    let response = JsFuture::from(client.request("POST", url, Some(options.unchecked_into())))
        .await
        .expect("the POST succeeds under its Idempotency-Key");
    let status = Reflect::get(&response, &"status".into()).unwrap().as_f64();
    assert_eq!(status, Some(200.0));
    assert_eq!(made(&key), 2.0);
}
