use std::time::Duration;

use resile_chaos::{Script, ScriptFault, ScriptReply};
use serde_json::{json, Value};

use crate::common::{client, get_json, header, server};

#[tokio::test]
async fn scripted_replies_come_in_order_then_repeat() {
    let s = server().await;
    let c = client();
    let script = json!({
        "replies": [
            { "status": 503, "headers": { "Retry-After": "1" } },
            { "status": 200, "fault": "reset" },
            { "status": 200, "fault": "truncate", "body": "0123456789" },
            { "status": 429, "headers": { "RateLimit": "\"default\";r=0;t=2" }, "delay_ms": 20 },
            { "status": 200, "body": { "done": true } }
        ],
        "then": { "status": 200, "body": "again" }
    });
    let resp = c
        .post(format!("{}/script/conf-1", s.url()))
        .json(&script)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let url = format!("{}/s/conf-1/orders?x=1", s.url());
    let r = c
        .post(&url)
        .header("idempotency-key", "ik")
        .header("x-request-id", "r1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after"), Some("1"));

    let err = c
        .get(&url)
        .bearer_auth("secret-token")
        .send()
        .await
        .unwrap_err();
    assert!(err.status().is_none());

    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.content_length(), Some(10));
    assert!(r.bytes().await.is_err());

    let r = c.delete(&url).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "ratelimit"), Some("\"default\";r=0;t=2"));

    let (status, body) = get_json(&c, &url).await;
    assert_eq!((status, body), (200, json!({ "done": true })));
    for _ in 0..2 {
        let r = c.get(format!("{}/s/conf-1", s.url())).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "again");
    }

    let (status, log) = get_json(&c, &format!("{}/script/conf-1/log", s.url())).await;
    assert_eq!(status, 200);
    assert_eq!(log["count"], 7);
    let first = &log["requests"][0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/s/conf-1/orders?x=1");
    assert_eq!(first["idempotency_key"], "ik");
    assert_eq!(first["x_request_id"], "r1");
    assert_eq!(log["requests"][1]["authorization"], "Bearer …");
    assert_eq!(log["requests"][6]["reply"], Value::Null);
    let stats = s.stats();
    assert_eq!((stats.scripted, stats.resets, stats.truncated), (7, 1, 1));
}

#[tokio::test]
async fn without_then_the_last_reply_repeats() {
    let s = server().await;
    let c = client();
    s.state()
        .set_script(
            "lib",
            Script {
                replies: vec![
                    ScriptReply {
                        status: 500,
                        ..Default::default()
                    },
                    ScriptReply {
                        status: 202,
                        ..Default::default()
                    },
                ],
                then: None,
            },
        )
        .unwrap();
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            out.push(
                c.get(format!("{}/s/lib", s.url()))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    };
    assert_eq!(statuses, vec![500, 202, 202, 202]);
    assert_eq!(s.state().script_log("lib").unwrap().count, 4);
}

#[tokio::test]
async fn stall_fault_holds_the_request() {
    let s = server().await;
    let reply = ScriptReply {
        fault: Some(ScriptFault::Stall),
        ..Default::default()
    };
    s.state()
        .set_script(
            "st",
            Script {
                replies: vec![reply],
                then: None,
            },
        )
        .unwrap();
    let err = client()
        .get(format!("{}/s/st", s.url()))
        .timeout(Duration::from_millis(100))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
}

#[tokio::test]
async fn preflights_do_not_consume_replies() {
    let s = server().await;
    let c = client();
    c.post(format!("{}/script/p", s.url()))
        .json(&json!({ "replies": [{ "status": 201 }, { "status": 500 }] }))
        .send()
        .await
        .unwrap();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{}/s/p", s.url()))
        .header("origin", "http://a.test")
        .header("access-control-request-method", "PUT")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(
        c.put(format!("{}/s/p", s.url()))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
}

#[tokio::test]
async fn bad_scripts_and_unknown_ids_are_refused() {
    let s = server().await;
    let c = client();
    for bad in [
        json!({ "replies": [] }),
        json!({ "replies": [{ "status": 42 }] }),
        json!({ "replies": [{ "fault": "explode" }] }),
        json!({ "replies": [{ "headers": { "bad header": "x" } }] }),
        json!({ "nope": 1 }),
    ] {
        let r = c
            .post(format!("{}/script/x", s.url()))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = c
        .post(format!("{}/script/bad%20id", s.url()))
        .json(&json!({ "replies": [{}] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        c.get(format!("{}/s/unknown", s.url()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        c.get(format!("{}/script/unknown/log", s.url()))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}
