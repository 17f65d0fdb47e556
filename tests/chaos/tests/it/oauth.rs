use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{client, header, server};

async fn token(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = c.post(url).form(form).send().await.unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        assert_eq!(header(&resp, "cache-control"), Some("no-store"));
    }
    (status, resp.json().await.unwrap())
}

const GOOD: &[(&str, &str)] = &[
    ("grant_type", "client_credentials"),
    ("client_id", "demo"),
    ("client_secret", "demo"),
];

#[tokio::test]
async fn client_credentials_by_form_or_basic_give_a_bearer_token() {
    let s = server().await;
    let c = client();
    let url = format!("{}/oauth/token", s.url());
    let (status, body) = token(&c, &url, GOOD).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let form_token = body["access_token"].as_str().unwrap().to_owned();

    let resp = c
        .post(&url)
        .basic_auth("demo", Some("demo"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let basic_token = resp.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(form_token, basic_token);

    let resp = c
        .get(format!("{}/protected/things", s.url()))
        .bearer_auth(&basic_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["path"], "/protected/things");
    assert_eq!(s.stats().tokens_issued, 2);
}

#[tokio::test]
async fn token_errors_follow_rfc_6749() {
    let s = server().await;
    let c = client();
    let url = format!("{}/oauth/token", s.url());
    let (status, body) = token(
        &c,
        &url,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "demo"),
            ("client_secret", "nope"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(body["error_description"].is_string());

    let resp = c
        .post(&url)
        .basic_auth("demo", Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate")
        .unwrap()
        .starts_with("Basic"));

    let (status, body) = token(
        &c,
        &url,
        &[("client_id", "demo"), ("client_secret", "demo")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let (status, body) = token(
        &c,
        &url,
        &[
            ("grant_type", "password"),
            ("client_id", "demo"),
            ("client_secret", "demo"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    assert_eq!(s.stats().token_errors, 4);
    assert_eq!(s.stats().tokens_issued, 0);
}

#[tokio::test]
async fn protected_routes_refuse_missing_unknown_and_expired_tokens() {
    let s = server().await;
    let c = client();
    let protected = format!("{}/protected/x", s.url());

    let resp = c.get(&protected).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate")
        .unwrap()
        .starts_with("Bearer"));

    let resp = c
        .get(&protected)
        .bearer_auth("made-up")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));

    // A token that expires at once.
    let (_, body) = token(&c, &format!("{}/oauth/token?expires_in=0", s.url()), GOOD).await;
    assert_eq!(body["expires_in"], 0);
    let resp = c
        .get(&protected)
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(header(&resp, "www-authenticate")
        .unwrap()
        .contains("invalid_token"));
}

#[tokio::test]
async fn admin_can_expire_every_token_now() {
    let s = server().await;
    let c = client();
    let (_, body) = token(&c, &format!("{}/oauth/token", s.url()), GOOD).await;
    let t = body["access_token"].as_str().unwrap().to_owned();
    let protected = format!("{}/protected/y", s.url());
    assert_eq!(
        c.get(&protected)
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let resp = c
        .post(format!("{}/admin/expire-tokens", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.json::<Value>().await.unwrap()["expired"], 1);
    let resp = c.get(&protected).bearer_auth(&t).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // A fresh token works again.
    let (_, body) = token(&c, &format!("{}/oauth/token", s.url()), GOOD).await;
    let fresh = body["access_token"].as_str().unwrap();
    assert_eq!(
        c.get(&protected)
            .bearer_auth(fresh)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let stats = s.stats();
    assert_eq!((stats.authorized, stats.unauthorized), (2, 1));
}

#[tokio::test]
async fn token_endpoint_latency_and_configured_lifetime() {
    let s = server().await;
    let c = client();
    let started = Instant::now();
    let (status, body) = token(&c, &format!("{}/oauth/token?delay_ms=60", s.url()), GOOD).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(60));

    let resp = c
        .post(format!("{}/admin/config?token_expires_in=42", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (_, body2) = token(&c, &format!("{}/oauth/token", s.url()), GOOD).await;
    assert_eq!(
        (body["expires_in"].as_u64(), body2["expires_in"].as_u64()),
        (Some(3600), Some(42))
    );
}
