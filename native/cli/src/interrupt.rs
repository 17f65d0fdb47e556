//! Ctrl-C (SIGINT) and SIGTERM during a run: the calls in flight are cancelled (the engine
//! reclaims what they held), the events file and the output written so far are kept, and one
//! line says what was under way, with the exit code a shell gives for the signal.

use std::future::Future;

use crate::exit::Exit;
use crate::Failed;

/// Runs `work` until it ends or a signal stops it.
pub async fn or_signal(
    client: &resile::Client,
    writes: bool,
    work: impl Future<Output = Result<Exit, Failed>>,
) -> Result<Exit, Failed> {
    tokio::select! {
        outcome = work => outcome,
        // The client's totals are read at the signal, before dropping `work` cancels its calls.
        (code, signal, stats) = async { let (code, signal) = signal().await; (code, signal, client.stats()) } => {
            Err((code, stopped(signal, &stats, writes)))
        }
    }
}

/// What a signal stopped, in one line.
fn stopped(signal: &str, stats: &resile::Stats, writes: bool) -> String {
    let done = stats.succeeded + stats.failed;
    let open = stats.calls.saturating_sub(done);
    let mut line = format!(
        "interrupted by {signal}: {open} call(s) in flight cancelled, {done} finished, {} attempt(s) sent",
        stats.attempts
    );
    if writes && open > 0 && stats.attempts > 0 {
        line.push_str("; a write in flight may have been applied");
    }
    line
}

/// Waits for Ctrl-C or, on Unix, SIGTERM; the exit code a shell reports for it (128 + signal).
/// A signal that cannot be watched is never reported as received.
async fn signal() -> (Exit, &'static str) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => (Exit::Interrupted, "Ctrl-C (SIGINT)"),
        () = term => (Exit::Terminated, "SIGTERM"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_was_in_flight_and_whether_a_write_may_have_landed() {
        let stats = resile::Stats {
            calls: 5,
            succeeded: 2,
            failed: 1,
            attempts: 7,
            ..resile::Stats::default()
        };
        let read = stopped("SIGTERM", &stats, false);
        assert_eq!(
            read,
            "interrupted by SIGTERM: 2 call(s) in flight cancelled, 3 finished, 7 attempt(s) sent"
        );
        assert!(stopped("SIGTERM", &stats, true).ends_with("may have been applied"));
        let idle = resile::Stats {
            calls: 1,
            ..resile::Stats::default()
        };
        assert!(
            !stopped("SIGTERM", &idle, true).contains("applied"),
            "nothing was sent"
        );
    }
}
