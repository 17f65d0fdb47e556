//! The adaptive host state: AWS's adaptive client rate ([`crate::adaptive`]) and the adaptive
//! concurrency limit ([`crate::concurrency_limit`]), both per host and off unless configured.
//!
//! - Before a send (admission step 6) an attempt takes one token of the host's adaptive bucket,
//!   once the host has throttled a call; a short bucket makes the call wait
//!   ([`Why::AdaptiveRate`]), never past its deadline ([`Why::DeadlineWouldPass`]). The token
//!   is booked with the rate-limit slot (the wait is for the later of the two); a call that
//!   ends before it sends gives its slot back but not its token, as the AWS SDKs do not.
//! - Admission step 5 bounds the host's attempts in flight by its adaptive limit instead of
//!   `concurrency.max_in_flight_per_host` ([`Why::AdaptiveConcurrency`] when that is what
//!   queues a call).
//! - After every attempt's outcome the bucket learns whether it was a throttle, and the limit
//!   learns the attempt's latency and whether it was a drop.
//!
//! Events: [`EventKind::AdaptiveRateChanged`] on every throttle and whenever the fill rate has
//! moved by a tenth since the last one reported; [`EventKind::ConcurrencyLimitChanged`] whenever
//! the limit changes.

use crate::adaptive::{signal, AdaptiveRate, Signal};
use crate::classify::TransportError;
use crate::concurrency_limit::{ConcurrencyLimit, Sample, Verdict};
use crate::config::Config;
use crate::engine::event::EventKind;
use crate::engine::outcome::Outcome;
use crate::engine::Engine;
use crate::time::Instant;
use crate::why::Why;

/// An attempt's send: when, and how many attempts were in flight to its host, itself included.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    pub at: Instant,
    pub in_flight: u32,
}

/// A host's adaptive state.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Adaptive {
    rate: Option<AdaptiveRate>,
    /// The fill rate the last [`EventKind::AdaptiveRateChanged`] reported.
    reported: f64,
    concurrency: Option<ConcurrencyLimit>,
}

/// The share of the last reported fill rate a change must reach to be reported again.
const REPORT_STEP: f64 = 0.1;

impl Adaptive {
    /// A new host's state under `config`, created at `now`.
    pub fn new(config: &Config, now: Instant) -> Self {
        Adaptive {
            rate: config.adaptive_rate.enabled.then(|| AdaptiveRate::new(now)),
            reported: 0.0,
            concurrency: config
                .concurrency
                .adaptive
                .as_ref()
                .map(ConcurrencyLimit::new),
        }
    }

    /// Whether neither the adaptive rate nor the adaptive limit is configured.
    #[inline]
    pub fn is_off(&self) -> bool {
        self.rate.is_none() && self.concurrency.is_none()
    }

    /// The adaptive client rate, if enabled.
    pub fn rate(&self) -> Option<&AdaptiveRate> {
        self.rate.as_ref()
    }

    /// The adaptive concurrency limit in force, if one is configured.
    pub fn concurrency_limit(&self) -> Option<u32> {
        self.concurrency.as_ref().map(ConcurrencyLimit::limit)
    }
}

/// How an outcome bears on the host's capacity: the statuses gRPC maps to `UNAVAILABLE` (429,
/// 502, 503, 504) and attempt timeouts are drops; any other answer below 500 is a success; other
/// 5xx and other transport failures say nothing about capacity (`None`, Netflix's `onIgnore`).
fn verdict(outcome: &Outcome<'_>) -> Option<Verdict> {
    match outcome {
        Outcome::Response(r) | Outcome::Unusable(r, _) => match r.status {
            429 | 502 | 503 | 504 => Some(Verdict::Dropped),
            100..=499 => Some(Verdict::Success),
            _ => None,
        },
        Outcome::Transport(TransportError::Timeout) => Some(Verdict::Dropped),
        Outcome::Transport(_) => None,
    }
}

impl Engine {
    /// The per-host bound on attempts in flight: the adaptive limit if configured, else
    /// `concurrency.max_in_flight_per_host`.
    pub(crate) fn per_host_limit(&self, host: usize) -> Option<u32> {
        self.hosts[host]
            .adaptive
            .concurrency_limit()
            .or(self.config.concurrency.max_in_flight_per_host)
    }

    /// Why a call to `host` queues: its adaptive limit, or a fixed one.
    pub(crate) fn queue_why(&self, host: usize) -> Why {
        let h = &self.hosts[host];
        match h.adaptive.concurrency_limit() {
            Some(limit) if h.in_flight >= limit => Why::AdaptiveConcurrency,
            _ => Why::ConcurrencyLimit,
        }
    }

    /// When the host's adaptive bucket would have a token for an attempt, if not now.
    pub(crate) fn adaptive_rate_wait(&self, host: usize, now: Instant) -> Option<Instant> {
        self.hosts[host]
            .adaptive
            .rate
            .as_ref()
            .and_then(|r| r.wait_until(now, 1.0))
    }

    /// Takes an attempt's token from the host's adaptive bucket; `Some(t)`: the attempt waits
    /// until `t` for it.
    pub(crate) fn book_adaptive_rate(&mut self, host: usize, now: Instant) -> Option<Instant> {
        self.hosts[host]
            .adaptive
            .rate
            .as_mut()
            .and_then(|r| r.reserve(now, 1.0))
    }

    /// An attempt sent at `sent` ended with `outcome`: the host's bucket and limit learn from it.
    pub(crate) fn learn_adaptive(
        &mut self,
        host: usize,
        sent: Sent,
        outcome: &Outcome<'_>,
        now: Instant,
    ) {
        let h = &mut self.hosts[host];
        if h.adaptive.is_off() {
            // Neither is configured: one test, no work.
            return;
        }
        let mut rate_change = None;
        if let Some(rate) = h.adaptive.rate.as_mut() {
            let s = match outcome {
                Outcome::Response(r) | Outcome::Unusable(r, _) => signal(r.status, r.headers),
                Outcome::Transport(_) => Signal::NotThrottled,
            };
            rate.update(now, s);
            let fill = rate.fill_rate();
            let moved = (fill - h.adaptive.reported).abs() >= h.adaptive.reported * REPORT_STEP;
            if s == Signal::Throttled || (rate.is_enabled() && moved) {
                h.adaptive.reported = fill;
                let why = match s {
                    Signal::Throttled => Why::Throttled,
                    Signal::NotThrottled => Why::RateRecovering,
                };
                rate_change = Some((fill, rate.measured_rate(), why));
            }
        }
        let mut limit_change = None;
        if let (Some(limit), Some(verdict)) = (h.adaptive.concurrency.as_mut(), verdict(outcome)) {
            let previous = limit.limit();
            let sample = Sample {
                rtt: now.saturating_duration_since(sent.at),
                in_flight: sent.in_flight,
                verdict,
            };
            let next = limit.sample(sample, now);
            if next != previous {
                let why = match verdict {
                    Verdict::Dropped => Why::AttemptDropped,
                    Verdict::Success => Why::Success,
                };
                limit_change = Some((next, previous, why));
            }
        }
        if let Some((per_second, measured, why)) = rate_change {
            let host = self.hosts[host].name.clone();
            self.event(
                now,
                EventKind::AdaptiveRateChanged {
                    host,
                    per_second,
                    measured,
                    why,
                },
            );
        }
        if let Some((limit, previous, why)) = limit_change {
            let host = self.hosts[host].name.clone();
            self.event(
                now,
                EventKind::ConcurrencyLimitChanged {
                    host,
                    limit,
                    previous,
                    why,
                },
            );
        }
    }
}
