//! Positions in commit order: the rule that lets a client page toward newer items with
//! `newer_than` and never miss one.
//!
//! A list item's position is `(created_at, id)`. If positions came from the API host's clock
//! before commit, a write that commits a moment late could become visible *behind* a position a
//! reader was already given (the reader saw a later item that committed first), and a reader
//! polling `newer_than` would never see it. So every writer takes its position while holding a lock
//! that the list's other writers also need, and releases it only at commit:
//! `created_at = max(now, newest position given + 1)`. Writers of one list then commit in the order
//! of their positions, and anything that commits after a reader's snapshot lies after every
//! position that snapshot showed. (On PostgreSQL and MySQL a transaction is visible before its
//! locks are released; SQLite runs one write transaction at a time anyway.)
//!
//! - **A user's followers and following lists** are written under that user's row lock already
//!   ([`crate::services::users::lock`]); `users.list_clock` holds the newest position given (it never
//!   goes back, even when that follow is removed). Cost: one read and one update of rows the writer
//!   has already locked.
//! - **Posts and reposts** appear in the timelines of many readers, so their order must be one
//!   across all accounts. One row that every post writer locks would do it, but it serializes every
//!   post write in the database for the length of an insert and a commit (300 to 375 posts/s
//!   whatever the concurrency on the benchmark's PostgreSQL). So the posts' clock is in shards
//!   (`post_clocks`, [`POST_CLOCK_SHARDS`] rows): a writer locks its account's shard only
//!   ([`next_post_at`]), and positions of one shard are in commit order as above. Across shards they
//!   are not, so readers show only the entries at or below the **safe horizon**, the smallest `at`
//!   of all shards ([`posts_horizon`], a subquery of the list's own statement, so it is read in
//!   the same snapshot): a shard's committed `at` is at least every position it gave that has
//!   committed, and a write still in flight on it (holding its lock) or yet to come will get a
//!   larger one; so nothing can become visible at or below the horizon later. Idle shards would
//!   hold the horizon back: after each post write commits, its process's [`Horizon`] sweeps every
//!   shard behind the new position up to it (skipping the shards locked by writes in flight, and
//!   looking again until those have moved on), and the request answers once that is done, so the
//!   writer's next read shows its post. Every second each sweeper also brings the shards up to the
//!   newest one, should a process have stopped between a post's commit and its sweep. (On
//!   PostgreSQL a sweep's commit does not wait for the disk: one lost in a crash is redone.) Many writers share one sweep. Cost: one row lock per
//!   post write that only its shard's writers share, and a sweep (one short transaction) per batch
//!   of concurrent writes; reads add a scan of the shards' rows. A write in flight holds back what
//!   readers see of newer ones for as long as it takes to commit.
//!
//! Timestamps stay true to about a millisecond: `now` wins unless two writes of one list fall in the
//! same millisecond, or a host's clock lags the one that wrote last.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use entity::{clock, post_clock, user};
use sea_orm::sea_query::{
    Expr, ExprTrait as _, IntoCondition, LockBehavior, LockType, Query, SelectStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Statement,
};
use tokio::sync::{Notify, watch};

use crate::error::ApiError;
use crate::services::keyset::PageRequest;
use crate::time::now_millis;

pub use migration::POST_CLOCK_SHARDS;

/// A list that spans many users, ordered by one row of `clocks`.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// The operators' list of reports.
    Reports,
}

impl Clock {
    fn name(self) -> &'static str {
        match self {
            Clock::Reports => "reports",
        }
    }
}

/// Step: the position for a new post or repost by `account`, on the posts' clock: locks the
/// account's shard until the transaction ends, so call it last before the insert, after the
/// users' locks. The entry shows once the horizon passes it ([`Horizon::reach`]).
pub async fn next_post_at(txn: &DatabaseTransaction, account: i64) -> Result<i64, ApiError> {
    let shard = account.rem_euclid(POST_CLOCK_SHARDS);
    let now = now_millis();
    let backend = txn.get_database_backend();
    if backend != DbBackend::MySql {
        // One statement where the backend returns what it updated (MySQL cannot: below, a
        // locking read then the update). The update locks the row as the locking read does.
        let moved = match backend {
            DbBackend::Postgres => {
                "UPDATE post_clocks SET at = GREATEST(at + 1, $1) WHERE shard = $2 RETURNING at"
            }
            _ => "UPDATE post_clocks SET at = MAX(at + 1, ?) WHERE shard = ? RETURNING at",
        };
        return txn
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                moved,
                [now.into(), shard.into()],
            ))
            .await?
            .map(|row| row.try_get_by_index::<i64>(0))
            .transpose()?
            .ok_or_else(|| no_shard(shard));
    }
    let last: i64 = post_clock::Entity::find_by_id(shard)
        .select_only()
        .column(post_clock::Column::At)
        .lock_exclusive()
        .into_tuple()
        .one(txn)
        .await?
        .ok_or_else(|| no_shard(shard))?;
    let at = Ord::max(now, last + 1);
    post_clock::Entity::update_many()
        .col_expr(post_clock::Column::At, Expr::val(at))
        .filter(post_clock::Column::Shard.eq(shard))
        .exec(txn)
        .await?;
    Ok(at)
}

fn no_shard(shard: i64) -> ApiError {
    ApiError::internal(std::io::Error::other(format!(
        "the posts' clock has no shard {shard}"
    )))
}

/// The safe horizon of the posts' clock, as an expression for a list's own statement:
/// `(SELECT MIN(at) FROM post_clocks)`. Every entry (a post's writing, a repost) at or below it
/// has committed, and none can land there later; a list that a client polls with `newer_than`
/// shows nothing beyond it.
pub fn posts_horizon() -> Expr {
    Expr::from(horizon_query())
}

/// `SELECT MIN(at) FROM post_clocks`: the one statement of the horizon, inside a list's own
/// ([`posts_horizon`]) or on its own ([`read_posts_horizon`]).
fn horizon_query() -> SelectStatement {
    Query::select()
        .expr(Expr::col((post_clock::Entity, post_clock::Column::At)).min())
        .from(post_clock::Entity)
        .to_owned()
}

/// The posts' horizon as it is now ([`posts_horizon`]): every entry at or below it has committed
/// and shows, and every entry still to show lies above it.
pub async fn read_posts_horizon(db: &impl ConnectionTrait) -> Result<i64, ApiError> {
    let horizon: Option<i64> = db
        .query_one(&horizon_query())
        .await?
        .map(|row| row.try_get_by_index::<Option<i64>>(0))
        .transpose()?
        .flatten();
    Ok(horizon.unwrap_or(i64::MIN))
}

/// `at <= horizon` for a page of a list on the posts' clock that reaches its newest end: a first
/// page, or a `newer_than` page. (A page of older items lies below a position a bounded page
/// gave, hence below the horizon already: it needs no bound.)
/// `horizon` is the horizon read earlier in the request, when there is one: any value the
/// horizon had is safe to show up to, since it only grows (a later snapshot shows everything at
/// or below it), and a value read once spares a statement of many lists (the timeline's
/// per-account query has two per account) a read of the shards each.
pub fn within_posts_horizon(page: &PageRequest, at: Expr, horizon: Option<i64>) -> Option<Expr> {
    page.after.is_none().then(|| match horizon {
        Some(horizon) => at.lte(horizon),
        None => at.lte(posts_horizon()),
    })
}

/// How long a writer's request waits at most for the horizon to pass its post
/// ([`Horizon::reach`]); a write in flight that takes longer (a stuck commit) only delays when
/// the post shows.
const REACH_WAIT: Duration = Duration::from_secs(2);

/// A process's sweeper of the posts' clock: moves idle shards up to the newest positions its
/// writers were given, so that the horizon follows them (see the module documentation). One task
/// per process; every writer waiting at once shares a sweep.
pub struct Horizon {
    /// The newest position a writer of this process asked to see passed.
    wanted: AtomicI64,
    /// The newest position every shard is known to have passed.
    reached: watch::Sender<i64>,
    wake: Notify,
}

impl Horizon {
    /// Starts the sweeper of `db`.
    pub fn start(db: DatabaseConnection) -> Arc<Horizon> {
        let horizon = Arc::new(Horizon {
            wanted: AtomicI64::new(i64::MIN),
            reached: watch::Sender::new(i64::MIN),
            wake: Notify::new(),
        });
        tokio::spawn(horizon.clone().sweep_forever(db));
        horizon
    }

    /// Waits until the horizon has passed `at` (a position this process's write was given and
    /// committed), so that the write shows on its author's next read: at most [`REACH_WAIT`].
    pub async fn reach(&self, at: i64) {
        let mut reached = self.reached.subscribe();
        if *reached.borrow_and_update() >= at {
            return;
        }
        self.wanted.fetch_max(at, Ordering::SeqCst);
        self.wake.notify_one();
        let passed = tokio::time::timeout(REACH_WAIT, reached.wait_for(|r| *r >= at)).await;
        if passed.is_err() {
            tracing::warn!(
                at,
                "the posts' horizon did not pass a new post in time: it shows once it does"
            );
        }
    }

    async fn sweep_forever(self: Arc<Self>, db: DatabaseConnection) {
        let mut backstop = tokio::time::interval(BACKSTOP_EVERY);
        backstop.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                _ = backstop.tick() => {
                    // A post whose process stopped between its commit and its sweep, or whose
                    // sweep gave up: the shards are brought up to the newest of them.
                    match newest_behind(&db).await {
                        Ok(Some(newest)) => {
                            self.wanted.fetch_max(newest, Ordering::SeqCst);
                        }
                        Ok(None) => continue,
                        Err(err) => {
                            tracing::warn!(error = %err, "could not read the posts' clock");
                            continue;
                        }
                    }
                }
            }
            // Waits between looks while writes in flight hold shards: from 1 ms, doubling up to
            // 32 ms, so that a write stuck in a long lock wait is not polled a thousand times a
            // second.
            let mut pause = Duration::from_millis(1);
            loop {
                let target = self.wanted.load(Ordering::SeqCst);
                if target <= *self.reached.borrow() {
                    break;
                }
                match sweep(&db, target).await {
                    Ok(true) => {
                        pause = Duration::from_millis(1);
                        self.reached.send_if_modified(|r| {
                            let moved = *r < target;
                            *r = Ord::max(*r, target);
                            moved
                        });
                    }
                    // Shards locked by writes in flight: they move on when those commit.
                    Ok(false) => {
                        tokio::time::sleep(pause).await;
                        pause = Ord::min(pause * 2, Duration::from_millis(32));
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "could not sweep the posts' clock");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }
}

/// How often each process's sweeper looks whether some shard is ahead of others with no sweep
/// coming ([`Horizon`]): the longest a post stays hidden when its process stops between its commit
/// and its sweep.
const BACKSTOP_EVERY: Duration = Duration::from_secs(1);

/// The newest shard's `at` when some shard is behind it.
async fn newest_behind(db: &DatabaseConnection) -> Result<Option<i64>, DbErr> {
    let row: Option<(Option<i64>, Option<i64>)> = post_clock::Entity::find()
        .select_only()
        .expr(Expr::col(post_clock::Column::At).min())
        .expr(Expr::col(post_clock::Column::At).max())
        .into_tuple()
        .one(db)
        .await?;
    Ok(match row {
        Some((Some(oldest), Some(newest))) if oldest < newest => Some(newest),
        _ => None,
    })
}

/// One look of the sweep: moves every shard behind `target` that no write in flight holds up to
/// it (`SKIP LOCKED`: the sweep never waits for a writer, so it can never be part of a deadlock).
/// True when no shard is behind `target` any more.
async fn sweep(db: &DatabaseConnection, target: i64) -> Result<bool, DbErr> {
    let behind = post_clock::Entity::find()
        .filter(post_clock::Column::At.lt(target))
        .count(db)
        .await?;
    if behind == 0 {
        return Ok(true);
    }
    let txn = crate::db::begin_write(db).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        // A sweep lost in a crash only holds the horizon back until the next one (every process
        // looks every `BACKSTOP_EVERY`): its commit need not wait for the disk.
        txn.execute_unprepared("SET LOCAL synchronous_commit = off")
            .await?;
    }
    // SQLite has no row locks (and runs one write transaction at a time): the clause is left out.
    let free: Vec<i64> = post_clock::Entity::find()
        .select_only()
        .column(post_clock::Column::Shard)
        .filter(post_clock::Column::At.lt(target))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .into_tuple()
        .all(&txn)
        .await?;
    if !free.is_empty() {
        post_clock::Entity::update_many()
            .col_expr(post_clock::Column::At, Expr::val(target))
            .filter(post_clock::Column::Shard.is_in(free.iter().copied()))
            .filter(post_clock::Column::At.lt(target))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(free.len() as u64 == behind)
}

/// Step: the position for a new item of the list `clock` orders. Locks that clock until the
/// transaction ends, so call it last before the insert, after the users' locks.
pub async fn next_at(txn: &DatabaseTransaction, clock: Clock) -> Result<i64, ApiError> {
    let last: Option<i64> = clock::Entity::find_by_id(clock.name())
        .select_only()
        .column(clock::Column::At)
        .lock_exclusive()
        .into_tuple()
        .one(txn)
        .await?;
    let at = Ord::max(now_millis(), last.unwrap_or(0) + 1);
    clock::Entity::update_many()
        .col_expr(clock::Column::At, Expr::val(at))
        .filter(clock::Column::Name.eq(clock.name()))
        .exec(txn)
        .await?;
    Ok(at)
}

/// Step: the position for a new item of the lists of `users` (a follow is in the follower's
/// following list and the followed user's followers list). The caller holds their row locks.
pub async fn next_list_at(txn: &DatabaseTransaction, users: &[i64]) -> Result<i64, ApiError> {
    next_list_at_where(txn, user::Column::Id.is_in(users.iter().copied())).await
}

/// Step: [`next_list_at`] for the users that `which` selects (any number of them: the maximum is
/// read and the clocks set in one statement each).
pub async fn next_list_at_where(
    txn: &DatabaseTransaction,
    which: impl IntoCondition,
) -> Result<i64, ApiError> {
    let which = which.into_condition();
    // A locking read: it sees the latest committed value on MySQL too, whatever snapshot the
    // transaction has (the rows are locked by this transaction already, so it does not wait).
    // (PostgreSQL locks rows, not aggregates: the maximum is taken here.)
    let clocks: Vec<i64> = user::Entity::find()
        .select_only()
        .column(user::Column::ListClock)
        .filter(which.clone())
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?;
    let last = clocks.into_iter().max().unwrap_or(0);
    let at = Ord::max(now_millis(), last + 1);
    user::Entity::update_many()
        .col_expr(user::Column::ListClock, Expr::val(at))
        .filter(which)
        .exec(txn)
        .await?;
    Ok(at)
}
