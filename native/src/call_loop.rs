//! One call's loop: the engine's orders for a call, turned into attempts by whatever performs
//! them (an [`Exchange`]): the client's own transport, or the rest of a reqwest-middleware
//! stack. The loop owns the order channel; the exchange owns the wire and the answer.
//!
//! ```text
//!   start ─▶ Send  ─▶ exchange.send: one more attempt out (with hedging, several at once)
//!                  ─▶ a response: exchange.received ─▶ the engine
//!                  ─▶ a failure below HTTP          ─▶ the engine
//!            Abort ─▶ that attempt is dropped (timed out, or lost to a hedge)
//!            Done  ─▶ exchange.done: the call's answer (the attempts still out are dropped)
//!            Fail  ─▶ Error::from_failure
//! ```
//!
//! Orders are read before attempt results: after an answer the engine has already queued what
//! follows (a loser's `Abort`, `Done`), and those are carried out before any other attempt is
//! looked at.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future;
use futures::{Future, StreamExt};
use tracing::Instrument;

use resile_core::{CallId, CallSpec, Outcome, TransportError, UuidText, Why};

use crate::control::FallbackAnswer;
use crate::driver::{CallGuard, CallLog, CallMsg, Failed, SendOrder, Shared};
use crate::error::{Error, FailureContext, LastCause};
use crate::orders::Orders;
use crate::telemetry::{self, AttemptSpan, Ended, Target};
use crate::transport::Attempt;

/// Performs the attempts of one call and keeps what the call will answer with. An attempt
/// borrows what the exchange borrows (the request, the client), never the exchange itself, so
/// several can be out at once while the exchange takes in the answers.
pub(crate) trait Exchange {
    /// A response, as whoever performed the attempt has it.
    type Received;
    /// What the call answers with once the engine says `Done`.
    type Output;
    /// One attempt in progress (run in place by the call's loop, which is boxed once).
    type Attempt: Future<Output = Attempt<Self::Received>> + Send;

    /// Starts one attempt the engine ordered, with the call's request id formatted once by the
    /// loop (`request_id`: the engine's id of the order, the same on every attempt). Dropped
    /// unfinished when the engine aborts it.
    fn send(&mut self, order: SendOrder, request_id: Option<&UuidText>) -> Self::Attempt;

    /// Tells the engine what a response means (through `report`, exactly once) and keeps it as
    /// the call's latest answer.
    fn received(&mut self, received: Self::Received, report: impl FnOnce(Outcome<'_>));

    /// The latest attempt ended without a response: forget the previous one.
    fn lost(&mut self);

    /// The status of the latest answer kept, if any.
    fn last_status(&self) -> Option<u16>;

    /// What the decoder said about the latest answer, if it could not decode it.
    fn undecodable(&mut self) -> Option<(String, String)> {
        None
    }

    /// The engine opened the call as `id` (a download's body is taken up under it).
    fn opened(&mut self, id: CallId) {
        let _ = id;
    }

    /// The engine says the latest answer is final.
    fn done(self, attempts: u32, request_id: Option<UuidText>) -> Result<Self::Output, Error>;

    /// The engine says the call answers with its fallback; `None` if this exchange gave the
    /// call none (the engine then never says so, but the call fails cleanly if it did).
    fn fallback(
        self,
        answer: FallbackAnswer,
        attempts: u32,
        request_id: Option<UuidText>,
    ) -> Option<Result<Self::Output, Error>>
    where
        Self: Sized,
    {
        let _ = (answer, attempts, request_id);
        None
    }
}

/// One attempt out: its number, its time limit (for the message if it is aborted) and its
/// span.
struct Out<'t> {
    n: u32,
    /// Milliseconds.
    timeout_ms: Option<u32>,
    span: AttemptSpan<'t>,
}

/// The attempts out, each run in its span (entered around every poll and drop of the attempt,
/// as `tracing`'s `Instrumented` does, from the span its `Out` keeps rather than a second copy
/// of it beside the attempt). Hedging aside there is one at a time: it runs in place, in
/// `slot` (pinned where the call's loop is, itself boxed once), and only a second one out at
/// once is boxed.
struct Outs<'t, 'p, A> {
    first: Option<Out<'t>>,
    slot: Pin<&'p mut Option<A>>,
    rest: Vec<(Out<'t>, Pin<Box<A>>)>,
}

impl<'t, 'p, A> Outs<'t, 'p, A> {
    fn new(slot: Pin<&'p mut Option<A>>) -> Self {
        Outs {
            first: None,
            slot,
            rest: Vec::new(),
        }
    }

    /// Puts the attempt `make` makes out: in place when the place is free, so the attempt's
    /// future (the request, reqwest's pending send) is made where it runs rather than moved
    /// there.
    #[inline(always)]
    fn push(&mut self, out: Out<'t>, make: impl FnOnce() -> A) {
        if self.first.is_none() && self.slot.is_none() {
            self.slot.set(Some(make()));
            self.first = Some(out);
        } else {
            self.rest.push((out, Box::pin(make())));
        }
    }

    /// Takes attempt `n` out, if it is still out; the attempt itself is dropped.
    fn take(&mut self, n: u32) -> Option<Out<'t>> {
        if self.first.as_ref().is_some_and(|o| o.n == n) {
            let first = self.first.take()?;
            first.span.inside(|| self.slot.set(None));
            return Some(first);
        }
        let i = self.rest.iter().position(|(o, _)| o.n == n)?;
        let (out, attempt) = self.rest.swap_remove(i);
        out.span.inside(|| drop(attempt));
        Some(out)
    }

    /// The attempts still out when the call ends are dropped: their spans say so.
    fn abandon(&mut self) {
        if let Some(first) = self.first.take() {
            first.span.inside(|| self.slot.set(None));
            first.span.end(Ended::Abandoned);
        }
        for (out, attempt) in self.rest.drain(..) {
            out.span.inside(|| drop(attempt));
            out.span.end(Ended::Abandoned);
        }
    }
}

impl<'t, R, A: Future<Output = Attempt<R>>> Outs<'t, '_, A> {
    /// The first attempt out to finish, taken out (pending while none is out).
    #[inline(always)]
    fn poll_first_done(&mut self, cx: &mut Context<'_>) -> Poll<(Out<'t>, Attempt<R>)> {
        if let (Some(attempt), Some(first)) = (self.slot.as_mut().as_pin_mut(), &self.first) {
            if let Poll::Ready(done) = first.span.inside(|| attempt.poll(cx)) {
                let first = self.first.take();
                if let Some(out) = first {
                    out.span.inside(|| self.slot.set(None));
                    return Poll::Ready((out, done));
                }
            }
        }
        for i in 0..self.rest.len() {
            let (out, attempt) = &mut self.rest[i];
            if let Poll::Ready(done) = out.span.inside(|| attempt.as_mut().poll(cx)) {
                let (out, attempt) = self.rest.swap_remove(i);
                out.span.inside(|| drop(attempt));
                return Poll::Ready((out, done));
            }
        }
        Poll::Pending
    }
}

/// What the call loop takes up next: an order, or an attempt that finished.
enum Next<'t, R> {
    /// The engine's next order; `None` once the driver dropped the call.
    Order(Option<CallMsg>),
    /// An attempt out finished.
    Finished(Out<'t>, Attempt<R>),
}

/// The next order, or else the first attempt out to finish: orders first, so what the engine
/// decided after an answer (a loser's `Abort`, `Done`) is carried out before any other attempt
/// is looked at. One poll of both in place, rather than a `select` whose output (an attempt's
/// whole response) is moved through its own layers.
fn next<'o, 't, 'p, R, A: Future<Output = Attempt<R>>>(
    orders: &'o mut Orders,
    out: &'o mut Outs<'t, 'p, A>,
) -> impl Future<Output = Next<'t, R>> + use<'o, 't, 'p, R, A> {
    future::poll_fn(move |cx| {
        if let Poll::Ready(msg) = orders.poll_next_unpin(cx) {
            return Poll::Ready(Next::Order(msg));
        }
        out.poll_first_done(cx).map(|(done, attempt)| {
            // The loop reports this attempt's end itself, and reads the orders that follow
            // before it waits again: they need no wake-up of the call's task.
            orders.quiet();
            Next::Finished(done, attempt)
        })
    })
}

/// Runs one call in its `span`: starts it on the engine, performs every attempt it orders, and
/// answers with the exchange's output or the engine's failure. Events of the call go to `log`
/// as well, and each attempt to `target` gets its span and its measurement ([`telemetry`]).
/// The exchange is made once the engine's first order for the call arrives: a call queued
/// behind the concurrency limit holds only what makes it.
///
/// Bounded by the engine: every order is an attempt it allowed, then `Done` or `Fail`.
// The integrations' entry point; the client starts its calls with [`launch`] in its own
// future, which keeps nothing of the call's spec once the call has started.
#[cfg_attr(not(feature = "reqwest-middleware"), allow(dead_code))]
pub(crate) async fn drive<E: Exchange>(
    shared: &Arc<Shared>,
    spec: CallSpec<'_>,
    target: Target<'_>,
    span: tracing::Span,
    log: Option<CallLog>,
    exchange: E,
) -> Result<E::Output, Error> {
    // Bound by a `let`, so the `Result` is not a temporary kept across the `await`.
    let rest = launch(shared, spec, Start::Fresh, target, span, log, move || {
        exchange
    })?;
    rest.await
}

/// Starts the call now, as `start` says ([`begin`]), and hands back the rest of it
/// ([`proceed`]) in its span: the returned future holds nothing of `spec`.
pub(crate) fn launch<'a, E: Exchange + 'a>(
    shared: &'a Arc<Shared>,
    spec: CallSpec<'_>,
    start: Start,
    target: Target<'a>,
    span: tracing::Span,
    log: Option<CallLog>,
    exchange: impl FnOnce() -> E + 'a,
) -> Result<impl Future<Output = Result<E::Output, Error>> + 'a, Error> {
    // Started in the caller's context, outside the call's own span: whether there is a trace
    // to carry on is the caller's.
    let call = telemetry::Call::start(target);
    let (id, orders) = span.in_scope(|| begin(shared, spec, start, &call, log))?;
    let guard = CallGuard {
        shared,
        id,
        live: true,
    };
    Ok(proceed(call, guard, orders, exchange).instrument(span))
}

/// How a call begins on the engine.
#[derive(Copy, Clone, Debug)]
pub(crate) enum Start {
    /// A new call: its first attempt now.
    Fresh,
    /// A new download: the call stays open on the engine while its body is read
    /// ([`resile_core::CallEnd::AfterBody`]).
    Download,
    /// The next attempt of download `call`, whose body broke with `broke`
    /// ([`resile_core::Engine::resume`]): the same call, taken up.
    Resumed { call: CallId, broke: TransportError },
}

/// Starts the call on the engine as `start` says, inside the call's own span (the current
/// one): its id (for the guard that cancels it if the caller goes away, made at once by
/// the caller) and its orders. Nothing that goes in is kept: the call's future holds the
/// spec only until this returns.
pub(crate) fn begin(
    shared: &Shared,
    spec: CallSpec<'_>,
    start: Start,
    call: &telemetry::Call<'_>,
    log: Option<CallLog>,
) -> Result<(CallId, Orders), Error> {
    // The call's own span, looked up once for its sink and its `call` field (none looked up
    // when no subscriber is installed).
    let span = if telemetry::tracing_off() {
        tracing::Span::none()
    } else {
        tracing::Span::current()
    };
    let sink = call.sink(log, &span);
    let (id, orders) = match start {
        Start::Fresh => shared.start(spec, sink),
        Start::Download => shared.start(spec.download(), sink),
        Start::Resumed { call, broke } => {
            // Not open any more: the caller cancelled the download meanwhile.
            let orders = shared.resume(call, broke, sink).ok_or(Error::Cancelled)?;
            (call, orders)
        }
    };
    if !span.is_disabled() {
        span.record("call", id.number());
    }
    Ok((id, orders))
}

/// The rest of a call [`begin`] started: waits for its first order, then carries out every
/// order; the part sized for its attempts in flight is boxed only then, so a queued call stays
/// small. Run it in the call's span.
// An `async` block rather than an `async fn`, which would keep its arguments twice.
#[allow(clippy::manual_async_fn)]
fn proceed<'a, E: Exchange + 'a>(
    call: telemetry::Call<'a>,
    guard: CallGuard<'a>,
    orders: Orders,
    exchange: impl FnOnce() -> E + 'a,
) -> impl Future<Output = Result<E::Output, Error>> + 'a {
    async move {
        // Waits for the first order without taking it: the loop takes it, so it is not kept
        // (as this future's local or the loop's argument) for as long as the call runs.
        future::poll_fn(|cx| orders.poll_ready(cx)).await;
        let result = Running::new(&call, guard, orders)
            .attempts_boxed(exchange())
            .await;
        call.finish(result.is_ok());
        result
    }
}

/// A call the engine has begun to give orders to (the client's `Shared` is the guard's).
pub(crate) struct Running<'s, 'c, 't> {
    call: &'c telemetry::Call<'t>,
    guard: CallGuard<'s>,
    orders: Orders,
}

impl<'s, 'c, 't> Running<'s, 'c, 't> {
    /// The call [`begin`] started, whose first order is ready ([`Orders::poll_ready`]).
    pub(crate) fn new(call: &'c telemetry::Call<'t>, guard: CallGuard<'s>, orders: Orders) -> Self {
        Running {
            call,
            guard,
            orders,
        }
    }

    /// Carries out every order with `exchange`, in a box of its own: the part of a call sized
    /// for its attempts in flight, allocated only once the call has its first order.
    pub(crate) fn attempts_boxed<E: Exchange>(
        self,
        exchange: E,
    ) -> Pin<Box<impl Future<Output = Result<E::Output, Error>> + use<'s, 'c, 't, E>>> {
        Box::pin(self.attempts(exchange))
    }

    /// Carries out every order, from the first (pending when this starts) to the last (an
    /// `async` block, which keeps its arguments once, unlike an `async fn`).
    #[allow(clippy::manual_async_fn)]
    fn attempts<E: Exchange>(
        mut self,
        mut exchange: E,
    ) -> impl Future<Output = Result<E::Output, Error>> + use<'s, 'c, 't, E> {
        // The block works on its captures in place: moved or copied into locals of its own
        // they would be kept twice in the boxed future, once as captured and once as the
        // locals. The guard is borrowed whole, so that it is captured whole (its fields alone
        // would be copied, and the guard dropped before the call runs).
        async move {
            let guard = &mut self.guard;
            exchange.opened(guard.id);
            let mut last_message: Option<String> = None;
            let mut request_id: Option<UuidText> = None;
            let mut attempts = 0;
            let slot = std::pin::pin!(None);
            let mut out: Outs<'t, '_, E::Attempt> = Outs::new(slot);
            loop {
                let mut taken = next(&mut self.orders, &mut out).await;
                // Nothing in this inner loop waits: the order the call's own report hands back
                // (`Shared::handle`) is carried out next, before the mailbox is read (nothing
                // waited before it there), and neither that order (an `Option<CallMsg>`, 80 B)
                // nor the copies of the guard's `Shared` and id are kept in the boxed future
                // across the wait for the next one, as they were as locals of the outer loop.
                loop {
                    let (shared, id) = (guard.shared, guard.id);
                    let (
                        Out {
                            n: attempt, span, ..
                        },
                        outcome,
                    ) = match taken {
                        Next::Order(None) => {
                            guard.live = false;
                            return Err(Error::Cancelled);
                        }
                        Next::Order(Some(order)) => {
                            match order {
                                CallMsg::Send(mut order) => {
                                    attempts += 1;
                                    let span = self.call.attempt(order.attempt);
                                    order.traceparent = span.traceparent().map(Box::new);
                                    if request_id.is_none() {
                                        request_id = order.headers.request_id.map(|id| id.text());
                                        if let (Some(id), false) =
                                            (&request_id, telemetry::tracing_off())
                                        {
                                            tracing::Span::current()
                                                .record("request_id", id.as_str());
                                        }
                                    }
                                    // The engine keeps the attempt's deadline: it answers
                                    // `Abort` when the attempt has taken too long, and the
                                    // attempt is dropped then.
                                    let (n, timeout_ms) = (order.attempt, order.timeout_ms);
                                    out.push(
                                        Out {
                                            n,
                                            timeout_ms,
                                            span,
                                        },
                                        || exchange.send(order, request_id.as_ref()),
                                    );
                                }
                                CallMsg::Abort { attempt, why } => {
                                    let Some(Out {
                                        timeout_ms, span, ..
                                    }) = out.take(attempt)
                                    else {
                                        break;
                                    };
                                    span.end(if why == Why::HedgeLost {
                                        Ended::Abandoned
                                    } else {
                                        Ended::Aborted
                                    });
                                    if why != Why::HedgeLost {
                                        // A loser's abort leaves the winner's answer; a
                                        // timeout ends the latest attempt without one.
                                        exchange.lost();
                                        last_message = Some(match timeout_ms {
                                            Some(ms) => {
                                                format!("no complete response within {ms} ms")
                                            }
                                            None => "the attempt was aborted".to_string(),
                                        });
                                    }
                                }
                                CallMsg::Done { attempts } => {
                                    guard.live = false;
                                    out.abandon();
                                    return exchange.done(attempts, request_id);
                                }
                                CallMsg::Fallback(fell) => {
                                    let (failure, used) = *fell;
                                    guard.live = false;
                                    out.abandon();
                                    let answer = FallbackAnswer { failure, used };
                                    if let Some(answer) =
                                        exchange.fallback(answer, attempts, request_id)
                                    {
                                        return answer;
                                    }
                                    let cx = FailureContext {
                                        transport_message: last_message.as_deref(),
                                        detail: None,
                                        retry_at: failure
                                            .retry_at
                                            .map(|at| shared.system_time(at, shared.now())),
                                        decode: None,
                                    };
                                    return Err(Error::from_failure(failure, cx));
                                }
                                CallMsg::Fail(failed) => {
                                    let Failed {
                                        failure,
                                        detail,
                                        retry_at,
                                    } = *failed;
                                    guard.live = false;
                                    out.abandon();
                                    let cx = FailureContext {
                                        transport_message: last_message.as_deref(),
                                        detail,
                                        retry_at,
                                        decode: exchange.undecodable(),
                                    };
                                    return Err(Error::from_failure(failure, cx));
                                }
                            }
                            break;
                        }
                        Next::Finished(done, attempt) => (done, attempt),
                    };
                    let pending = match outcome {
                        Attempt::Response(received) => {
                            // The order the report makes comes back here when nothing waits
                            // before it: carried out next, without the mailbox.
                            let mut pending = None;
                            exchange.received(received, |outcome| {
                                pending = shared.handle(id, attempt, outcome);
                            });
                            span.end(Ended::Status(exchange.last_status().unwrap_or(0)));
                            last_message = None;
                            pending
                        }
                        Attempt::Failed { kind, message } => {
                            tracing::debug!(target: "resile", attempt, error = %message, "attempt failed below HTTP");
                            span.end(Ended::Transport(kind));
                            let pending = shared.handle(id, attempt, Outcome::Transport(kind));
                            exchange.lost();
                            last_message = Some(message);
                            pending
                        }
                        Attempt::BodyGone => {
                            span.end(Ended::Abandoned);
                            // The engine never asks to resend a one-shot body (it answers a
                            // 401 on one with Done, and never hedges one); should it ever, fail
                            // the call instead of sending an empty body.
                            guard.live = false;
                            out.abandon();
                            shared.cancel(id);
                            return Err(Error::NotRetried {
                                why: Why::BodyNotReplayable,
                                maybe_processed: true,
                                attempts: attempts - 1,
                                last: exchange.last_status().map(LastCause::Status),
                            });
                        }
                    };
                    let Some(order) = pending else { break };
                    taken = Next::Order(Some(order));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::future::BoxFuture;
    use std::task::Waker;

    use crate::telemetry::Call;

    type TestAttempt = BoxFuture<'static, Attempt<u16>>;

    fn answers(status: u16) -> TestAttempt {
        Box::pin(future::ready(Attempt::Response(status)))
    }

    fn never() -> TestAttempt {
        Box::pin(future::pending())
    }

    fn ticket<'t>(call: &Call<'t>, n: u32) -> Out<'t> {
        Out {
            n,
            timeout_ms: None,
            span: call.attempt(n),
        }
    }

    #[test]
    fn attempts_out_at_once_finish_in_any_order_and_are_taken_by_number() {
        let target = Target {
            method: "GET",
            url: "http://a.test/",
            redact: &[],
        };
        let call = Call::start(target);
        let slot = std::pin::pin!(None);
        let mut out: Outs<'_, '_, TestAttempt> = Outs::new(slot);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(out.poll_first_done(&mut cx).is_pending());

        // The first runs in place and never answers; a hedge's second answers.
        out.push(ticket(&call, 1), never);
        out.push(ticket(&call, 2), || answers(200));
        match out.poll_first_done(&mut cx) {
            Poll::Ready((done, Attempt::Response(200))) => assert_eq!(done.n, 2),
            _ => panic!("the second attempt answered"),
        }
        assert!(out.poll_first_done(&mut cx).is_pending());

        // A third goes out beside the first; the first is aborted and dropped in place.
        out.push(ticket(&call, 3), || answers(503));
        assert_eq!(out.take(1).map(|o| o.n), Some(1));
        assert!(out.take(1).is_none());
        // The place in the loop is free again for the next attempt.
        out.push(ticket(&call, 4), never);
        match out.poll_first_done(&mut cx) {
            Poll::Ready((done, Attempt::Response(503))) => assert_eq!(done.n, 3),
            _ => panic!("the third attempt answered"),
        }
        assert_eq!(out.take(4).map(|o| o.n), Some(4));
        assert!(out.poll_first_done(&mut cx).is_pending());
        out.abandon();
    }
}
