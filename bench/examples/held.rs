//! What a call in flight holds, for a heap profiler: `HELD` calls (default 256) held open on
//! `/slow` after the pool was warmed, then one marker block of 256 MiB allocated and freed, so
//! the heap's peak is that moment and every other block live at the peak is a held call's (or
//! the process's).
//!
//! ```sh
//! valgrind --tool=dhat --dhat-out-file=/tmp/dhat.resile target/release/examples/held resile
//! valgrind --tool=dhat --dhat-out-file=/tmp/dhat.reqwest target/release/examples/held reqwest
//! ```
//!
//! Compare the two files' live bytes at the peak ("t-gmax") by allocation site.
use std::time::Duration;

static HELD: std::sync::LazyLock<usize> = std::sync::LazyLock::new(|| {
    std::env::var("HELD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
});

async fn hold<F, Fut>(start: F, wait: Duration, marker: bool)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..*HELD).map(|_| tokio::spawn(start())).collect();
    tokio::time::sleep(wait).await;
    if marker {
        let block = std::hint::black_box(vec![1u8; 256 << 20]);
        drop(block);
    }
    for t in tasks {
        assert!(t.await.unwrap());
    }
}

/// Warms the pool twice (`warm`), then holds the calls on `slow` and marks the peak.
async fn phases<F, Fut>(call: F, warm: &str, slow: &str)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    // Well inside the engine's attempt timeout (10 s): no attempt is aborted and resent.
    let settle = Duration::from_secs(5);
    for (url, marker) in [(warm, false), (warm, false), (slow, true)] {
        let wait = if marker { settle } else { Duration::ZERO };
        hold(|| call(url.to_string()), wait, marker).await;
    }
}

fn main() {
    let server = resile_chaos::start_in_background(resile_chaos::ChaosConfig {
        max_connections: 4096,
        ..Default::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let which = std::env::args().nth(1).unwrap_or_default();
    let base = server.url();
    rt.block_on(async move {
        let warm = format!("{base}/slow?ms=200");
        let slow = format!("{base}/slow?ms=20000");
        if which == "reqwest" {
            let c = reqwest::Client::builder()
                .pool_max_idle_per_host(*HELD)
                .build()
                .unwrap();
            let call = move |u: String| {
                let c = c.clone();
                async move { c.get(&u).send().await.unwrap().bytes().await.is_ok() }
            };
            phases(call, &warm, &slow).await;
        } else {
            let c = resile::Client::builder()
                .pool_max_idle_per_host(*HELD)
                .max_in_flight(*HELD)
                .build()
                .unwrap();
            let call = move |u: String| {
                let c = c.clone();
                async move { c.get(&u).send().await.is_ok() }
            };
            phases(call, &warm, &slow).await;
        }
    });
    server.stop();
}
