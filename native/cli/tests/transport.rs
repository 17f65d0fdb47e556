//! The CLI against servers as they are: a private CA (`--cacert`), h2c
//! (`--http2-prior-knowledge`), and a reader that closes stdout early (`| head -1`).

mod common;
#[path = "../../tests/common/tls.rs"]
mod tls;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{resile, server};

#[test]
fn cacert_trusts_a_private_ca_and_without_it_the_call_fails_as_tls() {
    let https = tls::tls_server();
    let dir = std::env::temp_dir().join(format!("resile-cacert-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, tls::CA_PEM).unwrap();
    let url = format!("{}/hello", https.url());

    let out = resile(&["get", &url, "--cacert", ca.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");

    let out = resile(&["get", &url, "--retries", "2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Not retried (3): a certificate refused would be refused again.
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");

    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let out = resile(&["get", &url, "--cacert", junk.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--cacert"), "{stderr}");
    let missing = dir.join("missing.pem");
    let out = resile(&["get", &url, "--cacert", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn http2_prior_knowledge_speaks_h2c() {
    let server = server();
    let url = format!("{}/status/200", server.url());
    let out = resile(&["get", &url, "--http2-prior-knowledge", "-i"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("HTTP/2"), "{stdout}");
    let out = resile(&["get", &url, "-i"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("HTTP/1.1"),
        "{out:?}"
    );
}

#[test]
fn h2c_to_a_server_without_http2_says_to_drop_the_flag() {
    // As nginx without `http2` and hyper's HTTP/1-only server do, the chaos server closes the
    // connection on the HTTP/2 preface: no request reaches it, and the client sees the
    // connection closed before (or reset while) the request went out.
    let server = resile_chaos::start_in_background(resile_chaos::ChaosConfig {
        http1_only: true,
        ..Default::default()
    })
    .unwrap();
    let url = format!("{}/status/200", server.url());
    let out = resile(&["get", &url, "--http2-prior-knowledge", "--backoff", "1ms"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("a server that does not speak h2c closes or resets the connection"),
        "{stderr}"
    );
    assert_eq!(server.state().stats().requests, 0);
    let out = resile(&["get", &url]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_closed_stdout_stops_a_run_quietly_with_141() {
    let server = server();
    let url = format!("{}/slow?ms=20", server.url());
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("resile"))
        .args([
            "get",
            &url,
            "--repeat",
            "2000",
            "--parallel",
            "2",
            "--summary",
            "never",
        ])
        .env_remove("RESILE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.contains("\"status\":200"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{stderr}");
    assert_eq!(stderr, "", "nothing printed");
    let sent = server.stats().requests;
    assert!(
        sent < 100,
        "{sent} calls: the run went on after stdout closed"
    );
}

#[cfg(unix)]
#[test]
fn output_to_dev_null_is_written_not_truncated() {
    let server = server();
    let url = format!("{}/bytes/1000", server.url());
    // A GET into -o is streamed (a download), a POST buffered, a multi-call run writes lines.
    // A body that breaks and starts again (no ranges) is written again to /dev/null.
    let body = serde_json::json!("x".repeat(1000));
    let script = resile_chaos::Script {
        replies: vec![
            resile_chaos::ScriptReply {
                fault: Some(resile_chaos::ScriptFault::Truncate),
                body: Some(body.clone()),
                ..Default::default()
            },
            resile_chaos::ScriptReply {
                body: Some(body),
                ..Default::default()
            },
        ],
        then: None,
    };
    server.state().set_script("again", script).unwrap();
    let truncated = format!("{}/s/again", server.url());
    for args in [
        vec!["get", url.as_str(), "-o", "/dev/null"],
        vec![
            "get",
            truncated.as_str(),
            "--retries",
            "2",
            "-o",
            "/dev/null",
        ],
        vec!["post", url.as_str(), "-X", "GET", "-o", "/dev/null"],
        vec!["get", url.as_str(), "--repeat", "3", "-o", "/dev/null"],
    ] {
        let out = resile(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
}

/// A proxy from the environment that refuses: the error names the proxy (not its password),
/// since the connection that failed was to it, not to the server the URL names.
#[test]
fn a_proxy_from_the_environment_that_refuses_is_named_in_the_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let server = server();
    let url = format!("{}/status/200", server.url());
    let config = common::tempdir().join("base.toml");
    std::fs::write(&config, format!("base_url = \"{}/\"\n", server.url())).unwrap();
    let run_with = |no_proxy: &str, target: &str, config: Option<&std::path::Path>| {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("resile"));
        for name in [
            "RESILE_CONFIG",
            "ALL_PROXY",
            "all_proxy",
            "https_proxy",
            "http_proxy",
        ] {
            cmd.env_remove(name);
        }
        cmd.args(["get", target, "--retries", "0"]);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let out = cmd
            .env(
                "HTTP_PROXY",
                format!("http://user:hunter2@127.0.0.1:{closed}"),
            )
            .env("NO_PROXY", no_proxy)
            .env("no_proxy", no_proxy)
            .stdin(Stdio::null())
            .output()
            .expect("resile runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let run = |no_proxy: &str| run_with(no_proxy, &url, None);
    // A URL relative to the config's base_url goes through the same proxy, and says so.
    let (code, stderr) = run_with("", "status/200", Some(&config));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!("through the proxy http://127.0.0.1:{closed}/")),
        "{stderr}"
    );
    let (code, stderr) = run("");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("connection failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("through the proxy http://127.0.0.1:{closed}/")),
        "{stderr}"
    );
    assert!(
        stderr.contains("NO_PROXY=127.0.0.1 goes direct"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // With the proxy bypassed, the server answers.
    let (code, stderr) = run("127.0.0.1");
    assert_eq!(code, Some(0), "{stderr}");
    // A server that refuses without a proxy in the way: no note.
    let direct = format!("http://127.0.0.1:{closed}/");
    let out = resile(&["get", &direct, "--retries", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("proxy"), "{stderr}");
}
