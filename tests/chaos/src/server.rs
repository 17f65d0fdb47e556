//! The accept loop and the layer every request passes: CORS, request ids, outages, faults.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{
    header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode,
};
use axum::response::IntoResponse;
use axum::{Json, Router};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tower::ServiceExt;

use crate::config::ChaosConfig;
use crate::routes::{outage_exempt, route_label, router};
use crate::state::{ChaosHandle, Shared, Stats};
use crate::util::{BoxError, Fault, InjectedReset, Params};

/// Response headers a browser script may read (CORS `Access-Control-Expose-Headers`).
pub const EXPOSED_HEADERS: &str = "Retry-After, RateLimit, RateLimit-Policy, RateLimit-Limit, \
RateLimit-Remaining, RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, \
Link, X-Total-Count, X-Request-ID, Idempotent-Replayed, WWW-Authenticate, Location, \
Content-Range, Accept-Ranges, ETag, Last-Modified, Content-Encoding, X-Content-SHA256";

const ALLOWED_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOWED_HEADERS: &str = "*, Authorization, Idempotency-Key, X-Request-ID, Content-Type";

/// A running chaos server. Dropping it stops the server; [`ChaosServer::shutdown`] also
/// waits until it has stopped.
pub struct ChaosServer {
    /// Where it listens (always on 127.0.0.1).
    pub addr: SocketAddr,
    handle: ChaosHandle,
    task: JoinHandle<()>,
}

impl ChaosServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// The handle to change the server's state (outages, tokens, scripts, reset).
    pub fn state(&self) -> ChaosHandle {
        self.handle.clone()
    }

    /// Stops accepting, drops every open connection, and waits for that to happen.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for ChaosServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1 on `config.port` (0: any free port) and serves on the current tokio
/// runtime.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let server = resile_chaos::start(resile_chaos::ChaosConfig::default()).await?;
/// println!("try {}/flaky?fail=2", server.url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub async fn start(config: ChaosConfig) -> io::Result<ChaosServer> {
    config.validate()?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, config.port)).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config, addr));
    let app = router(shared.clone());
    let task = tokio::spawn(accept_loop(listener, shared.clone(), app));
    Ok(ChaosServer {
        addr,
        handle: ChaosHandle { shared },
        task,
    })
}

/// A server running on its own thread and runtime, for tests that have no tokio runtime.
/// Dropping it (or [`BackgroundServer::stop`]) stops the server and joins the thread.
pub struct BackgroundServer {
    /// Where it listens (always on 127.0.0.1).
    pub addr: SocketAddr,
    handle: ChaosHandle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
    }

    /// The handle to change the server's state.
    pub fn state(&self) -> ChaosHandle {
        self.handle.clone()
    }

    /// Stops the server and waits for its thread to end.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Like [`start`], but on a thread of its own with its own tokio runtime; callable from
/// any code, async or not.
///
/// ```
/// let server = resile_chaos::start_in_background(Default::default()).unwrap();
/// assert!(server.url().starts_with("http://127.0.0.1:"));
/// server.stop();
/// ```
pub fn start_in_background(config: ChaosConfig) -> io::Result<BackgroundServer> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = thread::Builder::new()
        .name("resile-chaos".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                match start(config).await {
                    Ok(server) => {
                        let _ = ready_tx.send(Ok((server.addr, server.state())));
                        let _ = stop_rx.await;
                        server.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })?;
    match ready_rx.recv() {
        Ok(Ok((addr, handle))) => Ok(BackgroundServer {
            addr,
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other(
                "the chaos server thread ended before it was ready",
            ))
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, app: Router) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    // Owning the connections here means aborting this task closes all of them.
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        shared.lock().stats.connections += 1;
        let (shared, app) = (shared.clone(), app.clone());
        let keep_alive = shared.config.keep_alive;
        let limit = shared.config.requests_per_connection;
        let http1_only = shared.config.http1_only;
        connections.spawn(async move {
            // The connection's requests so far; the signal that the last one came in; and
            // that the connection is closing (its GOAWAY queued before any refusal).
            let served = Arc::new(AtomicU64::new(0));
            let last = Arc::new(Notify::new());
            let last_in = last.clone();
            let (closing_tx, closing) = tokio::sync::watch::channel(false);
            let service = service_fn(move |req| {
                let n = served.fetch_add(1, Ordering::Relaxed) + 1;
                if limit == Some(n) {
                    last_in.notify_one();
                }
                // HTTP/2 streams the client sent before it saw the GOAWAY: refused unprocessed.
                let refuse = limit
                    .is_some_and(|limit| n > limit)
                    .then(|| closing.clone());
                handle_unless(refuse, shared.clone(), app.clone(), req)
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if http1_only {
                builder = builder.http1_only();
            }
            builder
                .http1()
                .keep_alive(keep_alive)
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30));
            builder.http2().timer(TokioTimer::new());
            let connection = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                () = last.notified() => {
                    connection.as_mut().graceful_shutdown();
                    closing_tx.send_replace(true);
                    let _ = connection.await;
                }
            }
            drop(permit);
        });
    }
}

fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

fn preflight(headers: &HeaderMap) -> Response<Body> {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(ALLOWED_METHODS),
    );
    let allowed = match headers
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
    {
        Some(requested) if !requested.trim().is_empty() => {
            format!("{ALLOWED_HEADERS}, {requested}")
        }
        _ => ALLOWED_HEADERS.to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&allowed) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("600"),
    );
    // Chromium's Private Network Access asks before a page may call a loopback server.
    if headers.contains_key("access-control-request-private-network") {
        h.insert(
            "access-control-allow-private-network",
            HeaderValue::from_static("true"),
        );
    }
    resp
}

/// `X-Request-ID`, echoed on every response. A constant: a name inserted as a `&'static str`
/// is copied into an allocation of its own on every insert.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A header value in an allocation of its own.
fn owned(value: &HeaderValue) -> HeaderValue {
    // The bytes came from a valid value, so they make one again.
    HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
}

/// CORS and the echoed request id, on every response whatever its status.
fn decorate(
    resp: &mut Response<Body>,
    origin: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    expose: bool,
) {
    let h = resp.headers_mut();
    match origin {
        Some(origin) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            h.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
    }
    if expose {
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    if let Some(id) = request_id {
        h.insert(X_REQUEST_ID, id);
    }
}

fn outage_response(retry_after: Option<u64>) -> Response<Body> {
    let body = json!({ "error": "outage", "message": "the server is in an outage window (POST /admin/outage)" });
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// The error that makes hyper refuse an HTTP/2 stream unprocessed: it resets a stream with
/// the reason of an `h2::Error` its service fails with (else INTERNAL_ERROR). Over HTTP/1.1
/// any error closes the connection.
fn refused() -> BoxError {
    Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM))
}

/// Refuses the request once its connection is closing, when `refuse` is given; else serves it.
async fn handle_unless(
    refuse: Option<tokio::sync::watch::Receiver<bool>>,
    shared: Arc<Shared>,
    app: Router,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    if let Some(mut closing) = refuse {
        let _closed = closing.wait_for(|closing| *closing).await.is_err();
        return Err(refused());
    }
    handle(shared, app, req).await
}

async fn handle(
    shared: Arc<Shared>,
    app: Router,
    req: Request<Incoming>,
) -> Result<Response<Body>, BoxError> {
    let (parts, body) = req.into_parts();
    // Copied, not cloned: a parsed header value is a slice of the connection's read buffer,
    // and holding one while the handler runs (a `/slow` call) keeps that whole buffer alive.
    let origin = parts.headers.get(header::ORIGIN).map(owned);
    let request_id = parts.headers.get(&X_REQUEST_ID).map(owned);

    if is_preflight(&parts.method, &parts.headers) {
        shared.lock().stats.preflights += 1;
        let mut resp = preflight(&parts.headers);
        decorate(&mut resp, origin, request_id, false);
        return Ok(resp);
    }

    let expose = !Params::parse(parts.uri.query()).flag("no_expose");
    let label = route_label(parts.uri.path());
    let outage = {
        let mut state = shared.lock();
        state.stats.requests += 1;
        *state
            .stats
            .requests_by_route
            .entry(label.to_owned())
            .or_insert(0) += 1;
        let outage = if outage_exempt(label) {
            None
        } else {
            state.outage_at(Instant::now())
        };
        if outage.is_some() {
            state.stats.outage_rejections += 1;
        }
        outage
    };

    let mut resp = match outage {
        Some(o) => outage_response(o.retry_after),
        None => {
            let req = Request::from_parts(parts, Body::new(body));
            match app.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            }
        }
    };
    match resp.extensions().get::<Fault>() {
        Some(Fault::Reset) => {
            shared.lock().stats.resets += 1;
            return Err(Box::new(InjectedReset));
        }
        Some(Fault::Refuse) => return Err(refused()),
        None => {}
    }
    decorate(&mut resp, origin, request_id, expose);
    Ok(resp)
}
