//! The walk driven by the sim's engine: a page's bad streak is paid from the walk's shared
//! allowance, not ended by one call's attempt count; a dead host still ends the walk.

use resile_core::sim::{run_scenario, Scenario};

fn scenario(replies: &str) -> Scenario {
    Scenario::from_json(&format!(
        r#"{{
            "name": "walk",
            "seed": 3,
            "config": {{"backoff": {{"base_ms": 10, "jitter": "none"}}}},
            "calls": [{{"method": "GET"}}],
            "paginate": {{"style": {{"style": "cursor", "pointer": "/next", "param": "c"}}, "items": "/items"}},
            "replies": [{replies}]
        }}"#
    ))
    .unwrap()
}

#[test]
fn a_page_failing_more_times_than_one_call_may_does_not_end_the_walk() {
    // The second page fails four times in a row: five attempts, over the per-call four.
    let s = scenario(
        r#"{"body": {"items": [{"id": 1}], "next": "a"}},
           {"status": 503}, {"status": 503}, {"fault": "reset"}, {"status": 429},
           {"body": {"items": [{"id": 2}], "next": "b"}},
           {"body": {"items": [{"id": 3}], "next": null}}"#,
    );
    let r = run_scenario(&s).unwrap();
    assert_eq!(r.walk_error, None, "{:?}", r.mismatches);
    let ids: Vec<u64> = r.items.iter().map(|v| v["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(r.outcomes, ["done:200", "done:200", "done:200"]);
    assert_eq!(r.attempts, 7);
    assert!(
        s.config.retry.max_attempts < 5,
        "more than one call's attempts"
    );
}

#[test]
fn a_dead_host_ends_the_walk_once_a_page_has_waited_its_share() {
    let s = scenario(r#"{"body": {"items": [{"id": 1}], "next": "a"}}, {"status": 503}"#);
    let r = run_scenario(&s).unwrap();
    let ids: Vec<u64> = r.items.iter().map(|v| v["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [1], "the first page's items are kept");
    // Five failed attempts open the breaker (5 s); the walk waits for each half-open probe,
    // and the breaker's open time doubles after each failed one: 5 + 10 + 20 = 35 s of waiting
    // for the page, and another 40 s would pass the 60 s a page may wait.
    assert_eq!(
        r.outcomes,
        [
            "done:200",
            "fail:breaker_open",
            "fail:breaker_open",
            "fail:breaker_open",
            "fail:breaker_open"
        ]
    );
    assert_eq!(r.attempts, 1 + 5 + 3);
    assert_eq!(r.walk_error.as_deref(), Some("call:fail:breaker_open"));
    assert!(
        (35_000..40_000).contains(&r.finished_ms),
        "{} ms",
        r.finished_ms
    );
}
