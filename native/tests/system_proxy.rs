//! The proxy from the environment, honoured as reqwest does, by the client resile builds
//! itself. Its own test binary: the variables are process-wide, so no other test shares them.

mod common;

use common::{mini_server, MiniResponse};
use resile::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_and_no_proxy_from_the_environment_are_honoured() {
    let proxy = mini_server(|req| async move {
        MiniResponse::status(200).body(format!("proxied {}", req.path))
    })
    .await;
    let upstream =
        mini_server(
            |req| async move { MiniResponse::status(200).body(format!("direct {}", req.path)) },
        )
        .await;
    let url = format!("{}/items/1", upstream.url());
    // Set before the clients are built, in this process only (this binary's one test).
    std::env::set_var("HTTP_PROXY", proxy.url());
    std::env::remove_var("NO_PROXY");
    std::env::remove_var("no_proxy");
    let proxied = Client::new();
    let response = proxied.get(&url).send().await.unwrap();
    assert_eq!(
        response.text(),
        format!("proxied {url}"),
        "absolute form: a proxy request"
    );

    std::env::set_var("NO_PROXY", "127.0.0.1");
    let direct = Client::new();
    let response = direct.get(&url).send().await.unwrap();
    assert_eq!(response.text(), "direct /items/1");
    assert_eq!(
        proxy.requests().len(),
        1,
        "only the first client used the proxy"
    );
    assert_eq!(upstream.requests().len(), 1);
}
