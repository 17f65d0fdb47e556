//! Pagination as a Stream, over the chaos server's four styles, with failing pages and a
//! collection that grows while it is walked.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{chaos, fast_policy, mini_server, MiniResponse};
use futures::{StreamExt, TryStreamExt};
use resile::{Client, Error, PageStyle, WalkPolicy};
use resile_chaos::ChaosConfig;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Item {
    id: u64,
    name: String,
}

fn client() -> Client {
    let mut policy = fast_policy();
    policy.retry.max_attempts = 8;
    Client::builder().engine(policy).seed(11).build().unwrap()
}

/// (style, path with its options, items pointer)
fn styles(query: &str) -> Vec<(&'static str, PageStyle, String, Option<&'static str>)> {
    vec![
        (
            "link",
            PageStyle::Link,
            format!("/items/link?page_size=20&{query}"),
            None,
        ),
        (
            "cursor",
            PageStyle::cursor("/next_cursor", "cursor"),
            format!("/items/cursor?limit=20&{query}"),
            Some("/items"),
        ),
        (
            "offset",
            PageStyle::offset(20),
            format!("/items/offset?{query}"),
            None,
        ),
        (
            "page",
            PageStyle::page(20),
            format!("/items/page?{query}"),
            None,
        ),
    ]
}

fn counts(ids: &[u64]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(*id).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_style_yields_every_item_once_despite_failing_pages() {
    for (name, style, path, pointer) in styles("total=250&fail_rate=0.2") {
        // A server per style, so the seeded failures do not depend on the other walks.
        let server = chaos().await;
        let client = client();
        let items: Vec<Item> = client
            .paginate(format!("{}{path}", server.url()), style, pointer)
            .items::<Item>()
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids: Vec<u64> = items.iter().map(|i| i.id).collect();
        assert_eq!(
            ids,
            (1..=250).collect::<Vec<_>>(),
            "{name}: every item once, in order"
        );
        assert_eq!(items[0].name, "item-1");
        let stats = server.stats();
        assert!(
            stats.page_failures > 0,
            "{name}: some pages failed ({stats:?})"
        );
        assert_eq!(
            client.stats().retries,
            stats.page_failures,
            "{name}: each failed page was retried once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_styles_lose_and_duplicate_nothing_while_the_collection_grows() {
    for (name, style, path, pointer) in styles("total=200&insert_every=2&fail_rate=0.1") {
        let server = chaos().await;
        let values: Vec<Value> = client()
            .paginate(format!("{}{path}", server.url()), style, pointer)
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids: Vec<u64> = values.iter().map(|v| v["id"].as_u64().unwrap()).collect();
        assert!(
            server.stats().items_inserted > 0,
            "{name}: the collection grew"
        );
        let seen = counts(&ids);
        let originals: BTreeSet<u64> = (1..=200).collect();
        assert!(
            originals.iter().all(|id| seen.contains_key(id)),
            "{name}: nothing lost"
        );
        let duplicates = seen.values().filter(|n| **n > 1).count();
        match name {
            // Keyed by the last item seen: exactly the original items, once each.
            "link" | "cursor" => {
                assert_eq!(duplicates, 0, "{name}: no duplicates");
                assert_eq!(ids, (1..=200).collect::<Vec<_>>(), "{name}");
            }
            // Keyed by position: each insertion shifts the next page back by one.
            _ => assert!(duplicates > 0, "{name}: positions shift under insertions"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_come_whole_and_a_page_that_keeps_failing_ends_the_walk() {
    let server = chaos().await;
    let client = client();
    let url = format!("{}/items/link?page_size=30&total=100", server.url());
    let pages: Vec<resile::Page> = client
        .paginate(&url, PageStyle::Link, None)
        .pages()
        .try_collect()
        .await
        .unwrap();
    let sizes: Vec<usize> = pages.iter().map(|p| p.items.len()).collect();
    assert_eq!(sizes, vec![30, 30, 30, 10]);
    assert!(
        pages[1].url.query().unwrap().contains("after=30"),
        "the Link URL was followed"
    );
    assert!(pages.iter().all(|p| p.status == 200 && p.attempts >= 1));

    // A walk with one retry in all: the page that keeps failing ends it, with that page as
    // the resume point.
    let client = Client::builder().engine(fast_policy()).build().unwrap();
    let url = format!("{}/items/cursor?total=100&fail_rate=1", server.url());
    let mut stream = client
        .paginate(
            &url,
            PageStyle::cursor("/next_cursor", "cursor"),
            Some("/items"),
        )
        .policy(WalkPolicy {
            retries: 1,
            ..WalkPolicy::default()
        });
    let first = stream.next().await.expect("an error, not silence");
    match &first {
        Err(Error::Walk {
            cause,
            resume,
            items: 0,
            ..
        }) => {
            assert!(
                matches!(**cause, Error::RetriesExhausted { attempts: 2, .. }),
                "{cause:?}"
            );
            assert_eq!(resume.as_ref().map(|r| r.url()), Some(url.as_str()));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        stream.next().await.is_none(),
        "the walk ends after a page that failed for good"
    );

    // Items not where the pointer says: a typed error, not a panic.
    let url = format!("{}/items/cursor?total=10", server.url());
    let e = client
        .paginate(
            &url,
            PageStyle::cursor("/next_cursor", "cursor"),
            Some("/nope"),
        )
        .try_collect::<Vec<Value>>()
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Walk { cause, .. } if matches!(**cause, Error::Pagination(_))),
        "{e:?}"
    );
}

/// Issue 12 item 15: a walk is one logical operation. Through a server failing 35 % of page
/// requests, with the default config, the walk completes: one page's bad streak (longer than
/// the per-call `max_attempts` of 4) is paid from the walk's shared allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_walk_through_35_percent_failures_completes_under_the_default_config() {
    // Under seed 55 the server's draws fail 8 of the walk's 21 requests (38 %), the third
    // page four times in a row: a walk bounded by one call's attempts stopped after 40 items.
    let server = resile_chaos::start(ChaosConfig {
        seed: 55,
        ..ChaosConfig::default()
    })
    .await
    .expect("chaos server starts");
    let client = Client::builder().seed(15).build().unwrap();
    let url = format!(
        "{}/items/link?page_size=20&total=250&fail_rate=0.35",
        server.url()
    );
    let pages: Vec<resile::Page> = client
        .paginate(&url, PageStyle::Link, None)
        .pages()
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("the walk stopped: {e}"));
    let ids: Vec<u64> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(|v| v["id"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        ids,
        (1..=250).collect::<Vec<_>>(),
        "every item once, in order"
    );
    let stats = server.stats();
    assert_eq!(stats.page_failures, 8, "{stats:?}");
    let longest = pages.iter().map(|p| p.attempts).max().unwrap_or(0);
    assert!(
        longest > resile::Config::default().retry.max_attempts,
        "a page needed more attempts than one call may make ({longest}; {stats:?})"
    );
    let attempts: u32 = pages.iter().map(|p| p.attempts).sum();
    assert_eq!(
        u64::from(attempts),
        stats.page_failures + pages.len() as u64,
        "every failed request was retried, nothing else was asked twice"
    );
}

/// A walk that fails says where to resume; walks resumed from there get the rest, in every
/// style, without losing or repeating an item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_walk_resumes_where_it_stopped_without_duplicates() {
    // No retries at all: every failed page request stops the walk.
    let strict = WalkPolicy {
        retries: 0,
        ..WalkPolicy::default()
    };
    for (name, style, path, pointer) in styles("total=250&fail_rate=0.35") {
        let server = chaos().await;
        let client = Client::builder().seed(15).build().unwrap();
        let url = format!("{}{path}", server.url());
        let (mut ids, mut stops, mut resume) = (Vec::<u64>::new(), 0, None::<String>);
        for _ in 0..200 {
            let mut walk = client
                .paginate(&url, style.clone(), pointer)
                .policy(strict.clone());
            if let Some(token) = &resume {
                walk = walk.resume(token.clone());
            }
            let mut items = walk.items::<Item>();
            resume = None;
            while let Some(item) = items.next().await {
                match item {
                    Ok(item) => ids.push(item.id),
                    Err(e) => {
                        let at = e
                            .resume()
                            .unwrap_or_else(|| panic!("{name}: no resume point in {e}"));
                        assert!(e.is_retryable(), "{name}: {e}");
                        resume = Some(at.token().to_string());
                        stops += 1;
                        break;
                    }
                }
            }
            if resume.is_none() {
                break;
            }
        }
        assert!(resume.is_none(), "{name}: the walk got to its end");
        assert!(stops >= 2, "{name}: it stopped and resumed ({stops} stops)");
        assert_eq!(
            stops,
            server.stats().page_failures,
            "{name}: each failed page stopped the walk once"
        );
        assert_eq!(
            ids,
            (1..=250).collect::<Vec<_>>(),
            "{name}: every item once, in order, across {stops} resumes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_urls_credentials_follow_next_links_within_its_origin_only() {
    // Another origin: the walk's last page.
    let elsewhere = mini_server(|_| async { MiniResponse::status(200).body("[3]") }).await;
    let away = format!("{}/items?page=3", elsewhere.url());
    let home = mini_server(move |r| {
        let away = away.clone();
        async move {
            let host = r.header("host").unwrap_or_default().to_string();
            let (body, next) = if r.path.contains("page=2") {
                ("[2]", away)
            } else {
                // An absolute link to the same origin.
                ("[1]", format!("http://{host}/items?page=2"))
            };
            MiniResponse::status(200)
                .header("link", &format!("<{next}>; rel=\"next\""))
                .body(body)
        }
    })
    .await;
    let client = Client::builder().engine(fast_policy()).build().unwrap();
    let first = format!("http://walker:s3cret@{}/items", home.addr);
    let items: Vec<Value> = client
        .paginate(first, PageStyle::Link, None)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(items, vec![1, 2, 3]);
    // "walker:s3cret" in base64.
    let basic = Some("Basic d2Fsa2VyOnMzY3JldA==");
    assert_eq!(home.requests().len(), 2);
    for r in home.requests() {
        assert_eq!(r.header("authorization"), basic, "{}", r.path);
    }
    let there = elsewhere.requests();
    assert_eq!(there.len(), 1);
    assert_eq!(there[0].header("authorization"), None);
}
