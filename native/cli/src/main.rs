//! `resile`: call HTTP APIs that fail, resiliently; and see, on an embedded chaos server, what
//! the engine decides under 429 storms, outages, token expiry and flaky pagination.

/// `eprintln!` that never panics: a closed stderr (`resile get URL -v 2>&1 | head -1`) is no
/// reason to stop mid-call, and there is no one left to tell.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `println!` that never panics: a reader that has seen enough (`| head -1`) has closed stdout.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod body;
mod call;
mod demo;
mod download;
mod exit;
mod interrupt;
mod items;
mod many;
mod output;
mod settings;
mod summary;
mod units;
mod walk;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use exit::Exit;

/// Call HTTP APIs that fail: retries that respect the server, backoff with jitter, budgets,
/// circuit breakers, rate limits, OAuth2 tokens, pagination and idempotent writes.
#[derive(Parser, Debug)]
#[command(name = "resile", version, about, long_about = None, after_help = exit::HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the demo: an embedded chaos server, resile next to a naive client, and a report.
    Demo(demo::DemoArgs),
    /// GET a URL (or many: --urls FILE, URLs on stdin, --repeat N).
    #[command(after_help = call::DIFFERENCES)]
    Get(call::CallArgs),
    /// POST to a URL (--data, --json, --form, -F, or key=value items).
    #[command(after_help = call::DIFFERENCES)]
    Post(call::CallArgs),
    /// PUT to a URL.
    #[command(after_help = call::DIFFERENCES)]
    Put(call::CallArgs),
    /// PATCH a URL.
    #[command(after_help = call::DIFFERENCES)]
    Patch(call::CallArgs),
    /// DELETE a URL.
    #[command(after_help = call::DIFFERENCES)]
    Delete(call::CallArgs),
    /// HEAD a URL: the status and headers (use -i to print them).
    #[command(after_help = call::DIFFERENCES)]
    Head(call::CallArgs),
    /// OPTIONS on a URL.
    #[command(after_help = call::DIFFERENCES)]
    Options(call::CallArgs),
    /// Run a scenario file through the engine on a virtual clock and print its decisions.
    Simulate(SimulateArgs),
    /// Serve the chaos server (and optionally the browser demo page) on loopback.
    ServeChaos(ServeArgs),
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// The scenario (JSON, as in tests/scenarios/).
    scenario: PathBuf,
    /// Print every event as a JSON line instead of the decision lines.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Seed for the server's deterministic faults.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Serve this directory at /www/ (the browser demo: www/ after scripts/build-wasm.sh).
    #[arg(long)]
    www: Option<PathBuf>,
    /// Lifetime of issued OAuth2 tokens, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_expires_in: u64,
    /// Close each connection after this many requests, as nginx's `keepalive_requests` (over
    /// HTTP/2 with a GOAWAY; streams past it are refused): try --http2-prior-knowledge on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    requests_per_connection: Option<u64>,
    /// Speak HTTP/1.x only, as nginx without `http2` does: --http2-prior-knowledge against it
    /// shows what a client meets at a server that does not speak h2c.
    #[arg(long)]
    http1_only: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Ok.into()
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::fail(Exit::Other, format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Get(args) => call::run(reqwest::Method::GET, args).await,
            Command::Post(args) => call::run(reqwest::Method::POST, args).await,
            Command::Put(args) => call::run(reqwest::Method::PUT, args).await,
            Command::Patch(args) => call::run(reqwest::Method::PATCH, args).await,
            Command::Delete(args) => call::run(reqwest::Method::DELETE, args).await,
            Command::Head(args) => call::run(reqwest::Method::HEAD, args).await,
            Command::Options(args) => call::run(reqwest::Method::OPTIONS, args).await,
            Command::Simulate(args) => simulate(args),
            Command::ServeChaos(args) => serve(args).await,
        }
    });
    match result {
        Ok(code) => code.into(),
        Err((code, message)) => exit::fail(code, message),
    }
}

/// A command's failure: the exit code and the one line to print.
pub type Failed = (Exit, String);

fn simulate(args: SimulateArgs) -> Result<Exit, Failed> {
    let path = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| (Exit::Usage, format!("{path}: {e}")))?;
    let scenario = resile_core::sim::Scenario::from_json(&text)
        .map_err(|e| (Exit::Config, format!("{path}: {e}")))?;
    let result = resile_core::sim::run_scenario(&scenario)
        .map_err(|e| (Exit::Config, format!("{path}: {e}")))?;
    if args.json {
        for event in &result.trace {
            say!(
                "{}",
                serde_json::to_string(event).map_err(|e| (Exit::Other, e.to_string()))?
            );
        }
    } else {
        say!("# {}", result.name);
        if !scenario.description.is_empty() {
            say!("# {}", scenario.description);
        }
        for e in &result.trace {
            say!("{}", e.describe());
        }
        say!(
            "# {} call(s), {} attempt(s), outcomes {:?}, side effects {}, token fetches {}, breaker trips {}, done at {} ms",
            result.outcomes.len(),
            result.attempts,
            summarize(&result.outcomes),
            result.side_effects,
            result.token_fetches,
            result.breaker_trips,
            result.finished_ms
        );
    }
    if result.mismatches.is_empty() {
        Ok(Exit::Ok)
    } else {
        Err((
            Exit::GaveUp,
            format!(
                "{path}: expectations not met: {}",
                result.mismatches.join("; ")
            ),
        ))
    }
}

fn summarize(outcomes: &[String]) -> std::collections::BTreeMap<&str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for o in outcomes {
        *m.entry(o.as_str()).or_default() += 1;
    }
    m
}

async fn serve(args: ServeArgs) -> Result<Exit, Failed> {
    if let Some(dir) = &args.www {
        if !dir.join("index.html").is_file() {
            return Err((
                Exit::Usage,
                format!("{}: no index.html there", dir.display()),
            ));
        }
    }
    let config = resile_chaos::ChaosConfig {
        port: args.port,
        seed: args.seed,
        static_dir: args.www.clone(),
        token_expires_in_secs: args.token_expires_in,
        requests_per_connection: args.requests_per_connection,
        http1_only: args.http1_only,
        ..resile_chaos::ChaosConfig::default()
    };
    let server = resile_chaos::start(config).await.map_err(|e| {
        (
            Exit::Other,
            format!("cannot listen on 127.0.0.1:{}: {e}", args.port),
        )
    })?;
    say!("{}", server.url());
    if args.www.is_some() {
        say!("demo page: {}/www/index.html", server.url());
    }
    note!("chaos server running; Ctrl-C stops it");
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    Ok(Exit::Ok)
}
