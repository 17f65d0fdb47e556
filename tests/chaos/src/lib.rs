//! # resile-chaos: an HTTP server that misbehaves on demand
//!
//! A real HTTP/1.1 and h2c (HTTP/2 with prior knowledge, told apart by the preface) server on
//! 127.0.0.1 for resile's integration tests (the native reqwest
//! adapter, the browser adapter in headless Chromium, a CLI demo). Every fault is chosen by
//! the request itself, so a test states what it wants in the URL, and every random choice
//! is a pure function of [`ChaosConfig::seed`] and a counter, so a run can be repeated.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let server = resile_chaos::start(resile_chaos::ChaosConfig { seed: 7, ..Default::default() }).await?;
//! // GET {url}/flaky?key=a&fail=2 answers 503, 503, then 200.
//! let url = format!("{}/flaky?key=a&fail=2", server.url());
//! # let _ = url;
//! assert_eq!(server.stats().flaky_failures, 0);
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From code without a tokio runtime use [`start_in_background`]. The binary
//! `resile-chaos --port N [--seed S] [--www DIR] [--token-expires-in SECS]` prints its URL on
//! the first line of stdout and serves until Ctrl-C.
//!
//! # Routes
//!
//! Query parameters are optional unless marked *required*; a malformed one gets
//! `400 {"error":"bad_request","message":...}` naming the parameter.
//!
//! ## Single-request faults
//!
//! | Route | Parameters | Behaviour |
//! |---|---|---|
//! | `ANY /status/{code}` | `retry_after=SECS`, `retry_after_date=SECS_FROM_NOW` (HTTP-date), `retry_after_raw=TEXT` (verbatim) | answers `code` (200..=599, else 400) with `{"status":code}` and the chosen `Retry-After` |
//! | `ANY /flaky` | `key=K` (`default`), `fail=N` (1), `status=S` (503), the `retry_after*` set | the first `N` requests per key answer `S` with `{"key","attempt","failed":true}`, later ones 200 `{"key":K,"attempt":n}` |
//! | `ANY /slow` | `ms=N` (100), `status=S` (200) | answers after `N` ms (capped by `max_stall`) with `{"slept_ms":N}` |
//! | `GET /replica` | `key=K`, `every=N` (10), `slow_ms=S` (1000), `fast_ms=F` (5) | a slow replica: request `n` of key `K` sleeps `S` ms when `(n-1) % N == 0`, else `F` ms (capped), then `{"key","request","slow"}` |
//! | `ANY /stall` | `ms=N` (`max_stall`) | accepts and never answers; after `N` ms (capped) closes the connection |
//! | `ANY /reset` | | closes the connection without any response: the client sees a connection error, not a status |
//! | `ANY /truncate` | `len=L` (100, ≤ 1 MiB), `send=S` (`L/2`, < `L`), `status` (200) | `Content-Length: L`, `S` bytes of body, then the connection breaks |
//! | `ANY /ratelimited` | `rate=R` (1.0 per second), `burst=B` (5), `key=K`, `form=seconds\|date`, `xreset=delta\|epoch`, `dialects=ietf,x` | a token bucket per key, see below |
//! | `ANY /quota` | `rate=R` (10 per second), `burst=B` (10), `key=K`, `instance=I` (0), `retry_after=S` (1), `refuse_at=N` | one token bucket per key that logs every request: 200 `{"key"}` while it has a token, else 429 with `Retry-After`; the `N`-th request of the key answers 429 `Retry-After: S` whatever the bucket holds. `GET /quota/log?key=K` answers `{"key","seen","entries":[[µs since the key's first request, status, I], ...]}` |
//! | `ANY /redirect/{n}` | `status=301\|302\|303\|307\|308` (302) | `n` redirects (`Location: /redirect/{n-1}`, relative), then `200 {"redirected":true,"method"}`; `n` ≤ 100 |
//! | `ANY /redirect/loop` | `status` as above | redirects to itself, forever |
//!
//! `/ratelimited` answers 200 `{"key","remaining"}` while the bucket has a token and 429 with
//! `Retry-After` (delta seconds, or an HTTP-date with `form=date`) when it has none. Every
//! reply carries (by default) `RateLimit: "default";r=REMAINING;t=RESET`, `RateLimit-Policy:
//! "default";q=B;w=ceil(B/R)`, `X-RateLimit-Limit: B`, `X-RateLimit-Remaining`, and
//! `X-RateLimit-Reset` (delta seconds, or Unix seconds with `xreset=epoch`). `RESET` is the
//! seconds until the next request is allowed when `r=0`, else until the bucket is full.
//! `dialects` (a comma list, default `ietf,x`) picks the header families: `ietf` (the two
//! structured `RateLimit`/`RateLimit-Policy` headers), `legacy` (`RateLimit-Limit`,
//! `RateLimit-Remaining`, `RateLimit-Reset`), `legacy-dict` (`RateLimit: limit=B,
//! remaining=R, reset=T`, not together with `ietf`), `x` (`X-RateLimit-*`).
//!
//! ## Bytes in, bytes out
//!
//! | Route | Parameters | Behaviour |
//! |---|---|---|
//! | `ANY /echo` | | `200 {"method","path","query","content_type","headers":{name:value},"len","sha256","body"}`: the raw body's length and hex SHA-256, and the body as text when it is UTF-8 (else `null`) |
//! | `ANY /signed` | | `200 {"verified":true,"len","sha256"}` when `X-Signature: sha256=HEX` is the HMAC-SHA256 of the raw body under [`SIGNING_KEY`] (compute it with [`sign`]); else `401 {"error":"bad_signature"}` |
//! | `POST /upload` | | a `multipart/form-data` body: `200 {"parts":[{"name","filename","content_type","len","sha256","text"}]}` |
//! | `GET /bytes/{n}` | `seed=S` (the server's) | `n` (≤ 8 MiB) bytes of [`download_bytes`], every byte value included, as `application/octet-stream` with `X-Content-SHA256` |
//! | `GET /endless` | | a body that never ends: chunked, no `Content-Length`, 16 KiB of `y\n` at a time for as long as the client reads |
//! | `GET /gzip` | `bomb` | a JSON document (`{"compressed": true, …}`) as `Content-Encoding: gzip` whatever `Accept-Encoding` says; `bomb`: 8 MiB of zeros in 8 KB of gzip |
//! | `GET /download/{n}` | `key`, `seed`, `break_at=F` (0.5), `breaks=B` (1), `validator=etag\|weak\|last-modified\|none`, `ranges=honor\|ignore`, `change_after=C`, `bad_range=416\|start`, `gzip`, `stall_ms=M` | the download of `/bytes/{n}` with an ETag / Last-Modified; `Range: bytes=N-` (with a matching `If-Range`) answers 206 with `Content-Range`, past the end 416; the first `B` answers for `key` break at byte `F·n`; `ranges=ignore` always answers the whole body; `gzip` sends [`gzip`] of the bytes as `Content-Encoding: gzip` (ranges and breaks count the encoded bytes); after `C` answers the resource changes; `bad_range` answers range requests 416, or 206 from byte 0; `stall_ms` holds each break's connection open and silent `M` ms (capped) before it breaks |
//! | `PUT\|POST /upload-retry` | `key`, `fail=N` (1), `status=S` (503) | reads the whole body, logs its length and SHA-256, answers `S` to the first `N` requests for `key`, then 200 `{"len","sha256","attempt"}` |
//! | `GET /transfers/{key}` | | what `/download/{n}` and `/upload-retry` saw for `key` ([`TransferLog`]) |
//!
//! ## Outage windows
//!
//! | Route | Parameters | Behaviour |
//! |---|---|---|
//! | `POST /admin/outage` | `for_ms=N`, or `end_ms=E` with `start_ms=S` (0), relative to now; `retry_after=SECS` | from then on, until the window ends, every request to the API routes answers `503 {"error":"outage"}` (with `Retry-After` when asked) |
//! | `DELETE /admin/outage` | | ends the window |
//! | `GET /admin/outage` | | `{"active","starts_in_ms","ends_in_ms","retry_after"}` |
//!
//! Outages spare the control plane: `/admin/*`, `/stats`, `/script/{id}`, `/`, `/www/*`, and
//! CORS preflights. Also [`ChaosHandle::set_outage`], [`ChaosHandle::outage_for`].
//!
//! ## Pagination
//!
//! A collection of `total` items (default [`ChaosConfig::collection_size`] = 10 000, at most
//! [`MAX_COLLECTION`]), each `{"id":n,"name":"item-n"}`, ids `1..=total` in order.
//!
//! | Route | Parameters | Reply |
//! |---|---|---|
//! | `GET /items/link` | `page_size=S` (100, ≤ 1000), `after=ID` | JSON array; `Link: <http://HOST/items/link?after=LAST&page_size=S>; rel="next", <...?page_size=S>; rel="first"` (absolute; `next` absent on the last page) |
//! | `GET /items/cursor` | `limit=S` (100, ≤ 1000), `cursor=C` | `{"items":[...],"next_cursor":"opaque"\|null}` |
//! | `GET /items/offset` | `offset=O` (0), `limit=L` (100, ≤ 1000) | JSON array, `X-Total-Count` |
//! | `GET /items/page` | `page=P` (1, from 1), `per_page=S` (100, ≤ 1000) | JSON array, `X-Total-Count` |
//!
//! Every page route also takes:
//! - `total=N`: recreate the collection with `N` items when `N` differs from its size (the
//!   same `N` again changes nothing, so a client may repeat it); also `POST /admin/config?total=N`.
//! - `fail_rate=F` (0..=1): that fraction of page requests answer 503. Whether request number
//!   `n` (counted over all page routes since the last reset) fails is a pure function of the
//!   seed and `n`, so a run repeats exactly.
//! - `insert_every=K`: after every `K`-th page request, a new item (next unused id) is
//!   inserted at the *front* of the collection, before every page already served.
//!
//! `fail_rate` and `insert_every` are carried into the `Link` URLs. With insertions the four
//! styles differ, and tests rely on it:
//! - **cursor and link** pages are keyed by the id of the last item seen: the next page starts
//!   right after that item wherever it now is, so a walk loses and duplicates nothing
//!   (items inserted at the front are simply not seen).
//! - **offset and page** pages are keyed by position: each insertion shifts everything one
//!   place back, so the next page starts with the last item of the previous one, a visible
//!   duplicate (and nothing is lost).
//!
//! ## Writes and idempotency
//!
//! | Route | Parameters | Behaviour |
//! |---|---|---|
//! | `POST /orders` | `mode=commit_then_fail`, `fail=503\|reset\|4xx-5xx` (503), `times=N` (1), `rate=F` (1: the fraction of orders, chosen by body and seed, that fail), `retry_after*` | creates an order from the JSON body: `201` with `{"id","body","idempotency_key","duplicate"}` and `Location` |
//! | `GET /orders` | | every order, oldest first |
//! | `GET /orders/{id}` | | one order |
//!
//! - With `Idempotency-Key: K`: the first request creates the order; a later one with the same
//!   key and an equal body (object key order ignored) creates nothing and gets the stored
//!   order again with `Idempotent-Replayed: true`; one with a different body gets `422
//!   {"error":"idempotency_key_reused"}`. Without the header every POST creates an order.
//! - `mode=commit_then_fail`: the order is committed (or replayed) as usual, then the first
//!   `N` requests per idempotency key (or per body, without a key) get the failure instead of
//!   the answer. A client that retries without a key thus creates one order per attempt.
//! - A *duplicate* is an order whose body equals the body of an order created before it,
//!   whatever the reason: [`Stats::duplicate_orders`] counts them and [`Order::duplicate`]
//!   marks them. Tests that want no false positives give each logical order a distinct body.
//!
//! ## OAuth 2.0 client credentials
//!
//! | Route | Parameters | Behaviour |
//! |---|---|---|
//! | `POST /oauth/token` | `expires_in=SECS` (config, 3600), `delay_ms=N` | form body `grant_type=client_credentials`, client auth by HTTP Basic or form `client_id`/`client_secret` (`demo`/`demo`); `200 {"access_token","token_type":"Bearer","expires_in"}` with `Cache-Control: no-store` |
//! | `ANY /protected/{path}` | | needs `Authorization: Bearer <issued, unexpired token>`: `200 {"ok":true,"path","token_expires_in"}` |
//! | `POST /admin/expire-tokens` | | every token issued so far stops working now: `{"expired":n}` |
//! | `POST /admin/config` | `token_expires_in=SECS`, `total=N` | changes the token lifetime and the collection size |
//!
//! Token errors follow RFC 6749 §5.2: no `grant_type` → 400 `invalid_request`; missing or
//! wrong client credentials → 401 `invalid_client` (with `WWW-Authenticate: Basic` when Basic
//! was used or nothing was sent); another grant → 400 `unsupported_grant_type`. A protected
//! route with an unknown or expired token answers 401 with `WWW-Authenticate: Bearer
//! realm="resile-chaos", error="invalid_token"`; without any token, `Bearer
//! realm="resile-chaos"` (RFC 6750 §3.1: no error code when no credentials were sent).
//!
//! ## Scripts, for conformance tests
//!
//! | Route | Behaviour |
//! |---|---|
//! | `POST /script/{id}` (or `PUT`) | installs a [`Script`] from JSON: `{"replies":[{"status":503,"headers":{"Retry-After":"1"},"delay_ms":0,"fault":null,"body":"..."}],"then":{...}}`; `fault` is `null`, `"reset"`, `"refuse"` (an HTTP/2 stream reset with `REFUSED_STREAM`; over HTTP/1.1 a reset), `"stall"`, `"truncate"` or `"unreadable"` |
//! | `ANY /s/{id}`, `ANY /s/{id}/{path}` | the n-th request gets the n-th reply; after the last, `then`, or the last reply again |
//! | `GET /script/{id}/log` | [`ScriptLog`]: `{"count":n,"requests":[{"n","method","path","idempotency_key","x_request_id","authorization":"Bearer …","reply"}]}` |
//! | `DELETE /script/{id}` | removes it |
//!
//! Also [`ChaosHandle::set_script`] and [`ChaosHandle::script_log`].
//!
//! ## Counters and reset
//!
//! | Route | Behaviour |
//! |---|---|
//! | `GET /stats` | [`Stats`] as JSON: requests per route, resets, 429s, pages, orders, duplicates, tokens, ... |
//! | `POST /stats/reset`, `DELETE /stats` | forgets all counters *and* state (orders, keys, tokens, buckets, scripts, outage, insertions) |
//!
//! ## Everywhere
//!
//! - **CORS**: a preflight (`OPTIONS` with `Access-Control-Request-Method`) gets 204 with
//!   `Access-Control-Allow-Methods`, `Access-Control-Allow-Headers: *, Authorization,
//!   Idempotency-Key, X-Request-ID, Content-Type` plus the requested ones, and `Max-Age: 600`;
//!   `Access-Control-Allow-Private-Network: true` when asked (Chromium's Private Network
//!   Access); it never reaches a route, so it consumes no script reply and ignores outages. Every
//!   response, errors included, has `Access-Control-Allow-Origin` (the request's `Origin`
//!   echoed, with `Allow-Credentials: true`, or `*`) and `Access-Control-Expose-Headers:`
//!   [`EXPOSED_HEADERS`], unless the request has `?no_expose=1`.
//! - **`X-Request-ID`** from the request is echoed in the response.
//! - **Connections**: [`Stats::connections`] counts TCP connections accepted, so a test can
//!   tell one pooled client from a client per call.
//! - **Bounds**: 127.0.0.1 only; at most [`ChaosConfig::max_connections`] connections at once;
//!   request bodies over [`ChaosConfig::max_body_bytes`] (1 MiB) get 413; every delay is
//!   capped by [`ChaosConfig::max_stall`] (30 s); keys, orders, tokens and scripts are held in
//!   bounded tables. Nothing a request sends can panic the server.
//! - **`GET /`** redirects to `/www/index.html` when [`ChaosConfig::static_dir`] is set;
//!   `/www/{path}` serves that directory (`.wasm` as `application/wasm`, `.js` as
//!   `text/javascript`).
//!
//! # Limits
//!
//! Plain text only (no TLS): HTTP/1.1, or HTTP/2 to a client that starts with its preface
//! (h2c). A "reset" closes the socket (FIN) after the request was read, without writing
//! anything; clients report it as a connection error (over HTTP/2 the stream is reset with
//! `INTERNAL_ERROR`). [`ChaosConfig::requests_per_connection`] closes each connection
//! gracefully after that many requests, as nginx's `keepalive_requests`: over HTTP/2 with a
//! `GOAWAY`, and streams the client sent past it are refused (`REFUSED_STREAM`).

mod config;
pub mod readme;
pub mod redis;
mod rng;
mod routes;
pub mod scenario;
mod script;
mod server;
mod state;
mod util;

pub use config::{ChaosConfig, MAX_COLLECTION};
pub use routes::body::{download_bytes, gzip, sha256_hex, sign, SIGNING_KEY};
pub use routes::transfer::TransferLog;
pub use script::{Script, ScriptFault, ScriptLog, ScriptLogEntry, ScriptReply};
pub use server::{start, start_in_background, BackgroundServer, ChaosServer, EXPOSED_HEADERS};
pub use state::{ChaosHandle, Order, Stats};
