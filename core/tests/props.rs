//! Invariants, by proptest.

use std::time::Duration;

use proptest::prelude::*;
use resile_core::backoff::Backoff;
use resile_core::budget::Budget;
use resile_core::config::{BackoffConfig, BudgetConfig, LimitConfig};
use resile_core::headers::Headers;
use resile_core::limit::Gcra;
use resile_core::rng::Rng;
use resile_core::{
    Action, CallSpec, Config, Engine, EventKind, Instant, Jitter, Outcome, Response,
    TransportError, UnixTime,
};

/// Failing cases are saved next to this file and replayed first on every run.
fn persistence() -> Option<Box<dyn proptest::test_runner::FailurePersistence>> {
    Some(Box::new(
        proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
    ))
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// Every delay is within [0, cap]; each jitter stays inside its own band.
    #[test]
    fn backoff_delays_within_bounds(
        base_ms in 1u64..5_000,
        extra_cap in 0u64..60_000,
        factor in 1.0f64..10.0,
        j in jitter(),
        seed in any::<u64>(),
        n in 0u32..200,
    ) {
        let cap_ms = base_ms + extra_cap;
        let b = Backoff::new(&BackoffConfig { base_ms, factor, cap_ms, jitter: j });
        let mut rng = Rng::seeded(seed);
        let cap = Duration::from_millis(cap_ms);
        let ceiling = Duration::from_secs_f64((base_ms as f64 * factor.powi(n as i32) / 1000.0).min(cap_ms as f64 / 1000.0));
        let mut prev = None;
        for k in 0..n.min(20) {
            let d = b.delay(k, prev, &mut rng);
            prop_assert!(d <= cap, "{d:?} > cap {cap:?}");
            prev = Some(d);
        }
        let d = b.delay(n, prev, &mut rng);
        prop_assert!(d <= cap);
        let slack = Duration::from_micros(1);
        match j {
            Jitter::None => prop_assert!(d + slack >= ceiling && d <= ceiling + slack),
            Jitter::Full => prop_assert!(d <= ceiling + slack),
            Jitter::Equal => prop_assert!(d + slack >= ceiling / 2 && d <= ceiling + slack),
            Jitter::Decorrelated => prop_assert!(d >= Duration::from_millis(base_ms)),
        }
    }

    /// In any window of length t the limiter admits at most t/T + burst requests, and a
    /// refusal's `at` is exactly when the next request is admitted.
    #[test]
    fn limiter_never_exceeds_rate_times_window_plus_burst(
        per_second in 0.5f64..2_000.0,
        burst in 1u32..20,
        gaps in proptest::collection::vec(0u64..50_000_000, 1..300),
    ) {
        let mut g = Gcra::new(&LimitConfig { per_second, burst });
        let interval = ((1e9 / per_second).round() as u64).max(1);
        let mut now = 1_000_000_000u64;
        let mut admitted: Vec<u64> = Vec::new();
        for gap in gaps {
            now += gap;
            let t = Instant::from_nanos(now);
            match g.check(t) {
                Ok(()) => admitted.push(now),
                Err(not_until) => {
                    prop_assert!(not_until.at > t);
                    prop_assert!(g.peek(not_until.at).is_ok(), "admitted exactly where it says");
                    prop_assert!(g.peek(Instant::from_nanos(not_until.at.as_nanos() - 1)).is_err());
                }
            }
        }
        for i in 0..admitted.len() {
            for j in i..admitted.len() {
                let count = (j - i + 1) as u64;
                let window = admitted[j] - admitted[i];
                prop_assert!(count <= window / interval + u64::from(burst),
                    "{count} admitted in {window} ns with interval {interval} and burst {burst}");
            }
        }
    }

    /// Reservations obey the same bound.
    #[test]
    fn reservations_are_spaced_by_the_rate(per_second in 1.0f64..1000.0, burst in 1u32..10, n in 1usize..200) {
        let mut g = Gcra::new(&LimitConfig { per_second, burst });
        let interval = ((1e9 / per_second).round() as u64).max(1);
        let slots: Vec<u64> = (0..n).map(|_| g.reserve(Instant::ZERO).as_nanos()).collect();
        for i in 0..n {
            for j in i..n {
                prop_assert!(((j - i + 1) as u64) <= (slots[j] - slots[i]) / interval + u64::from(burst));
            }
        }
    }

    /// Retries never exceed the reserve plus ratio × calls.
    #[test]
    fn budget_bounds_amplification(
        ratio in 0.0f64..=1.0,
        reserve in 0u32..50,
        extra in 0u32..100,
        ops in proptest::collection::vec(any::<bool>(), 0..2000),
    ) {
        let mut b = Budget::new(&BudgetConfig { enabled: true, ratio, reserve, max_saved: reserve + extra, ..BudgetConfig::default() });
        let (mut deposits, mut withdrawn) = (0u64, 0u64);
        for deposit in ops {
            if deposit {
                b.deposit(Instant::ZERO);
                deposits += 1;
            } else if b.try_withdraw(Instant::ZERO) {
                withdrawn += 1;
            }
        }
        let per_call = (ratio * 1000.0).round() / 1000.0;
        prop_assert!(withdrawn as f64 <= f64::from(reserve) + per_call * deposits as f64 + 1e-9);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Start,
    Answer {
        which: usize,
        status: u16,
        retry_after: Option<String>,
    },
    Fail {
        which: usize,
        error: u8,
    },
    Advance(u64),
    Back(u64),
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let status = prop_oneof![
        Just(200u16),
        Just(201),
        Just(404),
        Just(429),
        Just(500),
        Just(503),
        100u16..600
    ];
    let header = proptest::option::of(prop_oneof![
        "[0-9]{1,4}".prop_map(String::from),
        Just("Thu, 01 Jan 1970 00:00:00 GMT".to_string()),
        ".{0,12}".prop_map(String::from),
    ]);
    prop_oneof![
        3 => Just(Op::Start),
        4 => (any::<usize>(), status, header).prop_map(|(which, status, retry_after)| Op::Answer { which, status, retry_after }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(which, error)| Op::Fail { which, error }),
        3 => (0u64..3_000).prop_map(Op::Advance),
        1 => (0u64..500).prop_map(Op::Back),
        1 => any::<usize>().prop_map(Op::Cancel),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// Whatever the server and the clock do: no panic, never more half-open probes in flight
    /// than allowed, and every action belongs to a call the engine knows.
    #[test]
    fn engine_holds_its_invariants_under_arbitrary_input(
        ops in proptest::collection::vec(op(), 1..300),
        probes in 1u32..4,
        seed in any::<u64>(),
    ) {
        let mut config = Config::default();
        config.breaker.consecutive_failures = 2;
        config.breaker.half_open_probes = probes;
        config.breaker.open_ms = 500;
        config.limit = Some(LimitConfig { per_second: 50.0, burst: 5 });
        let mut e = Engine::new(config, seed, Instant::ZERO).unwrap();
        let mut now = 0u64;
        let mut in_flight: Vec<(resile_core::CallId, u32)> = Vec::new();
        let mut probe_ids = std::collections::HashSet::new();
        let errors = [TransportError::Connect, TransportError::Dns, TransportError::Tls, TransportError::Timeout, TransportError::Reset, TransportError::Truncated, TransportError::Other];
        for op in ops {
            let t = Instant::from_millis(now);
            match op {
                Op::Start => { let _ = e.start(CallSpec::get("https://h.test"), t); }
                Op::Answer { which, status, retry_after } if !in_flight.is_empty() => {
                    let (id, _) = in_flight.remove(which % in_flight.len());
                    let headers: Vec<(String, String)> = retry_after.into_iter().map(|v| ("Retry-After".to_string(), v)).collect();
                    let _ = headers.get("retry-after");
                    e.handle(id, Outcome::Response(Response::new(status, &headers, UnixTime::from_secs(1_700_000_000))), t);
                }
                Op::Fail { which, error } if !in_flight.is_empty() => {
                    let (id, _) = in_flight.remove(which % in_flight.len());
                    e.handle(id, Outcome::Transport(errors[usize::from(error) % errors.len()]), t);
                }
                Op::Cancel(which) if !in_flight.is_empty() => {
                    let (id, _) = in_flight.remove(which % in_flight.len());
                    e.cancel(id, t);
                }
                Op::Advance(ms) => {
                    now += ms;
                    e.handle_timeout(Instant::from_millis(now));
                }
                Op::Back(ms) => {
                    // A clock that seems to run backwards must not break anything.
                    e.handle_timeout(Instant::from_millis(now.saturating_sub(ms)));
                }
                _ => {}
            }
            while let Some(a) = e.poll_action() {
                match a {
                    Action::Send { call, attempt, .. } => in_flight.push((call, attempt)),
                    // The engine timed the attempt out itself: it is no longer in flight.
                    Action::Abort { call, attempt, .. } => in_flight.retain(|k| *k != (call, attempt)),
                    _ => {}
                }
            }
            while let Some(ev) = e.poll_event() {
                if let EventKind::AttemptStarted { call, attempt, probe: true, .. } = ev.kind {
                    probe_ids.insert((call, attempt));
                }
            }
            let probes_out = in_flight.iter().filter(|key| probe_ids.contains(*key)).count();
            prop_assert!(probes_out as u32 <= probes, "{probes_out} probes in flight, {probes} allowed");
            // Probes are only counted while the breaker is half-open; forget finished ones.
            probe_ids.retain(|key| in_flight.contains(key));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: persistence(), ..ProptestConfig::default() })]

    /// The config parser answers any text with a typed error or a valid config.
    #[test]
    fn config_parser_is_total(text in ".{0,200}", n in any::<i64>(), f in any::<f64>()) {
        let _ = Config::from_json(&text);
        for template in [
            r#"{"retry":{"max_attempts":N}}"#, r#"{"backoff":{"factor":F}}"#, r#"{"backoff":{"base_ms":N,"cap_ms":N}}"#,
            r#"{"limit":{"per_second":F,"burst":N}}"#, r#"{"breaker":{"failure_rate":F,"open_ms":N}}"#,
            r#"{"budget":{"ratio":F,"reserve":N}}"#, r#"{"retry":{"deadline_ms":N,"attempt_timeout_ms":N}}"#,
        ] {
            let f_text = if f.is_finite() { f.to_string() } else { "1e999".to_string() };
            let text = template.replace('N', &n.to_string()).replace('F', &f_text);
            if let Ok(c) = Config::from_json(&text) {
                prop_assert!(c.validate().is_ok());
                // Whatever is accepted builds an engine.
                prop_assert!(Engine::new(c, 1, Instant::ZERO).is_ok());
            }
        }
    }
}
