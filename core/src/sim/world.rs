use core::cmp::Reverse;
use core::time::Duration;
use std::collections::{BinaryHeap, HashMap};

use crate::classify::{Method, TransportError};
use crate::engine::{
    Action, AttemptHeaders, CallId, CallSpec, Engine, Event, Failure, FallbackUsed, Idempotency,
    Outcome, Response,
};
use crate::rng::Uuid;
use crate::time::{Instant, UnixTime};

/// What the sim server sees of a request.
#[derive(Clone, Debug)]
pub struct SimRequest {
    /// The engine's call id.
    pub call: CallId,
    /// The index of the call in the order the world started them (0-based).
    pub label: usize,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The method.
    pub method: Method,
    /// The `Idempotency-Key` the engine attached, if any.
    pub idempotency_key: Option<Uuid>,
    /// Whether the caller supplies its own key (the sim uses the call label as that key).
    pub has_own_key: bool,
    /// The token generation attached, if any.
    pub token: Option<u32>,
}

/// The headers and body of a call's last response (pages of a walk are read from it).
pub type LastReply = (Vec<(String, String)>, Option<serde_json::Value>);

/// What the sim server answers.
#[derive(Clone, Debug, PartialEq)]
pub enum SimReply {
    /// A response after `latency`.
    Status {
        /// The status.
        status: u16,
        /// Its headers.
        headers: Vec<(String, String)>,
        /// Its body, when the driver needs one (pages of a paginated walk).
        body: Option<serde_json::Value>,
        /// Time to answer.
        latency: Duration,
    },
    /// A transport failure after `latency`.
    Transport {
        /// Which.
        error: TransportError,
        /// Time until the failure shows.
        latency: Duration,
    },
    /// No answer at all: the attempt times out (or hangs when it has no timeout).
    Stall,
}

/// A server for the sim world.
pub trait Server {
    /// Answers one attempt at `now`.
    fn respond(&mut self, request: &SimRequest, now: Instant, wall: UnixTime) -> SimReply;
}

impl<F: FnMut(&SimRequest, Instant, UnixTime) -> SimReply> Server for F {
    fn respond(&mut self, request: &SimRequest, now: Instant, wall: UnixTime) -> SimReply {
        self(request, now, wall)
    }
}

/// How a call ended in the sim.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// A final response.
    Done {
        /// Its status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// When it ended.
        at: Instant,
    },
    /// A failure.
    Failed {
        /// The failure.
        failure: Failure,
        /// When it ended.
        at: Instant,
    },
    /// A failure answered with the call's fallback.
    FellBack {
        /// The failure it stands in for.
        failure: Failure,
        /// Which fallback.
        used: FallbackUsed,
        /// When it ended.
        at: Instant,
    },
}

impl CallResult {
    /// Attempts made.
    pub fn attempts(&self) -> u32 {
        match self {
            CallResult::Done { attempts, .. } => *attempts,
            CallResult::Failed { failure, .. } | CallResult::FellBack { failure, .. } => {
                failure.attempts
            }
        }
    }

    /// When the call ended.
    pub fn at(&self) -> Instant {
        match self {
            CallResult::Done { at, .. }
            | CallResult::Failed { at, .. }
            | CallResult::FellBack { at, .. } => *at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Reply {
        call: CallId,
        attempt: u32,
        index: usize,
    },
    Token {
        ok: bool,
    },
}

/// The token endpoint of the sim world.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenServer {
    /// Time to answer a fetch.
    pub latency: Duration,
    /// The lifetime of each token.
    pub expires_in: Option<Duration>,
    /// Fetch number `n` (1-based) fails when `n` is in this bitmask's bit `n-1`.
    pub fail_mask: u64,
}

impl Default for TokenServer {
    fn default() -> Self {
        TokenServer {
            latency: Duration::from_millis(20),
            expires_in: Some(Duration::from_secs(3600)),
            fail_mask: 0,
        }
    }
}

/// An engine, a server and a virtual clock.
pub struct World<S> {
    /// The engine under test.
    pub engine: Engine,
    /// The server.
    pub server: S,
    /// The token endpoint.
    pub token_server: TokenServer,
    /// Virtual time now.
    pub now: Instant,
    /// The wall clock at `Instant::ZERO`.
    pub wall_origin: UnixTime,
    /// Every event, in order.
    pub trace: Vec<Event>,
    /// Each call's result, by start order.
    pub results: Vec<Option<CallResult>>,
    /// Token fetches served.
    pub token_fetches: u32,
    /// Attempts sent (all calls).
    pub attempts: u64,
    /// The last response each call got, by start order.
    pub last_reply: HashMap<usize, LastReply>,
    /// The fleet's store, for an engine in fleet mode: it answers at once, on the world's clock.
    pub store: crate::fleet::MemoryStore,
    labels: HashMap<CallId, usize>,
    meta: Vec<(Method, bool)>,
    replies: Vec<Option<SimReply>>,
    pending: BinaryHeap<Reverse<(Instant, u64, Pending)>>,
    order: u64,
    keep_trace: bool,
}

impl<S: Server> World<S> {
    /// A world at time zero.
    pub fn new(engine: Engine, server: S) -> Self {
        World {
            engine,
            server,
            token_server: TokenServer::default(),
            now: Instant::ZERO,
            wall_origin: UnixTime::from_secs(1_700_000_000),
            trace: Vec::new(),
            results: Vec::new(),
            token_fetches: 0,
            store: crate::fleet::MemoryStore::new(),
            attempts: 0,
            last_reply: HashMap::new(),
            labels: HashMap::new(),
            meta: Vec::new(),
            replies: Vec::new(),
            pending: BinaryHeap::new(),
            order: 0,
            keep_trace: true,
        }
    }

    /// Drops events instead of keeping them (for big runs that only need totals).
    pub fn without_trace(mut self) -> Self {
        self.keep_trace = false;
        self
    }

    /// The wall clock now.
    pub fn wall(&self) -> UnixTime {
        self.wall_origin.saturating_add(self.now - Instant::ZERO)
    }

    /// Starts a call now; returns its label (start order).
    pub fn start(&mut self, spec: CallSpec<'_>) -> usize {
        self.meta
            .push((spec.method, spec.idempotency == Idempotency::Provided));
        let id = self.engine.start(spec, self.now);
        let label = self.results.len();
        self.results.push(None);
        self.labels.insert(id, label);
        self.pump();
        label
    }

    fn push(&mut self, at: Instant, p: Pending) {
        self.order += 1;
        self.pending.push(Reverse((at, self.order, p)));
    }

    /// Drains actions and events, turning sends into pending replies.
    pub(crate) fn pump(&mut self) {
        while let Some(action) = self.engine.poll_action() {
            match action {
                Action::Send {
                    call,
                    attempt,
                    timeout,
                    headers:
                        AttemptHeaders {
                            idempotency_key,
                            token,
                            ..
                        },
                } => {
                    self.attempts += 1;
                    let label = self.labels.get(&call).copied().unwrap_or(usize::MAX);
                    let (method, has_own_key) = self
                        .meta
                        .get(label)
                        .copied()
                        .unwrap_or((Method::Get, false));
                    let request = SimRequest {
                        call,
                        label,
                        attempt,
                        method,
                        idempotency_key,
                        has_own_key,
                        token,
                    };
                    let wall = self.wall();
                    let reply = self.server.respond(&request, self.now, wall);
                    let latency = match &reply {
                        SimReply::Status { latency, .. } | SimReply::Transport { latency, .. } => {
                            Some(*latency)
                        }
                        SimReply::Stall => None,
                    };
                    // An answer slower than the attempt's timeout never arrives: the engine keeps
                    // that deadline and times the attempt out itself, as with a real driver.
                    let at = match (latency, timeout) {
                        (Some(l), Some(t)) if l > t => continue,
                        (Some(l), _) => self.now + l,
                        (None, _) => continue, // a stall: no answer ever comes
                    };
                    let index = self.replies.len();
                    self.replies.push(Some(reply));
                    self.push(
                        at,
                        Pending::Reply {
                            call,
                            attempt,
                            index,
                        },
                    );
                }
                Action::FetchToken { .. } => {
                    self.token_fetches += 1;
                    let n = self.token_fetches;
                    let ok = n > 64 || self.token_server.fail_mask & (1 << (n - 1)) == 0;
                    let at = self.now + self.token_server.latency;
                    self.push(at, Pending::Token { ok });
                }
                Action::Done {
                    call,
                    status,
                    attempts,
                } => {
                    let at = self.now;
                    self.record(
                        call,
                        CallResult::Done {
                            status,
                            attempts,
                            at,
                        },
                    );
                }
                Action::Fail { call, failure } => {
                    let at = self.now;
                    self.record(call, CallResult::Failed { failure, at });
                }
                Action::Reserve {
                    call,
                    attempt,
                    host,
                    limit,
                    max_wait,
                } => {
                    let answer = self.store.reserve(&host, limit, max_wait, self.now);
                    self.engine
                        .handle_reservation(call, attempt, answer, self.now);
                }
                Action::Share { host, update } => self.store.share(&host, update, self.now),
                Action::Fallback {
                    call,
                    failure,
                    used,
                } => {
                    let at = self.now;
                    self.record(call, CallResult::FellBack { failure, used, at });
                }
                // An aborted attempt's answer never arrives (one past its deadline was never
                // scheduled, see `Send`; a hedge's loser is dropped here). The sim keeps no
                // connection pool.
                Action::Abort { call, attempt, .. } => self.drop_reply(call, attempt),
                Action::RecycleConnections { .. } => {}
            }
        }
        if self.keep_trace {
            self.trace
                .extend(core::iter::from_fn(|| self.engine.poll_event()));
        } else {
            self.engine.drain_events(|_| {});
        }
    }

    /// Forgets the pending answer of an aborted attempt, if one is scheduled, so the clock
    /// does not stop at a time nothing happens.
    fn drop_reply(&mut self, call: CallId, attempt: u32) {
        self.pending.retain(|Reverse((_, _, p))| {
            !matches!(p, Pending::Reply { call: c, attempt: a, .. } if *c == call && *a == attempt)
        });
    }

    fn record(&mut self, call: CallId, result: CallResult) {
        if let Some(label) = self.labels.remove(&call) {
            self.results[label] = Some(result);
        }
    }

    /// The next time anything happens, if anything will.
    pub fn next_wake(&self) -> Option<Instant> {
        let reply = self.pending.peek().map(|Reverse((at, _, _))| *at);
        match (reply, self.engine.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Jumps to the next wake-up and handles everything due then. `false` when nothing is left.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_wake() else {
            return false;
        };
        self.now = self.now.max(at);
        while let Some(Reverse((t, _, _))) = self.pending.peek() {
            if *t > self.now {
                break;
            }
            let Some(Reverse((_, _, p))) = self.pending.pop() else {
                break;
            };
            match p {
                Pending::Reply {
                    call,
                    attempt,
                    index,
                } => {
                    let reply = self.replies.get_mut(index).and_then(Option::take);
                    match reply {
                        Some(SimReply::Status {
                            status,
                            headers,
                            body,
                            ..
                        }) => {
                            let wall = self.wall();
                            let response = Response::new(status, &headers, wall);
                            self.engine.handle_attempt(
                                call,
                                attempt,
                                Outcome::Response(response),
                                self.now,
                            );
                            // Recorded before `pump` retires the call's label.
                            if let Some(&label) = self.labels.get(&call) {
                                self.last_reply.insert(label, (headers, body));
                            }
                        }
                        Some(SimReply::Transport { error, .. }) => {
                            self.engine.handle_attempt(
                                call,
                                attempt,
                                Outcome::Transport(error),
                                self.now,
                            );
                        }
                        _ => {}
                    }
                    if self.pending.is_empty() {
                        self.replies.clear();
                    }
                }
                Pending::Token { ok } => {
                    if ok {
                        self.engine
                            .token_fetched(self.token_server.expires_in, self.now);
                    } else {
                        self.engine.token_failed(self.now);
                    }
                }
            }
            self.pump();
        }
        self.engine.handle_timeout(self.now);
        self.pump();
        true
    }

    /// Runs until nothing is left or `max_steps` steps were taken; returns the steps taken.
    pub fn drive_bounded(&mut self, max_steps: usize) -> usize {
        let mut steps = 0;
        while steps < max_steps && self.step() {
            steps += 1;
        }
        steps
    }

    /// Runs until virtual time `until` (calls due later stay pending).
    pub fn run_until(&mut self, until: Instant, max_steps: usize) {
        let mut steps = 0;
        while steps < max_steps {
            match self.next_wake() {
                Some(at) if at <= until => {
                    self.step();
                    steps += 1;
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }
}
