//! Bytes in, bytes out: echo, signed bodies, multipart, binary downloads, redirects.

use resile_chaos::{download_bytes, sha256_hex, sign};
use serde_json::Value;

use crate::common::{client, header, server};

#[tokio::test]
async fn echo_reports_the_raw_body_and_its_digest() {
    let s = server().await;
    let body = b"{\"b\":2,\"a\":1,  \"n\":1.10}\r\n\x00\xff".to_vec();
    let resp = client()
        .patch(format!("{}/echo?x=1", s.url()))
        .header("content-type", "text/weird")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["method"], "PATCH");
    assert_eq!(v["query"], "x=1");
    assert_eq!(v["content_type"], "text/weird");
    assert_eq!(v["len"], body.len());
    assert_eq!(v["sha256"], sha256_hex(&body));
    assert_eq!(v["body"], Value::Null, "not UTF-8");
}

#[tokio::test]
async fn signed_accepts_only_the_hmac_of_the_exact_bytes() {
    let s = server().await;
    let c = client();
    let body = r#"{"b":2,"a":1,  "n":1.10}"#;
    let send = |sig: String, body: &'static str| {
        c.post(format!("{}/signed", s.url()))
            .header("x-signature", sig)
            .body(body)
            .send()
    };
    let ok = send(sign(body.as_bytes()), body).await.unwrap();
    assert_eq!(ok.status(), 200);
    // The same JSON, re-serialized, is a different body.
    let bad = send(sign(body.as_bytes()), r#"{"a":1,"b":2,"n":1.1}"#)
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let none = c
        .post(format!("{}/signed", s.url()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    let stats = s.stats();
    assert_eq!(
        (stats.signatures_verified, stats.signatures_rejected),
        (1, 2)
    );
}

#[tokio::test]
async fn upload_parses_multipart_parts() {
    let s = server().await;
    let file: Vec<u8> = (0..=255u8).collect();
    let mut body = Vec::new();
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n",
    );
    body.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n");
    body.extend_from_slice(&file);
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let resp = client()
        .post(format!("{}/upload", s.url()))
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(
        (parts[0]["name"].as_str(), parts[0]["text"].as_str()),
        (Some("note"), Some("hello"))
    );
    assert_eq!(parts[1]["filename"], "b.bin");
    assert_eq!(parts[1]["sha256"], sha256_hex(&file));
    let bad = client()
        .post(format!("{}/upload", s.url()))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert!(bad.status().is_client_error());
}

#[tokio::test]
async fn bytes_serves_a_deterministic_binary_body() {
    let s = server().await;
    let resp = client()
        .get(format!("{}/bytes/5000?seed=9", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "content-type"),
        Some("application/octet-stream")
    );
    let sha = header(&resp, "x-content-sha256").unwrap().to_owned();
    let got = resp.bytes().await.unwrap();
    assert_eq!(&got[..], &download_bytes(9, 5000)[..]);
    assert_eq!(sha, sha256_hex(&got));
    let resp = client()
        .get(format!("{}/bytes/lots", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn redirect_chains_end_and_loops_do_not() {
    let s = server().await;
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = no_follow
        .get(format!("{}/redirect/3?status=307", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 307);
    assert_eq!(header(&resp, "location"), Some("/redirect/2?status=307"));
    let resp = client()
        .get(format!("{}/redirect/3", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["redirected"], true);
    let resp = no_follow
        .get(format!("{}/redirect/loop", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(header(&resp, "location"), Some("/redirect/loop"));
    assert_eq!(s.stats().redirects, 1 + 3 + 1);
    let resp = no_follow
        .get(format!("{}/redirect/2?status=200", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn connections_are_counted() {
    let s = server().await;
    let c = client();
    for _ in 0..5 {
        c.get(format!("{}/status/200", s.url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    assert_eq!(
        s.stats().connections,
        1,
        "one keep-alive connection, reused"
    );
    for _ in 0..3 {
        client()
            .get(format!("{}/status/200", s.url()))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(s.stats().connections, 4);
}
