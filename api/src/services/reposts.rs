//! Reposts: reposting and unreposting a post, a post's reposts newest first, what the viewer did
//! with a page's posts, and the steps that end reposts when a block, a suspension or a removal
//! says so.
//!
//! A repost is a timeline entry ([`crate::services::timeline`]): its position is taken on the
//! posts' clock ([`clock::next_post_at`]) while the reposter's and the author's row locks are held,
//! as a post's is, so reposts reach `newer_than` readers and the stream in commit order.
//! `posts.reposts_count` changes in the transaction that inserts or deletes the row it counts,
//! under those locks: concurrent identical reposts queue there, and exactly one inserts.

use entity::{like, post, repost, user};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select, Set,
};

use crate::db;
use crate::error::ApiError;
use crate::events::{self, Event};
use crate::services::clock;
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::notifications::{self, Kind};
use crate::services::posts::{self, PostWithAuthor};
use crate::services::relationships::Interactions;
use crate::services::users;

/// What `POST /posts/{id}/repost` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepostOutcome {
    /// The repost is new, at this position on the posts' clock.
    Created { at: i64 },
    /// The caller reposted the post already.
    AlreadyReposted,
}

/// `me` reposts post `id`. Idempotent: a repeat changes nothing. 404 `post_not_found` (also while
/// its author is suspended); 403 `blocked` / `private_account` as reading the post, and 403
/// `blocked` while either blocks the other ([`relationships::check_interaction`]); 422
/// `cannot_repost_private` when its author is locked (the author's own reposts too). All decided
/// under both users' locks, so a concurrent block, lock or deletion is wholly before or after. A
/// new repost counts, notifies the author (`repost`) and reaches the timelines, in one
/// transaction. Returns the post as it is after the repost.
#[tracing::instrument(name = "reposts::repost", skip_all, fields(user = me.id, post = id))]
pub async fn repost(
    db: &DatabaseConnection,
    me: &user::Model,
    id: i64,
) -> Result<(RepostOutcome, PostWithAuthor), ApiError> {
    let found = posts::find(db, id).await?;
    let author_id = found.author.id;
    db::write(db, async |txn| {
        let author = posts::lock_for_interaction(txn, me, &found).await?;
        if author.locked {
            return Err(ApiError::CannotRepostPrivate(author.username.clone()));
        }
        let existing = repost::Entity::find_by_id((id, me.id)).one(txn).await?;
        let outcome = if existing.is_some() {
            RepostOutcome::AlreadyReposted
        } else {
            posts::add_to_post_count(txn, post::Column::RepostsCount, post::Column::Id.eq(id), 1)
                .await?;
            if author_id != me.id {
                notifications::notify(txn, author_id, me.id, Kind::Repost, Some(id)).await?;
            }
            // Last, so that the shard of the posts' clock is held only for the insert and the
            // commit.
            let created_at = clock::next_post_at(txn, me.id).await?;
            repost::ActiveModel {
                post_id: Set(id),
                user_id: Set(me.id),
                post_author_id: Set(author_id),
                created_at: Set(created_at),
            }
            .insert(txn)
            .await?;
            events::emit(
                txn,
                Event::Reposted {
                    reposter: me.id,
                    post: id,
                },
            )
            .await?;
            RepostOutcome::Created { at: created_at }
        };
        let post = posts::find(txn, id).await?;
        Ok((outcome, post))
    })
    .await
}

/// `me` takes back a repost of post `id`. Idempotent: no repost to remove is not an error; 404
/// `post_not_found` when there is no such post (or its author is suspended). The post falls back
/// to its next entry in every timeline; the `repost` notification stays, as a like's does.
#[tracing::instrument(name = "reposts::unrepost", skip_all, fields(user = me.id, post = id))]
pub async fn unrepost(db: &DatabaseConnection, me: &user::Model, id: i64) -> Result<(), ApiError> {
    let found = posts::find(db, id).await?;
    db::write(db, async |txn| {
        users::lock_with(txn, me, Some(found.author.id)).await?;
        let removed = repost::Entity::delete_by_id((id, me.id))
            .exec(txn)
            .await?
            .rows_affected;
        if removed == 1 {
            posts::add_to_post_count(txn, post::Column::RepostsCount, post::Column::Id.eq(id), -1)
                .await?;
        }
        Ok(())
    })
    .await
}

/// One entry of a post's reposts: who reposted it and when.
pub struct RepostEntry {
    pub user: user::Model,
    pub reposted_at: i64,
}

/// The list name that cursors of a post's reposts are bound to.
pub fn list_name(post_id: i64) -> String {
    format!("reposts:{post_id}")
}

/// A page of the reposts of post `post_id`, newest first, ties broken by the reposter's id
/// (`idx_reposts_post_created`); suspended reposters are left out (their reposts ended with the
/// suspension anyway).
#[tracing::instrument(name = "reposts::list", skip_all, fields(post = post_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    post_id: i64,
    page: PageRequest,
) -> Result<(Vec<RepostEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let position = |row: &repost::Model| Position {
        at: row.created_at,
        id: row.user_id,
    };
    let (rows, next) = fetch_page(page, position, async |page| {
        Ok(list_query(backend, post_id, page).all(db).await?)
    })
    .await?;
    let mut reposters = users::visible_by_ids(db, rows.iter().map(|r| r.user_id)).await?;
    let entries = rows
        .iter()
        .filter_map(|row| {
            reposters.remove(&row.user_id).map(|user| RepostEntry {
                user,
                reposted_at: row.created_at,
            })
        })
        .collect();
    Ok((entries, next))
}

/// The query behind [`list`]: the rows of one page, in the order [`fetch_page`] reads them.
pub fn list_query(backend: DbBackend, post_id: i64, page: PageRequest) -> Select<repost::Entity> {
    let mut query = repost::Entity::find().filter(repost::Column::PostId.eq(post_id));
    if let Some(keyset) = page.keyset(backend, repost::Column::CreatedAt, repost::Column::UserId) {
        query = query.filter(keyset);
    }
    let at = Expr::col((repost::Entity, repost::Column::CreatedAt));
    if let Some(bound) = clock::within_posts_horizon(&page, at, None) {
        query = query.filter(bound);
    }
    query
        .order_by(repost::Column::CreatedAt, page.order())
        .order_by(repost::Column::UserId, page.order())
        .limit(page.fetch_limit())
}

/// Which of `posts` `viewer` likes and which it reposted, in one query (primary-key lookups in
/// `likes` and `reposts`, joined with `UNION ALL`).
pub async fn interactions_among(
    db: &impl ConnectionTrait,
    viewer: i64,
    posts: &[i64],
) -> Result<Interactions, ApiError> {
    let mut found = Interactions::default();
    if posts.is_empty() {
        return Ok(found);
    }
    #[derive(FromQueryResult)]
    struct Row {
        post_id: i64,
        kind: String,
    }
    // Text literals: one type on every backend (a bound integer would be `int4` on PostgreSQL
    // and a `BIGINT` on MySQL).
    let kind = Alias::new("kind");
    let mut query = Query::select()
        .column(like::Column::PostId)
        .expr_as(Expr::cust("'like'"), kind.clone())
        .from(like::Entity)
        .and_where(like::Column::PostId.is_in(posts.iter().copied()))
        .and_where(like::Column::UserId.eq(viewer))
        .to_owned();
    query.union(
        UnionType::All,
        Query::select()
            .column(repost::Column::PostId)
            .expr_as(Expr::cust("'repost'"), kind)
            .from(repost::Entity)
            .and_where(repost::Column::PostId.is_in(posts.iter().copied()))
            .and_where(repost::Column::UserId.eq(viewer))
            .to_owned(),
    );
    let backend = db.get_database_backend();
    for row in Row::find_by_statement(backend.build(&query))
        .all(db)
        .await?
    {
        if row.kind == "like" {
            found.liked.insert(row.post_id);
        } else {
            found.reposted.insert(row.post_id);
        }
    }
    Ok(found)
}

/// Step: ends the reposts between `a` and `b`, both ways (each one's reposts of the other's
/// posts), and lowers the counts of those posts. The caller holds both users' locks (a block).
pub async fn end_between(txn: &DatabaseTransaction, a: i64, b: i64) -> Result<(), ApiError> {
    for (reposter, author) in [(a, b), (b, a)] {
        let reposted = Query::select()
            .column(repost::Column::PostId)
            .from(repost::Entity)
            .and_where(repost::Column::UserId.eq(reposter))
            .and_where(repost::Column::PostAuthorId.eq(author))
            .to_owned();
        posts::add_to_post_count(
            txn,
            post::Column::RepostsCount,
            Condition::all()
                .add(post::Column::AuthorId.eq(author))
                .add(post::Column::Id.in_subquery(reposted)),
            -1,
        )
        .await?;
        repost::Entity::delete_many()
            .filter(repost::Column::UserId.eq(reposter))
            .filter(repost::Column::PostAuthorId.eq(author))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Step: ends every repost by `user` and lowers the counts of the posts it reposted (an account
/// that goes or is suspended). The caller holds the locks of `user` and of those posts' authors
/// ([`authors_reposted_by`]).
pub async fn end_all_by(txn: &DatabaseTransaction, user: i64) -> Result<(), ApiError> {
    posts::add_to_post_count(
        txn,
        post::Column::RepostsCount,
        post::Column::Id.in_subquery(reposted_by(user)),
        -1,
    )
    .await?;
    repost::Entity::delete_many()
        .filter(repost::Column::UserId.eq(user))
        .exec(txn)
        .await?;
    Ok(())
}

/// `SELECT post_id FROM reposts WHERE user_id = user` (`idx_reposts_user_created`).
fn reposted_by(user: i64) -> SelectStatement {
    Query::select()
        .column(repost::Column::PostId)
        .from(repost::Entity)
        .and_where(repost::Column::UserId.eq(user))
        .to_owned()
}

/// `SELECT post_author_id FROM reposts WHERE user_id = user`: whose posts' counts [`end_all_by`]
/// changes, to be locked first.
pub fn authors_reposted_by(user: i64) -> SelectStatement {
    Query::select()
        .column(repost::Column::PostAuthorId)
        .from(repost::Entity)
        .and_where(Expr::col(repost::Column::UserId).eq(user))
        .to_owned()
}

/// The posts `user` reposts, most recent repost first, `limit` of them strictly older than `after`
/// (a position `(reposted at, post id)`): `(post id, reposted at)`, read along
/// `idx_reposts_user_created`.
pub async fn of_user(
    db: &impl ConnectionTrait,
    user: i64,
    after: Option<Position>,
    limit: u64,
) -> Result<Vec<(i64, i64)>, ApiError> {
    crate::services::keyset::newest_first(
        db,
        repost::Entity::find().filter(repost::Column::UserId.eq(user)),
        repost::Column::CreatedAt,
        repost::Column::PostId,
        after,
        limit,
    )
    .await
}
