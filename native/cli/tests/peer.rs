//! `resile` as a peer of curl and xh, against the chaos server: exact bytes in and out, the
//! familiar flags, request items, many calls through one client, and the exit codes of bad
//! input and redirect loops. Secrets stay out of every line it prints.

mod common;

use serde_json::Value;

use common::{code, one_clear_line, resile, resile_stdin, server, stderr, stdout, tempdir};

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&out[..out.len().min(400)])
        )
    })
}

// ---------------------------------------------------------------- exact bytes in

#[test]
fn a_signed_body_reaches_the_server_byte_for_byte() {
    let s = server();
    let url = format!("{}/signed", s.url());
    // Key order, spacing and number spelling a re-serializer would change.
    let body = r#"{"b":2,"a":1,  "n":1.10}"#;
    let sig = format!("X-Signature: {}", resile_chaos::sign(body.as_bytes()));
    for flag in ["--data", "--json"] {
        let o = resile(&["post", &url, flag, body, "-H", &sig]);
        assert_eq!(code(&o), 0, "{flag}: {}", stderr(&o));
        assert_eq!(json(&o.stdout)["verified"], true, "{flag}");
    }
    // From a file with CR/LF, NUL and bytes that are not UTF-8, and from stdin.
    let dir = tempdir();
    let file = dir.join("body.bin");
    let raw: Vec<u8> = b"line 1\r\nline 2\n\x00\xff\xfe end\n".to_vec();
    std::fs::write(&file, &raw).unwrap();
    let sig = format!("X-Signature: {}", resile_chaos::sign(&raw));
    let at_file = format!("@{}", file.display());
    let o = resile(&["put", &url, "--data", &at_file, "-H", &sig]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = resile_stdin(&["put", &url, "--data-binary", "@-", "-H", &sig], &raw);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // One byte different: the server refuses.
    let o = resile(&["post", &url, "--data", "{\"b\":2}", "-H", &sig]);
    assert_eq!(code(&o), 1);
    assert_eq!(s.stats().signatures_verified, 4);
}

#[test]
fn content_types_follow_the_body_flag_and_yield_to_the_users() {
    let s = server();
    let url = format!("{}/echo", s.url());
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["--data", "a=1&b=2"],
            "application/x-www-form-urlencoded",
            "a=1&b=2",
        ),
        (&["--json", "[1, 2.50]"], "application/json", "[1, 2.50]"),
        (
            &["--form", "q=a b&c", "--form", "n=1"],
            "application/x-www-form-urlencoded",
            "q=a+b%26c&n=1",
        ),
        (
            &["--data", "<x/>", "-H", "Content-Type: application/xml"],
            "application/xml",
            "<x/>",
        ),
    ];
    for (flags, content_type, body) in cases {
        let mut args = vec!["post", url.as_str()];
        args.extend_from_slice(flags);
        let o = resile(&args);
        assert_eq!(code(&o), 0, "{flags:?}: {}", stderr(&o));
        let echo = json(&o.stdout);
        assert_eq!(echo["content_type"], content_type, "{flags:?}");
        assert_eq!(echo["body"], body, "{flags:?}");
    }
    let o = resile(&["post", &url, "--json", "{\"a\":"]);
    assert_eq!(code(&o), 2);
    one_clear_line(&o);
    let o = resile(&["post", &url, "--json", "{}", "--form", "a=b"]);
    assert_eq!(code(&o), 2, "two bodies at once");
    one_clear_line(&o);
}

#[test]
fn multipart_parts_arrive_whole() {
    let s = server();
    let dir = tempdir();
    let file = dir.join("blob.bin");
    let blob = resile_chaos::download_bytes(11, 3000);
    std::fs::write(&file, &blob).unwrap();
    let part = format!("file=@{};type=application/x-blob", file.display());
    let o = resile(&[
        "post",
        &format!("{}/upload", s.url()),
        "-F",
        "note=hello there",
        "-F",
        &part,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let parts = json(&o.stdout)["parts"].as_array().unwrap().clone();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0]["name"], "note");
    assert_eq!(parts[0]["text"], "hello there");
    assert_eq!(parts[1]["filename"], "blob.bin");
    assert_eq!(parts[1]["content_type"], "application/x-blob");
    assert_eq!(parts[1]["sha256"], resile_chaos::sha256_hex(&blob));
}

#[test]
fn request_items_are_headers_query_and_json_fields() {
    let s = server();
    let o = resile(&[
        "post",
        &format!("{}/echo?a=0", s.url()),
        "X-Tenant:acme",
        "page==2",
        "name=Ada",
        "n:=1.10",
        "tags:=[1, 2]",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let echo = json(&o.stdout);
    assert_eq!(echo["headers"]["x-tenant"], "acme");
    assert_eq!(echo["query"], "a=0&page=2");
    assert_eq!(echo["content_type"], "application/json");
    assert_eq!(echo["headers"]["accept"], "application/json");
    assert_eq!(echo["body"], r#"{"name":"Ada","n":1.10,"tags":[1, 2]}"#);
    for bad in ["n:={oops", "just-a-word"] {
        let o = resile(&["post", &format!("{}/echo", s.url()), bad]);
        assert_eq!(code(&o), 2, "{bad}: {}", stderr(&o));
        one_clear_line(&o);
    }
}

// ---------------------------------------------------------------- exact bytes out

#[test]
fn a_binary_download_is_written_byte_for_byte() {
    let s = server();
    let url = format!("{}/bytes/65536?seed=5", s.url());
    let want = resile_chaos::download_bytes(5, 65536);
    let o = resile(&["get", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(o.stdout.len(), want.len(), "no byte added or lost");
    assert!(o.stdout == want, "the same bytes");
    let small = resile(&["get", &format!("{}/bytes/64?seed=5", s.url())]);
    assert_eq!(small.stdout, want[..64].to_vec(), "no newline added");

    let dir = tempdir();
    let file = dir.join("out.bin");
    let o = resile(&["get", &url, "-o", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.is_empty(), "-o takes the body off stdout");
    assert!(std::fs::read(&file).unwrap() == want);
}

#[test]
fn include_puts_the_head_on_stdout_before_the_body() {
    let s = server();
    let url = format!("{}/bytes/100?seed=2", s.url());
    let want = resile_chaos::download_bytes(2, 100);
    let o = resile(&["get", "-i", &url]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        o.stdout.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        stdout(&o)
    );
    let split = o
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an empty line ends the head");
    let head = String::from_utf8_lossy(&o.stdout[..split]).to_lowercase();
    assert!(
        head.contains("\r\ncontent-type: application/octet-stream"),
        "{head}"
    );
    assert!(head.contains("\r\nx-content-sha256: "), "{head}");
    assert!(o.stdout[split + 4..] == want, "then the body, exactly");
    assert!(
        !stderr(&o).contains("HTTP/1.1"),
        "the head is not on stderr"
    );

    let dir = tempdir();
    let file = dir.join("with-head");
    let o = resile(&["get", "-i", &url, "-o", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    let written = std::fs::read(&file).unwrap();
    assert!(written.starts_with(b"HTTP/1.1 200 OK\r\n") && written.ends_with(&want));

    // HEAD and OPTIONS: any method, with -X or as a command.
    let echo = format!("{}/echo", s.url());
    let o = resile(&["get", "-X", "HEAD", "-i", &echo]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(o.stdout.starts_with(b"HTTP/1.1 200 OK\r\n") && o.stdout.ends_with(b"\r\n\r\n"));
    let o = resile(&["head", &echo]);
    assert_eq!((code(&o), o.stdout.len()), (0, 0));
    let o = resile(&["get", "-X", "options", &echo]);
    assert_eq!(json(&o.stdout)["method"], "OPTIONS");
    let o = resile(&["post", "-X", "BAD METHOD", &echo]);
    assert_eq!(code(&o), 2);
}

#[test]
fn a_status_http_names_no_reason_for_is_shown_as_its_code_alone() {
    // 599 has no reason phrase: the lines showed `599 <unknown status code>`, which no server
    // sent.
    let s = server();
    let url = format!("{}/status/599", s.url());
    let o = resile(&["get", "-i", "-v", "--retries", "0", &url]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(o.stdout.starts_with(b"HTTP/1.1 599\r\n"), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("< HTTP/1.1 599\n"), "{err}");
    assert!(err.contains("answered 599\n"), "{err}");
    assert!(!err.contains("unknown status"), "{err}");
    // A named one keeps its reason.
    let o = resile(&["get", "-i", &format!("{}/status/404", s.url())]);
    assert!(
        o.stdout.starts_with(b"HTTP/1.1 404 Not Found\r\n"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("answered 404 Not Found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn verbose_goes_to_stderr_with_secrets_hidden() {
    let s = server();
    let url = format!("{}/echo?api_key=k-sekrit-1&page=1", s.url())
        .replace("http://", "http://me:pw-sekrit-2@");
    let o = resile(&[
        "get",
        "-v",
        &url,
        "-H",
        "Authorization: Bearer h-sekrit-3",
        "X-Api-Key:h-sekrit-4",
        "token==i-sekrit-5",
        "view==full",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("> GET http://REDACTED@127.0.0.1:"), "{err}");
    assert!(
        err.contains("page=1&token=REDACTED&view=full")
            && err.contains("api_key=REDACTED")
            && err.contains("token=REDACTED"),
        "{err}"
    );
    assert!(err.contains("< HTTP/1.1 200 OK"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("* [") && l.contains("#1 attempt 1")),
        "engine decisions: {err}"
    );
    assert!(!err.contains("sekrit"), "{err}");
    // stdout is the body, and the body alone.
    let echo = json(&o.stdout);
    assert_eq!(
        echo["headers"]["x-api-key"], "h-sekrit-4",
        "the header was sent"
    );
}

#[test]
fn error_lines_never_echo_credentials_or_secret_query_values() {
    let s = server();
    let dir = tempdir();
    let config = dir.join("redact.toml");
    std::fs::write(&config, "redact_query_params = [\"session\"]\n").unwrap();
    let cases = [
        format!("{}/status/404?token=q-sekrit-1&session=q-sekrit-2", s.url()),
        "http://me:pw-sekrit-3@127.0.0.1:1/x?signature=q-sekrit-4".to_string(),
        "http://me:pw-sekrit-5@/bad url?password=q-sekrit-6".to_string(),
        "not-a-url?session=q-sekrit-7".to_string(),
    ];
    for url in &cases {
        let o = resile(&[
            "get",
            url,
            "--retry",
            "0",
            "--config",
            config.to_str().unwrap(),
        ]);
        assert_ne!(code(&o), 0, "{url}");
        let err = stderr(&o);
        assert!(!err.contains("sekrit"), "{url}: {err}");
    }
    // The same in JSON lines.
    let list = dir.join("urls.txt");
    std::fs::write(&list, cases.join("\n")).unwrap();
    let o = resile(&[
        "get",
        "--urls",
        list.to_str().unwrap(),
        "--retry",
        "0",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(
        !stdout(&o).contains("sekrit") && !stderr(&o).contains("sekrit"),
        "{}",
        stdout(&o)
    );
    assert_eq!(stdout(&o).lines().count(), cases.len());
}

// ---------------------------------------------------------------- familiar flags

#[test]
fn retry_flags_count_and_choose_statuses_as_curl_does() {
    let s = server();
    let o = resile(&[
        "get",
        &format!("{}/status/503", s.url()),
        "--retry",
        "2",
        "--backoff",
        "5ms..10ms",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("gave up after 3 attempt(s)"),
        "{}",
        stderr(&o)
    );

    // 409 is not retried by default; --retry-on adds it.
    let flaky = |key: &str| format!("{}/flaky?key={key}&fail=1&status=409", s.url());
    let o = resile(&["get", &flaky("no-retry-on")]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = resile(&[
        "get",
        &flaky("retry-on"),
        "--retry-on",
        "425,409",
        "--backoff",
        "5ms",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(json(&o.stdout)["attempt"], 2);
    for bad in [
        ["--retry-on", "99"],
        ["--backoff", "2s..1s"],
        ["--backoff", "soon"],
    ] {
        let o = resile(&["get", &flaky("bad"), bad[0], bad[1]]);
        assert_eq!(code(&o), 2, "{bad:?}");
        one_clear_line(&o);
    }
}

#[test]
fn backoff_bounds_every_delay() {
    let s = server();
    let dir = tempdir();
    let events = dir.join("events.jsonl");
    let o = resile(&[
        "get",
        &format!("{}/status/500", s.url()),
        "--retry",
        "4",
        "--backoff",
        "1ms..3ms",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let delays: Vec<f64> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "retry_scheduled")
        .map(|e| e["delay_ms"].as_f64().unwrap())
        .collect();
    assert_eq!(delays.len(), 4);
    assert!(delays.iter().all(|d| *d <= 3.0), "{delays:?}");
}

#[test]
fn max_time_is_the_deadline() {
    let s = server();
    let o = resile(&[
        "get",
        &format!("{}/slow?ms=3000", s.url()),
        "--attempt-timeout",
        "300ms",
        "--max-time",
        "700ms",
    ]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    one_clear_line(&o);
}

#[test]
fn redirects_follow_stop_or_fail() {
    let s = server();
    let chain = format!("{}/redirect/2", s.url());
    let o = resile(&["get", &chain]);
    assert_eq!(code(&o), 0, "followed by default: {}", stderr(&o));
    assert_eq!(json(&o.stdout)["redirected"], true);
    let o = resile(&["get", "-L", &chain, "--max-redirects", "2"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = resile(&["get", "-i", "--no-follow", &chain]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("HTTP/1.1 302 Found\r\n"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).to_lowercase().contains("location: /redirect/1"));

    // Over the limit, and a loop: an error, never the 3xx as a success.
    let o = resile(&["get", &chain, "--max-redirects", "1"]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("more than 1 redirect"),
        "{}",
        stderr(&o)
    );
    let before = s.stats().redirects;
    let o = resile(&["get", &format!("{}/redirect/loop", s.url())]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    one_clear_line(&o);
    assert!(o.stdout.is_empty());
    assert_eq!(
        s.stats().redirects - before,
        11,
        "the first answer and 10 hops, once"
    );
}

// ---------------------------------------------------------------- many calls

#[test]
fn a_thousand_urls_at_parallel_32_share_one_pool() {
    let s = server();
    let dir = tempdir();
    let list = dir.join("urls.txt");
    let mut text = String::from("# one URL a line\n\n");
    for i in 0..1000 {
        text.push_str(&format!("{}/status/200?i={i}\n", s.url()));
    }
    std::fs::write(&list, text).unwrap();
    let report = dir.join("report.json");
    let o = resile(&[
        "get",
        "--urls",
        list.to_str().unwrap(),
        "--parallel",
        "32",
        "--report",
        report.to_str().unwrap(),
        "--summary",
        "always",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line per call"))
        .collect();
    assert_eq!(lines.len(), 1000);
    let mut seen: Vec<u64> = lines.iter().map(|l| l["index"].as_u64().unwrap()).collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..1000).collect::<Vec<u64>>(), "every call once");
    for l in &lines {
        assert_eq!(
            (l["status"].as_u64(), l["attempts"].as_u64()),
            (Some(200), Some(1)),
            "{l}"
        );
        assert!(l["duration_ms"].as_f64().unwrap() >= 0.0 && l["error"].is_null());
    }
    let stats = s.stats();
    assert_eq!(stats.requests_by_route["/status/{code}"], 1000);
    // A client per call would open 1000 connections. One pool opens one per call in flight,
    // plus a few: hyper keeps a connection it started for a request that an idle connection
    // served first.
    assert!(
        stats.connections <= 64,
        "one client, one pool: about one connection per call in flight, got {}",
        stats.connections
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(
        (report["calls"].as_u64(), report["succeeded"].as_u64()),
        (Some(1000), Some(1000))
    );
    assert_eq!(report["statuses"]["200"], 1000);
    assert_eq!(
        report["client"]["calls"], 1000,
        "the one client made every call"
    );
    let counted: u64 = report["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1000);
    let err = stderr(&o);
    assert!(
        err.contains("1000 call(s)") && err.contains("200: 1000") && err.contains("latency"),
        "{err}"
    );
}

#[test]
fn urls_on_stdin_report_each_failure_and_exit_with_the_first() {
    let s = server();
    let input = format!(
        "{b}/status/200\n{b}/status/404\n{b}/status/503\nhttp://127.0.0.1:1/refused\n",
        b = s.url()
    );
    let o = resile_stdin(
        &[
            "get",
            "--retry",
            "1",
            "--backoff",
            "5ms",
            "--parallel",
            "4",
            "-s",
        ],
        input.as_bytes(),
    );
    assert_eq!(
        code(&o),
        1,
        "the first failure in input order is the 404: {}",
        stderr(&o)
    );
    assert!(
        stderr(&o).is_empty(),
        "-s and no terminal: no summary: {}",
        stderr(&o)
    );
    let mut lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    lines.sort_by_key(|l| l["index"].as_u64());
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["error"], Value::Null);
    assert_eq!(
        (lines[1]["status"].as_u64(), lines[1]["error"].as_str()),
        (Some(404), Some("http_status"))
    );
    assert_eq!(lines[2]["error"], "retries_exhausted");
    assert_eq!(lines[2]["why"], "max_attempts");
    assert_eq!(lines[2]["attempts"], 2);
    assert_eq!(lines[3]["error"], "retries_exhausted");
    assert!(
        lines[3]["message"].as_str().unwrap().contains("connection"),
        "{}",
        lines[3]
    );
    // No URL at all is a usage error.
    let o = resile_stdin(&["get"], b"# nothing\n");
    assert_eq!(code(&o), 2);
    one_clear_line(&o);
}

#[test]
fn repeat_runs_one_url_many_times_through_one_engine() {
    let s = server();
    let dir = tempdir();
    let report = dir.join("r.json");
    let o = resile(&[
        "post",
        &format!("{}/orders", s.url()),
        "--json",
        r#"{"sku":"R-1"}"#,
        "--idempotency-key",
        "repeat-key",
        "--repeat",
        "20",
        "--parallel",
        "1",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 20);
    let stats = s.stats();
    assert_eq!(
        (stats.orders_created, stats.idempotent_replays),
        (1, 19),
        "one key on every call: one order"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(report["statuses"]["201"], 20);
}

// ---------------------------------------------------------------- bad input

#[test]
fn header_values_with_cr_or_lf_are_usage_errors() {
    let s = server();
    let url = format!("{}/echo", s.url());
    for args in [
        vec!["get", url.as_str(), "--bearer", "tok\r\nX-Evil: 1"],
        vec!["get", url.as_str(), "--bearer", "tok\n"],
        vec!["post", url.as_str(), "--idempotency-key", "k\r\n"],
        vec!["get", url.as_str(), "-H", "X-A: a\rb"],
    ] {
        let o = resile(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        one_clear_line(&o);
    }
    assert_eq!(s.stats().requests, 0, "nothing was sent");
    let o = common::resile_env(&["get", &url], ("RESILE_BEARER", "tok\r\n"));
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn config_type_errors_name_the_field_and_the_position() {
    let dir = tempdir();
    let cases = [
        (
            "a.toml",
            "max_in_flight = -1\n",
            "`max_in_flight` at line 1",
        ),
        (
            "b.toml",
            "# lots\nmax_in_flight = \"lots\"\n",
            "`max_in_flight` at line 2",
        ),
        (
            "c.toml",
            "[engine.backoff]\njitter = \"wild\"\n",
            "`engine.backoff.jitter` at line 2",
        ),
        (
            "d.json",
            "{\"engine\":{\"backoff\":{\"factor\":\"two\"}}}",
            "`engine.backoff.factor` at line 1, column",
        ),
    ];
    for (name, text, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let o = resile(&[
            "get",
            "http://127.0.0.1:1/",
            "--config",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 6, "{name}: {}", stderr(&o));
        one_clear_line(&o);
        assert!(stderr(&o).contains(want), "{name}: {}", stderr(&o));
    }
}

#[test]
fn help_documents_the_differences_from_curl() {
    let o = resile(&["get", "--help"]);
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    for flag in [
        "--data",
        "--json",
        "--form",
        "--multipart",
        "--retry",
        "--retry-on",
        "--backoff",
        "--max-time",
        "--follow",
        "--no-follow",
        "--max-redirects",
        "--silent",
        "--output",
        "--request",
        "--urls",
        "--parallel",
        "--repeat",
        "--report",
        "Differences from curl",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

/// On a terminal (a pseudo-terminal from util-linux `script`), a multi-call run shows a
/// progress bar with the host's state and ends with the summary; without one (every other
/// test here), stderr stays empty of both.
#[test]
fn on_a_terminal_a_run_shows_progress_and_a_summary() {
    let s = server();
    let dir = tempdir();
    let list = dir.join("urls.txt");
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!("{}/slow?ms=60&i={i}\n", s.url()));
    }
    text.push_str(&format!("{}/status/404\n", s.url()));
    std::fs::write(&list, text).unwrap();
    let lines = dir.join("lines.jsonl");
    let bin = assert_cmd::cargo::cargo_bin("resile");
    let command = format!(
        "{} get --urls {} --parallel 2 -o {}",
        bin.display(),
        list.display(),
        lines.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qefc", &command, "/dev/null"])
        .env_remove("RESILE_CONFIG")
        .output()
        .expect("util-linux `script` runs (package bsdutils)");
    let screen = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "the 404: {screen}");
    assert!(
        screen.contains("breaker closed"),
        "the host's state: {screen}"
    );
    assert!(screen.contains("in flight"), "{screen}");
    assert!(
        screen.contains("21 call(s)") && screen.contains("404: 1"),
        "{screen}"
    );
    assert!(
        screen.contains("latency") && screen.contains("≤ 100 ms"),
        "{screen}"
    );
    assert_eq!(std::fs::read_to_string(&lines).unwrap().lines().count(), 21);
}
