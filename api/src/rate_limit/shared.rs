//! Quotas kept in Redis (`REDIS_URL`), so that every replica draws on one quota per key.
//!
//! One Lua script per check ([`GCRA`]) reads and moves the key's theoretical arrival time
//! atomically, on Redis' own clock (`TIME`), so replicas on hosts whose clocks differ agree, and
//! no read-then-write race lets two replicas both take the last request. It is the same
//! generic cell rate algorithm as the per-process `governor` limiters, with the same burst (the
//! whole per-minute quota) and the same headers.
//!
//! The streams a user has open are counted here too, across replicas: each open stream holds a
//! lease in the user's sorted set, scored by its expiry on Redis' clock, renewed while the stream
//! lives and removed when it closes; a replica that dies without removing its leases loses them
//! when they expire ([`Shared::claim_stream`]).
//!
//! When Redis does not answer (not reachable, or slower than [`TIMEOUT`]) the caller falls back to
//! its per-process limiter or count, and a warning is logged at most once a minute.

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

/// Claims one of a user's stream places (a sorted set of leases scored by their expiry, on Redis'
/// clock): expired leases go first; then, with fewer than `ARGV[2]` left, lease `ARGV[1]` is
/// added for `ARGV[3]` ms. Answers 1 (claimed) or 0 (all taken).
const CLAIM_STREAM: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
";

/// Renews leases: `KEYS[i]` holds lease `ARGV[i + 1]`, which lives `ARGV[1]` ms more if it is
/// still there (`XX`: a renewal never brings back a lease that was released or refused since
/// the renewal read it, nor one that expired while Redis was away).
const RENEW_STREAMS: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[i + 1]) == 1
      and redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end
return #KEYS
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
    claim_stream: redis::Script,
    renew_streams: redis::Script,
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
            claim_stream: redis::Script::new(CLAIM_STREAM),
            renew_streams: redis::Script::new(RENEW_STREAMS),
            prefix: prefix.to_owned(),
        })
    }

    /// Takes one request from `key`'s quota of `per_minute`; `None` when Redis did not answer
    /// (the caller uses its own limiter; the first failure of each minute is logged).
    pub async fn take(&self, quota: &str, key: &str, per_minute: u32) -> Option<Decision> {
        self.answer(self.try_take(quota, key, per_minute)).await
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

    /// Claims one of `user`'s `limit` stream places for `lease`, for `ttl` unless renewed
    /// ([`Shared::renew_streams`]): `Some(false)` when every place is taken, `None` when Redis did
    /// not answer (the process's own count decides; logged as for the quotas).
    pub async fn claim_stream(
        &self,
        user: i64,
        lease: &str,
        limit: usize,
        ttl: Duration,
    ) -> Option<bool> {
        let call = async {
            let mut connection = self.connection().await?;
            self.claim_stream
                .key(self.streams_key(user))
                .arg(lease)
                .arg(limit)
                .arg(ttl.as_millis() as u64)
                .invoke_async::<i64>(&mut connection)
                .await
        };
        self.answer(call).await.map(|claimed| claimed == 1)
    }

    /// Keeps the leases of open streams, `(user, lease)`, for `ttl` more.
    pub async fn renew_streams(&self, leases: &[(i64, String)], ttl: Duration) {
        for chunk in leases.chunks(1_000) {
            let call = async {
                let mut connection = self.connection().await?;
                let mut invocation = self.renew_streams.prepare_invoke();
                invocation.arg(ttl.as_millis() as u64);
                for (user, lease) in chunk {
                    invocation.key(self.streams_key(*user)).arg(lease);
                }
                invocation.invoke_async::<i64>(&mut connection).await
            };
            if self.answer(call).await.is_none() {
                return;
            }
        }
    }

    /// Gives back the stream places held by `leases`, `(user, lease)` (closed streams).
    pub async fn release_streams(&self, leases: &[(i64, String)]) {
        for chunk in leases.chunks(1_000) {
            let call = async {
                let mut connection = self.connection().await?;
                let mut pipe = redis::pipe();
                for (user, lease) in chunk {
                    pipe.zrem(self.streams_key(*user), lease).ignore();
                }
                pipe.query_async::<()>(&mut connection).await
            };
            if self.answer(call).await.is_none() {
                return;
            }
        }
    }

    fn streams_key(&self, user: i64) -> String {
        format!("{}:streams:{user}", self.prefix)
    }

    /// The result of a call to Redis within [`TIMEOUT`], or `None` (logged at most once a
    /// minute).
    async fn answer<T>(
        &self,
        call: impl Future<Output = Result<T, redis::RedisError>>,
    ) -> Option<T> {
        match tokio::time::timeout(TIMEOUT, call).await {
            Ok(Ok(answer)) => Some(answer),
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
                "Redis does not answer: rate limits and the streams per user are counted per process until it does (logged once a minute)"
            );
        }
    }
}

fn now_ms() -> u64 {
    u64::try_from(crate::time::now_millis()).unwrap_or(0)
}
