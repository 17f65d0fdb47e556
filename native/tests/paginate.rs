//! Pagination as a Stream, over the chaos server's four styles, with failing pages and a
//! collection that grows while it is walked.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{chaos, fast_policy};
use futures::{StreamExt, TryStreamExt};
use resile::{Client, Error, PageStyle};
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

    let mut policy = fast_policy();
    policy.retry.max_attempts = 2;
    let client = Client::builder().engine(policy).build().unwrap();
    let url = format!("{}/items/cursor?total=100&fail_rate=1", server.url());
    let mut stream = client.paginate(
        &url,
        PageStyle::cursor("/next_cursor", "cursor"),
        Some("/items"),
    );
    let first = stream.next().await.expect("an error, not silence");
    assert!(
        matches!(first, Err(Error::RetriesExhausted { attempts: 2, .. })),
        "{first:?}"
    );
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
    assert!(matches!(e, Error::Pagination(_)), "{e:?}");
}
