//! `resile get|post|put|patch|delete URL`: one call (or a paginated walk) through the engine.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use reqwest::Method;

use resile::{ClientAuth, ClientCredentials, ClientEvent, IdempotencyKey, Secret, StaticBearer};

use crate::exit::{for_error, Exit};
use crate::units::{parse_duration, parse_header, parse_paginate, parse_rate};
use crate::{settings, Failed};

/// Flags shared by every HTTP command.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// The URL (absolute, or relative to `base_url` in the config file).
    pub url: String,
    /// Request body: JSON text, or `@file` to read it from a file (`@-` for stdin).
    #[arg(long, short = 'd')]
    pub data: Option<String>,
    /// A config file (TOML or JSON) with the same fields as resile::ClientConfig.
    #[arg(long, env = "RESILE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Retries after the first attempt (with --paginate: the walk's, shared by its pages).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Backoff jitter: none, full, equal or decorrelated.
    #[arg(long)]
    pub jitter: Option<String>,
    /// Timeout of one attempt (500ms, 5s, ...).
    #[arg(long, value_parser = parse_duration)]
    pub attempt_timeout: Option<Duration>,
    /// Total time for the call, waits included (with --paginate: for the whole walk).
    #[arg(long, value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Client-side rate limit per host (10/s, 600/m).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Burst for --rate.
    #[arg(long)]
    pub burst: Option<u32>,
    /// Calls in flight at once.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// A bearer token to send.
    #[arg(long, env = "RESILE_BEARER", hide_env_values = true)]
    pub bearer: Option<String>,
    /// OAuth2 client-credentials token endpoint (the secret comes from RESILE_CLIENT_SECRET).
    #[arg(long, requires = "client_id")]
    pub token_url: Option<String>,
    /// OAuth2 client id.
    #[arg(long, requires = "token_url")]
    pub client_id: Option<String>,
    /// OAuth2 scope.
    #[arg(long)]
    pub scope: Option<String>,
    /// Send the client credentials in the form body instead of HTTP Basic.
    #[arg(long)]
    pub form_auth: bool,
    /// Idempotency-Key: `auto` (generated once, the same on every attempt), `off`, or the key.
    #[arg(long, default_value = "auto")]
    pub idempotency_key: String,
    /// Follow pages: link, cursor:/json/pointer[:param], offset, page. Items print as JSON lines.
    #[arg(long)]
    pub paginate: Option<String>,
    /// Where the items are in each page (JSON pointer); default: the page is the array.
    #[arg(long)]
    pub items: Option<String>,
    /// Page size for offset and page pagination.
    #[arg(long, default_value_t = 100)]
    pub page_size: u64,
    /// Stop after this many pages.
    #[arg(long)]
    pub max_pages: Option<u64>,
    /// Continue a walk that stopped: the value it printed (`--paginate` only).
    #[arg(long, requires = "paginate")]
    pub resume: Option<String>,
    /// Write the engine's events to this file as JSON lines.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Print each decision with its reason on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the status line and headers on stderr.
    #[arg(long, short = 'i')]
    pub include: bool,
    /// The engine's seed, to replay a run's jitter and keys.
    #[arg(long)]
    pub seed: Option<u64>,
}

fn read_data(data: &str) -> Result<serde_json::Value, Failed> {
    let text = match data.strip_prefix('@') {
        Some("-") => std::io::read_to_string(std::io::stdin())
            .map_err(|e| (Exit::Usage, format!("stdin: {e}")))?,
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| (Exit::Usage, format!("{path}: {e}")))?
        }
        None => data.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| (Exit::Usage, format!("--data is not valid JSON: {e}")))
}

type Sink = Arc<Mutex<Option<BufWriter<File>>>>;

pub async fn run(method: Method, args: CallArgs) -> Result<Exit, Failed> {
    let config = settings::client_config(&args)?;
    let body = args.data.as_deref().map(read_data).transpose()?;
    let style = args
        .paginate
        .as_deref()
        .map(|p| parse_paginate(p, args.page_size))
        .transpose()
        .map_err(|e| (Exit::Usage, e))?;
    if style.is_some() && method != Method::GET {
        return Err((Exit::Usage, "--paginate works with get only".into()));
    }

    let sink: Sink = Arc::new(Mutex::new(match &args.events {
        Some(path) => {
            Some(BufWriter::new(File::create(path).map_err(|e| {
                (Exit::Usage, format!("{}: {e}", path.display()))
            })?))
        }
        None => None,
    }));
    let verbose = args.verbose;
    let events = sink.clone();
    let mut builder = resile::Client::builder()
        .config(config)
        .on_event(move |e: &ClientEvent| {
            if let Ok(mut guard) = events.lock() {
                if let Some(w) = guard.as_mut() {
                    if let Ok(line) = serde_json::to_string(e) {
                        let _ = writeln!(w, "{line}");
                    }
                }
            }
            if verbose {
                match e {
                    ClientEvent::Engine(ev) => eprintln!("{}", ev.describe()),
                    other => eprintln!("{other:?}"),
                }
            }
        });
    if let (Some(token_url), Some(client_id)) = (&args.token_url, &args.client_id) {
        let secret = std::env::var("RESILE_CLIENT_SECRET").map_err(|_| {
            (
                Exit::Config,
                "--client-id needs the secret in RESILE_CLIENT_SECRET".to_string(),
            )
        })?;
        builder = builder.token_source(ClientCredentials {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            client_secret: Secret::new(secret),
            scope: args.scope.clone(),
            auth: if args.form_auth {
                ClientAuth::Form
            } else {
                ClientAuth::Basic
            },
        });
    } else if let Some(token) = &args.bearer {
        builder = builder.token_source(StaticBearer::new(token.as_str()));
    }
    let client = builder
        .build()
        .map_err(|e| (for_error(&e), e.to_string()))?;

    let outcome = match style {
        Some(style) => crate::walk::paginate(&client, &args, style).await,
        None => single(&client, method, &args, body).await,
    };
    if let Ok(mut guard) = sink.lock() {
        if let Some(w) = guard.as_mut() {
            let _ = w.flush();
        }
    }
    outcome
}

async fn single(
    client: &resile::Client,
    method: Method,
    args: &CallArgs,
    body: Option<serde_json::Value>,
) -> Result<Exit, Failed> {
    let key = match args.idempotency_key.as_str() {
        "auto" => IdempotencyKey::Auto,
        "off" => IdempotencyKey::Off,
        key => IdempotencyKey::Explicit(key.to_string()),
    };
    let name = method.to_string();
    let mut request = client.request(method, &args.url).idempotency_key(key);
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| (for_error(&e), e.to_string()))?;
    let status = response.status();
    if args.include {
        eprintln!(
            "{:?} {status} ({} attempt(s), request id {})",
            response.version(),
            response.attempts(),
            response.request_id()
        );
        for (name, value) in response.headers() {
            eprintln!("{name}: {}", value.to_str().unwrap_or("<binary>"));
        }
    }
    let mut out = std::io::stdout().lock();
    let bytes = response.bytes();
    let _ = out.write_all(&bytes);
    if !bytes.ends_with(b"\n") && !bytes.is_empty() {
        let _ = out.write_all(b"\n");
    }
    if status.as_u16() >= 400 {
        eprintln!("resile: {name} {} answered {status}", args.url);
        return Ok(Exit::HttpError);
    }
    Ok(Exit::Ok)
}
