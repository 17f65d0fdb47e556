use std::collections::HashSet;

use serde_json::Value;

use crate::common::{client, get_json, header, server};

fn ids(items: &Value) -> Vec<u64> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect()
}

/// The `rel` target of a `Link` header, parsed naively (the server writes it simply).
fn link_rel(link: &str, rel: &str) -> Option<String> {
    link.split(", ")
        .find(|part| part.ends_with(&format!("rel=\"{rel}\"")))
        .map(|part| {
            part.split_once('<')
                .unwrap()
                .1
                .split_once('>')
                .unwrap()
                .0
                .to_owned()
        })
}

/// GETs `url`, retrying 503s; returns the response and how many 503s it saw.
async fn get_retrying(c: &reqwest::Client, url: &str) -> (reqwest::Response, u32) {
    let mut failures = 0;
    loop {
        let resp = c.get(url).send().await.unwrap();
        if resp.status() != 503 {
            return (resp, failures);
        }
        failures += 1;
        assert!(failures < 50, "too many failures");
    }
}

async fn walk_link(c: &reqwest::Client, first: String) -> (Vec<u64>, u32) {
    let (mut all, mut failures, mut next) = (Vec::new(), 0, Some(first));
    while let Some(url) = next {
        let (resp, f) = get_retrying(c, &url).await;
        failures += f;
        assert_eq!(resp.status(), 200);
        let link = header(&resp, "link").unwrap().to_owned();
        assert!(link_rel(&link, "first").is_some(), "{link}");
        next = link_rel(&link, "next");
        all.extend(ids(&resp.json().await.unwrap()));
    }
    (all, failures)
}

async fn walk_cursor(c: &reqwest::Client, base: &str, query: &str) -> (Vec<u64>, u32) {
    let (mut all, mut failures, mut cursor) = (Vec::new(), 0, None::<String>);
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}/items/cursor?{query}&cursor={c}"),
            None => format!("{base}/items/cursor?{query}"),
        };
        let (resp, f) = get_retrying(c, &url).await;
        failures += f;
        let body: Value = resp.json().await.unwrap();
        all.extend(ids(&body["items"]));
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (all, failures),
        }
    }
}

async fn walk_offset(c: &reqwest::Client, base: &str, query: &str, limit: u64) -> Vec<u64> {
    let (mut all, mut offset) = (Vec::new(), 0);
    loop {
        let (resp, _) = get_retrying(
            c,
            &format!("{base}/items/offset?{query}&offset={offset}&limit={limit}"),
        )
        .await;
        let page = ids(&resp.json().await.unwrap());
        all.extend(&page);
        if (page.len() as u64) < limit {
            return all;
        }
        offset += limit;
    }
}

async fn walk_page(c: &reqwest::Client, base: &str, query: &str, per_page: u64) -> Vec<u64> {
    let (mut all, mut page) = (Vec::new(), 1);
    loop {
        let (resp, _) = get_retrying(
            c,
            &format!("{base}/items/page?{query}&page={page}&per_page={per_page}"),
        )
        .await;
        assert!(header(&resp, "x-total-count").is_some());
        let items = ids(&resp.json().await.unwrap());
        all.extend(&items);
        if (items.len() as u64) < per_page {
            return all;
        }
        page += 1;
    }
}

fn has_duplicates(ids: &[u64]) -> bool {
    ids.iter().collect::<HashSet<_>>().len() != ids.len()
}

#[tokio::test]
async fn four_pagination_styles_walk_the_whole_collection() {
    let s = server().await;
    let c = client();
    let expected: Vec<u64> = (1..=250).collect();

    let (link, _) = walk_link(
        &c,
        format!("{}/items/link?page_size=100&total=250", s.url()),
    )
    .await;
    assert_eq!(link, expected);
    let (cursor, _) = walk_cursor(&c, &s.url(), "limit=100&total=250").await;
    assert_eq!(cursor, expected);
    assert_eq!(walk_offset(&c, &s.url(), "total=250", 100).await, expected);
    assert_eq!(walk_page(&c, &s.url(), "total=250", 100).await, expected);

    let resp = c
        .get(format!("{}/items/page?page=1&per_page=2", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-total-count"), Some("250"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!([{ "id": 1, "name": "item-1" }, { "id": 2, "name": "item-2" }])
    );
    assert_eq!(s.stats().pages_served, 3 + 3 + 3 + 3 + 1);
}

#[tokio::test]
async fn link_urls_are_absolute_and_the_last_page_has_no_next() {
    let s = server().await;
    let resp = client()
        .get(format!("{}/items/link?page_size=5&total=5", s.url()))
        .send()
        .await
        .unwrap();
    let link = header(&resp, "link").unwrap();
    assert_eq!(link_rel(link, "next"), None);
    assert_eq!(
        link_rel(link, "first"),
        Some(format!("{}/items/link?page_size=5", s.url()))
    );
}

#[tokio::test]
async fn fail_rate_is_deterministic_under_the_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let s = crate::common::server_with(resile_chaos::ChaosConfig {
            seed,
            ..Default::default()
        })
        .await;
        let c = client();
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(
                c.get(format!("{}/items/offset?limit=1&fail_rate=0.3", s.url()))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    }
    let a = statuses(7).await;
    assert_eq!(a, statuses(7).await);
    assert_ne!(a, statuses(8).await);
    let failed = a.iter().filter(|s| **s == 503).count();
    assert!((4..=20).contains(&failed), "{failed} of 40");
}

#[tokio::test]
async fn walks_survive_injected_failures_with_retries() {
    let s = server().await;
    let c = client();
    let (all, failures) = walk_link(
        &c,
        format!(
            "{}/items/link?page_size=10&total=200&fail_rate=0.3",
            s.url()
        ),
    )
    .await;
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
    assert!(failures > 0);
    assert_eq!(u64::from(failures), s.stats().page_failures);
}

#[tokio::test]
async fn insertions_do_not_disturb_cursor_and_link_pagination() {
    let s = server().await;
    let c = client();
    let (link, _) = walk_link(
        &c,
        format!(
            "{}/items/link?page_size=10&total=100&insert_every=1",
            s.url()
        ),
    )
    .await;
    assert_eq!(
        link,
        (1..=100).collect::<Vec<_>>(),
        "link: nothing lost, nothing twice"
    );
    assert_eq!(s.stats().items_inserted, 10);

    s.state().reset();
    let (cursor, _) = walk_cursor(&c, &s.url(), "limit=10&total=100&insert_every=1").await;
    assert_eq!(
        cursor,
        (1..=100).collect::<Vec<_>>(),
        "cursor: nothing lost, nothing twice"
    );
}

#[tokio::test]
async fn insertions_show_duplicates_in_offset_and_page_pagination() {
    let s = server().await;
    let c = client();
    let offset = walk_offset(&c, &s.url(), "total=100&insert_every=1", 10).await;
    assert!(
        has_duplicates(&offset),
        "offset pagination repeats items when positions shift"
    );
    let originals: HashSet<u64> = offset.iter().copied().filter(|id| *id <= 100).collect();
    assert_eq!(originals.len(), 100, "but loses none");

    s.state().reset();
    let page = walk_page(&c, &s.url(), "total=100&insert_every=1", 10).await;
    assert!(has_duplicates(&page));
    assert_eq!(
        page[9], page[10],
        "the last item of page 1 comes again first on page 2"
    );
}

#[tokio::test]
async fn bad_page_parameters_get_400() {
    let s = server().await;
    let c = client();
    for q in [
        "cursor?cursor=garbage",
        "cursor?limit=0",
        "link?page_size=5000",
        "link?after=999999999",
        "page?page=0",
        "offset?offset=-1",
        "offset?fail_rate=2",
    ] {
        let (status, body) = get_json(&c, &format!("{}/items/{q}", s.url())).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body["message"].is_string());
    }
    // Totals above the cap are clipped, not refused.
    let resp = c
        .get(format!("{}/items/page?total=99999999&per_page=1", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "x-total-count"), Some("1000000"));
}
