//! Shared test helpers: the chaos server, a tiny scripted HTTP server for what the chaos server
//! has no route for (redirects, a token gate), fast policies, and an event recorder.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resile::{ClientEvent, Config, Event};
use resile_chaos::{ChaosConfig, ChaosServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A chaos server on 127.0.0.1, with stalls capped at 3 s so stalled sockets close soon.
pub async fn chaos() -> ChaosServer {
    resile_chaos::start(ChaosConfig {
        max_stall: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .expect("chaos server starts")
}

/// A policy with short waits, for tests that retry.
pub fn fast_policy() -> Config {
    let mut c = Config::default();
    c.backoff.base_ms = 5;
    c.backoff.cap_ms = 50;
    c.retry.attempt_timeout_ms = Some(2_000);
    c.retry.deadline_ms = Some(10_000);
    c
}

/// Records every event the client emits.
#[derive(Clone, Default)]
pub struct Recorder(pub Arc<Mutex<Vec<ClientEvent>>>);

impl Recorder {
    pub fn callback(&self) -> impl Fn(&ClientEvent) + Send + Sync + 'static {
        let sink = self.0.clone();
        move |e: &ClientEvent| sink.lock().unwrap().push(e.clone())
    }

    pub fn all(&self) -> Vec<ClientEvent> {
        self.0.lock().unwrap().clone()
    }

    pub fn engine(&self) -> Vec<Event> {
        self.all()
            .into_iter()
            .filter_map(|e| e.engine().cloned())
            .collect()
    }

    /// The reasons of the calls that failed, in order.
    pub fn failed_with(&self) -> Vec<resile::Why> {
        self.engine()
            .into_iter()
            .filter_map(|e| match e.kind {
                resile::EventKind::CallFailed { failure, .. } => Some(failure.why),
                _ => None,
            })
            .collect()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

/// A request as the mini server saw it.
#[derive(Clone, Debug)]
pub struct MiniRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl MiniRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the mini server answers.
#[derive(Clone, Debug)]
pub struct MiniResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl MiniResponse {
    pub fn status(status: u16) -> Self {
        MiniResponse {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// A one-request-per-connection HTTP/1.1 server on 127.0.0.1 that answers with `handler` and
/// logs every request. Stops when dropped.
pub struct MiniServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Vec<MiniRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl MiniServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<MiniRequest> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for MiniServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn mini_server<F, Fut>(handler: F) -> MiniServer
where
    F: Fn(MiniRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = MiniResponse> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let task_log = log.clone();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            while connections.try_join_next().is_some() {}
            let (handler, log) = (handler.clone(), task_log.clone());
            connections.spawn(async move {
                let _ = serve_one(stream, handler.as_ref(), &log).await;
            });
        }
    });
    MiniServer { addr, log, task }
}

async fn serve_one<F, Fut>(
    mut stream: TcpStream,
    handler: &F,
    log: &Mutex<Vec<MiniRequest>>,
) -> std::io::Result<()>
where
    F: Fn(MiniRequest) -> Fut,
    Fut: Future<Output = MiniResponse>,
{
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let request = MiniRequest {
        method,
        path,
        headers,
        body,
    };
    log.lock().unwrap().push(request.clone());
    let response = handler(request).await;
    let mut out = format!("HTTP/1.1 {} X\r\n", response.status);
    for (k, v) in &response.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        response.body.len()
    ));
    stream.write_all(out.as_bytes()).await?;
    stream.write_all(&response.body).await?;
    stream.shutdown().await
}

/// A port on 127.0.0.1 where nothing listens (connections are refused).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    addr
}
