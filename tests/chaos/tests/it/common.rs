use std::time::Duration;

use resile_chaos::{ChaosConfig, ChaosServer};
use serde_json::Value;

pub async fn server() -> ChaosServer {
    server_with(ChaosConfig::default()).await
}

/// A server with test-friendly bounds (short stalls), on top of `config`.
pub async fn server_with(config: ChaosConfig) -> ChaosServer {
    let config = ChaosConfig {
        seed: config.seed.max(1),
        max_stall: config.max_stall.min(Duration::from_secs(2)),
        ..config
    };
    resile_chaos::start(config)
        .await
        .expect("the chaos server starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("a reqwest client")
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let resp = client.get(url).send().await.expect("a response");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("a JSON body"))
}

pub fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}
