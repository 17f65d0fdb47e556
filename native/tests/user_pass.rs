//! What a user meets first against servers that are not what the client was told: a server
//! that does not speak HTTP/2 asked for h2c, a download larger than the user allows.

mod common;

use std::time::Duration;

use common::{fast_policy, Recorder};
use resile::{Error, LastCause, TransportError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn h2c(recorder: &Recorder) -> resile::Client {
    resile::Client::builder()
        .engine(fast_policy())
        .http2_prior_knowledge()
        .on_event(recorder.callback())
        .build()
        .unwrap()
}

/// An HTTP/1.1-only server as Node's `http` and Python's `http.server` answer an HTTP/2
/// preface: a 400 in HTTP/1.1, once the client's first bytes (preface, settings, the request's
/// stream) are in. It reads the client's bytes to their end, so its answer is what the client
/// reads (not a reset that would lose it).
async fn http1_answering_400() -> (String, tokio::task::JoinHandle<u32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut connections = 0;
        while let Ok(Ok((mut stream, _))) =
            tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
        {
            connections += 1;
            let mut buf = [0u8; 4096];
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await
            {
                if n == 0 {
                    break;
                }
            }
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            let _ = stream.shutdown().await;
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        connections
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_to_a_server_answering_in_http1_fails_at_once_and_says_so() {
    let (url, server) = http1_answering_400().await;
    let recorder = Recorder::default();
    let e = h2c(&recorder)
        .get(format!("{url}/status"))
        .send()
        .await
        .unwrap_err();
    let Error::NotRetried { attempts, last, .. } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(*attempts, 1, "{e:?}");
    assert!(
        matches!(last, Some(LastCause::Transport { kind: TransportError::Unreadable, message })
            if message.starts_with("the server does not speak HTTP/2")),
        "{e:?}"
    );
    assert!(e.to_string().contains("does not speak HTTP/2"), "{e}");
    assert_eq!(server.await.unwrap(), 1, "one connection, no retry");
}

/// Reads a body to its end or its first error: the bytes read, and how it ended.
async fn read_all(body: &mut resile::StreamingResponse) -> (u64, Result<(), Error>) {
    let mut read = 0u64;
    loop {
        match body.chunk().await {
            Ok(Some(chunk)) => read += chunk.len() as u64,
            Ok(None) => return (read, Ok(())),
            Err(e) => return (read, Err(e)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_download_fails_at_the_cap_or_before_its_first_byte() {
    let server = common::chaos().await;
    let client = resile::Client::builder()
        .engine(fast_policy())
        .build()
        .unwrap();
    let capped = |path: &str, cap: u64| {
        let request = client.get(format!("{}{path}", server.url()));
        async move { request.send_download().await.unwrap().max_bytes(cap) }
    };
    // An endless body: the read that would cross the cap fails, and nothing past it is handed
    // over.
    let mut download = capped("/endless", 100_000).await.unwrap();
    let (read, end) = read_all(&mut download).await;
    assert!(
        matches!(end, Err(Error::BodyTooLarge { limit: 100_000 })),
        "{end:?}"
    );
    assert!(read <= 100_000, "{read}");
    assert!(
        matches!(download.chunk().await, Err(Error::BodyTooLarge { .. })),
        "a read after the cap fails too"
    );
    // A Content-Length over the cap: refused before a byte is read.
    let e = capped("/bytes/5000", 4_999).await.unwrap_err();
    assert!(matches!(e, Error::BodyTooLarge { limit: 4_999 }), "{e:?}");
    let mut exact = capped("/bytes/5000", 5_000).await.unwrap();
    assert_eq!(read_all(&mut exact).await.0, 5_000);
}
