//! Redirects against the chaos server: a chain within `max_redirects` is followed, a loop or a
//! longer chain is a typed error, never a 3xx handed back as the answer.

mod common;

use common::{chaos, fast_policy};
use resile::{Client, Error};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_too_many_redirects_not_a_success() {
    let server = chaos().await;
    let base = server.url();
    let client = Client::builder()
        .engine(fast_policy())
        .max_redirects(3)
        .build()
        .unwrap();

    let ok = client
        .get(format!("{base}/redirect/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "three hops are within the limit");
    assert_eq!(ok.url().path(), "/redirect/0");

    for path in ["/redirect/4", "/redirect/loop", "/redirect/loop?status=308"] {
        let before = server.stats().redirects;
        match client.get(format!("{base}{path}")).send().await {
            Err(Error::TooManyRedirects { limit: 3 }) => {}
            other => panic!("{path}: expected TooManyRedirects, got {other:?}"),
        }
        assert_eq!(
            server.stats().redirects - before,
            4,
            "{path}: the first request and three hops, then no more (and no retry)"
        );
    }

    // `max_redirects = 0` means "do not follow": the 3xx is the answer, as documented.
    let manual = Client::builder().max_redirects(0).build().unwrap();
    let r = manual
        .get(format!("{base}/redirect/loop"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
}
