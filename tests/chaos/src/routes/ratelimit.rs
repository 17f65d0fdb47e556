//! A server-side token bucket per key, announced through every rate-limit header dialect.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::state::{Bucket, Shared};
use crate::util::{http_date_in, set_header, unix_now_secs, ApiError, ApiResult, Params};

#[derive(Clone, Copy, PartialEq)]
enum RetryForm {
    Seconds,
    Date,
}

/// Which rate-limit header families to send (`dialects=ietf,legacy,legacy-dict,x`).
#[derive(Default)]
struct Dialects {
    /// `RateLimit` + `RateLimit-Policy` structured fields (draft-ietf-httpapi-ratelimit-headers-08+).
    ietf: bool,
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (early drafts).
    legacy: bool,
    /// `RateLimit: limit=L, remaining=R, reset=T` (drafts 04 to 07).
    legacy_dict: bool,
    /// `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`.
    x: bool,
}

impl Dialects {
    fn parse(list: &str) -> Result<Self, ApiError> {
        let mut d = Dialects::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "ietf" => d.ietf = true,
                "legacy" => d.legacy = true,
                "legacy-dict" => d.legacy_dict = true,
                "x" => d.x = true,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "`dialects` lists ietf, legacy, legacy-dict, x; got `{other}`"
                    )))
                }
            }
        }
        if d.ietf && d.legacy_dict {
            return Err(ApiError::bad_request(
                "`ietf` and `legacy-dict` both use the `RateLimit` header; pick one",
            ));
        }
        Ok(d)
    }
}

pub(crate) struct Decision {
    pub allowed: bool,
    remaining: u64,
    /// Seconds until the next request is allowed (when refused) or the bucket is full.
    reset_secs: u64,
    pub retry_after_secs: u64,
}

pub(crate) fn decide(bucket: &mut Bucket, now: Instant, rate: f64, burst: f64) -> Decision {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
    bucket.at = now;
    let allowed = bucket.tokens >= 1.0;
    if allowed {
        bucket.tokens -= 1.0;
    }
    let remaining = bucket.tokens.floor().max(0.0) as u64;
    let to_next = ((1.0 - bucket.tokens).max(0.0) / rate).ceil() as u64;
    let to_full = ((burst - bucket.tokens).max(0.0) / rate).ceil() as u64;
    Decision {
        allowed,
        remaining,
        reset_secs: if remaining == 0 {
            to_next.max(1)
        } else {
            to_full
        },
        retry_after_secs: to_next.max(1),
    }
}

pub(crate) async fn ratelimited(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    p: Params,
) -> ApiResult {
    let rate: f64 = p.num("rate", 1.0, "tokens per second")?;
    if !(rate > 0.0 && rate <= 1e6) {
        return Err(ApiError::bad_request(
            "`rate` must be in (0, 1000000] tokens per second",
        ));
    }
    let burst = p.bounded("burst", 5, 1, 1_000_000)?;
    let form = match p.get("form").unwrap_or("seconds") {
        "seconds" => RetryForm::Seconds,
        "date" => RetryForm::Date,
        other => {
            return Err(ApiError::bad_request(format!(
                "`form` is `seconds` or `date`, got `{other}`"
            )))
        }
    };
    let epoch_reset = match p.get("xreset").unwrap_or("delta") {
        "delta" => false,
        "epoch" => true,
        other => {
            return Err(ApiError::bad_request(format!(
                "`xreset` is `delta` or `epoch`, got `{other}`"
            )))
        }
    };
    let key = p.get("key").unwrap_or("default").to_owned();
    if key.len() > 256 {
        return Err(ApiError::bad_request("`key` is at most 256 bytes"));
    }
    let dialects = Dialects::parse(p.get("dialects").unwrap_or("ietf,x"))?;

    let now = Instant::now();
    let decision = {
        let mut state = shared.lock();
        if state.buckets.len() >= 100_000 && !state.buckets.contains_key(&key) {
            state.buckets.clear();
        }
        let bucket = state.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst as f64,
            at: now,
        });
        let decision = decide(bucket, now, rate, burst as f64);
        if !decision.allowed {
            state.stats.rate_limited += 1;
        }
        decision
    };

    let mut resp: Response = if decision.allowed {
        Json(json!({ "key": key, "remaining": decision.remaining })).into_response()
    } else {
        let body = json!({
            "error": "rate_limited",
            "message": format!("over {rate}/s with burst {burst} for key `{key}`"),
        });
        (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
    };
    let headers: &mut HeaderMap = resp.headers_mut();
    if !decision.allowed {
        let value = match form {
            RetryForm::Seconds => decision.retry_after_secs.to_string(),
            RetryForm::Date => http_date_in(decision.retry_after_secs),
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::RETRY_AFTER, v);
        }
    }
    let window = (burst as f64 / rate).ceil() as u64;
    let (r, t) = (decision.remaining, decision.reset_secs);
    if dialects.ietf {
        set_header(headers, "ratelimit", format!("\"default\";r={r};t={t}"));
        set_header(
            headers,
            "ratelimit-policy",
            format!("\"default\";q={burst};w={window}"),
        );
    }
    if dialects.legacy_dict {
        set_header(
            headers,
            "ratelimit",
            format!("limit={burst}, remaining={r}, reset={t}"),
        );
    }
    if dialects.legacy {
        set_header(headers, "ratelimit-limit", burst);
        set_header(headers, "ratelimit-remaining", r);
        set_header(headers, "ratelimit-reset", t);
    }
    if dialects.x {
        set_header(headers, "x-ratelimit-limit", burst);
        set_header(headers, "x-ratelimit-remaining", r);
        let reset = if epoch_reset { unix_now_secs() + t } else { t };
        set_header(headers, "x-ratelimit-reset", reset);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = Bucket {
            tokens: 2.0,
            at: t0,
        };
        assert!(decide(&mut b, t0, 1.0, 2.0).allowed);
        let d = decide(&mut b, t0, 1.0, 2.0);
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
        let d = decide(&mut b, t0, 1.0, 2.0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 1);
        let d = decide(&mut b, t0 + Duration::from_millis(1000), 1.0, 2.0);
        assert!(d.allowed);
        let d = decide(&mut b, t0 + Duration::from_secs(100), 1.0, 2.0);
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
        assert_eq!(d.reset_secs, 1);
    }
}
