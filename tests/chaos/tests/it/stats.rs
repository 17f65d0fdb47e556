use resile_chaos::Stats;

use crate::common::{client, get_json, server};

#[tokio::test]
async fn stats_count_per_route_and_reset_clears_state() {
    let s = server().await;
    let c = client();
    for _ in 0..3 {
        c.get(format!("{}/status/200", s.url()))
            .send()
            .await
            .unwrap();
    }
    c.get(format!("{}/flaky?key=z&fail=1", s.url()))
        .send()
        .await
        .unwrap();
    c.get(format!("{}/items/cursor?limit=5", s.url()))
        .send()
        .await
        .unwrap();

    let resp = c.get(format!("{}/stats", s.url())).send().await.unwrap();
    let stats: Stats = resp.json().await.unwrap();
    assert_eq!(stats.requests_by_route.get("/status/{code}"), Some(&3));
    assert_eq!(stats.requests_by_route.get("/flaky"), Some(&1));
    assert_eq!(stats.requests_by_route.get("/items/cursor"), Some(&1));
    assert_eq!(stats.pages_served, 1);
    assert_eq!(stats.requests, 6);
    assert!(stats.connections >= 1);

    let resp = c
        .post(format!("{}/stats/reset", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(s.stats().requests, 0);
    // State went too: the flaky key starts over.
    assert_eq!(
        get_json(&c, &format!("{}/flaky?key=z&fail=1", s.url()))
            .await
            .0,
        503
    );

    assert_eq!(
        c.delete(format!("{}/stats", s.url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(s.stats(), Stats::default());
}
