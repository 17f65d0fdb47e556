use std::time::{Duration, SystemTime};

use crate::common::{client, header, server};

#[tokio::test]
async fn token_bucket_refuses_over_burst_with_all_header_dialects() {
    let s = server().await;
    let c = client();
    let url = format!("{}/ratelimited?rate=1&burst=2&key=a", s.url());

    let first = c.get(&url).send().await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(
        header(&first, "ratelimit-policy"),
        Some("\"default\";q=2;w=2")
    );
    assert_eq!(header(&first, "x-ratelimit-limit"), Some("2"));
    assert_eq!(header(&first, "x-ratelimit-remaining"), Some("1"));
    assert_eq!(header(&first, "ratelimit"), Some("\"default\";r=1;t=1"));

    let second = c.get(&url).send().await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-ratelimit-remaining"), Some("0"));

    let third = c.get(&url).send().await.unwrap();
    assert_eq!(third.status(), 429);
    assert_eq!(header(&third, "retry-after"), Some("1"));
    assert_eq!(header(&third, "ratelimit"), Some("\"default\";r=0;t=1"));
    assert_eq!(header(&third, "x-ratelimit-reset"), Some("1"));

    // Keys are independent.
    let other = c
        .get(format!("{}/ratelimited?rate=1&burst=2&key=b", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(s.stats().rate_limited, 1);
}

#[tokio::test]
async fn bucket_refills_at_the_rate() {
    let s = server().await;
    let c = client();
    let url = format!("{}/ratelimited?rate=4&burst=1&key=fast", s.url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 429);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn retry_after_as_date_and_reset_as_epoch() {
    let s = server().await;
    let c = client();
    let url = format!(
        "{}/ratelimited?rate=0.5&burst=1&key=d&form=date&xreset=epoch",
        s.url()
    );
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    let refused = c.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let date = httpdate::parse_http_date(header(&refused, "retry-after").unwrap()).unwrap();
    let ahead = date.duration_since(SystemTime::now()).unwrap_or_default();
    assert!(
        ahead > Duration::from_secs(1) && ahead <= Duration::from_secs(3),
        "{ahead:?}"
    );
    let reset: u64 = header(&refused, "x-ratelimit-reset")
        .unwrap()
        .parse()
        .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset >= now && reset <= now + 3, "{reset} vs {now}");
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        Some("\"default\";q=1;w=2")
    );
}

#[tokio::test]
async fn bad_rate_parameters_get_400() {
    let s = server().await;
    let c = client();
    for q in [
        "rate=0",
        "rate=-1",
        "burst=0",
        "form=weeks",
        "xreset=never",
        "rate=abc",
    ] {
        let resp = c
            .get(format!("{}/ratelimited?{q}", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{q}");
    }
}

#[tokio::test]
async fn header_dialects_are_selectable() {
    let s = server().await;
    let c = client();
    let resp = c
        .get(format!(
            "{}/ratelimited?burst=3&dialects=legacy,legacy-dict",
            s.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&resp, "ratelimit"),
        Some("limit=3, remaining=2, reset=1")
    );
    assert_eq!(header(&resp, "ratelimit-limit"), Some("3"));
    assert_eq!(header(&resp, "ratelimit-remaining"), Some("2"));
    assert_eq!(header(&resp, "ratelimit-reset"), Some("1"));
    assert!(resp.headers().get("ratelimit-policy").is_none());
    assert!(resp.headers().get("x-ratelimit-limit").is_none());

    let resp = c
        .get(format!("{}/ratelimited?key=x&dialects=x", s.url()))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("ratelimit").is_none());
    assert!(resp.headers().get("x-ratelimit-remaining").is_some());

    for bad in ["ietf,legacy-dict", "bogus"] {
        let resp = c
            .get(format!("{}/ratelimited?dialects={bad}", s.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
}
