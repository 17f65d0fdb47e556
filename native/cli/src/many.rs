//! A run of many calls (`--urls`, URLs on stdin, `--repeat`): `--parallel N` at once through
//! one client, so one pool and one engine (budget, breaker, limits) serve them all. One JSON
//! line per call on stdout (or `-o FILE`), a progress bar with the host's state on a terminal,
//! and a summary at the end.

use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use resile::{Client, HostView};

use crate::call::{CallArgs, Plan, SummaryMode};
use crate::exit::{error_kind, for_error, Exit};
use crate::output::{Lines, OutFile, Status};
use crate::summary::{Record, Summary};
use crate::Failed;

async fn one(client: &Client, plan: &Plan, index: usize, url: &str) -> (Record, Exit) {
    let started = Instant::now();
    let result = plan.request(client, url).send().await;
    let duration_ms = crate::summary::millis(started.elapsed());
    let shown = plan.shown(url);
    match result {
        Ok(response) => {
            let status = response.status().as_u16();
            let failed = status >= 400;
            let record = Record {
                index,
                url: shown,
                status: Some(status),
                attempts: Some(response.attempts()),
                duration_ms,
                bytes: Some(response.bytes().len()),
                error: failed.then_some("http_status"),
                why: None,
                message: failed
                    .then(|| format!("the server answered {}", Status(response.status()))),
            };
            (record, if failed { Exit::HttpError } else { Exit::Ok })
        }
        Err(e) => {
            let record = Record {
                index,
                url: shown,
                status: e.status(),
                attempts: e.attempts(),
                duration_ms,
                bytes: None,
                error: Some(error_kind(&e)),
                why: e.why(),
                message: Some(plan.describe(&e, url)),
            };
            (record, for_error(&e))
        }
    }
}

/// The host's state in a few words, for the progress bar.
fn host_state(hosts: &[HostView]) -> String {
    hosts
        .iter()
        .map(|h| {
            let breaker = match h.breaker {
                resile_core::breaker::BreakerState::Closed => "closed",
                resile_core::breaker::BreakerState::Open { .. } => "OPEN",
                _ => "half-open",
            };
            let held = if h.held_until.is_some() { ", held" } else { "" };
            format!(
                "breaker {breaker}, {} in flight, budget {:.0}{held} ({})",
                h.active_calls, h.budget_available, h.host
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn progress(total: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:16.cyan/blue} {pos}/{len} {elapsed:>3} {wide_msg}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs every call of the plan and reports; the exit code is that of the first failed call in
/// input order.
pub async fn run(client: &Client, args: &CallArgs, plan: &Plan) -> Result<Exit, Failed> {
    let terminal = io::stderr().is_terminal();
    // -v lines would tear through the bar.
    let bar = progress(plan.total(), terminal && !args.silent && !args.verbose);
    // Opened before the first call, so a path that cannot be written stops the run before
    // anything is sent; emptied at the first line, so a run stopped before it (Ctrl-C) leaves
    // an existing file as it was.
    let file = args.output.as_deref().map(OutFile::open).transpose()?;
    let mut out = Lines::new(file, false);
    let to = out.target();
    let stdout = out.is_stdout();
    // A closed stdout ends the run here: `calls` is dropped, which cancels the calls in flight
    // (the engine reclaims what they held) and starts no more.
    let cannot_write = |e: io::Error| crate::exit::cannot_write(stdout, "", &to, &e);
    let started = Instant::now();
    let mut summary = Summary::default();
    let mut first_failure: Option<(usize, Exit)> = None;
    let mut calls = futures::stream::iter(plan.calls())
        .map(|(i, url)| one(client, plan, i, url))
        .buffer_unordered(args.parallel as usize);
    let (mut ok, mut failed) = (0u64, 0u64);
    while let Some((record, code)) = calls.next().await {
        summary.add(&record);
        if record.ok() {
            ok += 1;
        } else {
            failed += 1;
            if first_failure.is_none_or(|(i, _)| record.index < i) {
                first_failure = Some((record.index, code));
            }
        }
        let line = serde_json::to_string(&record).map_err(|e| (Exit::Other, e.to_string()))?;
        // Each record out as its call ends, for whoever follows the file or the pipe.
        out.line(line)
            .and_then(|()| out.flush())
            .map_err(cannot_write)?;
        if !bar.is_hidden() {
            bar.inc(1);
            bar.set_message(format!(
                "ok {ok} failed {failed} | {}",
                host_state(&client.hosts())
            ));
        }
    }
    bar.finish_and_clear();
    out.finish().map_err(cannot_write)?;
    let wall = started.elapsed();
    let stats = client.stats();
    if let Some(path) = &args.report {
        let report = summary.report(wall, &stats);
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| (Exit::Other, e.to_string()))?;
        std::fs::write(path, text + "\n")
            .map_err(|e| (Exit::Usage, format!("--report {}: {e}", path.display())))?;
    }
    let show_summary = match args.summary {
        SummaryMode::Always => true,
        SummaryMode::Never => false,
        SummaryMode::Auto => terminal && !args.silent,
    };
    if show_summary {
        let _ = io::stderr().write_all(summary.render(wall, stats.attempts).as_bytes());
    }
    let engine = &client.config().engine;
    if summary.throttled() > 0
        && !args.silent
        && !engine.adaptive_rate.enabled
        && engine.limit.is_none()
    {
        note!(
            "resile: {} call(s) failed on 429 (throttled): --adaptive-rate paces each host to \
             the rate it accepts, --rate sets one",
            summary.throttled()
        );
    }
    Ok(first_failure.map_or(Exit::Ok, |(_, code)| code))
}
