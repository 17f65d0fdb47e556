//! Drives an engine on a virtual clock against a scripted server.
//!
//! The [`World`] plays the adapter: it turns `Send` actions into replies from a [`Server`] after
//! their latency (or into a timeout when the reply would come later than the attempt's timeout),
//! answers `FetchToken` from a token script, and jumps the clock straight to the next thing that
//! happens. Nothing sleeps, so a minute of 429 storm runs in microseconds and the same seed gives
//! the same trace. Tests, benchmarks, the CLI's `simulate` and the conformance suite reuse it.

mod brooker;
mod conformance;
mod decisions;
mod recorded;
mod scenario;
mod setup;
mod walk;
mod world;

pub use brooker::{contention, ContentionResult};
pub use conformance::{has_date_headers, verify, without_hint_notes, RealClock};
pub use decisions::{compare_decisions, decision_lines};
pub use scenario::{
    check, control_lines, expand_header, item_id, outcome_label, run_scenario, walk_error_label,
    CallPlan, ControlAction, ControlStep, Expect, FallbackPlan, Fault, PagePlan, Reply, Scenario,
    ScenarioResult, ScriptedServer, TokenPlan,
};
pub use setup::Setup;
pub use walk::{run_walk, stop_label, WalkRun, FIRST_PAGE};
pub use world::{CallResult, LastReply, Server, SimReply, SimRequest, World};
