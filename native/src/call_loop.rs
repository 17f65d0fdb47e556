//! One call's loop: the engine's orders for a call, turned into attempts by whatever performs
//! them (an [`Exchange`]): the client's own transport, or the rest of a reqwest-middleware
//! stack. The loop owns the order channel; the exchange owns the wire and the answer.
//!
//! ```text
//!   start ─▶ Send  ─▶ exchange.send, racing the next order (Abort drops the attempt)
//!                  ─▶ a response: exchange.received ─▶ the engine
//!                  ─▶ a failure below HTTP          ─▶ the engine
//!            Done  ─▶ exchange.done: the call's answer
//!            Fail  ─▶ Error::from_failure
//! ```

use std::sync::Arc;

use futures::future::{self, BoxFuture, Either};
use futures::StreamExt;

use resile_core::{CallSpec, Outcome, UuidText, Why};

use crate::driver::{CallGuard, CallLog, CallMsg, SendOrder, Shared};
use crate::error::{Error, FailureContext, LastCause};
use crate::transport::Attempt;

/// Performs the attempts of one call and keeps what the call will answer with.
pub(crate) trait Exchange {
    /// A response, as whoever performed the attempt has it.
    type Received;
    /// What the call answers with once the engine says `Done`.
    type Output;

    /// Performs one attempt the engine ordered. Dropped unfinished when the engine aborts it.
    fn send<'a>(&'a mut self, order: &'a SendOrder) -> BoxFuture<'a, Attempt<Self::Received>>;

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

    /// The engine says the latest answer is final.
    fn done(self, attempts: u32, request_id: Option<UuidText>) -> Result<Self::Output, Error>;
}

/// Runs one call: starts it on the engine, performs every attempt it orders, and answers with
/// the exchange's output or the engine's failure. Events of the call go to `log` as well.
///
/// Bounded by the engine: every order is an attempt it allowed, then `Done` or `Fail`.
pub(crate) async fn drive<E: Exchange>(
    shared: &Arc<Shared>,
    spec: CallSpec<'_>,
    log: Option<CallLog>,
    mut exchange: E,
) -> Result<E::Output, Error> {
    let (id, mut orders) = shared.start(spec, log);
    let mut guard = CallGuard {
        shared: shared.clone(),
        id,
        live: true,
    };
    tracing::Span::current().record("call", id.number());
    let mut last_message: Option<String> = None;
    let mut request_id: Option<UuidText> = None;
    let mut attempts = 0;
    let mut early: Option<CallMsg> = None;
    loop {
        let order = match early.take() {
            Some(order) => order,
            None => match orders.next().await {
                Some(order) => order,
                None => {
                    guard.live = false;
                    return Err(Error::Cancelled);
                }
            },
        };
        match order {
            CallMsg::Send(order) => {
                attempts += 1;
                if request_id.is_none() {
                    request_id = order.headers.request_id.map(|id| id.text());
                    if let Some(id) = &request_id {
                        tracing::Span::current().record("request_id", id.as_str());
                    }
                }
                // The engine keeps the attempt's deadline: it answers `Abort` when the attempt
                // has taken too long, and the attempt is dropped here.
                let raced = {
                    let send = exchange.send(&order);
                    match future::select(send, orders.next()).await {
                        Either::Left((outcome, _)) => Ok(outcome),
                        Either::Right((msg, _)) => Err(msg),
                    }
                };
                let outcome = match raced {
                    Ok(outcome) => outcome,
                    Err(msg) => {
                        let Some(msg) = msg else {
                            guard.live = false;
                            return Err(Error::Cancelled);
                        };
                        if !matches!(msg, CallMsg::Abort) {
                            early = Some(msg);
                        }
                        exchange.lost();
                        last_message = Some(match order.timeout {
                            Some(t) => format!("no complete response within {} ms", t.as_millis()),
                            None => "the attempt was aborted".to_string(),
                        });
                        continue;
                    }
                };
                match outcome {
                    Attempt::Response(received) => {
                        exchange.received(received, |outcome| {
                            shared.handle(id, order.attempt, outcome);
                        });
                        last_message = None;
                    }
                    Attempt::Failed { kind, message } => {
                        tracing::debug!(target: "resile", attempt = attempts, error = %message, "attempt failed below HTTP");
                        shared.handle(id, order.attempt, Outcome::Transport(kind));
                        exchange.lost();
                        last_message = Some(message);
                    }
                    Attempt::BodyGone => {
                        // The engine never asks to resend a one-shot body (it answers a 401 on
                        // one with Done); should it ever, fail the call instead of sending an
                        // empty body.
                        guard.live = false;
                        shared.cancel(id);
                        return Err(Error::NotRetried {
                            why: Why::BodyNotReplayable,
                            maybe_processed: true,
                            attempts: attempts - 1,
                            last: exchange.last_status().map(LastCause::Status),
                        });
                    }
                }
            }
            CallMsg::Abort => {}
            CallMsg::Done { attempts } => {
                guard.live = false;
                return exchange.done(attempts, request_id);
            }
            CallMsg::Fail {
                failure,
                detail,
                retry_at,
            } => {
                guard.live = false;
                let cx = FailureContext {
                    transport_message: last_message.as_deref(),
                    detail,
                    retry_at,
                    decode: exchange.undecodable(),
                };
                return Err(Error::from_failure(failure, cx));
            }
        }
    }
}
