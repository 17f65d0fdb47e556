//! OAuth 2.0 client credentials (RFC 6749 §4.4) and the bearer-protected routes (RFC 6750).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::json;

use crate::rng::splitmix64;
use crate::state::Shared;
use crate::util::{ApiResult, Params};

const MAX_TOKENS: usize = 100_000;
const REALM: &str = "resile-chaos";

/// An RFC 6749 §5.2 error reply.
fn oauth_error(
    status: StatusCode,
    error: &str,
    description: &str,
    basic_challenge: bool,
) -> Response {
    let body = json!({ "error": error, "error_description": description });
    let mut resp = (status, Json(body)).into_response();
    if basic_challenge {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"resile-chaos\""),
        );
    }
    no_store(&mut resp);
    resp
}

fn no_store(resp: &mut Response) {
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// `(client_id, client_secret)` from `Authorization: Basic`, if that header is used.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), ()>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| ());
    let pair = decoded
        .and_then(|bytes| String::from_utf8(bytes).map_err(|_| ()))
        .and_then(|text| {
            let (id, secret) = text.split_once(':').ok_or(())?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before encoding.
            let unescape = |s: &str| {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Ok((
                unescape(id).unwrap_or_default(),
                unescape(secret).unwrap_or_default(),
            ))
        });
    Some(pair)
}

pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    p: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let outcome = issue(&shared, &p, &headers, &body).await;
    if outcome.status() != StatusCode::OK {
        shared.lock().stats.token_errors += 1;
    }
    outcome
}

async fn issue(shared: &Shared, p: &Params, headers: &HeaderMap, body: &[u8]) -> Response {
    let bad = |error: &str, description: &str| {
        oauth_error(StatusCode::BAD_REQUEST, error, description, false)
    };
    let delay_ms = match p.opt::<u64>("delay_ms", "milliseconds") {
        Ok(d) => d.unwrap_or(0),
        Err(e) => return bad("invalid_request", &e.message),
    };
    let expires_override = match p.opt::<u64>("expires_in", "seconds") {
        Ok(e) => e,
        Err(e) => return bad("invalid_request", &e.message),
    };
    if delay_ms > 0 {
        tokio::time::sleep(shared.capped(Duration::from_millis(delay_ms))).await;
    }

    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };

    let grant_type = match field("grant_type") {
        Some(g) => g,
        None => return bad("invalid_request", "the form field `grant_type` is missing"),
    };
    let basic = basic_credentials(headers);
    let used_basic = basic.is_some();
    let credentials = match basic {
        Some(Ok(pair)) => Some(pair),
        Some(Err(())) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "malformed Basic credentials",
                true,
            )
        }
        None => match (field("client_id"), field("client_secret")) {
            (Some(id), Some(secret)) => Some((id.to_owned(), secret.to_owned())),
            _ => None,
        },
    };
    let Some((id, secret)) = credentials else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no client authentication: use HTTP Basic or the form fields client_id and client_secret",
            true,
        );
    };
    if id != shared.config.client_id || secret != shared.config.client_secret {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown client or wrong secret",
            used_basic,
        );
    }
    if grant_type != "client_credentials" {
        return bad(
            "unsupported_grant_type",
            "only `client_credentials` is supported",
        );
    }

    let now = Instant::now();
    let (token, expires_in) = {
        let mut state = shared.lock();
        let expires_in = expires_override
            .unwrap_or(state.token_expires_in)
            .min(10 * 365 * 86_400);
        if state.tokens.len() >= MAX_TOKENS {
            state.tokens.retain(|_, exp| *exp > now);
            if state.tokens.len() >= MAX_TOKENS {
                state.tokens.clear();
            }
        }
        state.token_counter += 1;
        let n = state.token_counter;
        let token = format!(
            "chaos-{n}-{:016x}",
            splitmix64(shared.config.seed ^ splitmix64(n))
        );
        state
            .tokens
            .insert(token.clone(), now + Duration::from_secs(expires_in));
        state.stats.tokens_issued += 1;
        (token, expires_in)
    };
    let mut body =
        json!({ "access_token": token, "token_type": "Bearer", "expires_in": expires_in });
    if let Some(scope) = field("scope") {
        body["scope"] = json!(scope);
    }
    let mut resp = Json(body).into_response();
    no_store(&mut resp);
    resp
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn unauthorized(challenge: &'static str, message: &str) -> Response {
    let body = json!({ "error": "invalid_token", "message": message });
    let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

pub(crate) async fn protected(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult {
    let now = Instant::now();
    let Some(token) = bearer_token(&headers) else {
        shared.lock().stats.unauthorized += 1;
        // RFC 6750 §3.1: no error code when the request carried no credentials.
        return Ok(unauthorized(
            "Bearer realm=\"resile-chaos\"",
            "send Authorization: Bearer <token>",
        ));
    };
    let mut state = shared.lock();
    match state.tokens.get(token).copied() {
        Some(expires) if expires > now => {
            state.stats.authorized += 1;
            let left = expires.saturating_duration_since(now).as_secs();
            let body =
                json!({ "ok": true, "path": uri.path(), "token_expires_in": left, "realm": REALM });
            Ok(Json(body).into_response())
        }
        found => {
            state.stats.unauthorized += 1;
            let why = if found.is_some() {
                "the access token expired"
            } else {
                "unknown access token"
            };
            Ok(unauthorized(
                "Bearer realm=\"resile-chaos\", error=\"invalid_token\"",
                why,
            ))
        }
    }
}
