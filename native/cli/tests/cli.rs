//! The `resile` command against a real chaos server on 127.0.0.1: every command, every exit
//! code, bad input, pagination, events, and a short demo.

mod common;

use assert_cmd::Command;
use serde_json::Value;

use common::{code, one_clear_line, resile, server, stderr, stdout, tempdir};

#[test]
fn get_prints_the_body_and_exits_0() {
    let s = server();
    let o = resile(&["get", &format!("{}/flaky?key=cli-get&fail=2", s.url())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let body: Value = serde_json::from_str(stdout(&o).trim()).expect("JSON body");
    assert_eq!(
        body["attempt"], 3,
        "two failures retried, the third attempt answered"
    );
}

#[test]
fn only_a_relative_url_is_told_to_set_base_url() {
    for (url, hint) in [
        ("items", true),
        ("http://", false),
        ("http://exa mple.com/", false),
        ("http://[::1/", false),
    ] {
        let o = resile(&["get", url]);
        assert_eq!(code(&o), 2, "{url}: {}", stderr(&o));
        one_clear_line(&o);
        assert_eq!(
            stderr(&o).contains("base_url"),
            hint,
            "{url}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn http_error_status_exits_1() {
    let s = server();
    let o = resile(&["get", &format!("{}/status/404", s.url())]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("404"));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let s = server();
    for args in [
        vec!["get", "not a url"],
        vec![
            "post",
            &*Box::leak(format!("{}/orders", s.url()).into_boxed_str()),
            "--json",
            "{not json",
        ],
        vec!["get", "http://127.0.0.1:1/", "--attempt-timeout", "soon"],
        vec!["get", "http://127.0.0.1:1/", "--paginate", "sideways"],
        // Parsed, then refused by the configuration: the flag is named.
        vec!["get", "http://127.0.0.1:1/", "--attempt-timeout", "0s"],
        vec![
            "get",
            "http://127.0.0.1:1/",
            "--rate",
            "1/s",
            "--burst",
            "0",
        ],
        vec!["get", "http://127.0.0.1:1/", "--retries", "1000"],
    ] {
        let o = resile(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        one_clear_line(&o);
    }
    // Parsed, then refused by the configuration: the flag is named.
    for (flag, value) in [
        ("--attempt-timeout", "0s"),
        ("--burst", "0"),
        ("--retries", "1000"),
        // Refused as the config file's `max_in_flight = 0` is, not run one at a time.
        ("--concurrency", "0"),
        ("--connect-timeout", "0s"),
    ] {
        let o = resile(&["get", "http://127.0.0.1:1/", "--rate", "1/s", flag, value]);
        assert_eq!(code(&o), 2, "{flag}: {}", stderr(&o));
        one_clear_line(&o);
        assert!(stderr(&o).contains(flag), "{flag}: {}", stderr(&o));
    }
    let o = resile(&["frobnicate"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn a_rate_far_out_of_range_is_shown_bounded_not_in_309_digits() {
    for (rate, shown) in [("1e308/s", "1e308"), ("1e-300/s", "1e-300")] {
        let o = resile(&["get", "http://127.0.0.1:1/", "--rate", rate]);
        assert_eq!(code(&o), 2, "{rate}: {}", stderr(&o));
        one_clear_line(&o);
        let err = stderr(&o);
        assert!(
            err.contains("--rate") && err.contains(shown),
            "{rate}: {err}"
        );
        assert!(err.len() < 200, "{rate}: {err}");
    }
}

#[test]
fn a_retry_after_out_of_range_is_said_to_be_so_not_printed_saturated() {
    let s = server();
    for (raw, says) in [
        ("99999999999999999999", "asked for a wait out of range"),
        ("3600", "asked to wait 3600 s"),
    ] {
        let o = resile(&[
            "get",
            &format!("{}/status/503?retry_after_raw={raw}", s.url()),
        ]);
        assert_eq!(code(&o), 3, "{raw}: {}", stderr(&o));
        one_clear_line(&o);
        let err = stderr(&o);
        assert!(err.contains(says), "{raw}: {err}");
        assert!(!err.contains(&u64::MAX.to_string()), "{raw}: {err}");
    }
}

#[test]
fn a_runs_attempts_are_those_sent_even_where_the_breaker_opened_under_a_call() {
    let s = server();
    let report = tempdir().join("run.json");
    let o = resile(&[
        "get",
        &format!("{}/status/503", s.url()),
        "--repeat",
        "40",
        "--parallel",
        "8",
        "--summary",
        "always",
        "--report",
        report.to_str().unwrap(),
    ]);
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 40, "{}", stderr(&o));
    assert!(
        lines.iter().any(|l| l["error"] == "unavailable"),
        "the breaker opened during the run: {lines:?}"
    );
    let sent = s.stats().requests;
    let report: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(report["attempts"], sent, "{report}");
    assert!(
        stderr(&o).contains(&format!(", {sent} attempt(s)")),
        "{}",
        stderr(&o)
    );
}

/// Runs `resile ARGS`, waits until the server has seen `more` requests, sends `signal` and
/// returns the exit code and stderr.
#[cfg(unix)]
fn interrupted(
    s: &resile_chaos::BackgroundServer,
    args: &[&str],
    more: u64,
    signal: &str,
) -> (Option<i32>, String) {
    use std::io::Read as _;
    use std::process::Stdio;
    use std::time::Duration;

    let before = s.stats().requests;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("resile"))
        .args(args)
        .env_remove("RESILE_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("resile starts");
    let answered = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        s.stats().requests >= before + more
    });
    assert!(answered, "the first attempts reached the server");
    let sent = std::process::Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = (0..200).find_map(|_| {
        std::thread::sleep(Duration::from_millis(50));
        child.try_wait().expect("wait")
    });
    let Some(status) = status else {
        let _ = child.kill();
        panic!("SIG{signal}: resile did not stop");
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), err)
}

#[cfg(unix)]
#[test]
fn a_signal_during_a_retry_wait_stops_the_call_and_says_what_was_in_flight() {
    let s = server();
    for (signal, exit) in [("TERM", 143), ("INT", 130)] {
        let before = s.stats().requests;
        // Answered 503 with Retry-After: 30, so the call waits 30 s before its retry.
        let url = format!("{}/status/503?retry_after=30", s.url());
        let (code, err) = interrupted(&s, &["get", &url, "--max-time", "60s"], 1, signal);
        assert_eq!(code, Some(exit), "SIG{signal}: {err}");
        assert!(
            err.contains("interrupted by")
                && err.contains("1 call(s) in flight cancelled")
                && err.contains("1 attempt(s) sent"),
            "SIG{signal}: {err}"
        );
        assert_eq!(
            s.stats().requests,
            before + 1,
            "no attempt after the signal"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_run_of_many_calls_stopped_before_its_first_line_leaves_its_file_as_it_was() {
    let s = server();
    let dir = tempdir();
    let list = dir.join("urls.txt");
    // The first 503 holds the host for 30 s: no call ends, no line is written, before the
    // signal.
    let url = format!("{}/status/503?retry_after=30", s.url());
    std::fs::write(&list, format!("{url}&i=1\n{url}&i=2\n")).unwrap();
    let kept = dir.join("kept.jsonl");
    std::fs::write(&kept, "the last run's lines\n").unwrap();
    let made = dir.join("made.jsonl");
    for (out, left) in [(&kept, Some("the last run's lines\n")), (&made, None)] {
        let args = [
            "get",
            "--urls",
            list.to_str().unwrap(),
            "--max-time",
            "60s",
            "-o",
            out.to_str().unwrap(),
        ];
        let (code, err) = interrupted(&s, &args, 1, "INT");
        assert_eq!(code, Some(130), "{err}");
        assert_eq!(
            std::fs::read_to_string(out).ok().as_deref(),
            left,
            "{}: {err}",
            out.display()
        );
    }
}

#[test]
fn a_closed_stderr_does_not_panic_the_command() {
    use std::io::Read as _;
    use std::process::Stdio;

    // `resile get URL -v 2>&1 | head -1`: the reader goes away, every later line meets EPIPE.
    let s = server();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("resile"))
        .args([
            "get",
            &format!("{}/flaky?key=closed-stderr&fail=2", s.url()),
            "-v",
        ])
        .env_remove("RESILE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("resile starts");
    drop(child.stderr.take());
    let mut body = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut body)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "not a panic (101): {body}");
    let body: Value = serde_json::from_str(body.trim()).expect("the body, whole");
    assert_eq!(body["attempt"], 3);
}

#[test]
fn a_body_over_the_cap_on_stdout_points_at_o_which_streams_it() {
    let s = server();
    let dir = tempdir();
    let config = dir.join("small.toml");
    std::fs::write(&config, "max_response_bytes = 1000\n").unwrap();
    let url = format!("{}/bytes/5000", s.url());
    let config = config.to_str().unwrap();
    let o = resile(&["get", &url, "--config", config]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    one_clear_line(&o);
    assert!(stderr(&o).contains("-o FILE"), "{}", stderr(&o));
    let file = dir.join("body");
    let o = resile(&[
        "get",
        &url,
        "--config",
        config,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(std::fs::read(&file).unwrap().len(), 5000);
}

/// A one-shot server on 127.0.0.1 that answers its first request with `response`, as is.
fn answer_once(response: &'static str) -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = conn.write_all(response.as_bytes());
    });
    url
}

#[test]
fn verbose_hides_secret_query_values_in_the_urls_response_headers_carry() {
    let url = answer_once(concat!(
        "HTTP/1.1 201 Created\r\n",
        "Location: /orders/1?token=sekrit-1&v=2\r\n",
        "Content-Location: https://b.s3.test/o?X-Amz-Signature=sekrit-2\r\n",
        "Link: </orders?access_token=sekrit-3>; rel=\"next\"\r\n",
        "Content-Length: 0\r\nConnection: close\r\n\r\n",
    ));
    let o = resile(&["get", &format!("{url}/orders"), "-v", "--no-follow"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains("sekrit"), "{err}");
    assert!(
        err.contains("< location: /orders/1?token=REDACTED&v=2"),
        "{err}"
    );
}

#[test]
fn a_servers_newlines_and_escape_sequences_in_an_error_line_are_shown_escaped() {
    let url = answer_once(concat!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 21\r\n",
        "Connection: close\r\n\r\n",
        "not json\n\x1b[31mred\x1b[0m",
    ));
    let o = resile(&["get", &format!("{url}/items"), "--paginate", "link"]);
    assert_eq!(code(&o), 8, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!err.contains('\x1b'), "{err:?}");
    let line = err
        .lines()
        .find(|l| l.starts_with("resile: the walk stopped"))
        .unwrap_or_else(|| panic!("{err:?}"));
    assert!(
        line.contains("not json\\n\\u{1b}[31mred"),
        "the excerpt on the same line, escaped: {err:?}"
    );
}

#[test]
fn a_redirect_that_cannot_be_followed_says_why_it_is_the_answer() {
    for (location, says) in [
        (
            "Location: ftp://files.test/x?token=sekrit\r\n",
            "is not an http(s) URL",
        ),
        ("", "it has no Location"),
    ] {
        let response = format!(
            "HTTP/1.1 302 Found\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let url = answer_once(Box::leak(response.into_boxed_str()));
        let o = resile(&["get", &format!("{url}/moved")]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        one_clear_line(&o);
        let err = stderr(&o);
        assert!(
            err.contains("302 Found, not followed") && err.contains(says),
            "{err}"
        );
        assert!(!err.contains("sekrit"), "{err}");
    }
    // A 304 is an answer, not a redirect.
    let url = answer_once("HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n");
    let o = resile(&["get", &format!("{url}/same"), "-H", "If-None-Match: \"v1\""]);
    assert_eq!((code(&o), stderr(&o)), (0, String::new()));
}

#[test]
fn giving_up_exits_3_and_an_unreachable_host_is_one_line() {
    let s = server();
    let o = resile(&["get", &format!("{}/status/503", s.url()), "--retries", "1"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("gave up after 2 attempt(s)"),
        "{}",
        stderr(&o)
    );
    let o = resile(&[
        "get",
        "http://127.0.0.1:1/nothing-listens-here",
        "--retries",
        "1",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    one_clear_line(&o);
}

#[test]
fn a_deadline_exits_4() {
    let s = server();
    let o = resile(&[
        "get",
        &format!("{}/slow?ms=3000", s.url()),
        "--attempt-timeout",
        "300ms",
        "--deadline",
        "700ms",
    ]);
    assert_eq!(code(&o), 4, "{}", stderr(&o));
    one_clear_line(&o);
}

#[test]
fn an_open_breaker_exits_5() {
    let s = server();
    let dir = tempdir();
    let config = dir.join("breaker.toml");
    std::fs::write(
        &config,
        "[engine.breaker]\nconsecutive_failures = 1\nopen_ms = 60000\nmax_open_ms = 60000\n",
    )
    .unwrap();
    let o = resile(&[
        "get",
        &format!("{}/status/500", s.url()),
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));
    assert!(stderr(&o).contains("circuit breaker"), "{}", stderr(&o));
}

#[test]
fn bad_config_exits_6_and_names_the_field() {
    let dir = tempdir();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[engine.retry]\nmax_attempts = 0\n").unwrap();
    let o = resile(&[
        "get",
        "http://127.0.0.1:1/",
        "--config",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 6);
    one_clear_line(&o);
    assert!(stderr(&o).contains("retry.max_attempts"), "{}", stderr(&o));
    // The same refusal in JSON: the full path and where the file writes it.
    let refused = dir.join("bad.json");
    std::fs::write(
        &refused,
        "{\n  \"engine\": {\"retry\": {\"max_attempts\": 0}}\n}",
    )
    .unwrap();
    let o = resile(&[
        "get",
        "http://127.0.0.1:1/",
        "--config",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 6);
    one_clear_line(&o);
    let err = stderr(&o);
    assert!(err.contains("engine.retry.max_attempts"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    let garbled = dir.join("garbled.json");
    std::fs::write(&garbled, "{\"engine\": ").unwrap();
    let o = resile(&[
        "get",
        "http://127.0.0.1:1/",
        "--config",
        garbled.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 6);
    one_clear_line(&o);
}

#[test]
fn oauth2_works_and_a_wrong_secret_exits_7() {
    let s = server();
    let url = format!("{}/protected/me", s.url());
    let token_url = format!("{}/oauth/token", s.url());
    let run = |secret: &str| {
        Command::cargo_bin("resile")
            .unwrap()
            .args([
                "get",
                &url,
                "--token-url",
                &token_url,
                "--client-id",
                "demo",
                "-v",
            ])
            .env("RESILE_CLIENT_SECRET", secret)
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap()
    };
    let ok = run("demo");
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert!(
        !stderr(&ok).contains("demo\""),
        "the secret is never echoed"
    );
    let bad = run("s3cr3t-xyz");
    assert_eq!(code(&bad), 7, "{}", stderr(&bad));
    assert!(
        !stderr(&bad).contains("s3cr3t-xyz"),
        "the secret is never echoed: {}",
        stderr(&bad)
    );
}

#[test]
fn post_sends_one_key_on_every_attempt() {
    let s = server();
    let url = format!("{}/orders?mode=commit_then_fail&times=1", s.url());
    let o = resile(&[
        "post",
        &url,
        "--data",
        r#"{"sku":"A-1"}"#,
        "--idempotency-key",
        "cli-key-1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let order: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(order["idempotency_key"], "cli-key-1");
    let stats = s.stats();
    assert_eq!((stats.orders_created, stats.duplicate_orders), (1, 0));
    // Without a key the engine will not repeat a write that may have been applied.
    let o = resile(&[
        "post",
        &url,
        "--data",
        r#"{"sku":"B-2"}"#,
        "--idempotency-key",
        "off",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("Idempotency-Key"), "{}", stderr(&o));
    assert_eq!(s.stats().duplicate_orders, 0);
}

#[test]
fn data_from_a_file() {
    let s = server();
    let dir = tempdir();
    let file = dir.join("order.json");
    std::fs::write(&file, r#"{"sku":"F-1"}"#).unwrap();
    let o = resile(&[
        "put",
        &format!("{}/status/200", s.url()),
        "--data",
        &format!("@{}", file.display()),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = resile(&[
        "patch",
        &format!("{}/status/200", s.url()),
        "--data",
        "@/nonexistent/file.json",
    ]);
    assert_eq!(code(&o), 2);
    one_clear_line(&o);
    let o = resile(&["delete", &format!("{}/status/204", s.url())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn ids(out: &str) -> Vec<u64> {
    out.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("one JSON item per line")["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn paginates_every_style_under_faults() {
    let s = server();
    let base = s.url();
    let cases = [
        (
            format!("{base}/items/cursor?limit=70&fail_rate=0.2"),
            "cursor:/next_cursor",
            Some("/items"),
        ),
        (
            format!("{base}/items/link?page_size=70&fail_rate=0.2"),
            "link",
            None,
        ),
        (format!("{base}/items/offset?fail_rate=0.2"), "offset", None),
        (format!("{base}/items/page?fail_rate=0.2"), "page", None),
    ];
    for (url, style, items) in cases {
        let mut args = vec![
            "get",
            url.as_str(),
            "--paginate",
            style,
            "--page-size",
            "70",
            "--retries",
            "6",
        ];
        if let Some(p) = items {
            args.extend(["--items", p]);
        }
        let o = resile(&args);
        assert_eq!(code(&o), 0, "{style}: {}", stderr(&o));
        let got = ids(&stdout(&o));
        assert_eq!(
            got,
            (1..=1000).collect::<Vec<u64>>(),
            "{style}: every item once, in order"
        );
    }
}

#[test]
fn events_file_and_verbose_reasons() {
    let s = server();
    let dir = tempdir();
    let events = dir.join("events.jsonl");
    let o = resile(&[
        "get",
        &format!("{}/status/429?retry_after=1", s.url()),
        "--retries",
        "1",
        "--events",
        events.to_str().unwrap(),
        "-v",
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let text = std::fs::read_to_string(&events).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON line")["event"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    for k in [
        "call_started",
        "attempt_started",
        "attempt_finished",
        "retry_scheduled",
        "call_failed",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    assert!(
        stderr(&o).contains("the server said how long to wait in Retry-After"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn simulate_prints_decisions_and_checks_expectations() {
    let scenario = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/scenarios/429-retry-after-seconds.json"
    );
    let o = resile(&["simulate", scenario]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).contains("#1 retry 2 in 2000 ms"),
        "{}",
        stdout(&o)
    );
    let o = resile(&["simulate", scenario, "--json"]);
    assert!(stdout(&o)
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    let dir = tempdir();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"name":"x","calls":[],"replies":[]}"#).unwrap();
    let o = resile(&["simulate", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 6);
    one_clear_line(&o);
}

#[test]
fn quick_demo_report_shows_no_duplicates_or_losses_for_resile() {
    let o = resile(&["demo", "--quick", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).expect("a JSON report");
    let contenders = report["contenders"].as_array().unwrap();
    assert_eq!(contenders.len(), 2);
    let phase = |c: &Value, name: &str| -> Value {
        c["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == name)
            .cloned()
            .unwrap()
    };
    let (resile, naive) = (&contenders[0], &contenders[1]);
    assert_eq!(resile["name"], "resile");
    let paging = phase(resile, "paging 20% faults");
    assert_eq!(
        (paging["duplicates"].as_u64(), paging["lost"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(paging["items"], 1000);
    let writes = phase(resile, "POST commit-then-fail");
    assert_eq!(writes["duplicate_orders"], 0);
    assert_eq!(writes["orders_created"], writes["calls"]);
    assert!(
        phase(naive, "POST commit-then-fail")["duplicate_orders"]
            .as_u64()
            .unwrap()
            > 0,
        "the naive client duplicates"
    );
    let outage = phase(resile, "total outage");
    assert!(
        outage["attempts_per_call"].as_f64().unwrap() <= 1.1,
        "{outage}"
    );
    assert_eq!(
        phase(resile, "token expiry")["token_fetches"],
        2,
        "one fetch, one forced refresh"
    );
    assert_eq!(phase(resile, "429 storm")["failed"], 0);
}

#[test]
fn a_compressed_answer_prints_decoded() {
    let s = server();
    let o = resile(&["get", &format!("{}/gzip", s.url())]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let body: Value = serde_json::from_str(stdout(&o).trim()).expect("decoded JSON body");
    assert_eq!(body["compressed"], true);
}

#[test]
fn a_run_that_fails_on_throttles_points_at_adaptive_rate_which_paces_it() {
    let s = server();
    let url = format!("{}/status/429", s.url());
    // Throttled with nothing said of the limit: the run's end says what would pace it.
    let o = resile(&["get", &url, "--repeat", "2", "--retries", "0"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 call(s) failed on 429 (throttled): --adaptive-rate"),
        "{}",
        stderr(&o)
    );
    // With it, a throttle slows the calls that follow (they wait for the adaptive bucket),
    // and the hint is not given again.
    let dir = tempdir();
    let events = dir.join("events.jsonl");
    let o = resile(&[
        "get",
        &url,
        "--repeat",
        "2",
        "--parallel",
        "1",
        "--retries",
        "1",
        "--adaptive-rate",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(!stderr(&o).contains("--adaptive-rate"), "{}", stderr(&o));
    let text = std::fs::read_to_string(&events).unwrap();
    assert!(
        text.lines().any(|l| {
            let e: Value = serde_json::from_str(l).expect("JSON line");
            e["why"] == "adaptive_rate"
        }),
        "no wait for the adaptive rate in {text}"
    );
}
