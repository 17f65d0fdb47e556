//! A conformance scenario's scripted server as a chaos script, for the drivers that replay
//! `tests/scenarios/*.json` against this server.

use resile_core::sim::{Fault, Scenario};
use serde_json::json;

use crate::Script;

/// The chaos script that answers as the scenario's scripted server: each reply's status,
/// headers (`{date+N}` expanded when sent), `delay_ms`, fault (`reset` / `stall` / `truncate`
/// / `unreadable`) and body. A `connect` fault has no script form (the server has accepted the connection).
pub fn script_for(s: &Scenario) -> Script {
    let replies: Vec<serde_json::Value> = s
        .replies
        .iter()
        .map(|r| {
            let fault = match r.fault {
                Some(Fault::Reset) => json!("reset"),
                Some(Fault::Stall) => json!("stall"),
                Some(Fault::Truncate) => json!("truncate"),
                Some(Fault::Unreadable) => json!("unreadable"),
                _ => json!(null),
            };
            let body = r.body.clone().unwrap_or_else(|| json!("scripted"));
            json!({"status": r.status.unwrap_or(200), "headers": r.headers, "delay_ms": r.delay_ms, "fault": fault, "body": body})
        })
        .collect();
    serde_json::from_value(json!({ "replies": replies })).expect("a valid chaos script")
}

/// Every `*.json` scenario in `dir`, sorted by path, each with its path.
///
/// Panics on a directory or a scenario that cannot be read: a test's setup is wrong.
pub fn load_all(dir: &std::path::Path) -> Vec<(String, Scenario)> {
    let mut paths: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("readable scenario");
            let s = Scenario::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.display().to_string(), s)
        })
        .collect()
}
