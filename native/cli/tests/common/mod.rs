//! Helpers shared by the CLI's test binaries: a chaos server, the `resile` binary, output.
#![allow(dead_code)]

use std::process::Output;

use assert_cmd::Command;
use resile_chaos::{BackgroundServer, ChaosConfig};

pub fn server() -> BackgroundServer {
    resile_chaos::start_in_background(ChaosConfig {
        seed: 3,
        collection_size: 1_000,
        ..ChaosConfig::default()
    })
    .expect("the chaos server starts")
}

pub fn resile(args: &[&str]) -> Output {
    Command::cargo_bin("resile")
        .expect("the resile binary is built")
        .args(args)
        .env_remove("RESILE_CONFIG")
        .env_remove("RESILE_BEARER")
        .env_remove("RESILE_CLIENT_SECRET")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("resile runs")
}

/// `resile` with `input` on stdin.
pub fn resile_stdin(args: &[&str], input: &[u8]) -> Output {
    Command::cargo_bin("resile")
        .expect("the resile binary is built")
        .args(args)
        .env_remove("RESILE_CONFIG")
        .env_remove("RESILE_BEARER")
        .env_remove("RESILE_CLIENT_SECRET")
        .write_stdin(input.to_vec())
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("resile runs")
}

/// `resile` with one environment variable set.
pub fn resile_env(args: &[&str], (name, value): (&str, &str)) -> Output {
    Command::cargo_bin("resile")
        .expect("the resile binary is built")
        .args(args)
        .env_remove("RESILE_CONFIG")
        .env_remove("RESILE_BEARER")
        .env_remove("RESILE_CLIENT_SECRET")
        .env(name, value)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("resile runs")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Bad input ends with one clear line, never a panic or a backtrace.
pub fn one_clear_line(o: &Output) {
    let err = stderr(o);
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    // clap's usage errors add a "For more information, try '--help'." line.
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information"))
        .collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(
        lines[0].starts_with("resile: ") || lines[0].starts_with("error: "),
        "{err}"
    );
}

/// A fresh directory under the target dir (no extra crate needed).
pub fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "resile-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
