//! Everything the server remembers, behind one mutex, and the handle to reach it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{ChaosConfig, MAX_COLLECTION};
use crate::script::{Script, ScriptLog};

/// Counters since the start or the last reset, as served by `GET /stats`.
///
/// Decode the JSON of `GET /stats` into this type, or read it from
/// [`crate::ChaosServer::stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Requests seen, preflights excluded.
    pub requests: u64,
    /// Requests per route, keyed by the route's pattern (`/status/{code}`, `/items/link`, ...).
    pub requests_by_route: BTreeMap<String, u64>,
    /// CORS preflights answered.
    pub preflights: u64,
    /// TCP connections accepted.
    pub connections: u64,
    /// Connections closed on purpose without a response (`/reset`, `fault=reset`, ...).
    pub resets: u64,
    /// Bodies cut short of their `Content-Length`.
    pub truncated: u64,
    /// Requests held without an answer (`/stall`, `fault=stall`).
    pub stalls: u64,
    /// Requests refused with 503 because of an outage window.
    pub outage_rejections: u64,
    /// Failures answered by `/flaky`.
    pub flaky_failures: u64,
    /// 429 replies from `/ratelimited`.
    pub rate_limited: u64,
    /// Pages of the collection served successfully.
    pub pages_served: u64,
    /// Page requests failed on purpose by `fail_rate`.
    pub page_failures: u64,
    /// Items inserted into the collection by `insert_every`.
    pub items_inserted: u64,
    /// Orders created: the side effects of `POST /orders`.
    pub orders_created: u64,
    /// Orders whose body equals the body of an order created earlier (see the crate docs).
    pub duplicate_orders: u64,
    /// `POST /orders` answered from the idempotency store instead of creating an order.
    pub idempotent_replays: u64,
    /// Answers replaced by a failure after the order was committed (`mode=commit_then_fail`).
    pub commit_then_fail: u64,
    /// Access tokens issued by `POST /oauth/token`.
    pub tokens_issued: u64,
    /// Token requests refused (400 or 401).
    pub token_errors: u64,
    /// `/protected/...` requests refused with 401.
    pub unauthorized: u64,
    /// `/protected/...` requests let through.
    pub authorized: u64,
    /// Requests served from scripts (`/s/{id}`).
    pub scripted: u64,
    /// Redirects answered by `/redirect/...`.
    pub redirects: u64,
    /// `/signed` requests whose `X-Signature` matched the body.
    pub signatures_verified: u64,
    /// `/signed` requests whose `X-Signature` was missing or did not match.
    pub signatures_rejected: u64,
}

/// One side effect of `POST /orders`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// Assigned by the server, from 1.
    pub id: u64,
    /// The JSON body of the request that created it.
    pub body: serde_json::Value,
    /// The `Idempotency-Key` of that request, if any.
    pub idempotency_key: Option<String>,
    /// True when an earlier order had an equal body.
    pub duplicate: bool,
}

/// The paginated collection: `total` original items (ids `1..=total`) behind `inserted`
/// items put at the front later (ids `total+1..`, the newest first). Positions are derived,
/// never stored, so a million items cost nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Collection {
    pub total: u64,
    pub inserted: u64,
}

impl Collection {
    pub fn len(&self) -> u64 {
        self.total + self.inserted
    }

    pub fn id_at(&self, pos: u64) -> Option<u64> {
        if pos >= self.len() {
            None
        } else if pos < self.inserted {
            Some(self.total + self.inserted - pos)
        } else {
            Some(pos - self.inserted + 1)
        }
    }

    pub fn position_of(&self, id: u64) -> Option<u64> {
        if id == 0 || id > self.len() {
            None
        } else if id <= self.total {
            Some(self.inserted + id - 1)
        } else {
            Some(self.total + self.inserted - id)
        }
    }

    /// Ids at positions `start..start + count`, clipped to the collection.
    pub fn ids(&self, start: u64, count: u64) -> Vec<u64> {
        let end = start.saturating_add(count).min(self.len());
        (start..end).filter_map(|p| self.id_at(p)).collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Outage {
    pub start: Instant,
    pub end: Instant,
    pub retry_after: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    pub tokens: f64,
    pub at: Instant,
}

#[derive(Debug, Clone)]
pub(crate) struct IdemRecord {
    pub body_hash: u64,
    pub order_index: usize,
}

/// The mutable part of the server.
pub(crate) struct State {
    pub stats: Stats,
    pub flaky: HashMap<String, u64>,
    /// Requests seen per key by `/replica`.
    pub replica: HashMap<String, u64>,
    pub buckets: HashMap<String, Bucket>,
    pub collection: Collection,
    pub page_requests: u64,
    pub orders: Vec<Order>,
    pub order_bodies: HashSet<u64>,
    pub idempotency: HashMap<String, IdemRecord>,
    pub commit_failures: HashMap<String, u64>,
    pub tokens: HashMap<String, Instant>,
    pub token_counter: u64,
    pub token_expires_in: u64,
    pub outage: Option<Outage>,
    pub scripts: HashMap<String, (Script, ScriptLog)>,
    /// What `/download/{n}` and `/upload-retry` saw, per key.
    pub transfers: HashMap<String, crate::routes::transfer::TransferLog>,
    /// `/quota`'s buckets and request logs, per key.
    pub quotas: HashMap<String, QuotaLog>,
}

/// One `/quota` key: its bucket and every request it saw.
#[derive(Debug, Clone)]
pub(crate) struct QuotaLog {
    pub origin: Instant,
    pub bucket: Bucket,
    pub seen: u64,
    /// `(µs since the first request, status, instance)`.
    pub entries: Vec<(u64, u16, u32)>,
}

impl State {
    pub fn new(config: &ChaosConfig) -> Self {
        State {
            stats: Stats::default(),
            flaky: HashMap::new(),
            replica: HashMap::new(),
            buckets: HashMap::new(),
            collection: Collection {
                total: config.collection_size,
                inserted: 0,
            },
            page_requests: 0,
            orders: Vec::new(),
            order_bodies: HashSet::new(),
            idempotency: HashMap::new(),
            commit_failures: HashMap::new(),
            tokens: HashMap::new(),
            token_counter: 0,
            token_expires_in: config.token_expires_in_secs,
            outage: None,
            scripts: HashMap::new(),
            transfers: HashMap::new(),
            quotas: HashMap::new(),
        }
    }

    pub fn outage_at(&self, now: Instant) -> Option<Outage> {
        self.outage.filter(|o| o.start <= now && now < o.end)
    }
}

pub(crate) struct Shared {
    pub config: ChaosConfig,
    pub addr: SocketAddr,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(config: ChaosConfig, addr: SocketAddr) -> Self {
        let state = Mutex::new(State::new(&config));
        Shared {
            config,
            addr,
            state,
        }
    }

    /// The state; a handler that panicked while holding it does not poison the server.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `d`, capped by [`ChaosConfig::max_stall`].
    pub fn capped(&self, d: Duration) -> Duration {
        d.min(self.config.max_stall)
    }
}

/// A handle on a running server's state: read counters, open outage windows, expire
/// tokens. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct ChaosHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ChaosHandle {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Forgets everything: counters, orders, tokens, buckets, scripts, outage, insertions.
    pub fn reset(&self) {
        *self.shared.lock() = State::new(&self.shared.config);
    }

    /// Non-admin routes answer 503 from `start_in` until `end_in` from now, with
    /// `Retry-After: retry_after_secs` when given.
    pub fn set_outage(&self, start_in: Duration, end_in: Duration, retry_after_secs: Option<u64>) {
        let now = Instant::now();
        self.shared.lock().outage = Some(Outage {
            start: now + start_in,
            end: now + end_in,
            retry_after: retry_after_secs,
        });
    }

    /// An outage starting now and lasting `length`.
    pub fn outage_for(&self, length: Duration, retry_after_secs: Option<u64>) {
        self.set_outage(Duration::ZERO, length, retry_after_secs);
    }

    /// Ends any outage window.
    pub fn clear_outage(&self) {
        self.shared.lock().outage = None;
    }

    /// Makes every access token issued so far invalid; returns how many there were.
    pub fn expire_tokens(&self) -> usize {
        let mut state = self.shared.lock();
        let n = state.tokens.len();
        state.tokens.clear();
        n
    }

    /// `expires_in` of tokens issued from now on.
    pub fn set_token_expires_in(&self, secs: u64) {
        self.shared.lock().token_expires_in = secs;
    }

    /// Recreates the collection with `total` items (ids `1..=total`), forgetting insertions.
    /// Fails when `total` exceeds [`crate::MAX_COLLECTION`].
    pub fn set_collection_total(&self, total: u64) -> Result<(), String> {
        if total > MAX_COLLECTION {
            return Err(format!(
                "total must be at most {MAX_COLLECTION}, got {total}"
            ));
        }
        self.shared.lock().collection = Collection { total, inserted: 0 };
        Ok(())
    }

    /// The orders created so far, oldest first.
    pub fn orders(&self) -> Vec<Order> {
        self.shared.lock().orders.clone()
    }

    /// Installs (or replaces) the script served at `/s/{id}`.
    pub fn set_script(&self, id: &str, script: Script) -> Result<(), String> {
        crate::script::install(&self.shared, id, script).map_err(|e| e.message)
    }

    /// What the script `id` has seen so far, if it exists.
    pub fn script_log(&self, id: &str) -> Option<ScriptLog> {
        self.shared
            .lock()
            .scripts
            .get(id)
            .map(|(_, log)| log.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_positions_round_trip() {
        let c = Collection {
            total: 5,
            inserted: 3,
        };
        let ids: Vec<u64> = (0..c.len()).filter_map(|p| c.id_at(p)).collect();
        assert_eq!(ids, vec![8, 7, 6, 1, 2, 3, 4, 5]);
        for (pos, id) in ids.iter().enumerate() {
            assert_eq!(c.position_of(*id), Some(pos as u64));
        }
        assert_eq!(c.position_of(0), None);
        assert_eq!(c.position_of(9), None);
        assert_eq!(c.ids(6, 10), vec![4, 5]);
        assert_eq!(c.ids(u64::MAX, 10), Vec::<u64>::new());
    }
}
