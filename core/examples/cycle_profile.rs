//! A tight loop of decision cycles, for profilers (`perf record`, callgrind).
use resile_core::headers::NoHeaders;
use resile_core::{Action, CallSpec, Config, Engine, Instant, Outcome, Response, UnixTime};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let mut config = Config::default();
    config.breaker.enabled = false;
    config.budget.enabled = false;
    let wall = UnixTime::from_secs(1_700_000_000);
    let mut e = Engine::new(config, 1, Instant::ZERO).expect("valid config");
    let mut done = 0u64;
    for i in 0..n {
        let t = Instant::from_nanos(i * 1000);
        let id = e.start(CallSpec::get("https://api.test"), t);
        if let Some(Action::Send { .. }) = e.poll_action() {
            e.handle(
                id,
                Outcome::Response(Response::new(200, &NoHeaders, wall)),
                t,
            );
        }
        if let Some(Action::Done { .. }) = e.poll_action() {
            done += 1;
        }
        while e.poll_event().is_some() {}
    }
    println!("{done} cycles");
}
