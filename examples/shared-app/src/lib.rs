//! A crate that uses only resile's common API, so it compiles unchanged for the host (against
//! `resile`, reqwest and tokio) and for `wasm32-unknown-unknown` (against `resile-wasm`, fetch) —
//! a Leptos or Yew front end sharing its API layer with its server would look like this.
//!
//! ```sh
//! cargo build -p shared-app
//! cargo build -p shared-app --target wasm32-unknown-unknown
//! ```

#[cfg(not(target_arch = "wasm32"))]
extern crate resile;
#[cfg(target_arch = "wasm32")]
extern crate resile_wasm as resile;

use std::time::Duration;

use resile::{Client, ClientEvent, Error, IdempotencyKey, Why};
use serde::{Deserialize, Serialize};

/// A record of the shop's API.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
}

/// The client: four attempts, at most eight calls at once and four per host, a fixed seed, and
/// every retry the engine schedules logged through `log`.
pub fn client(base_url: &str, log: fn(&str)) -> Result<Client, Error> {
    let mut policy = resile::Config::default();
    policy.retry.max_attempts = 4;
    Client::builder()
        .base_url(base_url)
        .default_header("x-app", "shared-app")
        .engine(policy)
        .max_in_flight(8)
        .max_in_flight_per_host(4)
        .seed(7)
        .on_event(move |e: &ClientEvent| {
            if let Some(event) = e.engine() {
                if event.kind.why() == Some(Why::RetryAfterHeader) {
                    log(&event.describe());
                }
            }
        })
        .build()
}

/// A client that sends a fixed bearer token (the same `StaticBearer` on both targets).
pub fn client_with_token(base_url: &str, token: &str) -> Result<Client, Error> {
    Client::builder()
        .base_url(base_url)
        .token_source(resile::StaticBearer::new(token))
        .build()
}

/// One item, decoded.
pub async fn item(client: &Client, id: u64) -> Result<Item, Error> {
    client.get_json(format!("items/{id}")).await
}

/// Creates an item: a POST with an automatic Idempotency-Key, so the engine may repeat it.
pub async fn create(client: &Client, item: &Item) -> Result<Item, Error> {
    client
        .post("items")
        .json(item)
        .header("x-trace", "create")
        .idempotency_key(IdempotencyKey::Auto)
        .deadline(Duration::from_secs(10))
        .max_attempts(3)
        .send()
        .await?
        .error_for_status()?
        .json()
}

/// A search, with what the response says about how it was had.
pub async fn search(client: &Client, query: &str) -> Result<(String, u32, String), Error> {
    let response = client
        .request(http::Method::GET, "search")
        .query(&[("q", query)])
        .send()
        .await?;
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if !response.status().is_success() {
        return Err(response.error_for_status().err().unwrap_or(Error::Status {
            status: 0,
            body_excerpt: String::new(),
        }));
    }
    let id = response.request_id().to_string();
    Ok((
        format!("{kind}: {}", response.text()),
        response.attempts(),
        id,
    ))
}

/// Replaces, renames and deletes an item, then checks it is gone.
pub async fn churn(client: &Client, id: u64) -> Result<bool, Error> {
    let path = format!("items/{id}");
    client.put(&path).body(b"{}".to_vec()).send().await?;
    client
        .patch(&path)
        .json(&serde_json::json!({"name": "renamed"}))
        .send()
        .await?;
    client.delete(&path).send().await?;
    let gone = client.head(&path).send().await?;
    Ok(gone.status().as_u16() == 404 && gone.bytes().is_empty())
}

/// What a person should know about an error, from the questions both clients' errors answer.
pub fn describe(e: &Error) -> String {
    format!(
        "{e} (retryable later: {}, may have been applied: {}, timed out: {}, status: {:?}, why: {:?})",
        e.is_retryable(),
        e.maybe_processed(),
        e.is_timeout(),
        e.status(),
        e.why(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_error_reads_the_same_on_both_targets() {
        let e = Error::Status {
            status: 404,
            body_excerpt: "no such item".into(),
        };
        let text = describe(&e);
        assert!(text.contains("status: Some(404)"), "{text}");
        assert!(client("http://127.0.0.1:9/api", |_| {}).is_ok());
    }
}
