//! The walk driven by the sim's engine: a page's bad streak is paid from the walk's shared
//! allowance, not ended by one call's attempt count; a dead host still ends the walk.

use core::time::Duration;

use resile_core::paginate::PageStyle;
use resile_core::sim::{
    run_scenario, run_walk, CallPlan, PagePlan, Scenario, SimReply, SimRequest, World,
};
use resile_core::{Config, Engine, Instant, UnixTime};
use serde_json::json;

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

/// A server failing 35 % of requests at random (seeded), paging by cursor, one item a page.
fn flaky_pages(seed: u64, pages: u64) -> impl FnMut(&SimRequest, Instant, UnixTime) -> SimReply {
    let mut state = seed;
    let mut served = 0u64;
    move |_request, _now, _wall| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let latency = Duration::from_millis(5);
        if (state >> 11) as f64 / ((1u64 << 53) as f64) < 0.35 {
            return SimReply::Status {
                status: 503,
                headers: vec![],
                body: None,
                latency,
            };
        }
        served += 1;
        let next = (served < pages).then(|| format!("c{served}"));
        SimReply::Status {
            status: 200,
            headers: vec![],
            body: Some(json!({"items": [served], "next": next})),
            latency,
        }
    }
}

/// Issue 12 item 15 on the sim: under the default config, walks of 50 pages through a server
/// failing 35 % of requests complete (the page calls share the walk's allowance, and a call
/// stopped by the host's retry budget is fetched again after the walk's backoff), and none
/// loses or repeats an item.
#[test]
fn walks_through_35_percent_failures_complete_under_the_default_config() {
    let pages = 50;
    let plan = PagePlan {
        style: PageStyle::cursor("/next", "c"),
        items: Some("/items".into()),
        max_pages: 1000,
    };
    let mut complete = 0;
    for seed in 0..40u64 {
        let engine = Engine::new(Config::default(), seed, Instant::ZERO).unwrap();
        let mut world = World::new(engine, flaky_pages(seed, pages)).without_trace();
        let (items, error) = run_walk(&mut world, &plan, &CallPlan::default(), 1_000_000);
        let ids: Vec<u64> = items.iter().filter_map(|v| v.as_u64()).collect();
        assert_eq!(
            ids,
            (1..=ids.len() as u64).collect::<Vec<_>>(),
            "seed {seed}: in order, nothing lost or repeated"
        );
        if error.is_none() {
            assert_eq!(ids.len() as u64, pages, "seed {seed}");
            complete += 1;
        }
    }
    // Ending the walk when the host's retry budget stops a page's call, 3 walks in 200 of
    // this length completed. The few that still stop do so on purpose: the walk's own retry
    // allowance ran out, or a window of 20+ attempts failed at 50 % and the breaker opened
    // longer than the walk may wait (seeds 2, 5 and 22 here); each says where to resume.
    assert!(complete >= 36, "{complete} of 40 walks completed");
}
