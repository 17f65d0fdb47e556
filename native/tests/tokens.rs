//! Access tokens against the chaos server's OAuth2 endpoint: one fetch for a burst, one forced
//! refresh after the server forgets its tokens, auth errors for everyone waiting when the
//! credentials are wrong, and secrets that never show up in Debug output, events or logs.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use common::{chaos, fast_policy, Recorder};
use resile::{
    Client, ClientAuth, ClientCredentials, Error, Secret, StaticBearer, TokenFuture, TokenSource,
    Why,
};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_server_keeps_rejecting_fails_without_looping() {
    let server = chaos().await;
    let client = Client::builder()
        .engine(fast_policy())
        .token_source(StaticBearer::new("never-issued"))
        .build()
        .unwrap();
    let e = client
        .get(format!("{}/protected/x", server.url()))
        .send()
        .await
        .unwrap_err();
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

    // A call that opts out goes without a token, and a 401 is then just a final status.
    let response = client
        .get(format!("{}/protected/x", server.url()))
        .without_token()
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// A `tracing` subscriber that writes every event's fields and every span's fields as text.
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.0.lock().unwrap();
        span.record(&mut Fields(&mut text));
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap()));
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.lock().unwrap();
        event.record(&mut Fields(&mut text));
        text.push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Fetches through client credentials and remembers the secrets it handed out.
struct Spy(ClientCredentials, Arc<Mutex<Vec<String>>>);

impl TokenSource for Spy {
    fn fetch<'a>(&'a self, http: &'a resile::reqwest::Client) -> TokenFuture<'a> {
        Box::pin(async move {
            let token = self.0.fetch(http).await?;
            self.1
                .lock()
                .unwrap()
                .push(token.secret.expose().to_string());
            Ok(token)
        })
    }
}

#[test]
fn secrets_stay_out_of_debug_output_events_and_logs() {
    let log = Arc::new(Mutex::new(String::new()));
    let issued = Arc::new(Mutex::new(Vec::new()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let events = Recorder::default();
    let spy_issued = issued.clone();
    let debug_text = tracing::subscriber::with_default(Capture(log.clone()), || {
        runtime.block_on(async {
            let server = chaos().await;
            let base = server.url();
            let token_url = format!("{base}/oauth/token");
            let mut debug_text = format!(
                "{:?}",
                credentials(token_url.clone(), "client-secret-value", ClientAuth::Form)
            );
            let client = Client::builder()
                .engine(fast_policy())
                .token_source(Spy(
                    credentials(token_url.clone(), "demo", ClientAuth::Form),
                    spy_issued,
                ))
                .on_event(events.callback())
                .build()
                .unwrap();
            let ok: Value = client
                .get_json(format!("{base}/protected/a"))
                .await
                .unwrap();
            assert_eq!(ok["ok"], true);
            // The server forgets the token: a 401, a refresh, a second token.
            client
                .post(format!("{base}/admin/expire-tokens"))
                .without_token()
                .send()
                .await
                .unwrap();
            let ok: Value = client
                .get_json(format!("{base}/protected/b"))
                .await
                .unwrap();
            assert_eq!(ok["ok"], true);

            let other = Client::builder()
                .engine(fast_policy())
                .default_header("authorization", "Bearer default-header-secret")
                .on_event(events.callback())
                .build()
                .unwrap();
            let response = other
                .get(format!("{base}/protected/c"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401);
            let request = client
                .get(format!("{base}/protected/d"))
                .bearer("explicit-bearer-secret");
            let failed = client
                .get(format!("{base}/protected/e"))
                .bearer("rejected-bearer-secret")
                .send()
                .await
                .unwrap();
            let _ = write!(
                debug_text,
                "{client:?} {other:?} {request:?} {response:?} {failed:?}"
            );
            debug_text
        })
    });
    let events: String = events
        .all()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let logs = log.lock().unwrap().clone();
    assert!(
        logs.contains("resile.call") || logs.contains("attempt"),
        "the subscriber saw the client: {logs}"
    );
    let mut secrets: Vec<String> = issued.lock().unwrap().clone();
    assert_eq!(secrets.len(), 2, "two tokens were issued");
    secrets.extend(
        [
            "client-secret-value",
            "default-header-secret",
            "explicit-bearer-secret",
            "rejected-bearer-secret",
        ]
        .map(String::from),
    );
    for (what, text) in [("Debug", &debug_text), ("events", &events), ("logs", &logs)] {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{what} contains {secret:?}:\n{text}"
            );
        }
    }
}
