//! `X-Request-ID`: one per call by default, none at all when the caller turns request ids off,
//! and a caller's own header sent as given either way.

mod common;

use common::{chaos, fast_policy};
use resile::{Client, RequestIds};
use serde_json::json;

async fn three_attempts(client: &Client, script: &str, own: Option<&str>) -> resile::Response {
    let server = chaos().await;
    let state = server.state();
    let replies = json!({"replies": [{"status": 503}, {"status": 503}, {"status": 200}]});
    state
        .set_script(script, serde_json::from_value(replies).unwrap())
        .unwrap();
    let mut request = client.get(format!("{}/s/{script}", server.url()));
    if let Some(id) = own {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    assert_eq!((response.status().as_u16(), response.attempts()), (200, 3));
    let log = state.script_log(script).unwrap();
    assert_eq!(log.count, 3);
    let seen: Vec<Option<String>> = log
        .requests
        .iter()
        .map(|r| r.x_request_id.clone())
        .collect();
    match (own, client.config().engine.request_id) {
        (Some(id), _) => assert!(seen.iter().all(|s| s.as_deref() == Some(id)), "{seen:?}"),
        (None, RequestIds::Off) => assert!(seen.iter().all(Option::is_none), "{seen:?}"),
        (None, _) => {
            assert!(seen
                .iter()
                .all(|s| s.as_deref() == Some(response.request_id())));
            assert_eq!(response.request_id().len(), 36);
        }
    }
    response
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_off_send_none_and_report_none() {
    let off = Client::builder()
        .engine(fast_policy())
        .request_ids(RequestIds::Off)
        .build()
        .unwrap();
    let response = three_attempts(&off, "off", None).await;
    assert_eq!(response.request_id(), "");
    // The caller's own header is not the engine's: it is sent as given.
    three_attempts(&off, "own", Some("trace-7")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_by_default_and_from_a_config_file() {
    let on = Client::builder().engine(fast_policy()).build().unwrap();
    three_attempts(&on, "on", None).await;

    let config = resile::ClientConfig::from_json(r#"{"engine": {"request_id": "off"}}"#).unwrap();
    assert_eq!(config.engine.request_id, RequestIds::Off);
    let bad = resile::ClientConfig::from_json(r#"{"engine": {"request_id": "sometimes"}}"#);
    assert!(bad.is_err(), "an unknown mode is a config error");
}
