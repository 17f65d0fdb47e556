//! The naive client the demo compares against: what a hand-written retry loop usually is.
//! Fixed retries with a fixed delay, no jitter, no budget, no breaker, no Idempotency-Key, no
//! Retry-After, and a token cache without single-flight (every caller that finds no token
//! fetches one).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

const RETRIES: u32 = 3;
const DELAY: Duration = Duration::from_millis(100);

pub struct Naive {
    http: reqwest::Client,
    token_url: String,
    token: Mutex<Option<String>>,
    attempts: AtomicU64,
    in_flight: AtomicU64,
}

impl Naive {
    pub fn new(token_url: String) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| format!("cannot build the naive client: {e}"))?;
        Ok(Naive {
            http,
            token_url,
            token: Mutex::new(None),
            attempts: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        })
    }

    pub fn live_state(&self) -> String {
        format!(
            "no breaker, no budget, no limiter | attempts {} | in flight {}",
            self.attempts.load(Ordering::Relaxed),
            self.in_flight.load(Ordering::Relaxed)
        )
    }

    async fn fetch_token(&self) -> Result<String, String> {
        let resp = self
            .http
            .post(&self.token_url)
            .basic_auth("demo", Some("demo"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        let token = body["access_token"]
            .as_str()
            .ok_or("no access_token in the reply")?
            .to_string();
        if let Ok(mut t) = self.token.lock() {
            *t = Some(token.clone());
        }
        Ok(token)
    }

    /// One logical call: up to 1 + RETRIES attempts, DELAY apart. Returns the body of the first
    /// 2xx, or the last error.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        protected: bool,
    ) -> Result<Vec<u8>, String> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.attempts_loop(method, url, body, protected).await;
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        result
    }

    async fn attempts_loop(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        protected: bool,
    ) -> Result<Vec<u8>, String> {
        let mut last = String::new();
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                tokio::time::sleep(DELAY).await;
            }
            let mut request = self.http.request(method.clone(), url);
            if let Some(b) = body {
                request = request.json(b);
            }
            if protected {
                let cached = self.token.lock().ok().and_then(|t| t.clone());
                let token = match cached {
                    Some(t) => t,
                    None => match self.fetch_token().await {
                        Ok(t) => t,
                        Err(e) => {
                            last = format!("token: {e}");
                            continue;
                        }
                    },
                };
                request = request.bearer_auth(token);
            }
            self.attempts.fetch_add(1, Ordering::Relaxed);
            match request.send().await {
                Ok(resp) if resp.status().is_success() => {
                    return resp
                        .bytes()
                        .await
                        .map(|b| b.to_vec())
                        .map_err(|e| e.to_string());
                }
                Ok(resp) if resp.status().as_u16() == 401 && protected => {
                    if let Ok(mut t) = self.token.lock() {
                        *t = None;
                    }
                    last = "status 401".into();
                }
                Ok(resp) if resp.status().as_u16() == 429 || resp.status().is_server_error() => {
                    last = format!("status {}", resp.status().as_u16());
                }
                Ok(resp) => return Err(format!("status {}", resp.status().as_u16())),
                Err(e) => last = e.to_string(),
            }
        }
        Err(format!("gave up after {} attempts: {last}", RETRIES + 1))
    }
}
