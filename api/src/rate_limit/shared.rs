//! Quotas kept in Redis (`REDIS_URL`), so that every replica draws on one quota per key.
//!
//! One Lua script per check ([`GCRA`]) reads and moves the key's theoretical arrival time
//! atomically, on Redis' own clock (`TIME`), so replicas on hosts whose clocks differ agree, and
//! no read-then-write race lets two replicas both take the last request. It is the same
//! generic cell rate algorithm as the per-process `governor` limiters, with the same burst (the
//! whole per-minute quota) and the same headers.
//!
//! When Redis does not answer (not reachable, or slower than [`TIMEOUT`]) the caller falls back to
//! its per-process limiter, and a warning is logged at most once a minute.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

/// Longest a check waits for Redis before the process's own limiter decides.
pub const TIMEOUT: Duration = Duration::from_millis(250);

/// How often the process tries to (re)connect while Redis is unreachable, at most.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

/// GCRA on one key: `ARGV[1]` the emission interval in ms (60,000 / quota), `ARGV[2]` the burst
/// (the quota). Answers `{1, remaining, ms until whole}` or `{0, ms until allowed, ms until
/// whole}`.
const GCRA: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return {1, math.floor((now - allow_at) / interval), new_tat - now}
";

/// What Redis decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32, whole_in_ms: u64 },
    Refused { retry_in_ms: u64, whole_in_ms: u64 },
}

/// The connection to Redis and the script.
pub struct Shared {
    client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    /// When the last attempt to connect failed (ms since the Unix epoch), to space them.
    last_attempt_ms: AtomicU64,
    /// When the last warning was logged (ms since the Unix epoch).
    last_warning_ms: AtomicU64,
    script: redis::Script,
    prefix: String,
}

impl Shared {
    /// A limiter on the Redis at `url` (not connected until its first check); keys start with
    /// `prefix`.
    pub fn new(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(Shared {
            client: redis::Client::open(url)?,
            connection: Mutex::new(None),
            last_attempt_ms: AtomicU64::new(0),
            last_warning_ms: AtomicU64::new(0),
            script: redis::Script::new(GCRA),
            prefix: prefix.to_owned(),
        })
    }

    /// Takes one request from `key`'s quota of `per_minute`; `None` when Redis did not answer
    /// (the caller uses its own limiter; the first failure of each minute is logged).
    pub async fn take(&self, quota: &str, key: &str, per_minute: u32) -> Option<Decision> {
        match tokio::time::timeout(TIMEOUT, self.try_take(quota, key, per_minute)).await {
            Ok(Ok(decision)) => Some(decision),
            Ok(Err(err)) => {
                self.warn(&err.to_string());
                None
            }
            Err(_) => {
                self.warn("no answer in time");
                None
            }
        }
    }

    async fn try_take(
        &self,
        quota: &str,
        key: &str,
        per_minute: u32,
    ) -> Result<Decision, redis::RedisError> {
        let mut connection = self.connection().await?;
        let per_minute = per_minute.max(1);
        let interval_ms = 60_000 / u64::from(per_minute);
        let (allowed, first, whole_in_ms): (i64, i64, i64) = self
            .script
            .key(format!("{}:{quota}:{key}", self.prefix))
            .arg(interval_ms.max(1))
            .arg(per_minute)
            .invoke_async(&mut connection)
            .await?;
        let non_negative = |ms: i64| u64::try_from(ms).unwrap_or(0);
        Ok(if allowed == 1 {
            Decision::Allowed {
                remaining: u32::try_from(first).unwrap_or(0).min(per_minute),
                whole_in_ms: non_negative(whole_in_ms),
            }
        } else {
            Decision::Refused {
                retry_in_ms: non_negative(first),
                whole_in_ms: non_negative(whole_in_ms),
            }
        })
    }

    /// The connection, made on first use; while Redis is unreachable, one attempt per
    /// [`RECONNECT_EVERY`] (a connection once made reconnects by itself).
    async fn connection(&self) -> Result<ConnectionManager, redis::RedisError> {
        let mut connection = self.connection.lock().await;
        if let Some(connection) = connection.as_ref() {
            return Ok(connection.clone());
        }
        let now = now_ms();
        let last = self.last_attempt_ms.load(Ordering::Acquire);
        if last != 0 && now.saturating_sub(last) < RECONNECT_EVERY.as_millis() as u64 {
            return Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "not connected (retrying every 5 s)",
            )));
        }
        self.last_attempt_ms.store(now, Ordering::Release);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let made = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *connection = Some(made.clone());
        Ok(made)
    }

    fn warn(&self, error: &str) {
        let now = now_ms();
        let last = self.last_warning_ms.load(Ordering::Acquire);
        if (last == 0 || now.saturating_sub(last) >= 60_000)
            && self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            tracing::warn!(
                error,
                "Redis does not answer: rate limits are per process until it does (logged once a minute)"
            );
        }
    }
}

fn now_ms() -> u64 {
    u64::try_from(crate::time::now_millis()).unwrap_or(0)
}
