//! Reads on a PostgreSQL hot standby (`DATABASE_READ_URL`), with read-your-writes.
//!
//! - **What goes there.** Requests that only read ([`crate::state::AppState::read`]): profiles,
//!   lists, the timeline, posts, notifications, search. Writes, the token's user and session
//!   (`auth`), event streams, the session list and the admin's report queue stay on the primary.
//! - **Read-your-writes.** Every write stamps its caller's `users.last_write_at` (under the lock it
//!   already takes, `services::users::lock`; registration sets it). `auth` loads that row from the
//!   primary, so a caller who wrote within [`Standby::recent_window`] reads from the primary.
//! - **Lag.** Every [`CHECK_INTERVAL`] a check reads the standby's replay position
//!   (`pg_last_wal_replay_lsn()`) and then the primary's (`pg_current_wal_lsn()`), and remembers
//!   when it first saw the primary's position pass each value. The standby's lag is how long ago
//!   the primary first held WAL the standby has still not replayed: zero when it has replayed all
//!   it was sent, however long ago the last write was (`now() - pg_last_xact_replay_timestamp()`
//!   would instead jump to "time since the previous commit" the moment a write arrives after a
//!   quiet spell). A standby lagging more than `READ_LAG_BUDGET_MS`, not answering, or not in
//!   recovery (promoted, or not a standby at all) leaves the rotation until a check finds it fit.
//! - **No error reaches a client.** A read that fails on the standby (it stopped between two
//!   checks, a query was cancelled by a recovery conflict) takes the standby out of the rotation
//!   and runs again on the primary.
//!
//! The lag measured at a check may be up to one interval short (the primary's position is
//! sampled, not watched), and a standby is taken out at the next check: so a standby in the
//! rotation is at most `budget + 2 x CHECK_INTERVAL` behind, and that is the window in which a
//! writer's reads stay on the primary.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use entity::user;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};

use crate::error::ApiError;

/// How often the standby's lag is measured.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Longest a check waits for either database.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The most positions remembered: at one new position per check, some 13 minutes of lag. Past
/// it no new position is noted, which keeps the oldest unreplayed one, so the lag stays exact.
const MAX_SAMPLES: usize = 4_096;

/// A read-only standby and whether reads may go to it now.
pub struct Standby {
    db: DatabaseConnection,
    budget: Duration,
    in_rotation: AtomicBool,
    /// The lag at the last check, in milliseconds (`u64::MAX`: unknown).
    lag_ms: AtomicU64,
    /// Reads that failed on the standby and were answered from the primary.
    fallbacks: AtomicU64,
}

impl Standby {
    /// A standby reached through `db` (a lazily connected pool), out of the rotation until the
    /// first check finds it fit.
    pub fn new(db: DatabaseConnection, budget: Duration) -> Arc<Self> {
        Arc::new(Standby {
            db,
            budget,
            in_rotation: AtomicBool::new(false),
            lag_ms: AtomicU64::new(u64::MAX),
            fallbacks: AtomicU64::new(0),
        })
    }

    /// How recently a caller must have written for their reads to stay on the primary.
    pub fn recent_window(&self) -> Duration {
        self.budget + 2 * CHECK_INTERVAL
    }

    /// The standby's pool, when `viewer`'s reads may go to it now: it is in the rotation, and the
    /// viewer (if any) did not write within [`Standby::recent_window`].
    pub fn for_reads(&self, viewer: Option<&user::Model>) -> Option<&DatabaseConnection> {
        let fit = self.in_rotation.load(Ordering::Acquire)
            && viewer.is_none_or(|me| !wrote_recently(me, self.recent_window()));
        fit.then_some(&self.db)
    }

    /// Notes that a read failed on the standby: out of the rotation until the next good check.
    pub fn failed(&self, err: &ApiError) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        if self.in_rotation.swap(false, Ordering::AcqRel) {
            tracing::warn!(error = %err, "a read failed on the standby: reads go to the primary until it passes a check");
        }
    }

    /// Whether reads may go to the standby (for the metrics).
    pub fn in_rotation(&self) -> bool {
        self.in_rotation.load(Ordering::Acquire)
    }

    /// The lag at the last check, when it could be measured.
    pub fn lag(&self) -> Option<Duration> {
        match self.lag_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// How many reads failed on the standby and were answered from the primary.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Checks the standby every [`CHECK_INTERVAL`] for as long as the process runs.
    pub async fn watch(self: Arc<Self>, primary: DatabaseConnection) {
        let mut lag = LagTracker::default();
        let mut ticks = tokio::time::interval(CHECK_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<std::mem::Discriminant<Unfit>> = None;
        loop {
            ticks.tick().await;
            let verdict = self.check(&primary, &mut lag).await;
            let lag_ms = match &verdict {
                Ok(lag) | Err(Unfit::Lagging(lag)) => {
                    u64::try_from(lag.as_millis()).unwrap_or(u64::MAX - 1)
                }
                Err(_) => u64::MAX,
            };
            self.lag_ms.store(lag_ms, Ordering::Relaxed);
            match verdict.and_then(|lag| {
                if lag <= self.budget {
                    Ok(lag)
                } else {
                    Err(Unfit::Lagging(lag))
                }
            }) {
                Ok(lag) => {
                    if !self.in_rotation.swap(true, Ordering::AcqRel) {
                        tracing::info!(lag_ms = lag.as_millis(), "the standby takes reads");
                    }
                    last = None;
                }
                Err(unfit) => {
                    let was_in = self.in_rotation.swap(false, Ordering::AcqRel);
                    let kind = std::mem::discriminant(&unfit);
                    // Said once per spell, not five times a second.
                    if was_in || last != Some(kind) {
                        tracing::warn!(
                            reason = %unfit.describe(self.budget),
                            "the standby takes no reads"
                        );
                    }
                    last = Some(kind);
                }
            }
        }
    }

    /// One check: the standby's lag, or why it cannot take reads.
    async fn check(
        &self,
        primary: &DatabaseConnection,
        lag: &mut LagTracker,
    ) -> Result<Duration, Unfit> {
        // The standby first: the primary's position read after it can only be newer, so the lag
        // is never understated by the order of the two reads.
        let replayed = query_text(
            &self.db,
            "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END",
        )
        .await
        .map_err(|e| Unfit::Unreachable(e.to_string()))?
        .ok_or(Unfit::NotStandby)?;
        let current = query_text(primary, "SELECT pg_current_wal_lsn()::text")
            .await
            .map_err(|e| Unfit::PrimaryUnknown(e.to_string()))?
            .ok_or_else(|| Unfit::PrimaryUnknown("it has no WAL position".to_owned()))?;
        let (Some(replayed), Some(current)) = (parse_lsn(&replayed), parse_lsn(&current)) else {
            return Err(Unfit::Unreadable(format!("{replayed:?}, {current:?}")));
        };
        Ok(lag.observe(Instant::now(), current, replayed))
    }
}

/// Why the standby takes no reads.
enum Unfit {
    Lagging(Duration),
    Unreachable(String),
    NotStandby,
    PrimaryUnknown(String),
    Unreadable(String),
}

impl Unfit {
    fn describe(&self, budget: Duration) -> String {
        match self {
            Unfit::Lagging(lag) => format!(
                "its replay lags {} ms, more than READ_LAG_BUDGET_MS ({} ms)",
                lag.as_millis(),
                budget.as_millis()
            ),
            Unfit::Unreachable(err) => format!("it does not answer: {err}"),
            Unfit::NotStandby => {
                "it is not in recovery (promoted, or not a standby at all)".to_owned()
            }
            Unfit::PrimaryUnknown(err) => {
                format!("the primary's WAL position is unknown, so is the lag: {err}")
            }
            Unfit::Unreadable(positions) => format!("unreadable WAL positions {positions}"),
        }
    }
}

/// Whether `me` changed something within `window` of now (clock of this host; replicas on several
/// hosts need synchronized clocks, as `created_at` already does).
fn wrote_recently(me: &user::Model, window: Duration) -> bool {
    let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    crate::time::now_millis().saturating_sub(me.last_write_at) < window
}

async fn query_text(db: &DatabaseConnection, sql: &str) -> Result<Option<String>, DbErr> {
    let row = tokio::time::timeout(
        CHECK_TIMEOUT,
        db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql)),
    )
    .await
    .map_err(|_| DbErr::Custom(format!("no answer in {} ms", CHECK_TIMEOUT.as_millis())))??;
    match row {
        Some(row) => row.try_get_by_index::<Option<String>>(0),
        None => Ok(None),
    }
}

/// A WAL position as PostgreSQL writes it (`16/B374D848`: two hexadecimal halves).
fn parse_lsn(text: &str) -> Option<u64> {
    let (high, low) = text.split_once('/')?;
    let high = u32::from_str_radix(high, 16).ok()?;
    let low = u32::from_str_radix(low, 16).ok()?;
    Some((u64::from(high) << 32) | u64::from(low))
}

/// When the primary was first seen at each of its recent positions.
#[derive(Default)]
struct LagTracker {
    /// `(first seen, position)`, positions increasing.
    seen: VecDeque<(Instant, u64)>,
}

impl LagTracker {
    /// Notes the primary at `current` at time `now`, the standby having replayed up to
    /// `replayed`; the lag is how long ago the primary was first seen past `replayed`.
    fn observe(&mut self, now: Instant, current: u64, replayed: u64) -> Duration {
        if self.seen.back().is_none_or(|&(_, last)| current > last) && self.seen.len() < MAX_SAMPLES
        {
            self.seen.push_back((now, current));
        }
        while self.seen.front().is_some_and(|&(_, at)| at <= replayed) {
            self.seen.pop_front();
        }
        self.seen.front().map_or(Duration::ZERO, |&(first, _)| {
            now.saturating_duration_since(first)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_as_postgresql_writes_them() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("FFFFFFFF/FFFFFFFF"), Some(u64::MAX));
        assert_eq!(parse_lsn("16B374D848"), None);
        assert_eq!(parse_lsn("x/1"), None);
    }

    #[test]
    fn a_standby_that_replayed_everything_has_no_lag_however_old_the_last_write() {
        let start = Instant::now();
        let mut lag = LagTracker::default();
        assert_eq!(lag.observe(start, 100, 100), Duration::ZERO);
        // Nothing written for a minute: still no lag.
        assert_eq!(
            lag.observe(start + Duration::from_secs(60), 100, 100),
            Duration::ZERO
        );
    }

    #[test]
    fn the_lag_runs_from_when_the_primary_first_passed_what_the_standby_replayed() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut lag = LagTracker::default();
        assert_eq!(lag.observe(at(0), 100, 100), Duration::ZERO);
        // A write at 200 ms that the standby has not replayed (paused, say).
        assert_eq!(lag.observe(at(200), 150, 100), Duration::ZERO);
        assert_eq!(lag.observe(at(400), 150, 100), Duration::from_millis(200));
        // More writes do not restart the clock: the oldest unreplayed one counts.
        assert_eq!(lag.observe(at(600), 180, 100), Duration::from_millis(400));
        assert_eq!(
            lag.observe(at(2_200), 190, 100),
            Duration::from_millis(2_000)
        );
        // Replay reaches the first write: the lag runs from the second.
        assert_eq!(
            lag.observe(at(2_400), 190, 150),
            Duration::from_millis(1_800)
        );
        // And all of them: none.
        assert_eq!(lag.observe(at(2_600), 190, 190), Duration::ZERO);
    }

    #[test]
    fn a_full_memory_keeps_the_oldest_unreplayed_position() {
        let start = Instant::now();
        let mut lag = LagTracker::default();
        lag.observe(start, 1, 0);
        for step in 2..(MAX_SAMPLES as u64 + 100) {
            lag.observe(start + Duration::from_millis(step), step, 0);
        }
        assert_eq!(lag.seen.len(), MAX_SAMPLES);
        let later = start + Duration::from_secs(10);
        assert_eq!(lag.observe(later, 999_999, 0), Duration::from_secs(10));
    }

    #[test]
    fn a_writer_stays_on_the_primary_for_the_window_and_no_longer() {
        let now = crate::time::now_millis();
        let me = |last_write_at| user::Model {
            last_write_at,
            ..crate::services::users::sample(1)
        };
        let window = Duration::from_millis(2_400);
        assert!(wrote_recently(&me(now), window));
        assert!(wrote_recently(&me(now - 2_000), window));
        assert!(!wrote_recently(&me(now - 3_000), window));
        assert!(!wrote_recently(&me(0), window));
    }
}
