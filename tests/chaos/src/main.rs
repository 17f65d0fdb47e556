//! `resile-chaos --port N [--seed S] [--www DIR] [--token-expires-in SECS] [--keep-alive on|off]
//! [--requests-per-connection N]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use resile_chaos::ChaosConfig;

const USAGE: &str =
    "usage: resile-chaos [--port N] [--seed S] [--www DIR] [--token-expires-in SECS] \
[--max-stall-ms MS] [--total N] [--keep-alive on|off] [--requests-per-connection N]

Serves a misbehaving HTTP API on 127.0.0.1 (port 0 picks a free one), prints its URL on the
first line of stdout, and runs until Ctrl-C. Routes: see the resile-chaos crate docs.";

fn parse_args(args: impl Iterator<Item = String>) -> Result<ChaosConfig, String> {
    let mut config = ChaosConfig::default();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{flag} needs a value"))?,
        };
        let number = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: `{v}` is not a whole number"))
        };
        match flag.as_str() {
            "--port" => {
                config.port = value
                    .parse()
                    .map_err(|_| format!("--port: `{value}` is not a port"))?
            }
            "--seed" => config.seed = number(&value)?,
            "--www" => config.static_dir = Some(PathBuf::from(value)),
            "--token-expires-in" => config.token_expires_in_secs = number(&value)?,
            "--max-stall-ms" => config.max_stall = Duration::from_millis(number(&value)?),
            "--total" => config.collection_size = number(&value)?,
            "--requests-per-connection" => config.requests_per_connection = Some(number(&value)?),
            "--keep-alive" => {
                config.keep_alive = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    other => return Err(format!("--keep-alive: `{other}` is not on or off")),
                }
            }
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("resile-chaos: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match resile_chaos::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("resile-chaos: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.url());
    eprintln!("resile-chaos: serving on {} until Ctrl-C", server.url());
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("resile-chaos: cannot wait for Ctrl-C: {e}");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}
