use serde_json::{json, Value};

use crate::common::{client, get_json, header, server};

async fn post(
    c: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut req = c.post(url).json(body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn without_a_key_every_post_creates_an_order() {
    let s = server().await;
    let c = client();
    let url = format!("{}/orders", s.url());
    let body = json!({ "item": "book", "qty": 1 });
    let a = post(&c, &url, None, &body).await;
    assert_eq!(a.status(), 201);
    assert!(a.headers().get("idempotent-replayed").is_none());
    let a: Value = a.json().await.unwrap();
    let b: Value = post(&c, &url, None, &body).await.json().await.unwrap();
    assert_ne!(a["id"], b["id"]);
    assert_eq!(
        (a["duplicate"].as_bool(), b["duplicate"].as_bool()),
        (Some(false), Some(true))
    );

    let (status, list) = get_json(&c, &url).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let stats = s.stats();
    assert_eq!((stats.orders_created, stats.duplicate_orders), (2, 1));
    assert_eq!(s.state().orders()[1].body, body);
}

#[tokio::test]
async fn the_same_key_and_body_replays_the_stored_order() {
    let s = server().await;
    let c = client();
    let url = format!("{}/orders", s.url());
    let body = json!({ "item": "lamp", "qty": 2 });
    let first = post(&c, &url, Some("k-1"), &body).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    // Key order in the body does not matter.
    let same: Value = serde_json::from_str(r#"{"qty":2,"item":"lamp"}"#).unwrap();
    let again = post(&c, &url, Some("k-1"), &same).await;
    assert_eq!(again.status(), 201);
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);

    let other = post(&c, &url, Some("k-1"), &json!({ "item": "lamp", "qty": 3 })).await;
    assert_eq!(other.status(), 422);
    let err: Value = other.json().await.unwrap();
    assert_eq!(err["error"], "idempotency_key_reused");

    let stats = s.stats();
    assert_eq!(
        (
            stats.orders_created,
            stats.idempotent_replays,
            stats.duplicate_orders
        ),
        (1, 1, 0)
    );
    let (_, one) = get_json(&c, &format!("{url}/{}", first["id"])).await;
    assert_eq!(one["idempotency_key"], "k-1");
}

#[tokio::test]
async fn commit_then_fail_without_a_key_makes_a_visible_duplicate() {
    let s = server().await;
    let c = client();
    let url = format!(
        "{}/orders?mode=commit_then_fail&fail=503&times=1&retry_after=1",
        s.url()
    );
    let body = json!({ "item": "chair" });
    let failed = post(&c, &url, None, &body).await;
    assert_eq!(failed.status(), 503);
    assert_eq!(header(&failed, "retry-after"), Some("1"));
    let retried = post(&c, &url, None, &body).await;
    assert_eq!(retried.status(), 201);
    let stats = s.stats();
    assert_eq!(
        (
            stats.orders_created,
            stats.duplicate_orders,
            stats.commit_then_fail
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn commit_then_fail_with_a_key_is_safe_to_retry() {
    let s = server().await;
    let c = client();
    let url = format!("{}/orders?mode=commit_then_fail&times=2", s.url());
    let body = json!({ "item": "desk" });
    assert_eq!(post(&c, &url, Some("k-9"), &body).await.status(), 503);
    assert_eq!(post(&c, &url, Some("k-9"), &body).await.status(), 503);
    let ok = post(&c, &url, Some("k-9"), &body).await;
    assert_eq!(ok.status(), 201);
    assert_eq!(header(&ok, "idempotent-replayed"), Some("true"));
    let stats = s.stats();
    assert_eq!((stats.orders_created, stats.duplicate_orders), (1, 0));
}

#[tokio::test]
async fn commit_then_reset_loses_the_answer_not_the_order() {
    let s = server().await;
    let c = client();
    let url = format!("{}/orders?mode=commit_then_fail&fail=reset", s.url());
    let body = json!({ "item": "pen" });
    let err = c
        .post(&url)
        .header("idempotency-key", "k-r")
        .json(&body)
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none() && !err.is_timeout(), "{err:?}");
    assert_eq!(s.stats().orders_created, 1);
    let ok = post(&c, &url, Some("k-r"), &body).await;
    assert_eq!(ok.status(), 201);
    assert_eq!(header(&ok, "idempotent-replayed"), Some("true"));
    assert_eq!(s.stats().resets, 1);
}

#[tokio::test]
async fn bad_order_requests_get_400() {
    let s = server().await;
    let c = client();
    let resp = c
        .post(format!("{}/orders", s.url()))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = post(
        &c,
        &format!("{}/orders?mode=explode", s.url()),
        None,
        &json!({}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let resp = post(
        &c,
        &format!("{}/orders?mode=commit_then_fail&fail=200", s.url()),
        None,
        &json!({}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(s.stats().orders_created, 0);
}

#[tokio::test]
async fn commit_then_fail_rate_picks_the_same_orders_with_or_without_a_key() {
    let s = server().await;
    let c = client();
    let url = format!("{}/orders?mode=commit_then_fail&rate=0.3", s.url());
    let mut failed_plain = Vec::new();
    for i in 0..40 {
        let r = post(&c, &url, None, &json!({ "n": i })).await;
        if r.status() == 503 {
            failed_plain.push(i);
        }
    }
    assert!(
        (4..=20).contains(&failed_plain.len()),
        "about 30% of 40: {failed_plain:?}"
    );
    let s2 = server().await;
    let url2 = format!("{}/orders?mode=commit_then_fail&rate=0.3", s2.url());
    let mut failed_keyed = Vec::new();
    for i in 0..40 {
        let r = post(&c, &url2, Some(&format!("key-{i}")), &json!({ "n": i })).await;
        if r.status() == 503 {
            failed_keyed.push(i);
        }
    }
    assert_eq!(
        failed_plain, failed_keyed,
        "the failures depend on the body and the seed only"
    );
    let none = format!("{}/orders?mode=commit_then_fail&rate=0", s.url());
    assert_eq!(
        post(&c, &none, None, &json!({ "n": 999 })).await.status(),
        201
    );
}
