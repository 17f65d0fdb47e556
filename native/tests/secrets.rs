//! Secrets never show up in Debug output, events or logs. Its own test binary: `tracing`
//! caches callsite interest process-wide, so a scoped subscriber next to tests running without
//! one could miss events.

mod common;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use common::{chaos, fast_policy, Recorder};
use resile::{Client, ClientAuth, ClientCredentials, Secret, TokenFuture, TokenSource};
use serde_json::Value;

fn credentials(token_url: String, secret: &str, auth: ClientAuth) -> ClientCredentials {
    ClientCredentials {
        token_url,
        client_id: "demo".into(),
        client_secret: Secret::new(secret),
        scope: None,
        auth,
    }
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
            // URL secrets: user info, the built-in names, and the client's own list.
            let config = resile::ClientConfig {
                engine: fast_policy(),
                redact_query_params: vec!["session".into()],
                ..Default::default()
            };
            let listed = Client::builder()
                .config(config)
                .on_event(events.callback())
                .build()
                .unwrap();
            let url_secrets = listed
                .get(format!(
                    "{}/status/200?api_key=url-secret-1&session=url-secret-2",
                    base.replace("http://", "http://me:url-secret-3@")
                ))
                .send()
                .await
                .unwrap();
            let _ = write!(
                debug_text,
                "{client:?} {other:?} {request:?} {response:?} {failed:?} {listed:?} {url_secrets:?}"
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
            "url-secret-1",
            "url-secret-2",
            "url-secret-3",
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
