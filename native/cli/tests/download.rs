//! `resile get URL -o FILE`: the body is streamed into the file and a break is taken up where
//! it happened; a server that sends the whole body again leaves only that body in the file.

mod common;

use common::{code, resile, server, stderr, tempdir};

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
