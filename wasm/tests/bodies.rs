//! Request bodies in headless Chromium against the chaos server: a body factory makes a fresh
//! `ReadableStream` for every attempt (read into a Blob before it is sent, since Chromium
//! streams request bodies only over HTTP/2), and a `ReadableStream` given as is is sent once.
//! Downloads read their body as it arrives and take it up where it breaks (`/download/{n}`).
//!
//! Built and run by `scripts/test-wasm.sh`, which passes the chaos server's URL.
#![cfg(target_arch = "wasm32")]

use core::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Reflect};
use resile_core::{CallEnd, Config, Method, Why};
use resile_wasm::driver::{Body, CallError, Driver, Options, Reply, RequestSpec};
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

/// What `/download/{n}` and `/upload-retry` logged for `key`.
async fn transfers(d: &Driver, chaos: &str, key: &str) -> Value {
    let reply = d
        .request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/transfers/{key}"),
        ))
        .await
        .unwrap_or_else(|_| panic!("the log of {key}"));
    serde_json::from_slice(&reply.body).expect("JSON log")
}

/// What `/upload-retry` logged for `key`: the length of every body received.
async fn uploads(d: &Driver, chaos: &str, key: &str) -> Vec<u64> {
    let log = transfers(d, chaos, key).await;
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

/// The file `/download/{DOWNLOAD}` serves for `seed`, fetched whole from `/bytes/{n}`.
const DOWNLOAD: usize = 256 << 10;

async fn the_file(d: &Driver, chaos: &str, seed: u64) -> Vec<u8> {
    let reply = d
        .request(RequestSpec::new(
            Method::Get,
            format!("{chaos}/bytes/{DOWNLOAD}?seed={seed}"),
        ))
        .await
        .unwrap_or_else(|_| panic!("the whole file"));
    assert_eq!(reply.body.len(), DOWNLOAD);
    reply.body
}

/// A download of `query` on `/download/{DOWNLOAD}` under a new key: its reply and its log.
async fn download(d: &Driver, chaos: &str, key: &str, query: &str) -> (Reply, Value) {
    let mut spec = RequestSpec::new(
        Method::Get,
        format!("{chaos}/download/{DOWNLOAD}?key={key}&seed=11{query}"),
    );
    spec.ends = CallEnd::AfterBody;
    let reply = match d.request(spec).await {
        Ok(r) => r,
        Err(e) => panic!("the download failed: {e:?}"),
    };
    (reply, transfers(d, chaos, key).await)
}

#[wasm_bindgen_test]
async fn a_download_broken_at_half_resumes_from_the_last_byte() {
    let chaos = chaos();
    let d = driver();
    let key = unique("download-half");
    let (reply, log) = download(&d, &chaos, &key, "").await;
    assert!(
        reply.body == the_file(&d, &chaos, 11).await,
        "the file, byte for byte"
    );
    assert_eq!(
        (reply.status, reply.attempts),
        (200, 2),
        "the resume is the call's second attempt"
    );
    let downloads = log["downloads"].as_array().expect("downloads");
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    assert_eq!(downloads[0], serde_json::json!([null, 200]));
    let asked = downloads[1][0].as_str().unwrap_or_default();
    let from: u64 = asked
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Range `{asked}`"));
    assert!(from > 0 && from <= DOWNLOAD as u64 / 2, "{asked}");
    assert_eq!(downloads[1][1], 206);
    let sent = log["bytes_sent"].as_u64().expect("bytes_sent");
    assert!(
        sent as f64 <= 1.1 * DOWNLOAD as f64,
        "{sent} bytes sent for a {DOWNLOAD}-byte file"
    );
    // The same call: one request id on both requests.
    assert!(!reply.request_id.is_empty());
    assert_eq!(
        log["request_ids"],
        serde_json::json!([reply.request_id, reply.request_id])
    );
}

/// A server that goes silent part-way, the connection open (for 20 s): after an attempt's time
/// without a byte (1 s here) the body is taken up from where it stopped, well inside the
/// call's 8 s deadline that waiting the stall out would pass.
#[wasm_bindgen_test]
async fn a_download_that_stalls_is_taken_up_where_it_stopped() {
    let chaos = chaos();
    let config = Config::from_json(
        r#"{"backoff":{"base_ms":10,"jitter":"none"},
            "retry":{"attempt_timeout_ms":1000,"deadline_ms":8000}}"#,
    )
    .unwrap();
    let d = Driver::new(config, Options::default()).expect("valid config");
    let key = unique("download-stall");
    let (reply, log) = download(&d, &chaos, &key, "&stall_ms=20000").await;
    assert!(
        reply.body == the_file(&d, &chaos, 11).await,
        "the file, byte for byte"
    );
    assert_eq!((reply.status, reply.attempts), (200, 2));
    let downloads = log["downloads"].as_array().expect("downloads");
    assert_eq!(downloads.len(), 2, "{downloads:?}");
    let asked = downloads[1][0].as_str().unwrap_or_default();
    assert!(
        asked.starts_with("bytes=") && asked != "bytes=0-",
        "{asked}"
    );
    assert_eq!(downloads[1][1], 206);
}

#[wasm_bindgen_test]
async fn a_server_that_ignores_range_restarts_the_body_cleanly() {
    let chaos = chaos();
    let d = driver();
    let key = unique("download-ignore");
    let (reply, log) = download(&d, &chaos, &key, "&ranges=ignore").await;
    assert!(
        reply.body == the_file(&d, &chaos, 11).await,
        "the second whole body only, not appended to the first's half"
    );
    assert_eq!((reply.status, reply.attempts), (200, 2));
    let statuses: Vec<u64> = log["downloads"]
        .as_array()
        .expect("downloads")
        .iter()
        .map(|d| d[1].as_u64().expect("a status"))
        .collect();
    assert_eq!(statuses, [200, 200]);
}

/// fetch decodes a gzip-encoded body, so the bytes delivered are not the ones a `Range`
/// counts: the broken download starts again and ends with the decoded file.
#[wasm_bindgen_test]
async fn a_gzip_encoded_download_that_breaks_restarts_decoded() {
    let chaos = chaos();
    let d = driver();
    let key = unique("download-gzip");
    let (reply, log) = download(&d, &chaos, &key, "&gzip").await;
    assert!(
        reply.body == the_file(&d, &chaos, 11).await,
        "the decoded file, from the second answer only"
    );
    assert_eq!((reply.status, reply.attempts), (200, 2));
    let asked: Vec<Option<&str>> = log["downloads"]
        .as_array()
        .expect("downloads")
        .iter()
        .map(|d| d[0].as_str())
        .collect();
    assert_eq!(asked, [None, None], "no range asked of an encoded body");
}

#[wasm_bindgen_test]
async fn a_416_to_the_resume_is_a_typed_error() {
    let chaos = chaos();
    let d = driver();
    let key = unique("download-416");
    let mut spec = RequestSpec::new(
        Method::Get,
        format!("{chaos}/download/{DOWNLOAD}?key={key}&seed=11&bad_range=416"),
    );
    spec.ends = CallEnd::AfterBody;
    match d.request(spec).await {
        Err(CallError::Resume(resile_core::resume::ResumeError::RangeNotSatisfiable {
            total,
            ..
        })) => assert_eq!(total, Some(DOWNLOAD as u64)),
        Err(e) => panic!("expected a 416 resume error, got {e:?}"),
        Ok(r) => panic!("expected a 416 resume error, got status {}", r.status),
    }
}

#[wasm_bindgen_test]
async fn the_js_api_downloads_with_resume() {
    let chaos = chaos();
    let config: ClientConfig = js_sys::JSON::parse(r#"{"backoff":{"baseMs":10,"jitter":"none"}}"#)
        .unwrap()
        .unchecked_into();
    let client = JsClient::new(Some(config)).expect("client");
    let key = unique("js-download");
    let url = format!("{chaos}/download/{DOWNLOAD}?key={key}&seed=11");
    let response = JsFuture::from(client.download(url, None))
        .await
        .expect("the download succeeds");
    let attempts = Reflect::get(&response, &"attempts".into())
        .unwrap()
        .as_f64();
    assert_eq!(attempts, Some(2.0));
    let buffer = JsFuture::from(
        Reflect::get(&response, &"arrayBuffer".into())
            .unwrap()
            .unchecked_into::<Function>()
            .call0(&response)
            .unwrap()
            .unchecked_into::<js_sys::Promise>(),
    )
    .await
    .unwrap();
    let body = js_sys::Uint8Array::new(&buffer).to_vec();
    assert!(
        body == the_file(&driver(), &chaos, 11).await,
        "the file, byte for byte"
    );
}

#[wasm_bindgen_test]
async fn the_rust_client_downloads_with_resume() {
    let chaos = chaos();
    let client = resile_wasm::Client::builder()
        .engine(Config::from_json(r#"{"backoff":{"base_ms":10,"jitter":"none"}}"#).unwrap())
        .build()
        .expect("client");
    let key = unique("rust-download");
    let response = client
        .get(format!("{chaos}/download/{DOWNLOAD}?key={key}&seed=11"))
        .send_download()
        .await
        .expect("the download succeeds");
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));
    assert!(
        response.bytes().as_ref() == the_file(&driver(), &chaos, 11).await.as_slice(),
        "the file, byte for byte"
    );
    let log = transfers(&driver(), &chaos, &key).await;
    assert_eq!(
        log["request_ids"],
        serde_json::json!([response.request_id(), response.request_id()])
    );
}

/// The call's deadline holds across a resume: the server breaks the body only after a pause
/// longer than the whole deadline, so the break comes too late to be taken up.
#[wasm_bindgen_test]
async fn a_deadline_that_passes_across_a_resume_ends_the_download() {
    let chaos = chaos();
    let d = driver();
    let key = unique("download-deadline");
    let mut spec = RequestSpec::new(
        Method::Get,
        format!("{chaos}/download/{DOWNLOAD}?key={key}&seed=11"),
    );
    spec.ends = CallEnd::AfterBody;
    spec.deadline = Some(core::time::Duration::from_millis(250));
    match d.request(spec).await {
        Err(CallError::Failed { failure, .. }) => {
            assert_eq!((failure.why, failure.attempts), (Why::DeadlineWouldPass, 1))
        }
        Err(e) => panic!("expected the deadline, got {e:?}"),
        Ok(r) => panic!("expected the deadline, got status {}", r.status),
    }
    let log = transfers(&d, &chaos, &key).await;
    assert_eq!(log["requests"], 1, "no range request past the deadline");
}
