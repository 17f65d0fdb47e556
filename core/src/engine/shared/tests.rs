//! Fleet mode on a virtual clock: several engines, one [`MemoryStore`], an upstream that counts
//! what reaches it.

use core::time::Duration;

use crate::config::{Config, FleetConfig, LimitConfig};
use crate::engine::{Action, CallSpec, Engine, Event, EventKind, Outcome, Response};
use crate::fleet::{MemoryStore, Reservation, StoreProblem};
use crate::time::{Instant, UnixTime};
use crate::why::Why;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

const HOST: &str = "http://api.test";

/// How the store behaves.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Store {
    Answers,
    /// Never answers: the engines must time the question out themselves.
    Hangs,
    Unreachable,
}

struct Fleet {
    engines: Vec<Engine>,
    store: MemoryStore,
    mode: Store,
    now: Instant,
    /// Every attempt that reached the upstream: when, from which engine.
    sends: Vec<(Instant, usize)>,
    events: Vec<Vec<Event>>,
    /// Reservations asked and never answered (store hanging): (engine, call, attempt).
    unanswered: Vec<(usize, crate::CallId, u32)>,
    /// The upstream's answer to the n-th attempt it sees (0-based): status, Retry-After.
    upstream: fn(usize) -> (u16, Option<&'static str>),
}

fn ok(_: usize) -> (u16, Option<&'static str>) {
    (200, None)
}

fn config(fleet: Option<FleetConfig>) -> Config {
    Config {
        limit: Some(LimitConfig {
            per_second: 10.0,
            burst: 4,
        }),
        fleet,
        ..Config::default()
    }
}

fn fleet_of(size: u32) -> FleetConfig {
    FleetConfig {
        size,
        ..FleetConfig::default()
    }
}

impl Fleet {
    fn new(n: usize, config: Config) -> Fleet {
        Fleet {
            engines: (0..n)
                .map(|i| Engine::new(config.clone(), i as u64 + 1, Instant::ZERO).unwrap())
                .collect(),
            store: MemoryStore::new(),
            mode: Store::Answers,
            now: Instant::ZERO,
            sends: Vec::new(),
            events: vec![Vec::new(); n],
            unanswered: Vec::new(),
            upstream: ok,
        }
    }

    /// Each engine keeps `per_engine` calls going (a new one as soon as one ends) until `end`.
    fn run(&mut self, per_engine: usize, end: Instant) {
        for _step in 0..200_000 {
            // Calls that end are replaced at once; a round is bounded (a breaker failing calls
            // fast ends them as fast as they start).
            for _round in 0..3 {
                for i in 0..self.engines.len() {
                    for _ in 0..per_engine {
                        if self.now < end && self.engines[i].active_calls() < per_engine {
                            let _ = self.engines[i].start(CallSpec::get(HOST), self.now);
                        }
                    }
                    self.pump(i);
                }
            }
            let next = self.engines.iter().filter_map(Engine::poll_timeout).min();
            let Some(next) = next.filter(|t| *t <= end) else {
                return;
            };
            self.now = self.now.max(next);
            for e in &mut self.engines {
                e.handle_timeout(self.now);
            }
        }
        panic!("the fleet did not settle within the step bound");
    }

    fn pump(&mut self, i: usize) {
        let now = self.now;
        while let Some(action) = self.engines[i].poll_action() {
            match action {
                Action::Reserve {
                    call,
                    attempt,
                    host,
                    limit,
                    max_wait,
                } => match self.mode {
                    Store::Answers => {
                        let answer = self.store.reserve(&host, limit, max_wait, now);
                        self.engines[i].handle_reservation(call, attempt, answer, now);
                    }
                    Store::Hangs => self.unanswered.push((i, call, attempt)),
                    Store::Unreachable => {
                        let answer = Reservation::Unavailable(StoreProblem::Unreachable);
                        self.engines[i].handle_reservation(call, attempt, answer, now);
                    }
                },
                Action::Share { host, update } if self.mode == Store::Answers => {
                    self.store.share(&host, update, now);
                }
                Action::Send { call, attempt, .. } => {
                    let (status, retry_after) = (self.upstream)(self.sends.len());
                    self.sends.push((now, i));
                    let headers: Vec<(String, String)> = retry_after
                        .map(|v| ("retry-after".to_string(), v.to_string()))
                        .into_iter()
                        .collect();
                    let r = Response::new(status, &headers, UnixTime::from_secs(1_700_000_000));
                    self.engines[i].handle_attempt(call, attempt, Outcome::Response(r), now);
                }
                _ => {}
            }
        }
        while let Some(e) = self.engines[i].poll_event() {
            self.events[i].push(e);
        }
    }

    /// The most attempts the upstream saw in any window of length `w` (starting at a send).
    fn busiest(&self, w: Duration) -> usize {
        let times: Vec<Instant> = self.sends.iter().map(|(t, _)| *t).collect();
        (0..times.len())
            .map(|a| times[a..].iter().take_while(|t| **t < times[a] + w).count())
            .max()
            .unwrap_or(0)
    }

    fn saw(&self, i: usize, pick: impl Fn(&EventKind) -> bool) -> bool {
        self.events[i].iter().any(|e| pick(&e.kind))
    }
}

fn secs(s: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(s)
}

#[test]
fn four_engines_on_one_store_send_one_quota() {
    // The fleet's limit: 10/s, burst 4. In any window of t seconds: at most 10·t + 4.
    let mut shared = Fleet::new(4, config(Some(fleet_of(4))));
    shared.run(8, secs(5));
    for w in [100, 500, 1_000, 3_000] {
        let bound = 10 * w / 1_000 + 4;
        let seen = shared.busiest(Duration::from_millis(w as u64));
        assert!(
            seen <= bound as usize,
            "{seen} sends in {w} ms, bound {bound}"
        );
    }
    assert!(
        shared.sends.len() >= 50,
        "{} sends in 5 s",
        shared.sends.len()
    );
    // Every engine got its turn.
    for i in 0..4 {
        assert!(shared.sends.iter().filter(|(_, e)| *e == i).count() >= 5);
    }
    // Alone, each engine sends the whole quota: four times as much.
    let mut alone = Fleet::new(4, config(None));
    alone.run(8, secs(5));
    assert!(
        alone.sends.len() >= 4 * 50,
        "{} without the store against {} with it",
        alone.sends.len(),
        shared.sends.len()
    );
}

#[test]
fn a_retry_after_seen_by_one_engine_holds_all_of_them() {
    let mut fleet = Fleet::new(4, config(Some(fleet_of(4))));
    // The 20th attempt gets 429 Retry-After: 2; the others succeed.
    fleet.upstream = |n| {
        if n == 19 {
            (429, Some("2"))
        } else {
            (200, None)
        }
    };
    fleet.run(2, secs(6));
    let (t429, who) = fleet.sends[19];
    let held = fleet
        .sends
        .iter()
        .filter(|(t, _)| *t > t429 && *t < t429 + Duration::from_secs(2))
        .count();
    assert_eq!(held, 0, "nobody sends during the 2 s hold");
    let after = fleet
        .sends
        .iter()
        .filter(|(t, _)| *t >= t429 + Duration::from_secs(2))
        .count();
    assert!(after > 10, "the fleet resumes after the hold: {after}");
    for i in (0..4).filter(|i| *i != who) {
        assert!(
            fleet.saw(i, |k| matches!(
                k,
                EventKind::HostHeld {
                    why: Why::ServerRetryAfterHold,
                    ..
                }
            )),
            "engine {i} learned of the hold from the store"
        );
    }
}

#[test]
fn a_store_that_hangs_costs_one_answer_bound_then_the_local_share() {
    let mut fleet = Fleet::new(1, config(Some(fleet_of(4))));
    fleet.mode = Store::Hangs;
    fleet.run(4, secs(3));
    // The first attempt waited exactly `answer_within_ms` for the store.
    let (first, _) = fleet.sends[0];
    assert_eq!(first, Instant::from_millis(5));
    assert!(fleet.saw(0, |k| matches!(
        k,
        EventKind::FleetFallback {
            problem: StoreProblem::Timeout,
            share_of: 4,
            ..
        }
    )));
    // The local share is a quarter of 10/s, burst 1, and each recheck may cost one more
    // attempt: over 3 s about 2.5·3 + 1 sends, never the whole quota.
    assert!(
        fleet.busiest(Duration::from_secs(1)) <= 4,
        "{:?}",
        fleet.sends
    );
    assert!(fleet.sends.len() <= 12, "{} sends", fleet.sends.len());
    // A late answer to a question the engine gave up on changes nothing.
    let sends = fleet.sends.len();
    let (i, call, attempt) = fleet.unanswered[0];
    fleet.engines[i].handle_reservation(call, attempt, Reservation::Admitted, fleet.now);
    fleet.pump(0);
    assert_eq!(fleet.sends.len(), sends);
}

#[test]
fn an_unreachable_store_falls_back_at_once_and_the_fleet_resumes() {
    let mut fleet = Fleet::new(1, config(Some(fleet_of(2))));
    fleet.mode = Store::Unreachable;
    fleet.run(2, secs(2));
    assert_eq!(
        fleet.sends[0].0,
        Instant::ZERO,
        "no wait for a refused connection"
    );
    assert!(fleet.saw(0, |k| matches!(
        k,
        EventKind::FleetFallback {
            problem: StoreProblem::Unreachable,
            ..
        }
    )));
    assert!(!fleet.saw(0, |k| matches!(k, EventKind::FleetResumed { .. })));
    fleet.mode = Store::Answers;
    fleet.run(2, secs(4));
    assert!(fleet.saw(0, |k| matches!(k, EventKind::FleetResumed { .. })));
    let shared_waits = fleet.events[0]
        .iter()
        .filter(|e| e.kind.why() == Some(Why::FleetRateLimit))
        .count();
    assert!(shared_waits > 0, "the store's slots are used again");
}

#[test]
fn a_slot_past_the_deadline_is_refused_and_nothing_is_sent() {
    let mut c = config(Some(fleet_of(1)));
    c.limit = Some(LimitConfig {
        per_second: 1.0,
        burst: 1,
    });
    let mut fleet = Fleet::new(1, c);
    let now = Instant::ZERO;
    let spec = || CallSpec::get(HOST).deadline(Duration::from_millis(300));
    let _ = fleet.engines[0].start(spec(), now);
    let _ = fleet.engines[0].start(spec(), now);
    fleet.pump(0);
    assert_eq!(fleet.sends.len(), 1);
    let failed = fleet.events[0]
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::CallFailed { failure, .. } => Some(*failure),
            _ => None,
        })
        .expect("the second call failed");
    assert_eq!(failure_why(failed), Why::DeadlineWouldPass);
    assert_eq!(failed.attempts, 0);
    assert_eq!(failed.retry_at, Some(Instant::from_millis(1_000)));
}

fn failure_why(f: crate::Failure) -> Why {
    f.why
}

#[test]
fn breaker_openings_are_shared_only_when_asked() {
    for share_breaker in [false, true] {
        let fleet_config = FleetConfig {
            share_breaker,
            ..fleet_of(2)
        };
        let mut fleet = Fleet::new(2, config(Some(fleet_config)));
        fleet.upstream = |_| (500, None);
        fleet.run(1, secs(2));
        let told = fleet.saw(1, |k| {
            matches!(
                k,
                EventKind::HostHeld {
                    why: Why::FleetBreakerOpen,
                    ..
                }
            )
        }) || fleet.saw(0, |k| {
            matches!(
                k,
                EventKind::HostHeld {
                    why: Why::FleetBreakerOpen,
                    ..
                }
            )
        });
        assert_eq!(told, share_breaker, "share_breaker: {share_breaker}");
    }
}
