//! What the event stream's transports read and keep to find other requests' and processes'
//! writes where the database sends no notification (MySQL/MariaDB, SQLite: see
//! [`crate::events::transport::poll`]): timeline entries (posts, reposts) by position, notifications and post deletions by id,
//! the deletions' own rows (`post_deletions`), the markers moved lately, and which of the streams'
//! sessions still live.
//!
//! These answer no request: they return the database's own error, which their callers log (or,
//! inside a write, turn into an [`crate::error::ApiError`] with `?` as every step does).

use entity::{marker, notification, post, post_deletion, repost, session};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait as _, Order, Query, UnionType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

use crate::services::clock;
use crate::services::keyset::{self, Position};

/// The position of the newest timeline entry (a post's writing or a repost) at or below the posts'
/// horizon, if there is one.
pub async fn newest_entry(db: &impl ConnectionTrait) -> Result<Option<Position>, DbErr> {
    let post: Option<(i64, i64)> = post::Entity::find()
        .select_only()
        .columns([post::Column::CreatedAt, post::Column::Id])
        .filter(Expr::col((post::Entity, post::Column::CreatedAt)).lte(clock::posts_horizon()))
        .order_by_desc(post::Column::CreatedAt)
        .order_by_desc(post::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    let repost: Option<(i64, i64)> = repost::Entity::find()
        .select_only()
        .columns([repost::Column::CreatedAt, repost::Column::PostId])
        .filter(Expr::col((repost::Entity, repost::Column::CreatedAt)).lte(clock::posts_horizon()))
        .order_by_desc(repost::Column::CreatedAt)
        .order_by_desc(repost::Column::PostId)
        .into_tuple()
        .one(db)
        .await?;
    Ok(post
        .into_iter()
        .chain(repost)
        .map(|(at, id)| Position { at, id })
        .max())
}

/// A timeline entry found by the poller: its position (`id` is the post's), and who wrote the
/// post or reposted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewEntry {
    Writing { at: Position, author: i64 },
    Repost { at: Position, reposter: i64 },
}

/// Up to `limit` timeline entries past `seen` (posts written, reposts) and at or below the posts'
/// horizon ([`clock::posts_horizon`]), oldest first, in one query: no entry can land behind them
/// later.
pub async fn entries_since(
    db: &impl ConnectionTrait,
    seen: Position,
    limit: u64,
) -> Result<Vec<NewEntry>, DbErr> {
    #[derive(FromQueryResult)]
    struct Row {
        at: i64,
        post_id: i64,
        actor: i64,
        kind: String,
    }
    let backend = db.get_database_backend();
    let posts = post::Entity::find()
        .select_only()
        .column_as(post::Column::CreatedAt, "at")
        .column_as(post::Column::Id, "post_id")
        .column_as(post::Column::AuthorId, "actor")
        .column_as(Expr::cust("'post'"), "kind")
        .filter(keyset::newer_than(
            backend,
            post::Column::CreatedAt,
            post::Column::Id,
            seen,
        ))
        .filter(Expr::col((post::Entity, post::Column::CreatedAt)).lte(clock::posts_horizon()))
        .order_by_asc(post::Column::CreatedAt)
        .order_by_asc(post::Column::Id)
        .limit(limit)
        .into_query();
    let reposts = repost::Entity::find()
        .select_only()
        .column_as(repost::Column::CreatedAt, "at")
        .column_as(repost::Column::PostId, "post_id")
        .column_as(repost::Column::UserId, "actor")
        .column_as(Expr::cust("'repost'"), "kind")
        .filter(keyset::newer_than(
            backend,
            repost::Column::CreatedAt,
            repost::Column::PostId,
            seen,
        ))
        .filter(Expr::col((repost::Entity, repost::Column::CreatedAt)).lte(clock::posts_horizon()))
        .order_by_asc(repost::Column::CreatedAt)
        .order_by_asc(repost::Column::PostId)
        .limit(limit)
        .into_query();
    let mut query = Query::select()
        .column(Asterisk)
        .from_subquery(posts, Alias::new("new_posts"))
        .to_owned();
    query
        .union(
            UnionType::All,
            Query::select()
                .column(Asterisk)
                .from_subquery(reposts, Alias::new("new_reposts"))
                .to_owned(),
        )
        .order_by(Alias::new("at"), Order::Asc)
        .order_by(Alias::new("post_id"), Order::Asc)
        .limit(limit);
    let rows = Row::find_by_statement(backend.build(&query))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let at = Position {
                at: row.at,
                id: row.post_id,
            };
            if row.kind == "repost" {
                NewEntry::Repost {
                    at,
                    reposter: row.actor,
                }
            } else {
                NewEntry::Writing {
                    at,
                    author: row.actor,
                }
            }
        })
        .collect())
}

/// The id of the newest notification, if there is one.
pub async fn newest_notification_id(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    notification::Entity::find()
        .select_only()
        .column(notification::Column::Id)
        .order_by_desc(notification::Column::Id)
        .into_tuple()
        .one(db)
        .await
}

/// Up to `limit` notifications with an id above `after`: `(id, recipient)`.
pub async fn notification_recipients_since(
    db: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, i64)>, DbErr> {
    notification::Entity::find()
        .select_only()
        .columns([notification::Column::Id, notification::Column::RecipientId])
        .filter(notification::Column::Id.gt(after))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// The markers moved since `since` (milliseconds since the epoch): `(user, changed_at)`.
pub async fn markers_changed_since(
    db: &impl ConnectionTrait,
    since: i64,
    limit: u64,
) -> Result<Vec<(i64, i64)>, DbErr> {
    marker::Entity::find()
        .select_only()
        .columns([marker::Column::UserId, marker::Column::ChangedAt])
        .filter(marker::Column::ChangedAt.gt(since))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// Step: writes the deletion of `author`'s post `post` to `post_deletions`, where every process's
/// poller finds it.
pub async fn record_deletion(
    txn: &DatabaseTransaction,
    post: i64,
    author: i64,
) -> Result<(), DbErr> {
    post_deletion::Entity::insert(post_deletion::ActiveModel {
        post_id: Set(post),
        author_id: Set(author),
        deleted_at: Set(crate::time::now_millis()),
        ..Default::default()
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The id of the newest `post_deletions` row, if there is one.
pub async fn newest_deletion_id(db: &impl ConnectionTrait) -> Result<Option<i64>, DbErr> {
    post_deletion::Entity::find()
        .select_only()
        .column(post_deletion::Column::Id)
        .order_by_desc(post_deletion::Column::Id)
        .into_tuple()
        .one(db)
        .await
}

/// Up to `limit` `post_deletions` rows with an id above `after`: `(id, post, author)`.
pub async fn deletions_since(
    db: &impl ConnectionTrait,
    after: i64,
    limit: u64,
) -> Result<Vec<(i64, i64, i64)>, DbErr> {
    post_deletion::Entity::find()
        .select_only()
        .columns([
            post_deletion::Column::Id,
            post_deletion::Column::PostId,
            post_deletion::Column::AuthorId,
        ])
        .filter(post_deletion::Column::Id.gt(after))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await
}

/// Removes the `post_deletions` rows written before `before` (milliseconds since the Unix epoch).
pub async fn remove_deletions_before(db: &impl ConnectionTrait, before: i64) -> Result<(), DbErr> {
    post_deletion::Entity::delete_many()
        .filter(post_deletion::Column::DeletedAt.lt(before))
        .exec(db)
        .await?;
    Ok(())
}

/// Which of the sessions `ids` have not ended (nor expired).
pub async fn live_sessions_among(
    db: &impl ConnectionTrait,
    ids: &[String],
) -> Result<Vec<String>, DbErr> {
    session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::Id.is_in(ids.iter().cloned()))
        .filter(session::Column::ExpiresAt.gt(crate::time::now_millis()))
        .into_tuple()
        .all(db)
        .await
}
