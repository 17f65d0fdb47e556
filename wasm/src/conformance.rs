//! Turning a conformance scenario into a script for the chaos server's `/script/{id}` route.
//!
//! The browser tests replay `tests/scenarios/*.json` through this adapter against a real server
//! and compare the decisions with the sim's ([`resile_core::sim::compare_decisions`]). The sim's
//! scripted server and the chaos script agree on everything but two details this module
//! bridges:
//!
//! - the sim answers 401 to a token generation it was told to reject *without* using up a
//!   reply, while a chaos script answers strictly in order; so the 401s are read off the sim's
//!   own trace and put in sequence;
//! - nothing else: `{date+N}` header templates go to the chaos server as they are, and it expands
//!   them when it sends the reply, as the sim does.

use resile_core::engine::EventKind;
use resile_core::sim::{Fault, Reply, Scenario};
use resile_core::{Event, Last};
use serde_json::{json, Value};

/// Why a scenario cannot be replayed against the chaos server, if it cannot. (A scenario with
/// several calls can: its expectations are checked, only its trace is not compared, see
/// [`Scenario::compares_traces`].)
pub fn skip_reason(s: &Scenario) -> Option<String> {
    if s.replies.iter().any(|r| r.fault == Some(Fault::Connect)) {
        return Some(
            "the chaos server cannot refuse a connection per request (fault \"connect\")".into(),
        );
    }
    None
}

/// Why a scenario cannot be replayed from a browser page against the chaos server, if it cannot:
/// [`skip_reason`].
///
/// Scripted connection resets do replay, provided the chaos server runs with keep-alive off
/// (`--keep-alive off`, as `scripts/test-wasm.sh` starts it): Chromium re-sends a request by
/// itself when a *reused* keep-alive connection closes without any response (for POST too), so
/// on a reused connection the page would never see the reset.
///
/// An `unreadable` fault does not replay there: fetch rejects an answer Chromium cannot read
/// (`ERR_RESPONSE_HEADERS_TOO_BIG`) with the same bare `TypeError` as a reset, so the browser
/// client calls it a reset and may retry it; the native drivers read hyper's reason.
pub fn browser_skip_reason(s: &Scenario) -> Option<String> {
    if s.replies.iter().any(|r| r.fault == Some(Fault::Unreadable)) {
        return Some(
            "fetch reports an answer it cannot read as a bare network error (fault \"unreadable\")"
                .into(),
        );
    }
    skip_reason(s)
}

fn reply_json(r: &Reply) -> Value {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let fault = match r.fault {
        Some(Fault::Reset) => json!("reset"),
        Some(Fault::Stall) => json!("stall"),
        Some(Fault::Truncate) => json!("truncate"),
        Some(Fault::Unreadable) => json!("unreadable"),
        Some(Fault::Connect) | None => Value::Null,
    };
    json!({
        "status": r.status.unwrap_or(200),
        "headers": headers,
        "delay_ms": r.delay_ms,
        "fault": fault,
        "body": r.body.clone().unwrap_or_else(|| json!("scripted")),
    })
}

/// The chaos script (`{"replies": [...]}`) that answers the scenario's single call as the sim's
/// server did, given the sim's trace of it.
pub fn chaos_script(s: &Scenario, sim_trace: &[Event]) -> Value {
    let rejects = !s.token.reject_generations.is_empty();
    let mut template = s.replies.iter().peekable();
    let last = s.replies.last().cloned().unwrap_or_default();
    let mut replies = Vec::new();
    for e in sim_trace {
        let EventKind::AttemptFinished { result, .. } = &e.kind else {
            continue;
        };
        let next_is_401 = template
            .peek()
            .map_or(last.status == Some(401), |r| r.status == Some(401));
        if rejects && *result == Last::Status(401) && !next_is_401 {
            replies.push(json!({
                "status": 401,
                "headers": {"WWW-Authenticate": "Bearer error=\"invalid_token\""},
                "body": "rejected token",
            }));
        } else {
            let r = template.next().unwrap_or(&last);
            replies.push(reply_json(r));
        }
    }
    // Whatever the sim did not use, in order: a driver that decides differently meets the same
    // server the sim would have.
    replies.extend(template.map(reply_json));
    if replies.is_empty() {
        replies.push(reply_json(&last));
    }
    json!({ "replies": replies })
}

#[cfg(test)]
mod tests {
    use super::*;
    // On wasm32 the same tests run under wasm-bindgen-test-runner (in Node).
    use resile_core::sim::run_scenario;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn scenario(text: &str) -> Scenario {
        Scenario::from_json(text).unwrap()
    }

    #[test]
    fn token_rejections_become_401_replies_in_sequence() {
        let s = scenario(
            r#"{"name":"t","seed":1,"token":{"latency_ms":10,"reject_generations":[1]},
                "calls":[{"method":"GET","token":true}],"replies":[{"status":200}]}"#,
        );
        let r = run_scenario(&s).unwrap();
        let script = chaos_script(&s, &r.trace);
        let statuses: Vec<u64> = script["replies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_u64().unwrap())
            .collect();
        assert_eq!(statuses, [401, 200]);
    }

    #[test]
    fn faults_delays_and_date_templates_translate() {
        let s = scenario(
            r#"{"name":"t","calls":[{"method":"GET"}],
                "replies":[{"status":429,"headers":{"Retry-After":"{date+3}"}},{"fault":"stall","delay_ms":5},{"status":200}]}"#,
        );
        let script = chaos_script(&s, &[]);
        let replies = script["replies"].as_array().unwrap();
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[0]["headers"]["Retry-After"], "{date+3}");
        assert_eq!(replies[1]["fault"], "stall");
        assert_eq!(replies[1]["delay_ms"], 5);
        assert_eq!(replies[2]["fault"], Value::Null);
    }

    #[test]
    fn unreplayable_scenarios_are_skipped_with_a_reason() {
        let s = scenario(
            r#"{"name":"t","calls":[{"method":"GET","count":3}],"replies":[{"status":200}]}"#,
        );
        assert_eq!(
            skip_reason(&s),
            None,
            "concurrent calls replay, checked by expectations"
        );
        let s =
            scenario(r#"{"name":"t","calls":[{"method":"GET"}],"replies":[{"fault":"connect"}]}"#);
        assert!(skip_reason(&s).unwrap().contains("connect"));
        let s = scenario(r#"{"name":"t","calls":[{"method":"GET"}],"replies":[{"status":200}]}"#);
        assert_eq!(skip_reason(&s), None);
        assert_eq!(browser_skip_reason(&s), None);
        let s = scenario(
            r#"{"name":"t","calls":[{"method":"GET"}],"replies":[{"fault":"reset"},{"status":200}]}"#,
        );
        assert_eq!(skip_reason(&s), None);
        assert_eq!(
            browser_skip_reason(&s),
            None,
            "resets replay with keep-alive off"
        );
    }
}
