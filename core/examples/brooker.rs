//! Reproduces Brooker's "Exponential Backoff And Jitter" with the real engine on the sim.
//!
//! `cargo run --release -p resile-core --example brooker -- [clients] [runs]`
use resile_core::sim::contention;
use resile_core::Jitter;

fn main() {
    let mut args = std::env::args().skip(1);
    let clients: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let runs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    println!("{clients} clients, one contended write each (5 ms), mean of {runs} seeds");
    println!("| jitter | calls (work) | completion (ms) | gave up |");
    println!("|---|---:|---:|---:|");
    for jitter in [
        Jitter::None,
        Jitter::Equal,
        Jitter::Full,
        Jitter::Decorrelated,
    ] {
        let (mut calls, mut time, mut gave_up) = (0u64, 0u64, 0u32);
        for seed in 0..runs {
            let r = contention(jitter, clients, 5, seed);
            calls += r.calls;
            time += r.completion_ms;
            gave_up += r.gave_up;
        }
        println!(
            "| {jitter:?} | {} | {} | {gave_up} |",
            calls / runs,
            time / runs
        );
    }
}
