//! Access tokens against the chaos server's OAuth2 endpoint: one fetch for a burst, one forced
//! refresh after the server forgets its tokens, and auth errors for everyone waiting when the
//! credentials are wrong.

mod common;

use common::{chaos, fast_policy, mini_server, MiniResponse};
use resile::{Client, ClientAuth, ClientCredentials, Error, Secret, StaticBearer, Why};
use serde_json::Value;

fn credentials(token_url: String, secret: &str, auth: ClientAuth) -> ClientCredentials {
    ClientCredentials {
        token_url,
        client_id: "demo".into(),
        client_secret: Secret::new(secret),
        scope: Some("read".into()),
        auth,
    }
}

async fn burst(client: &Client, base: &str, n: usize) -> Vec<Result<Value, Error>> {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}/protected/item/{i}");
            tokio::spawn(async move { client.get_json::<Value>(url).await })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_shares_one_token_and_a_forced_refresh_fetches_exactly_one_more() {
    let server = chaos().await;
    let base = server.url();
    for auth in [ClientAuth::Basic, ClientAuth::Form] {
        server.state().reset();
        let client = Client::builder()
            .engine(fast_policy())
            .token_source(credentials(format!("{base}/oauth/token"), "demo", auth))
            .build()
            .unwrap();
        let results = burst(&client, &base, 100).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Ok(v) if v["ok"] == true)),
            "{auth:?}: {:?}",
            results.iter().find(|r| r.is_err())
        );
        assert_eq!(
            server.stats().tokens_issued,
            1,
            "{auth:?}: one fetch for 100 concurrent calls"
        );
        assert_eq!(server.stats().unauthorized, 0);

        // The server forgets every token: the next burst gets 401s, and exactly one refresh.
        let expired = client
            .post(format!("{base}/admin/expire-tokens"))
            .without_token()
            .send()
            .await
            .unwrap();
        assert_eq!(expired.json::<Value>().unwrap()["expired"], 1);
        let results = burst(&client, &base, 100).await;
        assert!(
            results.iter().all(Result::is_ok),
            "{auth:?}: {:?}",
            results.iter().find(|r| r.is_err())
        );
        assert_eq!(
            server.stats().tokens_issued,
            2,
            "{auth:?}: exactly one more fetch"
        );
        assert!(server.stats().unauthorized >= 1);
        assert_eq!(client.token().generation, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_every_waiting_call_with_an_auth_error() {
    let server = chaos().await;
    let base = server.url();
    let client = Client::builder()
        .engine(fast_policy())
        .token_source(credentials(
            format!("{base}/oauth/token"),
            "wrong-secret",
            ClientAuth::Basic,
        ))
        .build()
        .unwrap();
    let results = burst(&client, &base, 20).await;
    for r in &results {
        match r {
            Err(Error::Auth { why, detail }) => {
                assert_eq!(*why, Why::TokenFetchFailed);
                assert!(
                    detail.as_deref().unwrap_or("").contains("invalid_client"),
                    "{detail:?}"
                );
            }
            other => panic!("expected Auth, got {other:?}"),
        }
    }
    let stats = server.stats();
    assert_eq!(stats.tokens_issued, 0);
    assert_eq!(
        stats
            .requests_by_route
            .get("/protected/{path}")
            .copied()
            .unwrap_or(0),
        0,
        "nothing sent unauthenticated"
    );
    assert!(stats.token_errors >= 1 && stats.token_errors <= 20);
}

/// A client whose every call carries `token`, and the error of its call to `/protected/x`.
async fn protected_with(server: &resile_chaos::ChaosServer, token: &str) -> (Client, Error) {
    let client = Client::builder()
        .engine(fast_policy())
        .token_source(StaticBearer::new(token))
        .build()
        .unwrap();
    let e = client
        .get(format!("{}/protected/x", server.url()))
        .send()
        .await
        .unwrap_err();
    (client, e)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_echoes_the_secret_does_not_put_it_in_the_error() {
    let secret = "s3cr3t w/ space";
    // One endpoint quotes the secret in its error_description, one echoes the form it got.
    let endpoint = mini_server(|req| async move {
        match req.path.as_str() {
            "/described" => MiniResponse::status(401)
                .header("content-type", "application/json")
                .body(r#"{"error":"invalid_client","error_description":"secret s3cr3t w/ space is wrong"}"#),
            _ => MiniResponse::status(400).body(req.body),
        }
    })
    .await;
    for (path, auth) in [
        ("/described", ClientAuth::Basic),
        ("/echoed", ClientAuth::Form),
    ] {
        let client = Client::builder()
            .engine(fast_policy())
            .token_source(credentials(
                format!("{}{path}", endpoint.url()),
                secret,
                auth,
            ))
            .build()
            .unwrap();
        let e = client
            .get(format!("{}/api", endpoint.url()))
            .send()
            .await
            .unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(matches!(e, Error::Auth { .. }), "{shown}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("REDACTED"),
            "{path}: {shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_keeps_rejecting_fails_without_looping() {
    let server = chaos().await;
    let (client, e) = protected_with(&server, "never-issued").await;
    assert!(
        matches!(
            &e,
            Error::Auth {
                why: Why::TokenRejectedAgain,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        server.stats().unauthorized,
        2,
        "one forced refresh, then stop"
    );

    // A streamed body cannot follow the forced refresh: the token is refreshed for later
    // calls, and the 401 is this call's answer (one attempt, nothing resent).
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>("{}")]);
    let response = client
        .post(format!("{}/protected/upload", server.url()))
        .body_stream(chunks)
        .send()
        .await
        .unwrap();
    assert_eq!((response.status().as_u16(), response.attempts()), (401, 1));
    assert_eq!(client.active_calls(), 0);

    // A call that opts out goes without a token, and a 401 is then just a final status.
    let response = client
        .get(format!("{}/protected/x", server.url()))
        .without_token()
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_no_header_can_carry_fails_the_fetch_instead_of_being_dropped() {
    let server = chaos().await;
    for bad in ["", "abc\r\nX-Injected: 1", "tab\u{7f}del"] {
        let (_, e) = protected_with(&server, bad).await;
        match &e {
            Error::Auth {
                why: Why::TokenFetchFailed,
                detail: Some(detail),
            } => assert!(detail.contains("control characters"), "{detail}"),
            other => panic!("{bad:?}: {other:?}"),
        }
        assert!(!format!("{e} {e:?}").contains("X-Injected"), "{e:?}");
    }
    assert_eq!(
        server.stats().requests,
        0,
        "no attempt went out without its token"
    );
}
