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
//! - **Posts** appear in the timelines of many readers, so their order must be one across all
//!   authors: the row `posts` of `clocks` is locked by every post writer from taking its position to
//!   commit. Cost: post writes are serialized across the whole database for the length of one
//!   insert and one commit (about a millisecond on PostgreSQL here, so some hundreds of posts per
//!   second at most); reads pay nothing. A user's own post list is ordered by the same clock.
//!
//! Timestamps stay true to about a millisecond: `now` wins unless two writes of one list fall in the
//! same millisecond, or a host's clock lags the one that wrote last.

use entity::{clock, user};
use sea_orm::sea_query::{Expr, IntoCondition};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect};

use crate::error::ApiError;
use crate::time::now_millis;

/// A list that spans many users, ordered by one row of `clocks`.
#[derive(Clone, Copy, Debug)]
pub enum Clock {
    /// Every post: the timelines and each user's posts.
    Posts,
    /// The operators' list of reports.
    Reports,
}

impl Clock {
    fn name(self) -> &'static str {
        match self {
            Clock::Posts => "posts",
            Clock::Reports => "reports",
        }
    }
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
    let at = now_millis().max(last.unwrap_or(0) + 1);
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
    let at = now_millis().max(last + 1);
    user::Entity::update_many()
        .col_expr(user::Column::ListClock, Expr::val(at))
        .filter(which)
        .exec(txn)
        .await?;
    Ok(at)
}
