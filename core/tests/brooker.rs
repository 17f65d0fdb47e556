//! The orderings of Brooker's "Exponential Backoff And Jitter" hold for the engine.

use resile_core::sim::contention;
use resile_core::Jitter;

fn mean(jitter: Jitter) -> (u64, u64) {
    let runs = 10;
    let (mut calls, mut time) = (0, 0);
    for seed in 0..runs {
        let r = contention(jitter, 60, 5, seed);
        assert_eq!(
            r.gave_up, 0,
            "{jitter:?} seed {seed}: every client should finish"
        );
        calls += r.calls;
        time += r.completion_ms;
    }
    (calls / runs, time / runs)
}

#[test]
fn no_jitter_is_the_clear_loser_and_equal_jitter_is_slower_than_full() {
    let none = mean(Jitter::None);
    let equal = mean(Jitter::Equal);
    let full = mean(Jitter::Full);
    let decorrelated = mean(Jitter::Decorrelated);
    // Without jitter everyone collides every round: n(n+1)/2 calls.
    assert_eq!(none.0, 60 * 61 / 2);
    for (name, j) in [
        ("equal", equal),
        ("full", full),
        ("decorrelated", decorrelated),
    ] {
        assert!(none.0 > 3 * j.0, "{name}: {j:?} vs none {none:?}");
        assert!(none.1 > j.1, "{name}: {j:?} vs none {none:?}");
    }
    assert!(
        equal.1 > full.1,
        "equal jitter takes longer than full: {equal:?} vs {full:?}"
    );
}
