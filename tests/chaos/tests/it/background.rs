//! The server from code without a tokio runtime, and static files, over a raw socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;

use resile_chaos::{start_in_background, ChaosConfig};

fn raw_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn temp_www() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("resile-chaos-www-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><p>hi</p>").unwrap();
    std::fs::write(dir.join("pkg/app.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("pkg/app.js"), "export {};").unwrap();
    dir
}

#[test]
fn background_server_serves_without_a_runtime() {
    let server = start_in_background(ChaosConfig::default()).unwrap();
    let reply = raw_get(server.addr, "/status/418");
    assert!(reply.starts_with("HTTP/1.1 418"), "{reply}");
    assert_eq!(server.stats().requests, 1);
    server
        .state()
        .outage_for(std::time::Duration::from_secs(5), None);
    assert!(raw_get(server.addr, "/status/200").starts_with("HTTP/1.1 503"));
    server.stop();
}

#[test]
fn static_files_have_the_right_content_types() {
    let dir = temp_www();
    let server = start_in_background(ChaosConfig {
        static_dir: Some(dir.clone()),
        ..Default::default()
    })
    .unwrap();
    let root = raw_get(server.addr, "/");
    assert!(root.starts_with("HTTP/1.1 30"), "{root}");
    assert!(root
        .to_ascii_lowercase()
        .contains("location: /www/index.html"));

    let index = raw_get(server.addr, "/www/index.html").to_ascii_lowercase();
    assert!(index.contains("content-type: text/html"), "{index}");
    assert!(index.ends_with("<!doctype html><p>hi</p>"));
    let wasm = raw_get(server.addr, "/www/pkg/app.wasm").to_ascii_lowercase();
    assert!(wasm.contains("content-type: application/wasm"), "{wasm}");
    let js = raw_get(server.addr, "/www/pkg/app.js").to_ascii_lowercase();
    assert!(js.contains("content-type: text/javascript"), "{js}");

    assert!(raw_get(server.addr, "/www/missing.js").starts_with("HTTP/1.1 404"));
    let escape = raw_get(server.addr, "/www/..%2f..%2f..%2fetc%2fpasswd");
    assert!(
        escape.starts_with("HTTP/1.1 400") || escape.starts_with("HTTP/1.1 404"),
        "{escape}"
    );
    assert!(!escape.contains("root:"));
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
