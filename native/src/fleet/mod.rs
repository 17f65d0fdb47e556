//! Fleet mode on Redis (feature `redis`): the store behind the engine's
//! [`resile_core::Action::Reserve`] and [`resile_core::Action::Share`].
//!
//! Every decision is one call of one Lua script (`fleet.lua`, loaded once and called by its
//! SHA with `EVALSHA`; reloaded when Redis answers `NOSCRIPT`, after a restart): the GCRA per
//! host, the holds, the learned limits and the shared breaker live in four keys per host,
//! `NAME:{HOST}:tat|hold|brk|lim` (one hash tag, so a Redis Cluster keeps them on one shard).
//! The script reads the time with `TIME` and answers relative waits: no instance's clock is
//! compared with Redis's or another's (see [`resile_core::fleet`] for the bound on skew).
//!
//! The connection is redis-rs's tokio `ConnectionManager` (one multiplexed connection, shared
//! by every call, reconnecting in the background), opened on first use so that a client builds
//! and works while Redis is down. It is opened after one plain dial: the manager retries every
//! failure alike, so a wrong password or a listener that is not Redis would read as a store
//! that did not answer in time; the dial reports those as [`StoreProblem::Rejected`] (and a
//! refused port as [`StoreProblem::Unreachable`]) at once. The store never decides: the engine waits for an answer at
//! most `fleet.answer_within_ms` on its own timer and falls back to its local share.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, RedisError, Script};
use tokio::sync::OnceCell;

use resile_core::fleet::{Reservation, SharedLimit, SharedUpdate, StoreProblem};
use resile_core::Why;

use crate::error::Error;

/// The longest a store task lives (connecting included). The engine gives up much earlier
/// (`fleet.answer_within_ms`); this only bounds the task.
const TASK_LIMIT: Duration = Duration::from_secs(1);

/// The connect and response bound of one dial (the plain one first, then each of the
/// manager's).
const DIAL_LIMIT: Duration = Duration::from_millis(250);

/// How long a dial that failed answers for the next ones: for that long every reservation is
/// answered with the same problem at once instead of dialing again (a wrong password, a
/// listener that is not Redis or a host that is down is not asked once per call of every
/// instance).
const REDIAL_AFTER: Duration = Duration::from_millis(500);

/// The fleet's Redis: a lazily opened connection and the script.
pub(crate) struct RedisStore {
    client: redis::Client,
    conn: OnceCell<ConnectionManager>,
    /// The last failed dial (before the connection opened), and when it failed.
    failed: std::sync::Mutex<Option<(std::time::Instant, StoreProblem)>>,
    script: Script,
    prefix: String,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// How a hold's reason travels through the script.
fn why_code(why: Why) -> u8 {
    match why {
        Why::ServerQuotaHold => 2,
        Why::FleetBreakerOpen => 3,
        _ => 1,
    }
}

fn code_why(code: i64) -> Why {
    match code {
        2 => Why::ServerQuotaHold,
        3 => Why::FleetBreakerOpen,
        _ => Why::ServerRetryAfterHold,
    }
}

fn problem(e: &RedisError) -> StoreProblem {
    if e.is_timeout() {
        StoreProblem::Timeout
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        StoreProblem::Unreachable
    } else {
        StoreProblem::Rejected
    }
}

impl RedisStore {
    /// A store for `url` (`redis://[:password@]host:port[/db]`), keys prefixed with the fleet's
    /// name. Nothing is connected yet.
    pub(crate) fn new(url: &str, name: &str) -> Result<RedisStore, Error> {
        let client = redis::Client::open(url).map_err(|e| Error::Config {
            field: Some("redis_url".to_string()),
            // The error's detail may repeat the URL, password included: only its kind.
            message: format!("not a Redis URL ({:?})", e.kind()),
        })?;
        Ok(RedisStore {
            client,
            conn: OnceCell::new(),
            failed: std::sync::Mutex::new(None),
            script: Script::new(include_str!("fleet.lua")),
            prefix: name.to_string(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        self.conn
            .get_or_try_init(|| async {
                // One plain dial first, its failure returned as it is: the manager retries
                // every failure alike (a wrong password, a listener that does not speak Redis, a
                // refused port) until the task's limit reads it as a timeout. The
                // reservations of the next `REDIAL_AFTER` are answered with its problem; the
                // one after dials again.
                let dial = AsyncConnectionConfig::new()
                    .set_connection_timeout(DIAL_LIMIT)
                    .set_response_timeout(DIAL_LIMIT);
                drop(
                    self.client
                        .get_multiplexed_async_connection_with_config(&dial)
                        .await?,
                );
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(DIAL_LIMIT)
                    .set_response_timeout(DIAL_LIMIT)
                    .set_number_of_retries(2)
                    .set_max_delay(200);
                ConnectionManager::new_with_config(self.client.clone(), config).await
            })
            .await
            .cloned()
    }

    /// Opens the connection ahead of the first reservation (in the background, when the
    /// client is built on a runtime), so the first calls do not fall back while it connects.
    pub(crate) async fn warm(&self) {
        if let Err(e) = self.connection().await {
            tracing::debug!(target: "resile", error = %e, "fleet store not reachable yet");
        }
    }

    /// The problem of a dial that failed less than `REDIAL_AFTER` ago, while no connection is
    /// open.
    fn holding_off(&self) -> Option<StoreProblem> {
        if self.conn.initialized() {
            return None;
        }
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        failed
            .filter(|(at, _)| at.elapsed() < REDIAL_AFTER)
            .map(|(_, problem)| problem)
    }

    async fn run(&self, host: &str, args: &[u64], op: &str) -> Result<[i64; 3], RedisError> {
        let mut conn = self.connection().await.inspect_err(|e| {
            let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
            *failed = Some((std::time::Instant::now(), problem(e)));
        })?;
        let base = format!("{}:{{{host}}}", self.prefix);
        let mut invocation = self.script.prepare_invoke();
        for key in ["tat", "hold", "brk", "lim"] {
            invocation.key(format!("{base}:{key}"));
        }
        invocation.arg(op);
        for a in args {
            invocation.arg(*a);
        }
        let reply: Vec<i64> = invocation.invoke_async(&mut conn).await?;
        match reply[..] {
            [a, b, c] => Ok([a, b, c]),
            _ => Err(RedisError::from((
                redis::ErrorKind::TypeError,
                "the fleet script answered with the wrong shape",
            ))),
        }
    }

    /// The engine's [`resile_core::Action::Reserve`], answered.
    pub(crate) async fn reserve(
        &self,
        host: &str,
        limit: Option<SharedLimit>,
        max_wait: Duration,
    ) -> Reservation {
        if let Some(problem) = self.holding_off() {
            return Reservation::Unavailable(problem);
        }
        let (interval, burst) = limit.map_or((0, 0), |l| (micros(l.interval).max(1), l.burst));
        let args = [interval, u64::from(burst), micros(max_wait)];
        let reply = tokio::time::timeout(TASK_LIMIT, self.run(host, &args, "reserve")).await;
        let wait = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        match reply {
            Err(_) => Reservation::Unavailable(StoreProblem::Timeout),
            Ok(Err(e)) => {
                tracing::debug!(target: "resile", error = %e, "fleet store failed");
                Reservation::Unavailable(problem(&e))
            }
            Ok(Ok([0, _, _])) => Reservation::Admitted,
            Ok(Ok([1, us, _])) => Reservation::NotBefore { wait: wait(us) },
            Ok(Ok([2, us, _])) => Reservation::Refused { wait: wait(us) },
            Ok(Ok([3, us, why])) => Reservation::Held {
                wait: wait(us),
                why: code_why(why),
            },
            Ok(Ok(_)) => Reservation::Unavailable(StoreProblem::Rejected),
        }
    }

    /// The engine's [`resile_core::Action::Share`], sent; a failure is only logged (the engine
    /// learns of a store that is down from its next reservation).
    pub(crate) async fn share(&self, host: &str, update: SharedUpdate) {
        let (op, args) = match update {
            SharedUpdate::Hold { wait, why } => ("hold", vec![micros(wait), why_code(why).into()]),
            SharedUpdate::BreakerOpen { wait } => ("breaker", vec![micros(wait)]),
            SharedUpdate::Limit { limit, ttl } => (
                "limit",
                vec![
                    micros(limit.interval).max(1),
                    limit.burst.into(),
                    micros(ttl),
                ],
            ),
            _ => return,
        };
        if self.holding_off().is_some() {
            tracing::debug!(target: "resile", op, "fleet store update skipped: the store failed just now");
            return;
        }
        match tokio::time::timeout(TASK_LIMIT, self.run(host, &args, op)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(target: "resile", error = %e, op, "fleet store update failed")
            }
            Err(_) => tracing::debug!(target: "resile", op, "fleet store update timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resile_chaos::redis::RedisServer;

    async fn ask(url: &str) -> Reservation {
        let store = RedisStore::new(url, "t").expect("a Redis URL");
        store.reserve("h", None, Duration::from_millis(10)).await
    }

    #[tokio::test]
    async fn a_wrong_password_is_rejected_not_a_timeout() {
        let redis = RedisServer::start();
        let admin = redis::Client::open(redis.url()).expect("the URL");
        let mut conn = admin
            .get_multiplexed_async_connection()
            .await
            .expect("redis answers");
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("requirepass")
            .arg("right")
            .query_async(&mut conn)
            .await
            .expect("a password is set");
        let wrong = format!("redis://:wrong@127.0.0.1:{}/", redis.port);
        assert_eq!(
            ask(&wrong).await,
            Reservation::Unavailable(StoreProblem::Rejected)
        );
        let right = format!("redis://:right@127.0.0.1:{}/", redis.port);
        assert_eq!(ask(&right).await, Reservation::Admitted);
    }

    #[tokio::test]
    async fn a_listener_that_is_not_redis_is_rejected_not_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        let dials = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = dials.clone();
        let server = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                use tokio::io::AsyncWriteExt;
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                open.push(socket);
            }
        });
        let store = RedisStore::new(&format!("redis://127.0.0.1:{port}/"), "t").expect("a URL");
        let reserve = || store.reserve("h", None, Duration::from_millis(10));
        assert_eq!(
            reserve().await,
            Reservation::Unavailable(StoreProblem::Rejected)
        );
        let after_one = dials.load(std::sync::atomic::Ordering::SeqCst);
        assert!(after_one >= 1);
        // The next reservations, right after, get the same answer without another dial; once
        // `REDIAL_AFTER` has passed, the store dials again.
        for _ in 0..5 {
            assert_eq!(
                reserve().await,
                Reservation::Unavailable(StoreProblem::Rejected)
            );
        }
        assert_eq!(dials.load(std::sync::atomic::Ordering::SeqCst), after_one);
        tokio::time::sleep(REDIAL_AFTER + Duration::from_millis(50)).await;
        assert_eq!(
            reserve().await,
            Reservation::Unavailable(StoreProblem::Rejected)
        );
        assert!(dials.load(std::sync::atomic::Ordering::SeqCst) > after_one);
        server.abort();
    }

    #[tokio::test]
    async fn a_closed_port_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        assert_eq!(
            ask(&format!("redis://127.0.0.1:{port}/")).await,
            Reservation::Unavailable(StoreProblem::Unreachable)
        );
    }
}
