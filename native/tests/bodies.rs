//! Request bodies and retries against the chaos server: a streamed body made again by its
//! factory for every attempt, and a one-shot stream that is sent once and never retried.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{chaos, fast_policy};
use resile::{Client, Error, Why};
use serde_json::Value;

fn client() -> Client {
    Client::builder()
        .engine(fast_policy())
        .seed(7)
        .build()
        .unwrap()
}

/// 64 KiB in 16 chunks, every byte value included.
fn parts() -> Vec<Bytes> {
    let body = resile_chaos::download_bytes(11, 64 << 10);
    body.chunks(4 << 10).map(Bytes::copy_from_slice).collect()
}

/// The stream a test factory makes.
type Parts = futures::stream::Iter<std::vec::IntoIter<Result<Bytes, std::io::Error>>>;

/// A factory over `parts` that counts how often it was asked for a body.
fn counted(parts: Vec<Bytes>) -> (Arc<AtomicUsize>, impl Fn() -> Parts + Send + Sync + 'static) {
    let made = Arc::new(AtomicUsize::new(0));
    let counter = made.clone();
    let make = move || {
        counter.fetch_add(1, Ordering::SeqCst);
        let chunks: Vec<Result<Bytes, std::io::Error>> = parts.iter().cloned().map(Ok).collect();
        futures::stream::iter(chunks)
    };
    (made, make)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_upload_is_retried_through_its_factory() {
    let server = chaos().await;
    let parts = parts();
    let whole: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let (made, make) = counted(parts);
    let response = client()
        .put(format!("{}/upload-retry?key=put&fail=2", server.url()))
        .body_factory(make)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.attempts(), 3);
    assert_eq!(made.load(Ordering::SeqCst), 3, "one body per attempt");
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["attempt"], 3);
    // Every attempt carried the whole body, byte for byte.
    let log = server.state().transfer_log("put").unwrap();
    let want = (whole.len() as u64, resile_chaos::sha256_hex(&whole));
    assert_eq!(log.uploads, vec![want.clone(), want.clone(), want]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_post_is_retried_under_its_idempotency_key() {
    let server = chaos().await;
    let (made, make) = counted(parts());
    let response = client()
        .post(format!("{}/upload-retry?key=post&fail=1", server.url()))
        .body_factory(make)
        .send()
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 2));
    assert_eq!(made.load(Ordering::SeqCst), 2);
    assert_eq!(
        server.state().transfer_log("post").unwrap().uploads.len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_stream_is_sent_once_and_its_retry_refused() {
    let server = chaos().await;
    let chunks: Vec<Result<Bytes, std::io::Error>> = parts().into_iter().map(Ok).collect();
    let e = client()
        .put(format!("{}/upload-retry?key=once&fail=1", server.url()))
        .body_stream(futures::stream::iter(chunks))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(
            &e,
            Error::NotRetried {
                why: Why::BodyNotReplayable,
                attempts: 1,
                ..
            }
        ),
        "{e:?}"
    );
    let log = server.state().transfer_log("once").unwrap();
    assert_eq!(log.uploads.len(), 1, "sent once");
    assert_eq!(log.uploads[0].0, 64 << 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_body_follows_a_307() {
    let server = chaos().await;
    // A small body: the server answers the first hop without reading it.
    let (made, make) = counted(vec![
        Bytes::from_static(b"a,b\n"),
        Bytes::from_static(b"c,d\n"),
    ]);
    let response = client()
        .put(format!("{}/redirect/1?status=307", server.url()))
        .body_factory(make)
        .send()
        .await
        .unwrap();
    // A one-shot stream would hand the 307 back; the factory makes the body for the next hop.
    assert_eq!(response.status(), 200);
    // A body for the first hop and one for the 307's target, per attempt (an attempt whose
    // first hop broke made only the first).
    let made = made.load(Ordering::SeqCst);
    assert!(
        made >= 2 && made <= 2 * response.attempts() as usize,
        "{made} bodies"
    );
    let answer: Value = response.json().unwrap();
    assert_eq!(answer["method"], "PUT");
}
