//! `ClientBuilder::http_client`: the caller's own `reqwest::Client` sends every attempt, while
//! the engine keeps deciding; what resile stops configuring is the client's own; credentials
//! still never follow a redirect to another origin, whoever follows it, and a URL's userinfo is
//! one of them (sent as Basic credentials).

mod common;

use common::{chaos, closed_port, fast_policy, mini_server, MiniResponse, Recorder};
use resile::{Client, ClientEvent, EventKind, StaticBearer};
use serde_json::Value;

/// A first origin whose `/cross` redirects to the chaos server's `/echo` (another origin, which
/// answers with the headers it got) and whose `/same` redirects within itself.
async fn redirecting_origin(echo: String) -> common::MiniServer {
    mini_server(move |req| {
        let echo = echo.clone();
        async move {
            match req.path.as_str() {
                "/cross" => MiniResponse::status(302).header("location", &echo),
                "/same" => MiniResponse::status(307).header("location", "/final"),
                _ => MiniResponse::status(200)
                    .header("content-type", "application/json")
                    .body(r#"{"final":true}"#),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_origin_whoever_follows_it() {
    let server = chaos().await;
    let first = redirecting_origin(format!("{}/echo", server.url())).await;
    // The caller's client follows redirects itself (reqwest's default policy) and resile's own
    // following is off, so every hop below is reqwest's; then the reverse.
    let follows_itself = reqwest::Client::builder().build().unwrap();
    let follows_none = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (who, http, max_redirects) in [
        ("reqwest follows", follows_itself, 0),
        ("resile follows", follows_none, 10),
    ] {
        let client = Client::builder()
            .engine(fast_policy())
            .http_client(http)
            .max_redirects(max_redirects)
            .token_source(StaticBearer::new("engine-token"))
            .default_header("cookie", "session=default")
            .build()
            .unwrap();

        // Within the origin, the engine's token and the cookie go along.
        let response = client
            .get(format!("{}/same", first.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            (response.status().as_u16(), response.url().path()),
            (200, "/final"),
            "{who}"
        );
        let last = first.requests().pop().unwrap();
        assert_eq!(last.path, "/final", "{who}");
        assert_eq!(
            last.header("authorization"),
            Some("Bearer engine-token"),
            "{who}"
        );
        assert_eq!(last.header("cookie"), Some("session=default"), "{who}");

        // To another origin: neither the token, nor the caller's own Authorization, nor a
        // cookie; the request id goes along.
        for own in [None, Some("Bearer callers-own")] {
            let mut request = client.get(format!("{}/cross", first.url()));
            if let Some(value) = own {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{who}");
            let echoed: Value = response.json().unwrap();
            assert_eq!(echoed["path"], "/echo", "{who}");
            let headers = echoed["headers"].as_object().unwrap();
            for name in ["authorization", "cookie", "proxy-authorization"] {
                assert!(
                    !headers.contains_key(name),
                    "{who}, {own:?}: {name} leaked: {headers:?}"
                );
            }
            assert_eq!(
                headers.get("x-request-id").and_then(Value::as_str),
                Some(response.request_id()),
                "{who}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_urls_userinfo_is_sent_as_basic_credentials_within_its_origin_only() {
    let server = chaos().await;
    let first = redirecting_origin(format!("{}/echo", server.url())).await;
    let with_userinfo = |path: &str| {
        // `p@ss w`, percent-encoded as a URL must carry it.
        first
            .url()
            .replacen("http://", "http://alice:p%40ss%20w@", 1)
            + path
    };
    let client = Client::builder().engine(fast_policy()).build().unwrap();

    // Within the origin, on the first request and after a redirect: Basic, decoded.
    let response = client.get(with_userinfo("/same")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !response.url().as_str().contains("alice"),
        "the userinfo left the URL: {}",
        response.url()
    );
    let sent: Vec<_> = first
        .requests()
        .iter()
        .map(|r| {
            (
                r.path.clone(),
                r.header("authorization").map(str::to_string),
            )
        })
        .collect();
    let basic = Some("Basic YWxpY2U6cEBzcyB3".to_string()); // base64("alice:p@ss w")
    assert_eq!(
        sent,
        [("/same".into(), basic.clone()), ("/final".into(), basic)]
    );

    // The caller's own Authorization wins over the URL's.
    client
        .get(with_userinfo("/final"))
        .header("authorization", "Bearer own")
        .send()
        .await
        .unwrap();
    let last = first.requests().pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer own"));

    // To another origin, the credentials stay behind.
    let echoed: Value = client.get_json(with_userinfo("/cross")).await.unwrap();
    assert_eq!(echoed["path"], "/echo");
    let headers = echoed["headers"].as_object().unwrap();
    assert!(
        !headers.contains_key("authorization"),
        "leaked: {headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_client_sends_with_its_own_headers_and_user_agent() {
    let server = chaos().await;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-sent-by", "the-callers-client".parse().unwrap());
    let http = reqwest::Client::builder()
        .user_agent("callers-agent/1")
        .default_headers(headers)
        .build()
        .unwrap();
    let client = Client::builder()
        .engine(fast_policy())
        .user_agent("resile-agent/1")
        .http_client(http)
        .build()
        .unwrap();
    let echoed: Value = client
        .get_json(format!("{}/echo", server.url()))
        .await
        .unwrap();
    let headers = &echoed["headers"];
    assert_eq!(headers["x-sent-by"], "the-callers-client");
    assert_eq!(
        headers["user-agent"], "callers-agent/1",
        "the client's own, not resile's"
    );
    // The engine still decides: its request id is on the attempt.
    assert!(headers["x-request-id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_proxy_carries_every_attempt_and_the_engine_retries_through_it() {
    // A forward proxy: the request line is in absolute form. It answers 503 once, then 200.
    let proxy = mini_server(|req| async move {
        match req.path.as_str() {
            "http://upstream.invalid/flaky" => MiniResponse::status(200).body("via proxy"),
            _ => MiniResponse::status(503),
        }
    })
    .await;
    let http = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy.url()).unwrap())
        .build()
        .unwrap();
    let client = Client::builder()
        .engine(fast_policy())
        .http_client(http)
        .build()
        .unwrap();
    let first = client
        .get("http://upstream.invalid/down")
        .max_attempts(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(first.status(), Some(503));
    let response = client
        .get("http://upstream.invalid/flaky")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text(), "via proxy");
    let paths: Vec<String> = proxy.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "http://upstream.invalid/down",
            "http://upstream.invalid/down",
            "http://upstream.invalid/down",
            "http://upstream.invalid/flaky"
        ],
        "every attempt went through the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_pool_is_never_rebuilt() {
    let port = closed_port().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 1;
    policy.breaker.enabled = false;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(policy)
        .recycle_pool_after(3)
        .http_client(reqwest::Client::new())
        .on_event(events.callback())
        .build()
        .unwrap();
    for _ in 0..7 {
        let e = client
            .get(format!("http://{port}/"))
            .send()
            .await
            .unwrap_err();
        assert!(!e.maybe_processed(), "{e:?}");
    }
    assert_eq!(client.pool_recycles(), 0);
    let recycled = events.all().iter().any(|e| {
        matches!(e, ClientEvent::Engine(ev) if matches!(ev.kind, EventKind::ConnectionsRecycled { .. }))
    });
    assert!(
        !recycled,
        "the engine does not ask to rebuild a pool it does not own"
    );
}
