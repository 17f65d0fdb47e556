//! Attempts that cannot succeed are not repeated: a TLS handshake with a port that speaks
//! plain HTTP, an answer whose head is larger than the client reads, a body whose gzip does
//! not decode. Each fails after one attempt, with a reason that says what happened.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{fast_policy, mini_server, MiniResponse, Recorder};
use resile::{Client, Error, Why};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GETs `url` with a client that records its events: the error, and the reasons the calls
/// failed with.
async fn failed_get(url: String) -> (Error, Vec<Why>) {
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .on_event(events.callback())
        .build()
        .unwrap();
    let e = client.get(url).send().await.unwrap_err();
    (e, events.failed_with())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_spoken_to_a_plain_http_port_is_tried_once() {
    // A plain HTTP server: it answers whatever arrives (a ClientHello) with a 400.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
            let _ = stream.shutdown().await;
        }
    });
    let (e, failed) = failed_get(format!("https://{addr}/")).await;
    server.abort();
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{e}");
    assert_eq!(failed, vec![Why::TlsFailed], "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(!e.maybe_processed(), "{e:?}");
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_head_is_too_large_is_tried_once() {
    let server =
        mini_server(|_| async { MiniResponse::status(200).header("x-huge", &"a".repeat(1 << 20)) })
            .await;
    let (e, failed) = failed_get(format!("{}/big-head", server.url())).await;
    assert_eq!(server.requests().len(), 1, "{e}");
    assert_eq!(failed, vec![Why::Unreadable], "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("too large"), "{e}");
}

#[cfg(feature = "gzip")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_gzip_body_is_tried_once_and_not_called_truncated() {
    let server = mini_server(|_| async {
        // The gzip magic and header, then bytes that are no deflate stream.
        let mut body = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        body.extend_from_slice(&[0xff; 64]);
        MiniResponse::status(200)
            .header("content-encoding", "gzip")
            .body(body)
    })
    .await;
    let (e, failed) = failed_get(format!("{}/corrupt", server.url())).await;
    assert_eq!(server.requests().len(), 1, "{e}");
    assert_eq!(failed, vec![Why::Unreadable], "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(!e.to_string().contains("truncated"), "{e}");
}
