//! `axum-shipping [UPSTREAM_URL] [PORT]`: serves the shipping API on `127.0.0.1:PORT`
//! (default 3000), calling the carrier API at `UPSTREAM_URL` (default `$SHIPPING_UPSTREAM`,
//! else `http://127.0.0.1:8080`). Prints its URL on the first line; stops on Ctrl-C.

use std::process::ExitCode;
use std::sync::Arc;

use axum_shipping::{client, policy, router, AppState, Upstream};

const USAGE: &str = "usage: axum-shipping [UPSTREAM_URL] [PORT]";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("axum-shipping: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .or_else(|| std::env::var("SHIPPING_UPSTREAM").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_string());
    if base == "-h" || base == "--help" {
        println!("{USAGE}");
        return Ok(());
    }
    let port: u16 = match args.next() {
        Some(p) => p
            .parse()
            .map_err(|_| format!("PORT must be a number from 0 to 65535, got `{p}`\n{USAGE}"))?,
        None => 3000,
    };
    if let Some(extra) = args.next() {
        return Err(format!("unexpected argument `{extra}`\n{USAGE}"));
    }
    let upstream = Upstream::at(&base).map_err(|e| e.to_string())?;
    let client = client(policy()).map_err(|e| e.to_string())?;
    let state = AppState {
        client,
        upstream: Arc::new(upstream),
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("http://{addr}");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}
