//! Attempts that cannot succeed are not repeated: a TLS handshake with a port that speaks
//! plain HTTP, an answer whose head is larger than the client reads, a body whose gzip does
//! not decode. Each fails after one attempt, with a reason that says what happened.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{fast_policy, mini_server, MiniResponse, Recorder};
use resile::{Client, EventKind, Why};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(events: &Recorder) -> Client {
    Client::builder()
        .engine(fast_policy())
        .on_event(events.callback())
        .build()
        .unwrap()
}

fn failed_with(events: &Recorder) -> Vec<Why> {
    events
        .engine()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::CallFailed { failure, .. } => Some(failure.why),
            _ => None,
        })
        .collect()
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
    let events = Recorder::default();
    let e = client(&events)
        .get(format!("https://{addr}/"))
        .send()
        .await
        .unwrap_err();
    server.abort();
    assert_eq!(connections.load(Ordering::SeqCst), 1, "{e}");
    assert_eq!(failed_with(&events), vec![Why::TlsFailed], "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(!e.maybe_processed(), "{e:?}");
    assert!(e.to_string().contains("TLS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_whose_head_is_too_large_is_tried_once() {
    let server =
        mini_server(|_| async { MiniResponse::status(200).header("x-huge", &"a".repeat(1 << 20)) })
            .await;
    let events = Recorder::default();
    let e = client(&events)
        .get(format!("{}/big-head", server.url()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1, "{e}");
    assert_eq!(failed_with(&events), vec![Why::Unreadable], "{e}");
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
    let events = Recorder::default();
    let e = client(&events)
        .get(format!("{}/corrupt", server.url()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1, "{e}");
    assert_eq!(failed_with(&events), vec![Why::Unreadable], "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(!e.to_string().contains("truncated"), "{e}");
}
