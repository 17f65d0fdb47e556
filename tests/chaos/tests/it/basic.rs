use std::time::{Duration, Instant, SystemTime};

use resile_chaos::ChaosConfig;

use crate::common::{client, get_json, header, server, server_with};

#[tokio::test]
async fn status_answers_any_code_with_optional_retry_after() {
    let s = server().await;
    let c = client();
    let resp = c
        .get(format!("{}/status/503?retry_after=2", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(header(&resp, "retry-after"), Some("2"));
    assert_eq!(
        resp.json::<serde_json::Value>().await.unwrap()["status"],
        503
    );

    let resp = c
        .get(format!("{}/status/429?retry_after_date=5", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let date = httpdate::parse_http_date(header(&resp, "retry-after").unwrap()).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(3) && ahead <= Duration::from_secs(6),
        "{ahead:?}"
    );

    let resp = c
        .post(format!("{}/status/418", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 418);
    assert!(resp.headers().get("retry-after").is_none());

    let resp = c
        .get(format!("{}/status/204", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert!(resp.bytes().await.unwrap().is_empty());

    let resp = c
        .get(format!("{}/status/503?retry_after_raw=soon", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "retry-after"), Some("soon"));
}

#[tokio::test]
async fn bad_status_codes_get_400_with_a_message() {
    let s = server().await;
    let c = client();
    for bad in ["abc", "99", "600", "70000", "-1"] {
        let (status, body) = get_json(&c, &format!("{}/status/{bad}", s.url())).await;
        assert_eq!(status, 400, "{bad}");
        assert!(
            body["message"].as_str().unwrap().contains("status"),
            "{body}"
        );
    }
    let (status, body) = get_json(&c, &format!("{}/status/200?retry_after=x", s.url())).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("retry_after"));
}

#[tokio::test]
async fn flaky_fails_n_times_per_key_then_succeeds() {
    let s = server().await;
    let c = client();
    let url = format!("{}/flaky?key=a&fail=2", s.url());
    assert_eq!(get_json(&c, &url).await.0, 503);
    assert_eq!(get_json(&c, &url).await.0, 503);
    let (status, body) = get_json(&c, &url).await;
    assert_eq!(status, 200);
    assert_eq!(body, serde_json::json!({ "key": "a", "attempt": 3 }));

    // Another key has its own count, and its own status.
    let (status, body) = get_json(
        &c,
        &format!("{}/flaky?key=b&fail=1&status=429&retry_after=1", s.url()),
    )
    .await;
    assert_eq!((status, body["attempt"].as_u64()), (429, Some(1)));
    assert_eq!(
        get_json(&c, &format!("{}/flaky?key=b&fail=1", s.url()))
            .await
            .0,
        200
    );
    assert_eq!(s.stats().flaky_failures, 3);
}

#[tokio::test]
async fn slow_answers_late_and_client_timeouts_fire() {
    let s = server().await;
    let c = client();
    let started = Instant::now();
    let (status, body) = get_json(&c, &format!("{}/slow?ms=60", s.url())).await;
    assert_eq!((status, body["slept_ms"].as_u64()), (200, Some(60)));
    assert!(started.elapsed() >= Duration::from_millis(60));

    let err = c
        .get(format!("{}/slow?ms=1000", s.url()))
        .timeout(Duration::from_millis(50))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
}

#[tokio::test]
async fn slow_is_capped_by_max_stall() {
    let s = server_with(ChaosConfig {
        max_stall: Duration::from_millis(30),
        ..Default::default()
    })
    .await;
    let (status, body) = get_json(&client(), &format!("{}/slow?ms=999999", s.url())).await;
    assert_eq!((status, body["slept_ms"].as_u64()), (200, Some(30)));
}

#[tokio::test]
async fn stall_never_answers() {
    let s = server().await;
    let err = client()
        .get(format!("{}/stall", s.url()))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(s.stats().stalls, 1);
}

#[tokio::test]
async fn stall_with_ms_closes_the_connection_afterwards() {
    let s = server().await;
    let err = client()
        .get(format!("{}/stall?ms=30", s.url()))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_timeout() && err.status().is_none(), "{err:?}");
}

#[tokio::test]
async fn reset_is_a_connection_error_not_a_status() {
    let s = server().await;
    let c = client();
    let err = c
        .get(format!("{}/reset", s.url()))
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none(), "{err:?}");
    assert!(!err.is_timeout(), "{err:?}");
    assert!(err.is_request() || err.is_connect(), "{err:?}");
    // The server keeps serving new connections.
    assert_eq!(
        get_json(&c, &format!("{}/status/200", s.url())).await.0,
        200
    );
    assert_eq!(s.stats().resets, 1);
}

#[tokio::test]
async fn truncate_sends_less_than_content_length() {
    let s = server().await;
    let resp = client()
        .get(format!("{}/truncate?len=100&send=50", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), Some(100));
    let err = resp.bytes().await.unwrap_err();
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err:?}"
    );
    assert_eq!(s.stats().truncated, 1);

    let (status, _) = get_json(&client(), &format!("{}/truncate?len=10&send=10", s.url())).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn request_bodies_over_the_limit_get_413() {
    let s = server_with(ChaosConfig {
        max_body_bytes: 1000,
        ..Default::default()
    })
    .await;
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let resp = client()
        .post(format!("{}/orders", s.url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(s.stats().orders_created, 0);
}

#[tokio::test]
async fn max_connections_queues_further_connections() {
    let s = server_with(ChaosConfig {
        max_connections: 1,
        ..Default::default()
    })
    .await;
    let stalled = {
        let url = format!("{}/stall?ms=600", s.url());
        tokio::spawn(async move { client().get(url).send().await })
    };
    while s.stats().stalls == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let queued = {
        let url = format!("{}/status/200", s.url());
        tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !queued.is_finished(),
        "the second connection waits for the first"
    );
    assert_eq!(s.stats().connections, 1);
    assert!(stalled.await.unwrap().is_err());
    assert_eq!(queued.await.unwrap().unwrap(), 200);
    assert_eq!(s.stats().connections, 2);
}

#[tokio::test]
async fn unknown_routes_get_404_json() {
    let s = server().await;
    let (status, body) = get_json(&client(), &format!("{}/nope", s.url())).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn the_binary_prints_its_url_and_serves() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_resile-chaos"))
        .args(["--port", "0", "--seed", "5", "--token-expires-in", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let result = get_json(&client(), &format!("{url}/status/200")).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(result.0, 200);

    let out = Command::new(env!("CARGO_BIN_EXE_resile-chaos"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn keep_alive_off_closes_every_connection() {
    let s = server_with(ChaosConfig {
        keep_alive: false,
        ..ChaosConfig::default()
    })
    .await;
    let c = client();
    for _ in 0..3 {
        let r = c
            .get(format!("{}/status/200", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers().get("connection").and_then(|v| v.to_str().ok()),
            Some("close")
        );
    }
    assert_eq!(s.stats().connections, 3, "one connection per request");
}

#[tokio::test]
async fn replica_is_slow_on_the_first_of_every_n_requests_per_key() {
    let s = server().await;
    let c = client();
    let mut slow = Vec::new();
    for _ in 0..7 {
        let url = format!("{}/replica?key=r&every=3&slow_ms=40&fast_ms=0", s.url());
        let (status, body) = get_json(&c, &url).await;
        assert_eq!(status, 200);
        slow.push(body["slow"].as_bool().unwrap());
    }
    assert_eq!(slow, [true, false, false, true, false, false, true]);
    let (_, other) = get_json(
        &c,
        &format!("{}/replica?key=other&every=3&slow_ms=0", s.url()),
    )
    .await;
    assert_eq!(other["request"], 1, "counted per key");
}
