//! `resile get URL -o FILE`: the body is streamed into the file and a break is taken up where
//! it happened; a server that sends the whole body again leaves only that body in the file.

mod common;

use common::{code, one_clear_line, resile, server, stderr, tempdir};

const LEN: u64 = 1 << 20;

#[test]
fn a_broken_download_is_resumed_into_the_file() {
    let s = server();
    let path = tempdir().join("file.bin");
    let url = format!("{}/download/{LEN}?key=cli-o&seed=9", s.url());
    let o = resile(&["get", &url, "-o", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = std::fs::read(&path).unwrap();
    assert!(
        file == resile_chaos::download_bytes(9, LEN),
        "the file, byte for byte"
    );
    let log = s.state().transfer_log("cli-o").unwrap();
    assert_eq!(
        log.downloads.iter().map(|d| d.1).collect::<Vec<_>>(),
        vec![200, 206]
    );
    assert!(
        log.bytes_sent as f64 <= 1.1 * LEN as f64,
        "{}",
        log.bytes_sent
    );
}

#[test]
fn a_restarted_body_replaces_what_the_file_held() {
    let s = server();
    let path = tempdir().join("file.bin");
    let url = format!(
        "{}/download/{LEN}?key=cli-ignore&seed=9&ranges=ignore",
        s.url()
    );
    let o = resile(&["get", &url, "-i", "-o", path.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = std::fs::read(&path).unwrap();
    let split = file
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("the head, then the body")
        + 4;
    assert!(file.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert!(
        file[split..] == resile_chaos::download_bytes(9, LEN)[..],
        "one version, whole"
    );
    let log = s.state().transfer_log("cli-ignore").unwrap();
    assert_eq!(log.requests, 2);
}

#[test]
fn an_error_status_is_written_and_exits_1() {
    let s = server();
    let path = tempdir().join("missing.json");
    let url = format!("{}/status/404", s.url());
    let o = resile(&["get", &url, "-o", path.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let body = std::fs::read_to_string(&path).unwrap();
    assert!(body.contains("404"), "{body}");
}

/// A listener that counts the connections made to it (accepted or still queued).
struct Listener(std::net::TcpListener);

impl Listener {
    fn new() -> Listener {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        Listener(l)
    }

    fn url(&self) -> String {
        format!("http://{}/orders", self.0.local_addr().unwrap())
    }

    fn connections(&self) -> usize {
        std::iter::from_fn(|| self.0.accept().ok())
            .take(100)
            .count()
    }
}

#[test]
fn an_output_path_that_cannot_be_written_fails_before_any_request_goes_out() {
    let dir = tempdir();
    let missing = dir.join("no-such-dir").join("out.json");
    let listener = Listener::new();
    for path in [&missing, &dir] {
        let path = path.to_str().unwrap();
        for args in [
            vec!["post", &*listener.url(), "--json", "{\"n\":1}", "-o", path],
            vec!["get", &*listener.url(), "-o", path],
        ] {
            let o = resile(&args);
            assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
            assert!(stderr(&o).contains(path), "{args:?}: {}", stderr(&o));
        }
    }
    assert_eq!(listener.connections(), 0, "a request went out");
    assert!(!missing.parent().unwrap().exists());
}

#[test]
fn a_call_that_fails_leaves_no_new_file_and_an_existing_one_as_it_was() {
    let dir = tempdir();
    let fresh = dir.join("fresh.json");
    let kept = dir.join("kept.json");
    std::fs::write(&kept, "earlier").unwrap();
    for path in [&fresh, &kept] {
        // Nothing listens on port 1: the call fails before any answer.
        let o = resile(&[
            "get",
            "http://127.0.0.1:1/",
            "--retries",
            "0",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert_ne!(code(&o), 0, "{}", stderr(&o));
    }
    assert!(!fresh.exists());
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "earlier");
}

/// `resile get URL -o PATH --max-filesize SIZE`.
fn capped(url: &str, path: &std::path::Path, size: &str) -> std::process::Output {
    resile(&[
        "get",
        url,
        "-o",
        path.to_str().unwrap(),
        "--max-filesize",
        size,
    ])
}

#[test]
fn max_filesize_stops_an_endless_body_at_its_size_with_exit_8() {
    let s = server();
    let path = tempdir().join("endless.txt");
    let url = format!("{}/endless", s.url());
    let o = capped(&url, &path, "100k");
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    one_clear_line(&o);
    assert!(
        stderr(&o).contains("--max-filesize (102400 bytes)"),
        "{}",
        stderr(&o)
    );
    let written = std::fs::metadata(&path).unwrap().len();
    assert!(written <= 100 << 10, "{written}");
}

#[test]
fn max_filesize_refuses_a_longer_content_length_before_the_file_is_touched() {
    let s = server();
    let path = tempdir().join("kept.bin");
    std::fs::write(&path, b"what was there").unwrap();
    let url = format!("{}/bytes/5000", s.url());
    let o = capped(&url, &path, "4999");
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    one_clear_line(&o);
    assert_eq!(std::fs::read(&path).unwrap(), b"what was there");
    // On stdout it is the cap on the buffered body, raised or lowered alike; the size itself
    // passes.
    let o = resile(&["get", &url, "--max-filesize", "4999"]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(!stderr(&o).contains("-o FILE"), "{}", stderr(&o));
    let o = capped(&url, &path, "5000");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&path).unwrap().len(), 5000);
    for bad in ["0", "-1", "10X", "2000T"] {
        let o = resile(&["get", &url, "--max-filesize", bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
    }
}

#[test]
fn a_body_that_keeps_breaking_says_why_and_that_the_file_is_incomplete() {
    let s = server();
    let path = tempdir().join("cut.bin");
    let url = format!("{}/truncate?len=1000&send=400", s.url());
    let o = resile(&["get", &url, "--retries", "1", "-o", path.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    one_clear_line(&o);
    let err = stderr(&o);
    // The break's own words, as on stdout, and what the file holds.
    assert!(err.contains("response body truncated ("), "{err}");
    assert!(
        err.contains(&format!(
            "{} is incomplete: it holds the body's first 400 of its 1000 byte(s)",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 400);
    // Without -o the same break reads the same.
    let o = resile(&["get", &url, "--retries", "1"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("response body truncated ("),
        "{}",
        stderr(&o)
    );
}
