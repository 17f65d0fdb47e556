//! Runs a scenario file on the sim driver and prints its summary and trace as JSON lines.
//!
//! `cargo run -p resile-core --example scenario -- tests/scenarios/429-retry-after-seconds.json`
fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: scenario FILE.json [--trace]");
        std::process::exit(2);
    };
    let trace = std::env::args().any(|a| a == "--trace");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let scenario = match resile_core::sim::Scenario::from_json(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let result = match resile_core::sim::run_scenario(&scenario) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    if trace {
        for e in &result.trace {
            println!("{}", serde_json::to_string(e).unwrap_or_default());
        }
    }
    let mut counts = std::collections::BTreeMap::<&str, u32>::new();
    for o in &result.outcomes {
        *counts.entry(o).or_default() += 1;
    }
    println!(
        "{}: attempts={} calls={} outcomes={:?} side_effects={} token_fetches={} trips={} finished_ms={} mismatches={:?}",
        result.name,
        result.attempts,
        result.outcomes.len(),
        counts,
        result.side_effects,
        result.token_fetches,
        result.breaker_trips,
        result.finished_ms,
        result.mismatches
    );
}
