//! The outbox: messages for the outside world (mail, and Web Push: [`super::push::PUSH`]), written
//! by [`enqueue`] in the transaction of the change that causes them, and sent after the commit by
//! a worker ([`crate::outbox_worker`]) that [`claim`]s due rows, then [`finish`]es or [`retry_later`]s
//! each. A claim moves the rows' `next_attempt_at` one lease ahead, so a worker that dies leaves
//! them to be claimed again when the lease runs out; on PostgreSQL and MySQL/MariaDB the rows are
//! read `FOR UPDATE SKIP LOCKED`, so workers of several processes take different rows instead of
//! queueing on one another (SQLite has one writer: its claims run one after the other).

use entity::outbox;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use crate::db;
use crate::error::ApiError;
use crate::time::now_millis;

/// How long a claimed row is the claiming worker's before another may take it.
pub const LEASE_MS: i64 = 5 * 60_000;

/// The longest wait between two attempts.
pub const MAX_BACKOFF_MS: i64 = 30 * 60_000;

/// After this many attempts a row is given up (and said so in the log, without its payload).
pub const MAX_ATTEMPTS: i32 = 12;

/// Step: writes a message of `kind` to the outbox, due now. The caller's transaction commits it
/// with the change that causes it, or rolls both back.
pub async fn enqueue(
    txn: &DatabaseTransaction,
    kind: &str,
    payload: String,
) -> Result<(), ApiError> {
    let now = now_millis();
    outbox::ActiveModel {
        kind: Set(kind.to_owned()),
        payload: Set(payload),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let _ = WROTE.try_with(|wrote| wrote.set(true));
    Ok(())
}

/// Claims at most `limit` due rows of `kinds`, oldest due first: each is the caller's for
/// [`LEASE_MS`], and its `attempts` (as returned) counts this claim.
#[tracing::instrument(name = "outbox::claim", skip_all)]
pub async fn claim(
    db: &DatabaseConnection,
    kinds: &[&str],
    limit: u64,
) -> Result<Vec<outbox::Model>, ApiError> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    // A transaction of its own rather than `db::write`: the worker's task must be `Send`. A
    // claim that loses a conflict fails, and the worker claims again.
    let owned = db::begin_write(db).await?;
    let txn = &owned;
    let claimed = async {
        let now = now_millis();
        let mut due = due_query(&kinds, now, limit);
        if txn.get_database_backend() != DbBackend::Sqlite {
            due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let mut rows = due.all(txn).await?;
        if rows.is_empty() {
            return Ok(rows);
        }
        outbox::Entity::update_many()
            .col_expr(outbox::Column::NextAttemptAt, Expr::val(now + LEASE_MS))
            .col_expr(
                outbox::Column::Attempts,
                Expr::col(outbox::Column::Attempts).add(1),
            )
            .filter(outbox::Column::Id.is_in(rows.iter().map(|row| row.id)))
            .exec(txn)
            .await?;
        for row in &mut rows {
            row.attempts += 1;
        }
        Ok::<_, ApiError>(rows)
    }
    .await?;
    owned.commit().await?;
    Ok(claimed)
}

/// The query of a claim: at most `limit` rows of `kinds` due at `now`, oldest due first, read
/// along `idx_outbox_next_attempt` (a range of it, in its order: no sort).
pub fn due_query(kinds: &[String], now: i64, limit: u64) -> Select<outbox::Entity> {
    outbox::Entity::find()
        .filter(outbox::Column::NextAttemptAt.lte(now))
        .filter(outbox::Column::Kind.is_in(kinds.to_vec()))
        .order_by_asc(outbox::Column::NextAttemptAt)
        .order_by_asc(outbox::Column::Id)
        .limit(limit)
}

/// The row `id` is done (sent, or given up): it goes.
pub async fn finish(db: &impl ConnectionTrait, id: i64) -> Result<(), ApiError> {
    outbox::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

/// The wait before the attempt after `attempts` failed ones: `base`, doubled for each failure
/// after the first, at most [`MAX_BACKOFF_MS`].
pub fn backoff_ms(base: std::time::Duration, attempts: i32) -> i64 {
    let base = i64::try_from(base.as_millis()).unwrap_or(MAX_BACKOFF_MS);
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    std::cmp::min(base.saturating_mul(1_i64 << doublings), MAX_BACKOFF_MS)
}

/// The row `id` failed its `attempts`th attempt: it is due again after [`backoff_ms`].
pub async fn retry_later(
    db: &DatabaseConnection,
    id: i64,
    attempts: i32,
    base: std::time::Duration,
) -> Result<(), ApiError> {
    retry_at(db, id, now_millis() + backoff_ms(base, attempts)).await
}

/// The row `id` failed: it is due again at `at` (milliseconds since the epoch).
pub async fn retry_at(db: &DatabaseConnection, id: i64, at: i64) -> Result<(), ApiError> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::NextAttemptAt, Expr::val(at))
        .filter(outbox::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// How many rows of each kind the outbox holds (due, leased or waiting for a retry), for the
/// metrics.
pub async fn depth(db: &DatabaseConnection) -> Result<Vec<(String, i64)>, ApiError> {
    Ok(outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Kind)
        .column_as(Expr::col(outbox::Column::Id).count(), "rows")
        .group_by(outbox::Column::Kind)
        .into_tuple()
        .all(db)
        .await?)
}

tokio::task_local! {
    /// Whether the current request wrote to the outbox (set by [`enqueue`], read by [`watch`]).
    static WROTE: std::cell::Cell<bool>;
}

/// Runs `request` and says whether it wrote to the outbox (perhaps in an attempt that rolled
/// back: a wake-up too many costs one look), so that the worker can be woken after it.
pub async fn watch<T>(request: impl Future<Output = T>) -> (T, bool) {
    WROTE
        .scope(std::cell::Cell::new(false), async {
            let out = request.await;
            (out, WROTE.with(std::cell::Cell::get))
        })
        .await
}

/// When the next row of `kinds` falls due (perhaps already), if any: how long a worker may sleep.
pub async fn next_due(db: &DatabaseConnection, kinds: &[&str]) -> Result<Option<i64>, ApiError> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
    Ok(outbox::Entity::find()
        .select_only()
        .column(outbox::Column::NextAttemptAt)
        .filter(outbox::Column::Kind.is_in(kinds))
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_its_base_up_to_its_ceiling() {
        let base = std::time::Duration::from_secs(5);
        assert_eq!(backoff_ms(base, 1), 5_000);
        assert_eq!(backoff_ms(base, 2), 10_000);
        assert_eq!(backoff_ms(base, 3), 20_000);
        assert_eq!(backoff_ms(base, 12), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(base, i32::MAX), MAX_BACKOFF_MS);
    }
}
