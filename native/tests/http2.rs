//! HTTP/2 for real: h2c (`http2_prior_knowledge`) to the chaos server, which refuses streams
//! (`REFUSED_STREAM`) or rotates its connections with a `GOAWAY` after a few requests. Streams
//! refused unprocessed are sent again by the engine: free of the budget, never a failure of the
//! host; the same call's second refusal waits its backoff and counts in its attempts, still free
//! of the budget.

mod common;

use std::time::Duration;

use common::{fast_policy, Recorder};
use resile::{EventKind, Why};
use resile_chaos::{ChaosConfig, Script, ScriptFault, ScriptReply};

fn refuse() -> ScriptReply {
    ScriptReply {
        fault: Some(ScriptFault::Refuse),
        ..Default::default()
    }
}

fn retries_of(recorder: &Recorder) -> Vec<Why> {
    recorder
        .engine()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::RetryScheduled { why, .. } => Some(why),
            _ => None,
        })
        .collect()
}

fn h2c_client(recorder: &Recorder) -> resile::Client {
    resile::Client::builder()
        .engine(fast_policy())
        .max_in_flight(64)
        .http2_prior_knowledge()
        .on_event(recorder.callback())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_is_sent_again_at_once_and_a_second_refusal_backs_off_both_free_of_the_budget(
) {
    let server = common::chaos().await;
    let script = Script {
        replies: vec![refuse(), refuse()],
        then: Some(ScriptReply {
            body: Some("ok".into()),
            ..Default::default()
        }),
    };
    server.state().set_script("h2", script).unwrap();
    let recorder = Recorder::default();
    let client = h2c_client(&recorder);
    let budget = |client: &resile::Client| client.hosts()[0].budget_available;

    let response = client
        .get(format!("{}/s/h2", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.text(), "ok");
    assert_eq!(server.state().script_log("h2").unwrap().count, 3);
    assert_eq!(
        retries_of(&recorder),
        [Why::RefusedUnprocessed, Why::Backoff],
        "{:#?}",
        recorder.engine()
    );
    let stats = client.stats();
    assert_eq!(
        (stats.succeeded, stats.failed, stats.breaker_trips),
        (1, 0, 0)
    );
    // Neither refusal drew on the budget: the server processed nothing.
    let fresh = h2c_client(&Recorder::default());
    fresh
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(budget(&client), budget(&fresh));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_calls_through_a_server_that_rotates_its_connections_all_succeed() {
    let server = resile_chaos::start(ChaosConfig {
        requests_per_connection: Some(100),
        max_stall: Duration::from_secs(3),
        ..Default::default()
    })
    .await
    .unwrap();
    let recorder = Recorder::default();
    let client = h2c_client(&recorder);
    let budget_before = {
        client
            .get(format!("{}/status/200", server.url()))
            .send()
            .await
            .unwrap();
        client.hosts()[0].budget_available
    };
    // Waves of 64 calls over connections of 100 requests each: a connection's last request
    // leaves at most 63 streams behind it, which the next connection (fresh) takes whole, so
    // no call is refused twice (a second refusal waits its backoff: see the test above).
    for wave in 0..6 {
        let calls = (0..64).map(|i| {
            let client = client.clone();
            let url = format!("{}/slow?ms=5&n={wave}.{i}", server.url());
            async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
        });
        let results = futures::future::join_all(calls).await;
        let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
        assert!(failed.is_empty(), "{failed:#?}");
        assert!(results.iter().all(|r| matches!(r, Ok(200))));
    }

    let stats = client.stats();
    assert_eq!(
        (stats.failed, stats.breaker_trips, stats.budget_refusals),
        (0, 0, 0)
    );
    assert!(server.stats().connections >= 4, "{:?}", server.stats());
    let host = &client.hosts()[0];
    assert_eq!(
        host.breaker,
        resile::resile_core::breaker::BreakerState::Closed
    );
    assert!(
        host.budget_available >= budget_before,
        "the budget was spent: {} < {budget_before}",
        host.budget_available
    );
    let whys = retries_of(&recorder);
    assert!(
        whys.iter().all(|w| *w == Why::RefusedUnprocessed),
        "every resend is a free one: {whys:?}"
    );
    assert!(
        !whys.is_empty(),
        "no stream was refused: the test tests nothing"
    );
}

#[tokio::test]
async fn without_prior_knowledge_the_chaos_server_still_speaks_http1() {
    let server = common::chaos().await;
    let client = resile::Client::builder()
        .engine(fast_policy())
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/status/200", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
}

#[tokio::test]
async fn a_head_too_large_over_http2_is_unreadable_and_not_retried_as_over_http1() {
    let server = common::chaos().await;
    let unreadable = Script {
        replies: vec![ScriptReply {
            fault: Some(ScriptFault::Unreadable),
            ..Default::default()
        }],
        then: None,
    };
    server.state().set_script("big", unreadable).unwrap();
    let client = h2c_client(&Recorder::default());
    let e = client
        .get(format!("{}/s/big", server.url()))
        .send()
        .await
        .unwrap_err();
    let resile::Error::NotRetried {
        last: Some(resile::LastCause::Transport { kind, message }),
        attempts: 1,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(*kind, resile::TransportError::Unreadable, "{message}");
}
