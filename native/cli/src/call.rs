//! `resile get|post|put|patch|delete|head|options URL [ITEM]...`: one call, many calls
//! (`--urls`, `--repeat`), or a paginated walk, through one client and its engine.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};
use reqwest::Method;

use resile::redact::{redact_text, redact_url};
use resile::{ClientAuth, ClientCredentials, ClientEvent, IdempotencyKey, Secret, StaticBearer};

use crate::body::{self, Sources};
use crate::exit::{for_error, Exit};
use crate::items::{parse_item, Item};
use crate::output::OutFile;
use crate::units::{
    parse_backoff, parse_duration, parse_header, parse_paginate, parse_rate, parse_size,
    parse_status, Backoff,
};
use crate::{many, output, settings, Failed};

/// How the command differs from curl and xh, printed after `--help`.
pub const DIFFERENCES: &str =
    "Request items (after the URL, as in xh): Name:value (header), name==value (query),
key=value (JSON string field), key:=json (JSON value, sent as written).

Differences from curl:
  -d/--data TEXT|@FILE|@-   sent byte for byte (curl's --data-binary; curl -d strips CR/LF
                            from files); Content-Type application/x-www-form-urlencoded
  --json TEXT|@FILE|@-      validated, never re-serialized; Content-Type and Accept JSON
  --form key=value          urlencoded (curl's -F/--form is multipart; here that is -F)
  -F name=value|name=@FILE[;type=MIME]   multipart/form-data
  --retry N                 retries after the first attempt, as curl; resile also retries
                            connection resets, 429 and 5xx, honours Retry-After and a budget
  --max-time                the whole call, waits included (an alias of --deadline)
  redirects                 followed by default (curl: only with -L); --no-follow turns it
                            off; more than --max-redirects (10) is an error, exit 8
  4xx/5xx                   exit 1 with the body still written (curl: exit 0 unless --fail)
  -s                        hides progress, summaries and notes; error lines still print
  -i                        the head as received, before the body, to stdout or -o FILE
                            (a body decoded from gzip, deflate or brotli comes without its
                            Content-Encoding and Content-Length: the decoder removes them)
  -o FILE                   a GET is streamed into FILE; a body that breaks is resumed with
                            Range/If-Range (curl: -C -, by hand), never mixing two versions
  --max-filesize SIZE       caps -o FILE (unbounded without it, as curl) and the body held
                            in memory (16 MiB without it); over it: exit 8 (curl: 63)
  -v                        what was sent and each engine decision, on stderr, secrets hidden
Many calls: --urls FILE (or URLs on stdin, or --urls -) with --parallel N through one client
(one pool, one engine); one JSON line per call; --repeat N; --report FILE.json.";

/// When to print the end-of-run summary of a multi-call run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum SummaryMode {
    /// On a terminal, unless `-s`.
    Auto,
    /// Always, on stderr.
    Always,
    /// Never.
    Never,
}

/// Flags shared by every HTTP command.
#[derive(Args, Debug)]
pub struct CallArgs {
    /// The URL (absolute, or relative to `base_url` in the config file), then request items.
    /// With --urls, every argument is an item.
    #[arg(value_name = "URL [ITEM]")]
    pub targets: Vec<String>,
    /// The method, any: GET, HEAD, OPTIONS, PROPFIND, ... (overrides the subcommand's).
    #[arg(long = "request", short = 'X', value_name = "METHOD")]
    pub method: Option<String>,
    /// Request body, sent byte for byte: text, `@file`, or `@-` for stdin.
    #[arg(
        long,
        short = 'd',
        visible_alias = "data-binary",
        value_name = "TEXT|@FILE|@-"
    )]
    pub data: Option<String>,
    /// A JSON body, validated and sent exactly as written, with JSON Content-Type and Accept.
    #[arg(long, value_name = "JSON|@FILE|@-")]
    pub json: Option<String>,
    /// An urlencoded form field (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub form: Vec<String>,
    /// A multipart part (repeatable): `name=value`, or `name=@file[;type=mime/type]`.
    #[arg(short = 'F', long = "multipart", value_name = "NAME=VALUE|NAME=@FILE")]
    pub multipart: Vec<String>,
    /// Write the body (and the head, with -i; the JSON lines of a multi-call run; a walk's
    /// items) to this file instead of stdout. A single GET is streamed into it, and a body that
    /// breaks, or stalls for longer than --attempt-timeout, is resumed where it stopped
    /// (`Range` / `If-Range`). A walk continued with
    /// `--resume` adds its items after those already in the file.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The largest body accepted (`10M`, `1G`: 1024-based, curl's --max-filesize): a larger
    /// one fails the call (exit 8), before a byte is written to -o FILE when its
    /// Content-Length says so. Without it, -o FILE takes a body of any size, and a body held
    /// in memory (stdout, many calls, pages) is capped at max_response_bytes (16 MiB).
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub max_filesize: Option<u64>,
    /// No progress bar, summary or notes (error lines still print).
    #[arg(long, short = 's')]
    pub silent: bool,
    /// A config file (TOML or JSON) with the same fields as resile::ClientConfig.
    #[arg(long, env = "RESILE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Retries after the first attempt (curl's --retry; with --paginate: the walk's, shared by
    /// its pages).
    #[arg(long, visible_alias = "retry", value_name = "N")]
    pub retries: Option<u32>,
    /// Also retry these statuses (comma-separated), on top of 408, 429, 500, 502, 503, 504.
    #[arg(long, value_delimiter = ',', value_parser = parse_status, value_name = "CODES")]
    pub retry_on: Vec<u16>,
    /// Backoff: the first delay and the cap, `200ms..10s` (or only the first delay).
    #[arg(long, value_parser = parse_backoff, value_name = "FIRST..CAP")]
    pub backoff: Option<Backoff>,
    /// Backoff jitter: none, full, equal or decorrelated.
    #[arg(long)]
    pub jitter: Option<String>,
    /// Timeout of one attempt (500ms, 5s, ...).
    #[arg(long, value_parser = parse_duration)]
    pub attempt_timeout: Option<Duration>,
    /// Total time for the call, waits included (curl's --max-time; with --paginate: for the
    /// whole walk).
    #[arg(long, visible_alias = "max-time", value_parser = parse_duration)]
    pub deadline: Option<Duration>,
    /// Time to open a connection.
    #[arg(long, value_parser = parse_duration)]
    pub connect_timeout: Option<Duration>,
    /// Trust this certificate authority (a PEM file; repeatable) on top of the built-in roots,
    /// for a server with a private CA.
    #[arg(long, value_name = "FILE")]
    pub cacert: Vec<PathBuf>,
    /// Speak HTTP/2 from the first byte, without negotiating it (h2c to `http://` servers).
    #[arg(long)]
    pub http2_prior_knowledge: bool,
    /// Follow redirects (the default; curl's -L).
    #[arg(long, short = 'L', overrides_with = "no_follow")]
    pub follow: bool,
    /// Do not follow redirects: a 3xx is the answer.
    #[arg(long, overrides_with = "follow")]
    pub no_follow: bool,
    /// Redirects followed before the call fails (default 10).
    #[arg(long, value_name = "N")]
    pub max_redirects: Option<u32>,
    /// Client-side rate limit per host (10/s, 600/m).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Burst for --rate.
    #[arg(long)]
    pub burst: Option<u32>,
    /// Once a host throttles a call (429, or an AWS throttling code), pace the calls to it to
    /// the rate it accepts, slowing on each throttle and growing back while it does not (AWS's
    /// adaptive client rate: `adaptive_rate.enabled` in the config). For runs of many calls
    /// against a rate-limited API that says nothing of its limits.
    #[arg(long)]
    pub adaptive_rate: bool,
    /// Calls in flight at once in the engine (the client's max_in_flight).
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
    /// Call every URL of this file (one a line; `#` comments), `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub urls: Option<PathBuf>,
    /// Calls of a multi-call run in flight at once, all through one client.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub parallel: u32,
    /// Call each URL this many times (load against one URL).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub repeat: u64,
    /// Write a JSON report of a multi-call run to this file.
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// The end-of-run summary (latency histogram, counts per status).
    #[arg(long, value_enum, default_value_t = SummaryMode::Auto)]
    pub summary: SummaryMode,
    /// Continue a walk that stopped: the value it printed (`--paginate` only).
    #[arg(long, requires = "paginate")]
    pub resume: Option<String>,
    /// Write the engine's events to this file as JSON lines.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Print what is sent and each decision with its reason on stderr.
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the status line and headers before the body, on stdout (or -o FILE).
    #[arg(long, short = 'i')]
    pub include: bool,
    /// The engine's seed, to replay a run's jitter and keys.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Fleet mode: share rate limits and server holds with every other client on this Redis
    /// (`redis://[:password@]host:port[/db]`); `--rate` is then the whole fleet's limit.
    #[arg(long, value_name = "URL", env = "RESILE_REDIS")]
    pub redis: Option<String>,
    /// Fleet mode: how many clients share the limit (each one's share while Redis is down).
    #[arg(long, value_name = "N", requires = "redis")]
    pub fleet_size: Option<u32>,
}

/// What to send, decided once for every call of the run.
pub struct Plan {
    /// The method.
    pub method: Method,
    /// The URLs, in order.
    pub urls: Vec<String>,
    /// How many times the whole list is called.
    pub repeat: usize,
    /// One call, or a run of many.
    pub shape: Shape,
    /// `name==value` items.
    pub query: Vec<(String, String)>,
    /// The body and its default headers.
    pub body: Option<(Bytes, Vec<(&'static str, String)>)>,
    /// The Idempotency-Key policy.
    pub key: IdempotencyKey,
    /// The `-H` headers and the header items: sent with every call.
    pub headers: Vec<(String, String)>,
    /// Query parameter names to hide on top of the built-in list.
    pub redact: Vec<String>,
    /// `--max-filesize`: the most bytes a body may have.
    pub max_filesize: Option<u64>,
    /// `--http2-prior-knowledge`.
    pub h2c: bool,
    /// The client's base URL (the config file's `base_url`, as the client holds it), which
    /// relative URLs are resolved against.
    pub base_url: Option<reqwest::Url>,
}

/// One call, or a run of many.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The body goes to stdout.
    Single,
    /// A JSON line per call.
    Many,
}

fn no_control(flag: &str, value: &str) -> Result<(), Failed> {
    if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err((
            Exit::Usage,
            format!("{flag} has control characters (CR, LF, ...); it cannot be sent in a header"),
        ));
    }
    Ok(())
}

fn read_urls(path: &std::path::Path) -> Result<Vec<String>, Failed> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| (Exit::Usage, format!("--urls -: stdin: {e}")))?
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| (Exit::Usage, format!("--urls {}: {e}", path.display())))?
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

impl Plan {
    fn new(method: Method, args: &CallArgs) -> Result<Plan, Failed> {
        let method = match &args.method {
            Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| (Exit::Usage, format!("-X {m}: not an HTTP method")))?,
            None => method,
        };
        let stdin_body = [args.data.as_deref(), args.json.as_deref()].contains(&Some("@-"));
        if stdin_body && args.urls.as_deref() == Some(std::path::Path::new("-")) {
            return Err((
                Exit::Usage,
                "stdin cannot hold both the URLs and the body".into(),
            ));
        }
        let (urls, item_args, from_list) = match &args.urls {
            Some(path) => (read_urls(path)?, &args.targets[..], true),
            None => match args.targets.split_first() {
                Some((url, items)) => (vec![url.clone()], items, false),
                None if !std::io::stdin().is_terminal() && !stdin_body => (
                    read_urls(std::path::Path::new("-"))?,
                    &args.targets[..],
                    true,
                ),
                None => {
                    return Err((
                        Exit::Usage,
                        "no URL given (a URL, --urls FILE, or URLs on stdin)".into(),
                    ))
                }
            },
        };
        if urls.is_empty() {
            return Err((Exit::Usage, "no URL to call".into()));
        }
        let items = item_args
            .iter()
            .map(|t| parse_item(t))
            .collect::<Result<Vec<Item>, String>>()
            .map_err(|e| (Exit::Usage, e))?;
        let mut headers = args.headers.clone();
        let mut query = Vec::new();
        for item in &items {
            match item {
                Item::Header(n, v) => headers.push((n.clone(), v.clone())),
                Item::Query(n, v) => query.push((n.clone(), v.clone())),
                Item::Field(..) | Item::RawJson(..) => {}
            }
        }
        if let Some(token) = &args.bearer {
            no_control("--bearer", token)?;
        }
        let key = match args.idempotency_key.as_str() {
            "auto" => IdempotencyKey::Auto,
            "off" => IdempotencyKey::Off,
            key => {
                no_control("--idempotency-key", key)?;
                IdempotencyKey::Explicit(key.to_string())
            }
        };
        let body = body::build(&Sources {
            data: args.data.as_deref(),
            json: args.json.as_deref(),
            form: &args.form,
            multipart: &args.multipart,
            items: &items,
        })?;
        let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let body = body.map(|b| {
            let mut defaults = Vec::new();
            if !has("content-type") {
                defaults.push(("content-type", b.content_type.clone()));
            }
            if b.accept_json && !has("accept") {
                defaults.push(("accept", "application/json".to_string()));
            }
            (Bytes::from(b.bytes), defaults)
        });
        let repeat = usize::try_from(args.repeat).unwrap_or(usize::MAX);
        let shape = if from_list || repeat > 1 {
            Shape::Many
        } else {
            Shape::Single
        };
        Ok(Plan {
            method,
            urls,
            repeat,
            shape,
            query,
            body,
            key,
            headers,
            redact: Vec::new(),
            max_filesize: args.max_filesize,
            h2c: args.http2_prior_knowledge,
            base_url: None,
        })
    }

    /// Every call of the run: the list, `repeat` times, numbered from 0.
    pub fn calls(&self) -> impl Iterator<Item = (usize, &str)> {
        (0..self.repeat)
            .flat_map(move |_| self.urls.iter().map(String::as_str))
            .enumerate()
    }

    /// How many calls the run makes.
    pub fn total(&self) -> usize {
        self.urls.len().saturating_mul(self.repeat)
    }

    /// The headers the command sets, as `-v` shows them (values of secret ones hidden later).
    fn shown_headers(&self) -> Vec<(String, String)> {
        let mut shown = self.headers.clone();
        if let Some((_, defaults)) = &self.body {
            shown.extend(defaults.iter().map(|(n, v)| (n.to_string(), v.clone())));
        }
        shown
    }

    /// The request for `url`.
    pub fn request(&self, client: &resile::Client, url: &str) -> resile::RequestBuilder {
        let mut r = client
            .request(self.method.clone(), url)
            .idempotency_key(self.key.clone());
        if !self.query.is_empty() {
            r = r.query(&self.query);
        }
        if let Some((bytes, defaults)) = &self.body {
            for (name, value) in defaults {
                r = r.header(*name, value.as_str());
            }
            r = r.body(bytes.clone());
        }
        r
    }

    /// `url` as it may be printed.
    pub fn shown(&self, url: &str) -> String {
        redact_url(url, &self.redact)
    }

    /// An error's line for a call to `url`, with URLs redacted by the configured list too (the
    /// error's own `Display` knows only the built-in one), wherever they appear in it.
    pub fn describe(&self, e: &resile::Error, url: &str) -> String {
        match e {
            resile::Error::InvalidUrl { url, message } => {
                format!("invalid URL `{}`: {message}", self.shown(url))
            }
            resile::Error::BodyTooLarge { limit } if self.max_filesize.is_some() => {
                format!("the response body is larger than --max-filesize ({limit} bytes)")
            }
            other => {
                let mut line = redact_text(&other.to_string(), &self.redact);
                if self.h2c && connection_closed(other) {
                    line.push_str(
                        " (with --http2-prior-knowledge: a server that does not speak h2c \
                         closes or resets the connection so; try without it)",
                    );
                }
                let absolute = match (reqwest::Url::parse(url), &self.base_url) {
                    (Ok(absolute), _) => Some(absolute),
                    (Err(_), Some(base)) => base.join(url).ok(),
                    (Err(_), None) => None,
                };
                if let Some(note) = absolute.and_then(|u| unreached_proxy(other, u.as_str())) {
                    line.push_str(&note);
                }
                line
            }
        }
    }
}

/// Whether the call's last attempt ended with its connection closed or reset, as an
/// HTTP/1.x-only server closes it on an HTTP/2 preface (before the request went out, or while
/// it did; or, on a loaded machine, before hyper handed it the request: "connection was not
/// ready").
fn connection_closed(e: &resile::Error) -> bool {
    use resile::{LastCause, TransportError};
    matches!(e.last_cause(), Some(LastCause::Transport { kind: TransportError::Connect | TransportError::Reset | TransportError::Other, message })
        if message.contains("closed") || message.contains("reset") || message.contains("connection was not ready"))
}

/// When the call's last attempt could not connect (or resolve a name) and `url` goes through a
/// proxy from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, minus `NO_PROXY`, as
/// reqwest reads them): a note naming the proxy, which is then what could not be reached, since
/// the error itself does not say so. The proxy's credentials are not in its URI.
fn unreached_proxy(e: &resile::Error, url: &str) -> Option<String> {
    use resile::{LastCause, TransportError};
    if !matches!(
        e.last_cause(),
        Some(LastCause::Transport {
            kind: TransportError::Connect | TransportError::Dns,
            ..
        })
    ) {
        return None;
    }
    let uri: http::Uri = url.parse().ok()?;
    let proxy = hyper_util::client::proxy::matcher::Matcher::from_system().intercept(&uri)?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    Some(format!(
        " (through the proxy {} from the environment: HTTP_PROXY, HTTPS_PROXY or ALL_PROXY; \
         it is the proxy that could not be reached; NO_PROXY={host} goes direct)",
        proxy.uri()
    ))
}

type Sink = Arc<Mutex<Option<BufWriter<File>>>>;

pub async fn run(method: Method, args: CallArgs) -> Result<Exit, Failed> {
    let mut plan = Plan::new(method, &args)?;
    let config = settings::client_config(&args, &plan.headers)?;
    plan.redact = config.redact_query_params.clone();
    let style = args
        .paginate
        .as_deref()
        .map(|p| parse_paginate(p, args.page_size))
        .transpose()
        .map_err(|e| (Exit::Usage, e))?;
    if style.is_some() && (plan.method != Method::GET || plan.shape == Shape::Many) {
        return Err((Exit::Usage, "--paginate works with one GET only".into()));
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
                    ClientEvent::Engine(ev) => note!("* {}", ev.describe()),
                    other => note!("* {other:?}"),
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
    plan.base_url = client.base_url().cloned();

    let work = async {
        match (style, plan.shape) {
            (Some(style), _) => crate::walk::paginate(&client, &args, &plan, style).await,
            (None, Shape::Single) => single(&client, &args, &plan).await,
            (None, Shape::Many) => many::run(&client, &args, &plan).await,
        }
    };
    let writes = !matches!(
        plan.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let outcome = crate::interrupt::or_signal(&client, writes, work).await;
    if let Ok(mut guard) = sink.lock() {
        if let Some(w) = guard.as_mut() {
            let _ = w.flush();
        }
    }
    outcome
}

async fn single(client: &resile::Client, args: &CallArgs, plan: &Plan) -> Result<Exit, Failed> {
    let url = &plan.urls[0];
    let mut out = args.output.as_deref().map(OutFile::open).transpose()?;
    if args.verbose {
        output::show_request(
            plan.method.as_str(),
            url,
            &plan.query,
            &plan.shown_headers(),
            &plan.redact,
        );
    }
    // A GET into a file: streamed to it, and resumed where it breaks.
    if let (Some(out), true, None) = (&mut out, plan.method == Method::GET, &plan.body) {
        return crate::download::to_file(client, plan, url, args.include, args.verbose, out).await;
    }
    let response = match plan.request(client, url).send().await {
        Ok(response) => response,
        Err(e) => {
            let mut line = plan.describe(&e, url);
            if matches!(e, resile::Error::BodyTooLarge { .. })
                && plan.method == Method::GET
                && plan.max_filesize.is_none()
            {
                // A GET into a file is streamed, so the cap on buffered bodies is not in its way.
                line.push_str(
                    "; raise the cap with --max-filesize SIZE, or save it with -o FILE, which \
                     streams it",
                );
            }
            return Err((for_error(&e), line));
        }
    };
    if args.verbose {
        output::show_response(&response, &plan.redact);
    }
    output::write_response(&response, args.include, out.as_mut()).map_err(|e| {
        let to = args
            .output
            .as_ref()
            .map_or("stdout".to_string(), |p| p.display().to_string());
        crate::exit::cannot_write(args.output.is_none(), "the body ", &to, &e)
    })?;
    let redirect = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
    if redirect && !args.no_follow && !args.silent {
        note!("resile: {}", unfollowed(plan, url, &response));
    }
    Ok(status_exit(plan, url, response.status()))
}

/// Why a redirect came back as the answer although redirects are followed: the engine follows
/// only a `Location` that is an http(s) URL.
fn unfollowed(plan: &Plan, url: &str, response: &resile::Response) -> String {
    let answered = format!(
        "{} {} answered {}, not followed",
        plan.method,
        plan.shown(url),
        output::Status(response.status())
    );
    match response.headers().get(reqwest::header::LOCATION) {
        None => format!("{answered}: it has no Location"),
        Some(to) => format!(
            "{answered}: its Location `{}` is not an http(s) URL",
            plan.shown(&String::from_utf8_lossy(to.as_bytes()))
        ),
    }
}

/// The exit code of a single call's final status: 1 (and a line on stderr) for 4xx/5xx.
pub fn status_exit(plan: &Plan, url: &str, status: reqwest::StatusCode) -> Exit {
    if status.as_u16() >= 400 {
        note!(
            "resile: {} {} answered {}",
            plan.method,
            plan.shown(url),
            output::Status(status)
        );
        return Exit::HttpError;
    }
    Exit::Ok
}
