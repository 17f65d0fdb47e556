//! The defaults do not churn connections: at a steady load the pool keeps as many idle
//! connections per host as may be in flight, so it reuses them instead of opening new ones
//! (and exhausting ports).

mod common;

use std::sync::Arc;

use common::chaos;
use resile::Client;
use tokio::sync::Semaphore;

async fn connections_for(client: Client, calls: usize, concurrency: usize) -> u64 {
    let server = chaos().await;
    let url = format!("{}/status/200", server.url());
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(calls);
    for _ in 0..calls {
        let permit = gate.clone().acquire_owned().await.unwrap();
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = client.get(url).send().await;
            drop(permit);
            r
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status(), 200);
    }
    server.stats().connections
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_load_reuses_its_connections_under_the_defaults() {
    let (calls, concurrency) = (4_000, 256);
    let opened = connections_for(Client::new(), calls, concurrency).await;
    // About one connection per call in flight, and up to as many again: hyper finishes and
    // keeps a connection it began for a request that an idle one served first. Never one per
    // call (4 000 here).
    assert!(
        opened <= 2 * concurrency as u64 + 64,
        "{opened} connections for {calls} calls at concurrency {concurrency}"
    );
}
