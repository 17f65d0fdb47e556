//! What the adapter learns after the engine would have called a response final goes back in
//! before the engine decides: a body that does not decode, a body over the cap, a redirect
//! loop. The caller's error, the engine's events, its stats and its breaker then agree.

mod common;

use common::{fast_policy, mini_server, MiniResponse, Recorder};
use resile::{Client, Error, Why};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_decode_fails_the_call_in_the_engine_too() {
    let server = mini_server(|_| async {
        MiniResponse::status(200)
            .header("content-type", "application/json")
            .body("{\"id\": 1, trailing garbage")
    })
    .await;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .on_event(events.callback())
        .build()
        .unwrap();
    let e = client
        .get_json::<Value>(format!("{}/x", server.url()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Decode { status: 200, .. }), "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(events.failed_with(), vec![Why::Undecodable]);
    let stats = client.stats();
    assert_eq!((stats.succeeded, stats.failed, stats.attempts), (0, 1, 1));
    // A decoding problem is not the host's failure.
    assert_eq!(client.hosts()[0].consecutive_failures, 0);

    // The same body through `send` is the caller's to read: the call succeeded.
    let r = client
        .get(format!("{}/x", server.url()))
        .send()
        .await
        .unwrap();
    assert!(r.json::<Value>().is_err());
    assert_eq!(client.stats().succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_is_a_failed_call_not_a_success() {
    let server = mini_server(|_| async { MiniResponse::status(200).body(vec![b'x'; 4096]) }).await;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .max_response_bytes(1024)
        .on_event(events.callback())
        .build()
        .unwrap();
    let e = client
        .get(format!("{}/big", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::BodyTooLarge { limit: 1024 }), "{e:?}");
    assert_eq!(events.failed_with(), vec![Why::BodyTooLarge]);
    assert_eq!(client.stats().succeeded, 0);
    assert_eq!(client.stats().failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_a_typed_error() {
    let server =
        mini_server(|_| async { MiniResponse::status(302).header("location", "/loop") }).await;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .max_redirects(5)
        .on_event(events.callback())
        .build()
        .unwrap();
    let e = client
        .get(format!("{}/loop", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooManyRedirects { limit: 5 }), "{e:?}");
    assert_eq!(e.why(), Some(Why::TooManyRedirects));
    assert_eq!(events.failed_with(), vec![Why::TooManyRedirects]);
    // The original request and five redirects, then the engine stopped: no retry.
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_streams_past_the_buffer_caps() {
    let server =
        mini_server(|_| async { MiniResponse::status(200).body(vec![7u8; 4 << 20]) }).await;
    let client = Client::builder()
        .engine(fast_policy())
        .max_response_bytes(1024)
        .build()
        .unwrap();
    let mut download = client
        .get(format!("{}/export", server.url()))
        .send_streaming()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let mut total = 0usize;
    while let Some(chunk) = download.chunk().await.unwrap() {
        assert!(chunk.iter().all(|b| *b == 7));
        total += chunk.len();
    }
    assert_eq!(total, 4 << 20);
    assert_eq!(client.stats().succeeded, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_beyond_the_client_wide_buffer_wait_their_turn() {
    let server =
        mini_server(|_| async { MiniResponse::status(200).body(vec![1u8; 60 << 10]) }).await;
    // Room for one 60 KiB body at a time across the client.
    let config = resile::ClientConfig {
        engine: fast_policy(),
        max_response_bytes: 64 << 10,
        max_buffered_bytes: 64 << 10,
        ..Default::default()
    };
    let client = Client::from_config(config).unwrap();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let (client, url) = (client.clone(), format!("{}/b", server.url()));
            tokio::spawn(async move { client.get(url).send().await })
        })
        .collect();
    for c in calls {
        let r = c.await.unwrap().unwrap();
        assert_eq!(r.bytes().len(), 60 << 10);
    }
    assert_eq!(client.stats().succeeded, 8);
}
