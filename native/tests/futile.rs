//! Attempts that cannot succeed are not repeated: a TLS handshake with a port that speaks
//! plain HTTP, an answer whose head is larger than the client reads, a body whose gzip does
//! not decode, a chunked body whose chunks do not parse. Each fails after one attempt, with a
//! reason that says what happened; a body that only breaks off is still tried again.

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

/// A raw HTTP/1.1 server on 127.0.0.1 that answers every request with `answer` and closes;
/// the number of requests it read.
async fn raw_server(answer: &'static [u8]) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(answer).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, requests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_whose_chunks_do_not_parse_is_tried_once() {
    // "ZZ" is no chunk size: the server would send the same again (it was `truncated`, and
    // retried to the last attempt).
    let (addr, requests) = raw_server(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\nZZ\r\nxx\r\n0\r\n\r\n",
    )
    .await;
    let (e, failed) = failed_get(format!("http://{addr}/chunks")).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1, "{e}");
    assert_eq!(failed, vec![Why::Unreadable], "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert!(e.to_string().contains("chunk size"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_that_breaks_off_is_still_tried_again() {
    let (addr, requests) =
        raw_server(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc")
            .await;
    let (e, failed) = failed_get(format!("http://{addr}/cut")).await;
    assert_eq!(requests.load(Ordering::SeqCst), 4, "{e}");
    assert_eq!(failed, vec![Why::MaxAttempts], "{e}");
    assert!(e.to_string().contains("truncated"), "{e}");
}
