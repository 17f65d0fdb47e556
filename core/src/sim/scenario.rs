use core::time::Duration;
use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::walk::run_walk;
use super::world::{CallResult, Server, SimReply, SimRequest, World};
use crate::breaker::{BreakerHold, BreakerSnapshot, HoldKind};
use crate::classify::{Method, TransportError};
use crate::config::Config;
use crate::engine::{
    CallSpec, Engine, Event, EventKind, FallbackSpec, FallbackStore, FallbackWrites, Idempotency,
};
use crate::paginate::{PageStyle, PaginateError};
use crate::time::{Instant, UnixTime};

/// A fault instead of a normal response.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The connection is refused (never sent).
    Connect,
    /// The connection closes without a response (maybe processed).
    Reset,
    /// The body ends before its length (maybe processed).
    Truncate,
    /// No answer ever: the attempt times out.
    Stall,
    /// An answer the client cannot read (the chaos server sends a head over every client's
    /// limit): the server would send the same again, so it is not repeated (maybe processed).
    Unreadable,
}

/// One scripted answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// The status (default 200). Ignored with a fault.
    pub status: Option<u16>,
    /// Headers. A value `{date+N}` becomes the HTTP-date N seconds after the reply's wall time
    /// (and `{date-N}` before it), so date-form `Retry-After` scripts replay on any clock.
    pub headers: BTreeMap<String, String>,
    /// Time before the answer.
    pub delay_ms: u64,
    /// A fault instead of a response.
    pub fault: Option<Fault>,
    /// The write is applied even though the answer is an error or a fault (commit-then-fail).
    pub commit: bool,
    /// The response body (JSON), for pages of a paginated walk.
    pub body: Option<serde_json::Value>,
}

/// Calls the scenario starts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CallPlan {
    /// When the first of these calls starts.
    pub at_ms: u64,
    /// How many.
    pub count: u32,
    /// Time between their starts.
    pub spacing_ms: u64,
    /// Method.
    pub method: Method,
    /// Idempotency-Key policy.
    pub idempotency: Idempotency,
    /// Carries an access token.
    pub token: bool,
    /// Deadline override.
    pub deadline_ms: Option<u64>,
    /// Attempts override.
    pub max_attempts: Option<u32>,
    /// The call's fallback.
    pub fallback: Option<FallbackPlan>,
}

/// A call's fallback in a scenario: `{"source": "value"}` (the driver's value: status 200,
/// body `"fallback"`) or `{"source": "last_good", "max_age_ms": N}` (the last 2xx answer to
/// an earlier call of the scenario that asked for it too, all calls being the same request).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum FallbackPlan {
    /// A value.
    Value {
        /// Whether a write that may have been applied falls back too.
        #[serde(default)]
        writes: FallbackWrites,
    },
    /// The last good response.
    LastGood {
        /// Its oldest usable age.
        max_age_ms: u64,
        /// Whether a write that may have been applied falls back too.
        #[serde(default)]
        writes: FallbackWrites,
    },
}

impl FallbackPlan {
    /// The engine's spec, given when the last good response was stored (if it was).
    pub fn spec(self, stored_at: Option<Instant>) -> Option<FallbackSpec> {
        let (spec, writes) = match self {
            FallbackPlan::Value { writes } => (FallbackSpec::value(), writes),
            FallbackPlan::LastGood { max_age_ms, writes } => (
                FallbackSpec::stored(stored_at?, Duration::from_millis(max_age_ms)),
                writes,
            ),
        };
        Some(spec.writes(writes))
    }

    /// Whether a good answer of a call with this plan is kept for later calls.
    pub fn keeps_last_good(self) -> bool {
        matches!(self, FallbackPlan::LastGood { .. })
    }
}

/// A breaker control at a time (all calls go to one host).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlStep {
    /// When, from the start.
    pub at_ms: u64,
    /// What.
    #[serde(rename = "do")]
    pub action: ControlAction,
}

/// What a control step does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Isolate the breaker (a new hold).
    Isolate,
    /// Force it closed (a new hold).
    ForceClosed,
    /// Release the oldest hold still held.
    Release,
    /// Reset it.
    Reset,
    /// Export every breaker (kept, as JSON, for `import`).
    Export,
    /// Import the last export.
    Import,
}

impl Default for CallPlan {
    fn default() -> Self {
        CallPlan {
            at_ms: 0,
            count: 1,
            spacing_ms: 0,
            method: Method::Get,
            idempotency: Idempotency::Auto,
            token: false,
            deadline_ms: None,
            max_attempts: None,
            fallback: None,
        }
    }
}

/// The token endpoint's behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenPlan {
    /// Time to answer.
    pub latency_ms: u64,
    /// Token lifetime.
    pub expires_in_ms: Option<u64>,
    /// Which fetches (1-based) fail.
    pub fail_fetches: Vec<u32>,
    /// Tokens of these generations are rejected with 401 by the server.
    pub reject_generations: Vec<u32>,
}

impl Default for TokenPlan {
    fn default() -> Self {
        TokenPlan {
            latency_ms: 20,
            expires_in_ms: Some(3_600_000),
            fail_fetches: Vec::new(),
            reject_generations: Vec::new(),
        }
    }
}

/// A paginated walk: the scenario's calls are its pages, one after the other, each a GET with
/// the engine's retries, walked by the core's [`crate::paginate::Walk`] from the last page's
/// headers and body (the scripted replies carry them). The pages take their attempts and
/// deadline from the walk's default [`crate::paginate::WalkPolicy`], not from the call plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagePlan {
    /// How the collection is paged.
    pub style: PageStyle,
    /// JSON pointer to the items in a page body (`None`: the body is the array).
    #[serde(default)]
    pub items: Option<String>,
    /// The most pages to walk.
    #[serde(default = "default_max_pages")]
    pub max_pages: u64,
}

fn default_max_pages() -> u64 {
    1000
}

/// Rule-derived expectations; every field given is checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expect {
    /// Total attempts over all calls.
    pub attempts: Option<u64>,
    /// At most this many attempts over all calls.
    pub max_attempts: Option<u64>,
    /// Each call's outcome in start order: `done:STATUS` or `fail:WHY`.
    pub outcomes: Option<Vec<String>>,
    /// How many calls ended each way.
    pub outcome_counts: Option<BTreeMap<String, u32>>,
    /// Every scheduled retry's delay, in order, in whole milliseconds.
    pub retry_delays_ms: Option<Vec<u64>>,
    /// Every scheduled retry's reason, in order.
    pub retry_whys: Option<Vec<String>>,
    /// Writes the server applied.
    pub side_effects: Option<u32>,
    /// Token fetches.
    pub token_fetches: Option<u32>,
    /// Breaker trips.
    pub breaker_trips: Option<u64>,
    /// Hedges sent over all calls (`hedge_sent` events).
    pub hedges: Option<u64>,
    /// Attempts that lost to a hedge race and were aborted (`attempt_aborted` with
    /// `hedge_lost`), over all calls.
    pub hedges_lost: Option<u64>,
    /// Every call ends by this virtual time.
    pub finished_by_ms: Option<u64>,
    /// A paginated walk yields these item ids (the `id` field, or the item itself when it is a
    /// number), in order.
    pub item_ids: Option<Vec<u64>>,
    /// A paginated walk ends with this error (`repeated`, `items_not_array`, `bad_cursor`,
    /// `too_many_pages`, or `call:WHY` when a page's call failed); absent: it ends cleanly.
    pub walk_error: Option<String>,
    /// At least this many waits (`waiting` and `queued` events) with each reason, e.g.
    /// `{"adaptive_rate": 3}`.
    pub min_waits: Option<BTreeMap<String, u32>>,
    /// The breaker controls' events, in order (`isolated`, `reset`, `imported`, ...).
    pub breaker_controls: Option<Vec<String>>,
}

/// A scripted server, a policy, a seed, calls, and what the rules say must happen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name.
    pub name: String,
    /// What it shows.
    #[serde(default)]
    pub description: String,
    /// The engine's seed.
    #[serde(default)]
    pub seed: u64,
    /// The policy.
    #[serde(default, deserialize_with = "crate::config::deserialize")]
    pub config: Config,
    /// The calls.
    pub calls: Vec<CallPlan>,
    /// Replies in the order requests arrive; the last repeats.
    pub replies: Vec<Reply>,
    /// Each call gets its own copy of `replies` instead of sharing one sequence.
    #[serde(default)]
    pub per_call: bool,
    /// The token endpoint.
    #[serde(default)]
    pub token: TokenPlan,
    /// Walk these calls as the pages of a collection instead of starting them all.
    #[serde(default)]
    pub paginate: Option<PagePlan>,
    /// Breaker controls, at their times (before a call that starts at the same time).
    #[serde(default)]
    pub controls: Vec<ControlStep>,
    /// The calls never overlap (each ends well before the next starts), so every driver must
    /// make the sim's decisions line for line, as for a single call.
    #[serde(default)]
    pub sequential: bool,
    /// Expectations.
    #[serde(default)]
    pub expect: Expect,
}

/// A server that replays a scenario's replies.
#[derive(Clone, Debug)]
pub struct ScriptedServer {
    replies: Vec<Reply>,
    per_call: bool,
    next: usize,
    next_per_call: Vec<usize>,
    applied: HashSet<String>,
    reject_generations: Vec<u32>,
    /// Writes applied.
    pub side_effects: u32,
    /// Requests seen.
    pub requests: u32,
}

impl ScriptedServer {
    /// A server answering with `replies` in order (the last repeating).
    pub fn new(replies: Vec<Reply>, per_call: bool) -> Self {
        ScriptedServer {
            replies,
            per_call,
            next: 0,
            next_per_call: Vec::new(),
            applied: HashSet::new(),
            reject_generations: Vec::new(),
            side_effects: 0,
            requests: 0,
        }
    }

    fn next_reply(&mut self, label: usize) -> Reply {
        let index = if self.per_call {
            if self.next_per_call.len() <= label {
                self.next_per_call.resize(label + 1, 0);
            }
            let i = self.next_per_call[label];
            self.next_per_call[label] += 1;
            i
        } else {
            let i = self.next;
            self.next += 1;
            i
        };
        let last = self.replies.len().saturating_sub(1);
        self.replies
            .get(index.min(last))
            .cloned()
            .unwrap_or_default()
    }
}

/// Expands `{date+N}` / `{date-N}` into an HTTP-date relative to `wall`.
pub fn expand_header(value: &str, wall: UnixTime) -> String {
    let Some(inner) = value
        .strip_prefix("{date")
        .and_then(|v| v.strip_suffix('}'))
    else {
        return value.to_string();
    };
    let (sign, digits) = inner.split_at(inner.len().min(1));
    let Ok(n) = digits.parse::<u64>() else {
        return value.to_string();
    };
    let secs = match sign {
        "+" => wall.as_secs().saturating_add(n),
        "-" => wall.as_secs().saturating_sub(n),
        _ => return value.to_string(),
    };
    crate::headers::fmt_http_date(secs)
}

impl Server for ScriptedServer {
    fn respond(&mut self, request: &SimRequest, _now: Instant, wall: UnixTime) -> SimReply {
        self.requests += 1;
        if let Some(g) = request.token {
            if self.reject_generations.contains(&g) {
                return SimReply::Status {
                    status: 401,
                    headers: vec![(
                        "WWW-Authenticate".into(),
                        "Bearer error=\"invalid_token\"".into(),
                    )],
                    body: None,
                    latency: Duration::from_millis(1),
                };
            }
        }
        let reply = self.next_reply(request.label);
        let status = reply.status.unwrap_or(200);
        let applies = reply.commit || (reply.fault.is_none() && (200..300).contains(&status));
        if applies && matches!(request.method, Method::Post | Method::Patch) {
            let key = match (request.idempotency_key, request.has_own_key) {
                (Some(k), _) => Some(k.to_string()),
                (None, true) => Some(format!("own-{}", request.label)),
                (None, false) => None,
            };
            let first = key.is_none_or(|k| self.applied.insert(k));
            if first {
                self.side_effects += 1;
            }
        }
        let latency = Duration::from_millis(reply.delay_ms);
        match reply.fault {
            Some(Fault::Stall) => SimReply::Stall,
            Some(Fault::Connect) => SimReply::Transport {
                error: TransportError::Connect,
                latency,
            },
            Some(Fault::Reset) => SimReply::Transport {
                error: TransportError::Reset,
                latency,
            },
            Some(Fault::Truncate) => SimReply::Transport {
                error: TransportError::Truncated,
                latency,
            },
            Some(Fault::Unreadable) => SimReply::Transport {
                error: TransportError::Unreadable,
                latency,
            },
            None => SimReply::Status {
                status,
                headers: reply
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), expand_header(v, wall.saturating_add(latency))))
                    .collect(),
                body: reply.body,
                latency,
            },
        }
    }
}

/// What running a scenario produced.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioResult {
    /// The scenario's name.
    pub name: String,
    /// Every event in order.
    pub trace: Vec<Event>,
    /// Each call's outcome in start order (`done:STATUS` / `fail:WHY` / `pending`).
    pub outcomes: Vec<String>,
    /// Total attempts.
    pub attempts: u64,
    /// Writes the server applied.
    pub side_effects: u32,
    /// Token fetches.
    pub token_fetches: u32,
    /// Breaker trips.
    pub breaker_trips: u64,
    /// Virtual time when the last call ended.
    pub finished_ms: u64,
    /// The items a paginated walk yielded, in order.
    pub items: Vec<serde_json::Value>,
    /// How a paginated walk ended, if not cleanly (see [`Expect::walk_error`]).
    pub walk_error: Option<String>,
    /// Expectation mismatches (empty when the scenario holds).
    pub mismatches: Vec<String>,
}

/// The outcome label of a call result.
pub fn outcome_label(r: Option<&CallResult>) -> String {
    match r {
        Some(CallResult::Done { status, .. }) => format!("done:{status}"),
        Some(CallResult::Failed { failure, .. }) => format!("fail:{}", failure.why.name()),
        Some(CallResult::FellBack { failure, .. }) => {
            format!("fallback:{}", failure.why.name())
        }
        None => "pending".to_string(),
    }
}

impl Scenario {
    /// Reads a scenario from JSON.
    pub fn from_json(text: &str) -> Result<Scenario, String> {
        let s: Scenario = serde_json::from_str(text).map_err(|e| format!("scenario: {e}"))?;
        s.config
            .validate()
            .map_err(|e| format!("scenario config: {e}"))?;
        if s.replies.is_empty() {
            return Err("scenario: `replies` must not be empty".into());
        }
        Ok(s)
    }
}

/// Runs a scenario on the sim driver and checks its expectations.
pub fn run_scenario(s: &Scenario) -> Result<ScenarioResult, crate::ConfigError> {
    let engine = Engine::new(s.config.clone(), s.seed, Instant::ZERO)?;
    let mut server = ScriptedServer::new(s.replies.clone(), s.per_call);
    server.reject_generations = s.token.reject_generations.clone();
    let mut world = World::new(engine, server);
    world.token_server.latency = Duration::from_millis(s.token.latency_ms);
    world.token_server.expires_in = s.token.expires_in_ms.map(Duration::from_millis);
    world.token_server.fail_mask = s
        .token
        .fail_fetches
        .iter()
        .filter(|n| (1..=64).contains(*n))
        .fold(0, |m, n| m | 1 << (n - 1));

    // Starts in time order, stable for equal times.
    let mut starts: Vec<(u64, usize, &CallPlan)> = Vec::new();
    for plan in &s.calls {
        for i in 0..u64::from(plan.count) {
            starts.push((
                plan.at_ms.saturating_add(i.saturating_mul(plan.spacing_ms)),
                starts.len(),
                plan,
            ));
        }
    }
    starts.sort_by_key(|(at, i, _)| (*at, *i));
    const HOST: &str = "http://sim.test";
    let max_steps = 1_000_000;
    let spec_for = |plan: &CallPlan| {
        let mut spec = CallSpec::new(plan.method, HOST).idempotency(plan.idempotency);
        spec.needs_token = plan.token;
        spec.deadline = plan.deadline_ms.map(Duration::from_millis);
        spec.max_attempts = plan.max_attempts;
        spec
    };
    let mut items = Vec::new();
    let mut walk_error = None;
    match &s.paginate {
        None => {
            let mut controls = Controls::default();
            let mut steps = s.controls.iter().peekable();
            let mut last_good = FallbackStore::<()>::default();
            let mut plans: Vec<&CallPlan> = Vec::new();
            for (at, _, plan) in &starts {
                while let Some(step) = steps.next_if(|c| c.at_ms <= *at) {
                    world.run_until(Instant::from_millis(step.at_ms), max_steps);
                    let (now, wall) = (world.now, world.wall());
                    controls.apply(&mut world.engine, step.action, now, wall);
                    world.pump();
                }
                world.run_until(Instant::from_millis(*at), max_steps);
                keep_last_good(&world.results, &plans, &mut last_good);
                let mut spec = spec_for(plan);
                spec.fallback = plan
                    .fallback
                    .and_then(|f| f.spec(last_good.get(LAST_GOOD_KEY).map(|(_, at)| at)));
                plans.push(plan);
                world.start(spec);
            }
            for step in steps {
                world.run_until(Instant::from_millis(step.at_ms), max_steps);
                let (now, wall) = (world.now, world.wall());
                controls.apply(&mut world.engine, step.action, now, wall);
                world.pump();
            }
            world.drive_bounded(max_steps);
        }
        Some(walk) => {
            // The pages, one call after the other; the first call plan shapes them all.
            let plan = s.calls.first().cloned().unwrap_or_default();
            (items, walk_error) = run_walk(&mut world, walk, &plan, max_steps);
        }
    }

    let outcomes: Vec<String> = world
        .results
        .iter()
        .map(|r| outcome_label(r.as_ref()))
        .collect();
    let finished_ms = world
        .results
        .iter()
        .flatten()
        .map(|r| r.at().as_millis())
        .max()
        .unwrap_or(0);
    let mut result = ScenarioResult {
        name: s.name.clone(),
        outcomes,
        attempts: world.attempts,
        side_effects: world.server.side_effects,
        token_fetches: world.token_fetches,
        breaker_trips: world.engine.stats().breaker_trips,
        finished_ms,
        trace: std::mem::take(&mut world.trace),
        items,
        walk_error,
        mismatches: Vec::new(),
    };
    result.mismatches = check(&s.expect, &result);
    Ok(result)
}

/// All of a scenario's calls are one request: its last good answer has one key.
const LAST_GOOD_KEY: &str = "scenario";

/// Keeps the latest 2xx answer of a call whose plan keeps last good responses.
fn keep_last_good(
    results: &[Option<CallResult>],
    plans: &[&CallPlan],
    store: &mut FallbackStore<()>,
) {
    let latest = results
        .iter()
        .zip(plans)
        .filter(|(_, p)| p.fallback.is_some_and(FallbackPlan::keeps_last_good))
        .filter_map(|(r, _)| match r {
            Some(CallResult::Done { status, at, .. }) if (200..300).contains(status) => Some(*at),
            _ => None,
        })
        .max();
    if let Some(at) = latest {
        if store
            .get(LAST_GOOD_KEY)
            .is_none_or(|(_, stored)| stored < at)
        {
            store.put(LAST_GOOD_KEY.into(), (), 0, at);
        }
    }
}

/// The sim's side of the control steps: the holds taken and the last export.
#[derive(Default)]
struct Controls {
    holds: std::collections::VecDeque<BreakerHold>,
    exported: Option<String>,
}

impl Controls {
    fn apply(&mut self, engine: &mut Engine, action: ControlAction, now: Instant, wall: UnixTime) {
        const HOST: &str = "http://sim.test";
        match action {
            ControlAction::Isolate | ControlAction::ForceClosed => {
                let kind = if action == ControlAction::Isolate {
                    HoldKind::Isolate
                } else {
                    HoldKind::ForceClosed
                };
                if let Ok(hold) = engine.hold_breaker(HOST, kind, now) {
                    self.holds.push_back(hold);
                }
            }
            ControlAction::Release => {
                if let Some(hold) = self.holds.pop_front() {
                    engine.release_breaker(hold, now);
                }
            }
            ControlAction::Reset => {
                let _ = engine.reset_breaker(HOST, now);
            }
            ControlAction::Export => {
                self.exported = Some(engine.export_breakers(now, Some(wall)).to_json());
            }
            ControlAction::Import => {
                if let Some(snapshot) = self
                    .exported
                    .as_deref()
                    .and_then(|t| BreakerSnapshot::from_json(t).ok())
                {
                    let _ = engine.import_breakers(&snapshot, now, Some(wall));
                }
            }
        }
    }
}

/// The breaker controls' event names in a trace, in order.
pub fn control_lines(trace: &[Event]) -> Vec<String> {
    trace
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::BreakerControlled { control, .. } => Some(control.name().to_string()),
            _ => None,
        })
        .collect()
}

fn retry_lines(trace: &[Event]) -> (Vec<u64>, Vec<String>) {
    trace
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::RetryScheduled { delay, why, .. } => Some((
                delay.as_millis() as u64,
                serde_json::to_value(why).ok()?.as_str()?.to_string(),
            )),
            _ => None,
        })
        .unzip()
}

/// The label an expectation names a pagination error by.
pub fn walk_error_label(e: &PaginateError) -> String {
    match e {
        PaginateError::Repeated(_) => "repeated",
        PaginateError::ItemsNotArray { .. } => "items_not_array",
        PaginateError::BadCursor { .. } => "bad_cursor",
        PaginateError::TooManyPages { .. } => "too_many_pages",
    }
    .to_string()
}

/// The id of an item: its `id` field, or the item itself when it is a number.
pub fn item_id(item: &serde_json::Value) -> Option<u64> {
    item.get("id")
        .and_then(serde_json::Value::as_u64)
        .or_else(|| item.as_u64())
}

/// Compares a result with its expectations; each mismatch is one line.
pub fn check(expect: &Expect, r: &ScenarioResult) -> Vec<String> {
    let mut out = Vec::new();
    let mut eq = |what: &str, want: String, got: String| {
        if want != got {
            out.push(format!("{what}: expected {want}, got {got}"));
        }
    };
    if let Some(n) = expect.attempts {
        eq("attempts", n.to_string(), r.attempts.to_string());
    }
    if let Some(o) = &expect.outcomes {
        eq("outcomes", format!("{o:?}"), format!("{:?}", r.outcomes));
    }
    if let Some(counts) = &expect.outcome_counts {
        let mut got: BTreeMap<String, u32> = BTreeMap::new();
        for o in &r.outcomes {
            *got.entry(o.clone()).or_default() += 1;
        }
        eq("outcome counts", format!("{counts:?}"), format!("{got:?}"));
    }
    let (delays, whys) = retry_lines(&r.trace);
    if let Some(d) = &expect.retry_delays_ms {
        eq("retry delays (ms)", format!("{d:?}"), format!("{delays:?}"));
    }
    if let Some(w) = &expect.retry_whys {
        eq("retry reasons", format!("{w:?}"), format!("{whys:?}"));
    }
    if let Some(n) = expect.side_effects {
        eq("side effects", n.to_string(), r.side_effects.to_string());
    }
    if let Some(n) = expect.token_fetches {
        eq("token fetches", n.to_string(), r.token_fetches.to_string());
    }
    if let Some(n) = expect.breaker_trips {
        eq("breaker trips", n.to_string(), r.breaker_trips.to_string());
    }
    if let Some(want) = &expect.breaker_controls {
        eq(
            "breaker controls",
            format!("{want:?}"),
            format!("{:?}", control_lines(&r.trace)),
        );
    }
    let count = |f: fn(&EventKind) -> bool| r.trace.iter().filter(|e| f(&e.kind)).count();
    if let Some(n) = expect.hedges {
        let got = count(|k| matches!(k, EventKind::HedgeSent { .. }));
        eq("hedges", n.to_string(), got.to_string());
    }
    if let Some(n) = expect.hedges_lost {
        let got = count(|k| {
            matches!(
                k,
                EventKind::AttemptAborted {
                    why: crate::Why::HedgeLost,
                    ..
                }
            )
        });
        eq("hedges lost", n.to_string(), got.to_string());
    }
    if let Some(max) = expect.max_attempts {
        if r.attempts > max {
            out.push(format!(
                "attempts: expected at most {max}, got {}",
                r.attempts
            ));
        }
    }
    if let Some(ids) = &expect.item_ids {
        let got: Vec<Option<u64>> = r.items.iter().map(item_id).collect();
        let want: Vec<Option<u64>> = ids.iter().copied().map(Some).collect();
        if got != want {
            out.push(format!("item ids: expected {want:?}, got {got:?}"));
        }
    }
    if expect.walk_error != r.walk_error {
        out.push(format!(
            "walk ended with {:?}, expected {:?}",
            r.walk_error, expect.walk_error
        ));
    }
    if let Some(min) = &expect.min_waits {
        for (why, want) in min {
            let got = r
                .trace
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Waiting { .. } | EventKind::Queued { .. }))
                .filter(|e| e.kind.why().is_some_and(|w| w.name() == why))
                .count();
            if got < *want as usize {
                out.push(format!(
                    "waits ({why}): expected at least {want}, got {got}"
                ));
            }
        }
    }
    if let Some(by) = expect.finished_by_ms {
        if r.finished_ms > by {
            out.push(format!(
                "finished at {} ms, expected by {by} ms",
                r.finished_ms
            ));
        }
    }
    out
}
