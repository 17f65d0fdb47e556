use reqwest::Method;

use crate::common::{client, header, server};

#[tokio::test]
async fn preflight_allows_the_resilience_headers() {
    let s = server().await;
    let resp = client()
        .request(Method::OPTIONS, format!("{}/s/anything", s.url()))
        .header("origin", "http://localhost:9999")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, idempotency-key, x-request-id, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        header(&resp, "access-control-allow-origin"),
        Some("http://localhost:9999")
    );
    let methods = header(&resp, "access-control-allow-methods").unwrap();
    assert!(methods.contains("POST") && methods.contains("DELETE"));
    let allowed = header(&resp, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "idempotency-key",
        "x-request-id",
        "content-type",
    ] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert!(header(&resp, "access-control-max-age").is_some());
    let stats = s.stats();
    assert_eq!((stats.preflights, stats.requests), (1, 0));
}

#[tokio::test]
async fn errors_carry_cors_and_expose_headers() {
    let s = server().await;
    let c = client();
    for path in [
        "/status/503?retry_after=1",
        "/status/429",
        "/protected/x",
        "/nope",
        "/status/abc",
    ] {
        let resp = c
            .get(format!("{}{path}", s.url()))
            .header("origin", "http://app.test")
            .send()
            .await
            .unwrap();
        assert!(resp.status().as_u16() >= 400, "{path}");
        assert_eq!(
            header(&resp, "access-control-allow-origin"),
            Some("http://app.test"),
            "{path}"
        );
        let exposed = header(&resp, "access-control-expose-headers").unwrap();
        for h in [
            "Retry-After",
            "RateLimit",
            "RateLimit-Policy",
            "X-RateLimit-Reset",
            "Link",
            "X-Total-Count",
            "X-Request-ID",
            "Idempotent-Replayed",
            "WWW-Authenticate",
        ] {
            assert!(exposed.contains(h), "{h} in {exposed}");
        }
    }
    let resp = c
        .get(format!("{}/status/200", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn no_expose_hides_the_hint_headers() {
    let s = server().await;
    let resp = client()
        .get(format!("{}/status/503?retry_after=1&no_expose=1", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp
        .headers()
        .get("access-control-expose-headers")
        .is_none());
    assert_eq!(header(&resp, "access-control-allow-origin"), Some("*"));
    assert_eq!(header(&resp, "retry-after"), Some("1"));
}

#[tokio::test]
async fn request_id_is_echoed() {
    let s = server().await;
    let resp = client()
        .get(format!("{}/status/500", s.url()))
        .header("x-request-id", "req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-request-id"), Some("req-42"));
    let resp = client()
        .get(format!("{}/status/200", s.url()))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("x-request-id").is_none());
}

#[tokio::test]
async fn private_network_preflight_is_allowed() {
    let s = server().await;
    let resp = client()
        .request(Method::OPTIONS, format!("{}/status/200", s.url()))
        .header("origin", "http://example.test")
        .header("access-control-request-method", "GET")
        .header("access-control-request-private-network", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "access-control-allow-private-network"),
        Some("true")
    );
}
