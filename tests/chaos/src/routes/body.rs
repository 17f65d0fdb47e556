//! What the server received and what it sends back byte for byte: the raw request body and
//! its digest (`/echo`), an HMAC-signed body (`/signed`), multipart parts (`/upload`), and a
//! binary download (`/bytes/{n}`), and one that never ends (`/endless`).

use std::sync::{Arc, LazyLock};

use axum::body::Bytes;
use axum::extract::{Multipart, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::rng::splitmix64;
use crate::state::Shared;
use crate::util::{set_header, ApiError, ApiResult, Params};

/// The HMAC-SHA256 key `/signed` checks `X-Signature` with.
pub const SIGNING_KEY: &[u8] = b"resile-chaos-signing-key";

/// Largest `/bytes/{n}`.
const MAX_DOWNLOAD: u64 = 8 << 20;

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The `X-Signature` value `/signed` accepts for `body`: `sha256=` and the hex HMAC-SHA256
/// of the raw bytes under [`SIGNING_KEY`].
///
/// ```
/// let sig = resile_chaos::sign(b"{\"b\":2,\"a\":1}");
/// assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
/// ```
pub fn sign(body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_of(body)))
}

fn hmac_of(body: &[u8]) -> Vec<u8> {
    // A key of any length is accepted by HMAC; `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(SIGNING_KEY) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// The `n`-th byte of the download for `seed`: every value 0..=255 occurs, CR, LF and NUL
/// included, so a client that rewrites line ends or stops at a NUL is caught.
fn download_byte(seed: u64, n: u64) -> u8 {
    (splitmix64(seed ^ splitmix64(n / 8)) >> ((n % 8) * 8)) as u8
}

/// The `{n}` of `/bytes/{n}` and `/download/{n}`: a length up to 8 MiB.
pub(crate) fn download_len(n: &str) -> Result<u64, ApiError> {
    n.parse()
        .ok()
        .filter(|n| *n <= MAX_DOWNLOAD)
        .ok_or_else(|| {
            ApiError::bad_request(format!("`{n}` is not a length in 0..={MAX_DOWNLOAD}"))
        })
}

/// The body `/bytes/{n}?seed=S` serves: `n` pseudo-random bytes, a pure function of `seed`.
///
/// ```
/// let body = resile_chaos::download_bytes(7, 64);
/// assert_eq!(body.len(), 64);
/// assert_eq!(body, resile_chaos::download_bytes(7, 64));
/// ```
pub fn download_bytes(seed: u64, n: u64) -> Vec<u8> {
    (0..n.min(MAX_DOWNLOAD))
        .map(|i| download_byte(seed, i))
        .collect()
}

fn headers_json(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match map.get_mut(name.as_str()) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&text);
            }
            _ => {
                map.insert(name.as_str().to_owned(), Value::String(text));
            }
        }
    }
    Value::Object(map)
}

/// `ANY /echo`: what arrived, with the body's length, SHA-256, and text when it is UTF-8.
pub(crate) async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "content_type": headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()),
        "headers": headers_json(&headers),
        "len": body.len(),
        "sha256": sha256_hex(&body),
        "body": std::str::from_utf8(&body).ok(),
    }))
    .into_response()
}

/// `ANY /signed`: 200 when `X-Signature` is [`sign`] of the raw body, else 401.
pub(crate) async fn signed(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let given = headers
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Constant-time comparison through the MAC itself.
    let verified = given
        .strip_prefix("sha256=")
        .and_then(unhex)
        .is_some_and(|tag| {
            Hmac::<Sha256>::new_from_slice(SIGNING_KEY).is_ok_and(|mut mac| {
                mac.update(&body);
                mac.verify_slice(&tag).is_ok()
            })
        });
    {
        let mut state = shared.lock();
        if verified {
            state.stats.signatures_verified += 1;
        } else {
            state.stats.signatures_rejected += 1;
        }
    }
    if !verified {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            format!(
                "X-Signature is not the HMAC-SHA256 of the {} byte(s) received (sha256 {})",
                body.len(),
                sha256_hex(&body)
            ),
        ));
    }
    Ok(
        Json(json!({ "verified": true, "len": body.len(), "sha256": sha256_hex(&body) }))
            .into_response(),
    )
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

/// `POST /upload`: a multipart body, each part's name, filename, type, length and SHA-256.
pub(crate) async fn upload(mut form: Multipart) -> ApiResult {
    let mut parts = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(ApiError::bad_request(format!("bad multipart body: {e}"))),
        };
        let name = field.name().map(str::to_owned);
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(format!("bad multipart part: {e}")))?;
        parts.push(json!({
            "name": name,
            "filename": filename,
            "content_type": content_type,
            "len": bytes.len(),
            "sha256": sha256_hex(&bytes),
            "text": std::str::from_utf8(&bytes).ok(),
        }));
    }
    Ok(Json(json!({ "parts": parts })).into_response())
}

/// `GET /bytes/{n}`: `n` bytes of [`download_bytes`] as `application/octet-stream`, with
/// their SHA-256 in `X-Content-SHA256`.
pub(crate) async fn bytes(
    State(shared): State<Arc<Shared>>,
    Path(n): Path<String>,
    p: Params,
) -> ApiResult {
    let n = download_len(&n)?;
    let seed = p.num("seed", shared.config.seed, "an unsigned integer")?;
    let body = download_bytes(seed, n);
    let mut resp = (StatusCode::OK, body.clone()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    set_header(resp.headers_mut(), "x-content-sha256", sha256_hex(&body));
    Ok(resp)
}

/// `GET /endless`: a body that never ends, chunked with no `Content-Length`: `y\n` 8 192 times
/// a chunk (16 KiB) for as long as the client reads, as a log tail or a broken generator
/// sends. A client that caps nothing writes until its disk is full.
pub(crate) async fn endless() -> Response {
    struct Endless;
    impl http_body::Body for Endless {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            static CHUNK: LazyLock<Bytes> = LazyLock::new(|| Bytes::from("y\n".repeat(8192)));
            std::task::Poll::Ready(Some(Ok(http_body::Frame::data(CHUNK.clone()))))
        }
    }
    let mut resp = Response::new(axum::body::Body::new(Endless));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// `GET /gzip`: a JSON document sent `Content-Encoding: gzip` whatever the request's
/// `Accept-Encoding` says (servers that compress regardless exist). `?bomb` sends 8 MiB of
/// zeros in 8 KB of gzip instead: a client must count the decoded bytes against its cap.
pub(crate) async fn gzipped(p: Params) -> Response {
    static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
        let text = format!(
            "{{\"compressed\":true,\"text\":\"{}\"}}\n",
            "resile ".repeat(64)
        );
        gzip(text.as_bytes())
    });
    static BOMB: LazyLock<Bytes> = LazyLock::new(|| gzip(&vec![0; 8 << 20]));
    let (body, kind) = if p.flag("bomb") {
        (BOMB.clone(), "application/octet-stream")
    } else {
        (DOCUMENT.clone(), "application/json")
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    resp
}

/// The gzip member of `bytes` (level 6, no file name or time: the same bytes every time).
pub fn gzip(bytes: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    // Writing to a `Vec` cannot fail.
    let _ = encoder.write_all(bytes);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_hold_every_byte_value() {
        let body = download_bytes(3, 4096);
        let mut seen = [false; 256];
        for b in &body {
            seen[*b as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_ne!(download_bytes(3, 64), download_bytes(4, 64));
    }

    #[test]
    fn signatures_are_hmac_sha256() {
        // RFC 4231 does not use this key; check against the definition instead:
        // HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) for a key shorter than the block.
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in SIGNING_KEY.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let inner = Sha256::new()
            .chain_update(ipad)
            .chain_update(b"abc")
            .finalize();
        let outer = Sha256::new()
            .chain_update(opad)
            .chain_update(inner)
            .finalize();
        assert_eq!(sign(b"abc"), format!("sha256={}", hex(&outer)));
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
