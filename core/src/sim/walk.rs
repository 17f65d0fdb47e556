//! The sim's paginated walk: the core [`Walk`] driven on the virtual clock, each page one
//! engine call against the scripted server (whose replies carry the pages' headers and bodies).

use serde_json::Value;

use super::scenario::{outcome_label, walk_error_label, CallPlan, PagePlan};
use super::world::{CallResult, Server, World};
use crate::engine::CallSpec;
use crate::paginate::{Body, PageFailure, PageReply, Step, Stop, Walk};

/// The first page of a sim walk.
pub const FIRST_PAGE: &str = "http://sim.test/items";

/// What a walk yielded: its items in order, and how it ended if not cleanly (see
/// [`super::Expect::walk_error`]).
pub type WalkRun = (Vec<Value>, Option<String>);

/// Walks `plan` on `world`, the pages shaped by `call` (method, token, idempotency), each
/// with the attempts and deadline the walk gives it.
pub fn run_walk<S: Server>(
    world: &mut World<S>,
    plan: &PagePlan,
    call: &CallPlan,
    max_steps: usize,
) -> WalkRun {
    let mut items = Vec::new();
    let mut walk = match Walk::new(FIRST_PAGE, plan.style.clone(), plan.items.clone()) {
        Ok(w) => w.max_pages(plan.max_pages),
        Err(e) => return (items, Some(format!("invalid:{e}"))),
    };
    // The last page call's failure label, for `Stop::Call`.
    let mut failed_as = String::new();
    // Each step either ends the walk or feeds it one input, so this bound is never reached by
    // a walk of at most `max_pages` pages.
    for _ in 0..max_steps {
        match walk.poll(world.now) {
            Step::Fetch(page) => {
                let host = page.host();
                let mut spec = CallSpec::new(call.method, &host).idempotency(call.idempotency);
                spec.needs_token = call.token;
                spec.max_attempts = Some(page.max_attempts);
                spec.deadline = page.deadline;
                let label = world.start(spec);
                world.drive_bounded(max_steps);
                match world.results.get(label).copied().flatten() {
                    Some(CallResult::Done {
                        status, attempts, ..
                    }) => {
                        let (headers, body) = world.last_reply.remove(&label).unwrap_or_default();
                        let body = body.unwrap_or(Value::Null);
                        let reply = PageReply::new(status, &headers, Body::Json(&body))
                            .url(&page.url)
                            .attempts(attempts);
                        items.extend(walk.accept(reply).unwrap_or_default());
                    }
                    // Pages carry no fallback: a fall-back page never happens in a walk.
                    Some(
                        CallResult::Failed { failure, .. } | CallResult::FellBack { failure, .. },
                    ) => {
                        failed_as = outcome_label(Some(&CallResult::Failed {
                            failure,
                            at: world.now,
                        }));
                        walk.failed(PageFailure::from(&failure), world.now);
                    }
                    None => return (items, Some("call:pending".into())),
                }
            }
            Step::Wait { until, .. } => world.run_until(until, max_steps),
            Step::Fail(e) => return (items, Some(stop_label(&e.stop, &failed_as))),
            Step::Done => return (items, None),
        }
    }
    (items, Some("too_many_steps".into()))
}

/// The label an expectation names a stopped walk by: the [`walk_error_label`] of a page that
/// cannot be followed, `call:done:STATUS` for a page answered with a status other than 2xx,
/// `call:fail:WHY` (the call's `outcome_label`) for a page call that failed, `not_json`,
/// `deadline`, `bad_link`.
pub fn stop_label(stop: &Stop, call_failure: &str) -> String {
    match stop {
        Stop::Page(e) => walk_error_label(e),
        Stop::Status { status } => format!("call:done:{status}"),
        Stop::NotJson { .. } => "not_json".into(),
        Stop::Call { .. } => format!("call:{call_failure}"),
        Stop::Deadline => "deadline".into(),
        Stop::BadLink { .. } => "bad_link".into(),
    }
}
