//! Compressed responses (features `gzip`, `deflate`, `brotli`, `zstd`): decoded for the
//! caller, and the decoded size is what the body cap counts.
#![cfg(feature = "gzip")]

mod common;

use common::{chaos, fast_policy};
use resile::{Client, Error};
use serde_json::Value;

#[tokio::test]
async fn a_gzip_body_is_decoded_and_a_bomb_stops_at_the_cap() {
    let server = chaos().await;
    let client = Client::builder()
        .engine(fast_policy())
        .max_response_bytes(64 << 10)
        .build()
        .unwrap();

    let doc: Value = client
        .get_json(format!("{}/gzip", server.url()))
        .await
        .unwrap();
    assert_eq!(doc["compressed"], true);
    assert!(doc["text"].as_str().unwrap().starts_with("resile resile"));

    // 8 KB on the wire, 8 MiB decoded: the 64 KiB cap holds, typed, and it is not retried.
    let e = client
        .get(format!("{}/gzip?bomb", server.url()))
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::BodyTooLarge { limit } if limit == 64 << 10),
        "{e:?}"
    );
    assert_eq!(server.stats().requests_by_route.get("/gzip"), Some(&2));
}
