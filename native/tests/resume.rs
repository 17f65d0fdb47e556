//! Downloads that break part-way against the chaos server: taken up with `Range` / `If-Range`
//! from the last byte received, started again cleanly when the server sends the whole body,
//! and typed errors when the partial answer is not the one asked for.

mod common;

use std::time::Duration;

use common::{chaos, fast_policy, Recorder};
use resile::resile_core::resume::{RestartWhy, ResumeError};
use resile::resile_core::{EventKind, Why};
use resile::{Client, Error, Piece, StreamingResponse};

const LEN: u64 = 1 << 20;
const SEED: u64 = 5;

fn client() -> Client {
    // An attempt's time limit covers its body, and a 1 MiB body (gzipped by the server on the
    // fly) took over `fast_policy`'s 2 s on a loaded machine: one more resume than the tests
    // count. What they test is the resume, not the limit (the deadline's test sets its own).
    let mut policy = fast_policy();
    policy.retry.attempt_timeout_ms = Some(20_000);
    policy.retry.deadline_ms = Some(30_000);
    Client::builder().engine(policy).seed(7).build().unwrap()
}

fn url(server: &resile_chaos::ChaosServer, key: &str, query: &str) -> String {
    format!(
        "{}/download/{LEN}?key={key}&seed={SEED}{query}",
        server.url()
    )
}

/// Every piece of `download`, written where it says: what a file on disk would hold, and the
/// restarts seen on the way.
async fn collect(
    mut download: StreamingResponse,
) -> Result<(Vec<u8>, Vec<(u64, RestartWhy)>), Error> {
    let mut file = Vec::new();
    let mut restarts = Vec::new();
    while let Some(piece) = download.piece().await? {
        match piece {
            Piece::Bytes { offset, bytes } => {
                assert_eq!(offset, file.len() as u64, "pieces arrive in order");
                file.extend_from_slice(&bytes);
            }
            Piece::Restart { discard, why } => {
                assert_eq!(discard, file.len() as u64);
                restarts.push((discard, why));
                file.clear();
            }
            other => panic!("{other:?}"),
        }
    }
    Ok((file, restarts))
}

/// The reasons of `restarts`; each discarded at most what the server sent before its break.
fn whys(restarts: &[(u64, RestartWhy)]) -> Vec<RestartWhy> {
    assert!(
        restarts.iter().all(|(discard, _)| *discard <= LEN / 2),
        "{restarts:?}"
    );
    restarts.iter().map(|(_, why)| *why).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_broken_at_half_resumes_from_the_last_byte() {
    let server = chaos().await;
    let mut download = client()
        .get(url(&server, "half", ""))
        .send_download()
        .await
        .unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = download.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    assert!(
        body == resile_chaos::download_bytes(SEED, LEN),
        "the file, byte for byte"
    );
    assert_eq!(
        download.attempts(),
        2,
        "the resume is the call's second attempt"
    );
    let log = server.state().transfer_log("half").unwrap();
    // The resume asks for what did not arrive: the break is at half the file, less what was
    // still in flight when the connection went.
    assert_eq!(log.downloads.len(), 2, "{:?}", log.downloads);
    assert_eq!(log.downloads[0], (None, 200));
    let asked = log.downloads[1].0.as_deref().unwrap_or_default();
    let from: u64 = asked
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Range `{asked}`"));
    assert!(from > 0 && from <= LEN / 2, "{asked}");
    assert_eq!(log.downloads[1].1, 206);
    assert!(
        log.bytes_sent as f64 <= 1.1 * LEN as f64,
        "{} bytes sent for a {LEN}-byte file",
        log.bytes_sent
    );
}

/// A server that gzips the download whatever `Accept-Encoding` says, and breaks it at half:
/// the bytes delivered are the representation as sent (never decoded, even with the client's
/// decompression features on), so the resume's offsets are the server's and the file is its
/// gzip, byte for byte, fetched about once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_encoded_download_resumes_in_the_encoded_bytes() {
    let server = chaos().await;
    let download = client()
        .get(url(&server, "gz", "&gzip"))
        .send_download()
        .await
        .unwrap();
    assert_eq!(
        download
            .headers()
            .get("content-encoding")
            .map(|v| v.as_bytes()),
        Some(&b"gzip"[..])
    );
    let (file, restarts) = collect(download).await.unwrap();
    let encoded = resile_chaos::gzip(&resile_chaos::download_bytes(SEED, LEN));
    assert!(file == encoded[..], "the gzip as sent, byte for byte");
    assert!(restarts.is_empty(), "{restarts:?}");
    let log = server.state().transfer_log("gz").unwrap();
    assert_eq!(
        log.downloads.iter().map(|d| d.1).collect::<Vec<_>>(),
        vec![200, 206]
    );
    assert!(log.bytes_sent as f64 <= 1.1 * encoded.len() as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_modified_is_the_validator_without_a_strong_etag() {
    let server = chaos().await;
    let download = client()
        .get(url(&server, "lm", "&validator=last-modified&break_at=0.3"))
        .send_download()
        .await
        .unwrap();
    let (file, restarts) = collect(download).await.unwrap();
    assert!(file == resile_chaos::download_bytes(SEED, LEN));
    assert!(restarts.is_empty());
    let log = server.state().transfer_log("lm").unwrap();
    assert_eq!(log.downloads[1].1, 206, "{:?}", log.downloads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_range_restarts_the_body_cleanly() {
    let server = chaos().await;
    let download = client()
        .get(url(&server, "ignore", "&ranges=ignore"))
        .send_download()
        .await
        .unwrap();
    let (file, restarts) = collect(download).await.unwrap();
    assert!(file == resile_chaos::download_bytes(SEED, LEN));
    assert_eq!(whys(&restarts), [RestartWhy::RangeIgnored]);
    let log = server.state().transfer_log("ignore").unwrap();
    assert_eq!(
        log.downloads.iter().map(|d| d.1).collect::<Vec<_>>(),
        vec![200, 200]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_resource_restarts_with_the_new_version_only() {
    let server = chaos().await;
    let download = client()
        .get(url(&server, "changed", "&change_after=1"))
        .send_download()
        .await
        .unwrap();
    let (file, restarts) = collect(download).await.unwrap();
    // If-Range no longer matches: the server sends the new version whole, and nothing of the
    // old one is kept.
    assert!(file == resile_chaos::download_bytes(SEED + 1, LEN));
    assert_eq!(whys(&restarts), [RestartWhy::Changed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_validator_the_body_is_fetched_again_whole() {
    let server = chaos().await;
    let download = client()
        .get(url(&server, "none", "&validator=weak"))
        .send_download()
        .await
        .unwrap();
    let (file, restarts) = collect(download).await.unwrap();
    assert!(file == resile_chaos::download_bytes(SEED, LEN));
    assert_eq!(whys(&restarts), [RestartWhy::NoValidator]);
    let log = server.state().transfer_log("none").unwrap();
    assert_eq!(
        log.downloads,
        vec![(None, 200), (None, 200)],
        "no Range without a validator"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_reports_a_restart_as_an_error_and_reads_on() {
    let server = chaos().await;
    let mut download = client()
        .get(url(&server, "chunk", "&ranges=ignore"))
        .send_download()
        .await
        .unwrap();
    let mut body = Vec::new();
    let mut restarted = 0;
    loop {
        match download.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(Error::Resume {
                error: ResumeError::Restarted { discard, .. },
            }) => {
                assert_eq!(discard, body.len() as u64);
                restarted += 1;
                body.clear();
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(restarted, 1);
    assert!(body == resile_chaos::download_bytes(SEED, LEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_416_or_a_partial_answer_from_elsewhere_is_a_typed_error() {
    let server = chaos().await;
    let cases = [("416", "&bad_range=416"), ("start", "&bad_range=start")];
    for (key, query) in cases {
        let download = client()
            .get(url(&server, key, query))
            .send_download()
            .await
            .unwrap();
        let e = collect(download).await.unwrap_err();
        match (key, &e) {
            (
                "416",
                Error::Resume {
                    error: ResumeError::RangeNotSatisfiable { offset, total },
                },
            ) => assert!(*offset <= LEN / 2 && *total == Some(LEN), "{e:?}"),
            (
                "start",
                Error::Resume {
                    error: ResumeError::ContentRangeMismatch { offset, got, .. },
                },
            ) => assert!(
                *offset > 0 && *got == format!("bytes 0-{}/{LEN}", LEN - 1),
                "{e:?}"
            ),
            _ => panic!("{key}: {e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_count_against_the_calls_attempts() {
    let server = chaos().await;
    let mut policy = fast_policy();
    policy.retry.max_attempts = 2;
    let client = Client::builder().engine(policy).seed(7).build().unwrap();
    // Every answer breaks: the first resume is attempt 2, and there is no attempt 3.
    let download = client
        .get(url(&server, "budget", "&breaks=100&break_at=0.9"))
        .send_download()
        .await
        .unwrap();
    let e = collect(download).await.unwrap_err();
    assert!(
        matches!(&e, Error::RetriesExhausted { attempts: 2, .. }),
        "{e:?}"
    );
    // Giving up on a break still says what broke, in the HTTP stack's words.
    match &e {
        Error::RetriesExhausted {
            last: resile::LastCause::Transport { message, .. },
            ..
        } => assert!(!message.is_empty(), "{e:?}"),
        other => panic!("the last cause is the break: {other:?}"),
    }
    assert_eq!(server.state().transfer_log("budget").unwrap().requests, 2);
}

/// A server that goes silent part-way and keeps the connection open: the download takes the
/// body up from the last byte after an attempt's time without a byte, as it does a break,
/// instead of waiting for the server (it would hold the connection two minutes here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_is_taken_up_where_it_stopped() {
    let server = silent_for_minutes().await;
    let client = stall_client(3);
    let download = client
        .get(url(&server, "stall", "&stall_ms=120000"))
        .send_download()
        .await
        .unwrap();
    let (file, restarts) = tokio::time::timeout(Duration::from_secs(60), collect(download))
        .await
        .expect("the stall is noticed, not waited out")
        .unwrap();
    assert!(restarts.is_empty(), "{restarts:?}");
    assert!(
        file == resile_chaos::download_bytes(SEED, LEN),
        "the file, byte for byte"
    );
    let log = server.state().transfer_log("stall").unwrap();
    assert_eq!(log.downloads.len(), 2, "{:?}", log.downloads);
    let asked = log.downloads[1].0.as_deref().unwrap_or_default();
    assert!(
        asked.starts_with("bytes=") && asked != "bytes=0-",
        "{asked}"
    );
    assert_eq!(log.downloads[1].1, 206);
}

/// Every answer stalls: the download gives up after its attempts, and says the body stalled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_stalling_gives_up_saying_so() {
    let server = silent_for_minutes().await;
    let download = stall_client(2)
        .get(url(&server, "stalls", "&stall_ms=120000&breaks=100"))
        .send_download()
        .await
        .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(60), collect(download))
        .await
        .expect("the stalls are noticed, not waited out")
        .unwrap_err();
    match &e {
        Error::RetriesExhausted {
            attempts: 2,
            last: resile::LastCause::Transport { kind, message },
            ..
        } => {
            assert_eq!(*kind, resile::resile_core::TransportError::Timeout);
            assert!(message.contains("stalled"), "{message}");
        }
        other => panic!("gives up on the stall: {other:?}"),
    }
}

/// A chaos server that may hold a connection silent for two minutes.
async fn silent_for_minutes() -> resile_chaos::ChaosServer {
    resile_chaos::start(resile_chaos::ChaosConfig {
        max_stall: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .expect("chaos server starts")
}

/// A client whose attempts may take 1 s (the most a body may stay silent), with `attempts`.
fn stall_client(attempts: u32) -> Client {
    let mut policy = fast_policy();
    policy.retry.max_attempts = attempts;
    policy.retry.attempt_timeout_ms = Some(1_000);
    policy.retry.deadline_ms = Some(60_000);
    Client::builder().engine(policy).seed(7).build().unwrap()
}

/// A resume continues the call: one call in the events, one `X-Request-ID` on every request
/// the server saw, and the call ends once the body has been read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_is_the_same_call_with_the_same_request_id() {
    let server = chaos().await;
    let events = Recorder::default();
    let client = Client::builder()
        .engine(fast_policy())
        .seed(7)
        .on_event(events.callback())
        .build()
        .unwrap();
    let download = client
        .get(url(&server, "same-call", ""))
        .send_download()
        .await
        .unwrap();
    let request_id = download.request_id().to_string();
    assert_eq!(
        client.active_calls(),
        1,
        "the call stays open while its body is read"
    );
    let (file, _) = collect(download).await.unwrap();
    assert_eq!(file.len() as u64, LEN);
    assert_eq!(client.active_calls(), 0);
    let log = server.state().transfer_log("same-call").unwrap();
    assert_eq!(log.downloads.len(), 2, "{:?}", log.downloads);
    assert!(!request_id.is_empty());
    assert_eq!(log.request_ids, vec![Some(request_id.clone()); 2]);
    let engine = events.engine();
    let started: Vec<_> = engine
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CallStarted { call, .. } => Some(*call),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 1, "one call");
    assert!(
        engine
            .iter()
            .all(|e| e.kind.call().is_none_or(|c| c == started[0])),
        "every event on that call"
    );
    let ended: Vec<_> = engine
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::CallSucceeded { attempts, .. } => Some(*attempts),
            _ => None,
        })
        .collect();
    assert_eq!(
        ended,
        [2],
        "it succeeds once, with the body, after two attempts"
    );
}

/// The call's deadline covers its resumes: a body that breaks after it has passed is not
/// taken up, and the download ends with a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passes_across_a_resume_ends_the_download_typed() {
    let server = chaos().await;
    let deadline = Duration::from_millis(800);
    let mut download = client()
        .get(url(&server, "deadline", ""))
        .deadline(deadline)
        .send_download()
        .await
        .unwrap();
    // Some of the body, then the caller dawdles past the call's deadline.
    assert!(download.chunk().await.unwrap().is_some());
    tokio::time::sleep(deadline).await;
    let e = loop {
        match download.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the body breaks at half"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            e,
            Error::Timeout {
                why: Why::DeadlineWouldPass,
                attempts: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        server.state().transfer_log("deadline").unwrap().requests,
        1,
        "no range request past the deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_streaming_call_still_reports_the_break() {
    let server = chaos().await;
    let mut stream = client()
        .get(url(&server, "plain", ""))
        .send_streaming()
        .await
        .unwrap();
    let e = loop {
        match stream.chunk().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the body should break"),
            Err(e) => break e,
        }
    };
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert_eq!(server.state().transfer_log("plain").unwrap().requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_gets_are_downloads() {
    let e = client()
        .post("http://127.0.0.1:9/x")
        .send_download()
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { .. }), "{e:?}");
}
