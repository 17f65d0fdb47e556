use std::time::Duration;

use crate::common::{client, get_json, header, server};

#[tokio::test]
async fn outage_window_answers_503_on_api_routes_only() {
    let s = server().await;
    let c = client();
    let (status, body) = get_json(
        &c,
        &format!("{}/admin/outage?for_ms=5000&retry_after=3", s.url()),
    )
    .await;
    // GET on the admin route reports; POST opens the window.
    assert_eq!((status, &body["active"]), (200, &serde_json::json!(false)));
    let resp = c
        .post(format!(
            "{}/admin/outage?for_ms=5000&retry_after=3",
            s.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    for path in [
        "/status/200",
        "/flaky?fail=0",
        "/items/cursor",
        "/s/x",
        "/nope",
    ] {
        let resp = c.get(format!("{}{path}", s.url())).send().await.unwrap();
        assert_eq!(resp.status(), 503, "{path}");
        assert_eq!(header(&resp, "retry-after"), Some("3"));
        assert!(header(&resp, "access-control-allow-origin").is_some());
    }
    assert_eq!(get_json(&c, &format!("{}/stats", s.url())).await.0, 200);
    assert_eq!(s.stats().outage_rejections, 5);

    let resp = c
        .delete(format!("{}/admin/outage", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        get_json(&c, &format!("{}/status/200", s.url())).await.0,
        200
    );
}

#[tokio::test]
async fn outage_window_ends_by_itself_and_can_start_later() {
    let s = server().await;
    let c = client();
    let opened = std::time::Instant::now();
    c.post(format!("{}/admin/outage?start_ms=300&end_ms=900", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        get_json(&c, &format!("{}/status/200", s.url())).await.0,
        200
    );
    tokio::time::sleep(Duration::from_millis(450).saturating_sub(opened.elapsed())).await;
    let resp = c
        .get(format!("{}/status/200", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert!(resp.headers().get("retry-after").is_none());
    tokio::time::sleep(Duration::from_millis(1000).saturating_sub(opened.elapsed())).await;
    assert_eq!(
        get_json(&c, &format!("{}/status/200", s.url())).await.0,
        200
    );

    let (status, _) = get_json(&c, &format!("{}/admin/outage?start_ms=5&end_ms=5", s.url())).await;
    assert_eq!(status, 200, "GET only reports");
    let resp = c
        .post(format!("{}/admin/outage?start_ms=5&end_ms=5", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn outage_from_the_library_handle() {
    let s = server().await;
    let c = client();
    s.state().outage_for(Duration::from_secs(5), Some(1));
    assert_eq!(
        get_json(&c, &format!("{}/status/200", s.url())).await.0,
        503
    );
    s.state().clear_outage();
    assert_eq!(
        get_json(&c, &format!("{}/status/200", s.url())).await.0,
        200
    );
}
