//! The host table and what the servers' hints do to a host: holds (`Retry-After`, a used-up
//! quota) and limits learned from rate-limit headers. Every hint a server sends is capped by
//! `retry.max_retry_after_ms`, whatever header it came in.

use core::time::Duration;
use std::sync::Arc;

use crate::breaker::{Breaker, Transition};
use crate::budget::Budget;
use crate::config::{Config, LimitConfig};
use crate::engine::event::EventKind;
use crate::engine::failure::Hint;
use crate::engine::outcome::Response;
use crate::engine::Engine;
use crate::fleet::{SharedLimit, SharedUpdate};
use crate::headers::{parse_ratelimit, parse_retry_after, HintSource, RateLimitHint};
use crate::latency::Latencies;
use crate::limit::Gcra;
use crate::quota::RetryQuota;
use crate::throttle::RetryThrottle;
use crate::time::Instant;
use crate::why::Why;

/// One host's shared state.
pub(crate) struct Host {
    pub name: Arc<str>,
    pub breaker: Breaker,
    pub budget: Budget,
    /// The AWS retry quota, only with the config's `aws` section (the AWS presets).
    pub quota: Option<RetryQuota>,
    /// gRPC A6 retry throttling, only with the config's `retry_throttling` (`grpc-a6`).
    pub throttle: Option<RetryThrottle>,
    pub limiter: Option<Gcra>,
    /// A limit learned from the host's headers lapses at this time unless the host repeats it.
    pub learned_until: Option<Instant>,
    /// Which header family the learned limit came from.
    pub learned_from: Option<HintSource>,
    pub hold_until: Instant,
    pub hold_why: Why,
    pub hold_hint: Hint,
    /// Calls started and not finished.
    pub active: u32,
    /// Attempts in flight.
    pub in_flight: u32,
    /// Connection failures (connect, DNS, TLS) in a row.
    pub connect_failures: u32,
    /// Recent attempt latencies, kept only when hedging waits for a percentile of them.
    pub latencies: Option<Box<Latencies>>,
    pub last_used: Instant,
    /// The adaptive client rate and concurrency limit, where configured.
    pub adaptive: crate::engine::adaptive::Adaptive,
    /// This host's calls waiting for a concurrency slot, oldest first, each with its place in
    /// the engine-wide order (see `dispatch_queue`).
    pub queued: std::collections::VecDeque<(u64, crate::engine::CallId)>,
}

/// Whether nothing on the hosts `config` makes learns from a success (what
/// [`Host::reads_no_success`] says of each of them): no retry quota or throttle, no hedging
/// percentile, no adaptive rate or limit. A host's parts come from the config alone, so the
/// engine asks this once, at its build, for the straight path (`straight.rs`).
pub(crate) fn hosts_read_no_success(config: &Config) -> bool {
    config.aws.is_none()
        && config.retry_throttling.is_none()
        && !(config.hedge.enabled && config.hedge.percentile.is_some())
        && !config.adaptive_rate.enabled
        && config.concurrency.adaptive.is_none()
}

impl Host {
    /// Whether nothing configured on this host learns from a success: no retry quota or
    /// throttle, no hedging percentile, no adaptive rate or limit.
    pub fn reads_no_success(&self) -> bool {
        self.quota.is_none()
            && self.throttle.is_none()
            && self.latencies.is_none()
            && self.adaptive.is_off()
    }
}

/// What a response's hints asked of the call that got it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    /// The `Retry-After` wait, uncapped.
    pub retry_after: Option<Duration>,
}

impl Engine {
    pub(crate) fn host_for(&mut self, name: &str, now: Instant) -> Option<u32> {
        // Most clients talk to one host: try the last one before searching.
        if let Some(h) = self.hosts.get_mut(self.last_host as usize) {
            if &*h.name == name {
                h.last_used = now;
                return Some(self.last_host);
            }
        }
        if let Some(&i) = self.host_index.get(name) {
            self.last_host = i;
            self.hosts[i as usize].last_used = now;
            return Some(i);
        }
        let fresh = Host {
            name: Arc::from(name),
            breaker: Breaker::new(),
            budget: Budget::new(&self.config.budget),
            quota: self.config.aws.as_ref().map(|a| RetryQuota::new(a.quota)),
            throttle: self.config.retry_throttling.map(RetryThrottle::new),
            limiter: self.config.limit.as_ref().map(Gcra::new),
            learned_until: None,
            learned_from: None,
            hold_until: Instant::ZERO,
            hold_why: Why::ServerRetryAfterHold,
            hold_hint: Hint::RetryAfter,
            active: 0,
            in_flight: 0,
            connect_failures: 0,
            latencies: (self.config.hedge.enabled && self.config.hedge.percentile.is_some())
                .then(Box::default),
            last_used: now,
            adaptive: crate::engine::adaptive::Adaptive::new(&self.config, now),
            queued: std::collections::VecDeque::new(),
        };
        debug_assert_eq!(
            fresh.reads_no_success(),
            self.plain_hosts,
            "the engine's flag is its hosts'"
        );
        let index = if self.hosts.len() < self.config.max_hosts as usize {
            self.hosts.push(fresh);
            (self.hosts.len() - 1) as u32
        } else {
            // Forget the least recently used idle host.
            let (i, _) = self
                .hosts
                .iter()
                .enumerate()
                .filter(|(_, h)| h.active == 0 && !h.breaker.is_held())
                .min_by_key(|(_, h)| h.last_used)?;
            self.host_index.remove(&self.hosts[i].name);
            self.hosts[i] = fresh;
            i as u32
        };
        self.host_index
            .insert(self.hosts[index as usize].name.clone(), index);
        self.last_host = index;
        Some(index)
    }

    /// Says a breaker's transition, if there was one. Inline where it is called: a breaker
    /// that stays as it was (nearly every admission and outcome) costs one test, not a call.
    #[inline(always)]
    pub(crate) fn breaker_event(
        &mut self,
        host: usize,
        transition: Option<Transition>,
        now: Instant,
    ) {
        if let Some(t) = transition {
            self.breaker_transition(host, t, now);
        }
    }

    #[inline(never)]
    fn breaker_transition(&mut self, host: usize, t: Transition, now: Instant) {
        let name = self.hosts[host].name.clone();
        let kind = match t {
            Transition::Opened { until, trips } => {
                self.stats.breaker_trips += 1;
                let wait = until.saturating_duration_since(now);
                self.share(host, SharedUpdate::BreakerOpen { wait });
                EventKind::BreakerOpened {
                    host: name,
                    until,
                    trips,
                }
            }
            Transition::HalfOpened => EventKind::BreakerHalfOpen { host: name },
            Transition::Closed => EventKind::BreakerClosed { host: name },
        };
        self.event(now, kind);
    }

    /// Reads a response's hints: they hold the whole host, so concurrent calls do not walk
    /// into the same 429, and teach it the host's limit.
    #[inline(always)]
    pub(crate) fn read_hints(
        &mut self,
        slot: u32,
        host: usize,
        r: &Response<'_>,
        success: bool,
        now: Instant,
    ) -> Asked {
        let mut retry_after = None;
        if self.config.retry.respect_retry_after && !success {
            retry_after = r
                .headers
                .get("retry-after")
                .and_then(|v| parse_retry_after(v, r.wall));
        }
        if let Some(ra) = retry_after {
            let cap = self.retry_after_cap();
            // A wait past the cap fails the call that got it, but the host is still held for
            // the cap: the next call must not walk into the same 429 a millisecond later.
            if (r.status == 429 || r.status == 503) && ra > Duration::ZERO {
                self.hold(
                    host,
                    now + ra.min(cap),
                    Why::ServerRetryAfterHold,
                    Hint::RetryAfter,
                    now,
                );
            }
        }
        self.read_limit_hints(slot, host, r, retry_after, now);
        Asked { retry_after }
    }

    /// [`Engine::read_hints`] past `Retry-After` (`retry_after`, if the response had one):
    /// the rate-limit headers, which a success may carry too.
    #[inline(always)]
    pub(crate) fn read_limit_hints(
        &mut self,
        slot: u32,
        host: usize,
        r: &Response<'_>,
        retry_after: Option<Duration>,
        now: Instant,
    ) {
        let hint = parse_ratelimit(r.headers, r.wall);
        self.apply_limit_hints(slot, host, r, retry_after, hint, now);
    }

    /// [`Engine::read_limit_hints`] once the headers are read (`hint`).
    #[inline(always)]
    pub(crate) fn apply_limit_hints(
        &mut self,
        slot: u32,
        host: usize,
        r: &Response<'_>,
        retry_after: Option<Duration>,
        hint: Option<RateLimitHint>,
        now: Instant,
    ) {
        if let Some(hint) = hint {
            if self.config.learn_limits {
                self.learn_limit(host, &hint, now);
            }
            if retry_after.is_none() && hint.remaining == Some(0) {
                if let Some(reset) = hint.reset.filter(|d| *d > Duration::ZERO) {
                    let cap = self.retry_after_cap();
                    self.hold(
                        host,
                        now + reset.min(cap),
                        Why::ServerQuotaHold,
                        Hint::RateLimit(hint.source),
                        now,
                    );
                }
            }
        } else if retry_after.is_none()
            && r.hints_may_be_hidden
            && (r.status == 429 || r.status == 503)
        {
            if let Some(id) = self.calls[slot as usize].as_ref().map(|c| c.id) {
                self.event(now, EventKind::HintUnreadable { call: id });
            }
        }
    }

    /// The longest wait any server hint may impose (the config's `retry.max_retry_after_ms`,
    /// worked out once).
    #[inline(always)]
    pub(crate) fn retry_after_cap(&self) -> Duration {
        self.retry_after_cap
    }

    /// A learned limit holds while the host keeps sending it: two windows (at least 1 s) past
    /// the last hint, then the configured limit (or none) applies again.
    pub(crate) fn lapse_learned_limit(&mut self, host: usize, now: Instant) {
        let h = &mut self.hosts[host];
        if h.learned_until.is_some_and(|t| now >= t) {
            h.learned_until = None;
            h.learned_from = None;
            h.limiter = match (&h.limiter, &self.config.limit) {
                (Some(g), Some(configured)) => Some(g.retuned(configured)),
                (None, Some(configured)) => Some(Gcra::new(configured)),
                (_, None) => None,
            };
        }
    }

    fn learn_limit(&mut self, host: usize, hint: &RateLimitHint, now: Instant) {
        let h = &mut self.hosts[host];
        if let (Some(quota), Some(window)) = (hint.limit, hint.window) {
            if quota > 0 && !window.is_zero() {
                if h.learned_until.is_some() {
                    h.learned_until = Some(now + (window * 2).max(Duration::from_secs(1)));
                }
                let per_second = quota as f64 / window.as_secs_f64();
                let looser = h
                    .limiter
                    .as_ref()
                    .is_none_or(|g| g.per_second() > per_second * 1.001);
                if looser && (0.001..=1e9).contains(&per_second) {
                    let learned = LimitConfig {
                        per_second,
                        burst: u32::try_from(quota).unwrap_or(u32::MAX),
                    };
                    h.limiter = Some(match &h.limiter {
                        Some(g) => g.retuned(&learned),
                        None => Gcra::new(&learned),
                    });
                    h.learned_until = Some(now + (window * 2).max(Duration::from_secs(1)));
                    h.learned_from = Some(hint.source);
                    let name = h.name.clone();
                    let burst = learned.burst.into();
                    let ttl = (window * 2).max(Duration::from_secs(1));
                    self.share(
                        host,
                        SharedUpdate::Limit {
                            limit: SharedLimit::from_config(&learned),
                            ttl,
                        },
                    );
                    self.event(
                        now,
                        EventKind::LimitLearned {
                            host: name,
                            per_second,
                            burst,
                        },
                    );
                }
            }
        }
        let h = &mut self.hosts[host];
        if let (Some(remaining), Some(g)) = (hint.remaining, h.limiter.as_mut()) {
            g.tighten(now, remaining, hint.reset);
            if h.learned_from.is_none() {
                h.learned_from = Some(hint.source);
            }
        }
    }

    /// Holds the host and, in fleet mode, tells the fleet.
    fn hold(&mut self, host: usize, until: Instant, why: Why, hint: Hint, now: Instant) {
        if self.hold_local(host, until, why, hint, now) {
            self.share(
                host,
                SharedUpdate::Hold {
                    wait: until - now,
                    why,
                },
            );
        }
    }

    /// Holds the host in this instance; whether the hold got longer.
    pub(crate) fn hold_local(
        &mut self,
        host: usize,
        until: Instant,
        why: Why,
        hint: Hint,
        now: Instant,
    ) -> bool {
        let h = &mut self.hosts[host];
        let longer = until > h.hold_until;
        if longer {
            h.hold_until = until;
            h.hold_why = why;
            h.hold_hint = hint;
            let name = h.name.clone();
            self.event(
                now,
                EventKind::HostHeld {
                    host: name,
                    until,
                    why,
                },
            );
        }
        longer
    }
}
