//! Likes: liking and unliking a post, a post's likes newest first, which posts of a page the
//! viewer likes, and the steps that end likes when a block, a suspension or a removal says so.
//!
//! `posts.likes_count` changes in the transaction that inserts or deletes the row it counts, under
//! the row locks of the liker and of the post's author ([`users::lock`]), the locks every writer
//! of a post's counts takes: concurrent identical likes queue there, and exactly one inserts.

use entity::{like, post, user};
use sea_orm::sea_query::{Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use crate::db;
use crate::error::ApiError;
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::notifications::{self, Kind};
use crate::services::posts::{self, PostWithAuthor};
use crate::services::{clock, users};

/// What `POST /posts/{id}/like` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LikeOutcome {
    /// The like is new.
    Created,
    /// The caller liked the post already.
    AlreadyLiked,
}

/// `me` likes post `id`. Idempotent: a repeat changes nothing. 404 `post_not_found` (also while
/// its author is suspended); 403 `blocked` / `private_account` as reading the post, and 403
/// `blocked` while either blocks the other ([`relationships::check_interaction`]), decided under
/// both users' locks. A new like counts and notifies the author (`like`), in one transaction.
/// Returns the post as it is after the like.
#[tracing::instrument(name = "likes::like", skip_all, fields(user = me.id, post = id))]
pub async fn like(
    db: &DatabaseConnection,
    me: &user::Model,
    id: i64,
) -> Result<(LikeOutcome, PostWithAuthor), ApiError> {
    let found = posts::find(db, id).await?;
    let author_id = found.author.id;
    db::write(db, async |txn| {
        posts::lock_for_interaction(txn, me, &found).await?;
        // A plain read is enough: every writer of this pair holds both locks now.
        let existing = like::Entity::find_by_id((id, me.id)).one(txn).await?;
        let outcome = if existing.is_some() {
            LikeOutcome::AlreadyLiked
        } else {
            // On the author's list clock: every like of the author's posts holds that lock.
            let created_at = clock::next_list_at(txn, &[author_id]).await?;
            like::ActiveModel {
                post_id: Set(id),
                user_id: Set(me.id),
                created_at: Set(created_at),
            }
            .insert(txn)
            .await?;
            posts::add_to_post_count(txn, post::Column::LikesCount, post::Column::Id.eq(id), 1)
                .await?;
            if author_id != me.id {
                notifications::notify(txn, author_id, me.id, Kind::Like, Some(id)).await?;
            }
            LikeOutcome::Created
        };
        let post = posts::find(txn, id).await?;
        Ok((outcome, post))
    })
    .await
}

/// `me` takes back a like of post `id`. Idempotent: no like to remove is not an error; 404
/// `post_not_found` when there is no such post (or its author is suspended). The `like`
/// notification stays, as a follow's does after an unfollow.
#[tracing::instrument(name = "likes::unlike", skip_all, fields(user = me.id, post = id))]
pub async fn unlike(db: &DatabaseConnection, me: &user::Model, id: i64) -> Result<(), ApiError> {
    let found = posts::find(db, id).await?;
    db::write(db, async |txn| {
        users::lock_with(txn, me, Some(found.author.id)).await?;
        let removed = like::Entity::delete_by_id((id, me.id))
            .exec(txn)
            .await?
            .rows_affected;
        if removed == 1 {
            posts::add_to_post_count(txn, post::Column::LikesCount, post::Column::Id.eq(id), -1)
                .await?;
        }
        Ok(())
    })
    .await
}

/// One entry of a post's likes: who liked it and when.
pub struct LikeEntry {
    pub user: user::Model,
    pub liked_at: i64,
}

/// The list name that cursors of a post's likes are bound to.
pub fn list_name(post_id: i64) -> String {
    format!("likes:{post_id}")
}

/// A page of the likes of post `post_id`, newest first, ties broken by the liker's id
/// (`idx_likes_post_created`); suspended likers are left out (their likes ended with the
/// suspension anyway).
#[tracing::instrument(name = "likes::list", skip_all, fields(post = post_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    post_id: i64,
    page: PageRequest,
) -> Result<(Vec<LikeEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let position = |row: &like::Model| Position {
        at: row.created_at,
        id: row.user_id,
    };
    let (rows, next) = fetch_page(page, position, async |page| {
        Ok(list_query(backend, post_id, page).all(db).await?)
    })
    .await?;
    let mut likers = users::visible_by_ids(db, rows.iter().map(|r| r.user_id)).await?;
    let entries = rows
        .iter()
        .filter_map(|row| {
            likers.remove(&row.user_id).map(|user| LikeEntry {
                user,
                liked_at: row.created_at,
            })
        })
        .collect();
    Ok((entries, next))
}

/// The query behind [`list`]: the rows of one page, in the order [`fetch_page`] reads them.
pub fn list_query(backend: DbBackend, post_id: i64, page: PageRequest) -> Select<like::Entity> {
    let mut query = like::Entity::find().filter(like::Column::PostId.eq(post_id));
    if let Some(keyset) = page.keyset(backend, like::Column::CreatedAt, like::Column::UserId) {
        query = query.filter(keyset);
    }
    query
        .order_by(like::Column::CreatedAt, page.order())
        .order_by(like::Column::UserId, page.order())
        .limit(page.fetch_limit())
}

/// Step: ends the likes between `a` and `b`, both ways (each one's likes of the other's posts),
/// and lowers the counts of those posts. The caller holds both users' locks (a block).
pub async fn end_between(txn: &DatabaseTransaction, a: i64, b: i64) -> Result<(), ApiError> {
    for (liker, author) in [(a, b), (b, a)] {
        let posts_of_author = Query::select()
            .column(post::Column::Id)
            .from(post::Entity)
            .and_where(post::Column::AuthorId.eq(author))
            .to_owned();
        posts::add_to_post_count(
            txn,
            post::Column::LikesCount,
            Condition::all()
                .add(post::Column::AuthorId.eq(author))
                .add(post::Column::Id.in_subquery(liked_by(liker))),
            -1,
        )
        .await?;
        like::Entity::delete_many()
            .filter(like::Column::UserId.eq(liker))
            .filter(like::Column::PostId.in_subquery(posts_of_author))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Step: ends every like by `user` and lowers the counts of the posts it liked (an account that
/// goes or is suspended). The caller holds the locks of `user` and of those posts' authors
/// ([`authors_liked_by`]).
pub async fn end_all_by(txn: &DatabaseTransaction, user: i64) -> Result<(), ApiError> {
    posts::add_to_post_count(
        txn,
        post::Column::LikesCount,
        post::Column::Id.in_subquery(liked_by(user)),
        -1,
    )
    .await?;
    like::Entity::delete_many()
        .filter(like::Column::UserId.eq(user))
        .exec(txn)
        .await?;
    Ok(())
}

/// `SELECT post_id FROM likes WHERE user_id = user`: the posts `user` likes (`idx_likes_user_created`).
fn liked_by(user: i64) -> SelectStatement {
    Query::select()
        .column(like::Column::PostId)
        .from(like::Entity)
        .and_where(like::Column::UserId.eq(user))
        .to_owned()
}

/// `SELECT author_id FROM posts WHERE id IN (posts user likes)`: whose posts' counts
/// [`end_all_by`] changes, to be locked first.
pub fn authors_liked_by(user: i64) -> SelectStatement {
    Query::select()
        .column(post::Column::AuthorId)
        .from(post::Entity)
        .and_where(Expr::col(post::Column::Id).in_subquery(liked_by(user)))
        .to_owned()
}

/// The posts `user` likes, most recent like first, `limit` of them strictly older than `after`
/// (a position `(liked at, post id)`): `(post id, liked at)`, read along `idx_likes_user_created`.
pub async fn of_user(
    db: &impl ConnectionTrait,
    user: i64,
    after: Option<Position>,
    limit: u64,
) -> Result<Vec<(i64, i64)>, ApiError> {
    crate::services::keyset::newest_first(
        db,
        like::Entity::find().filter(like::Column::UserId.eq(user)),
        like::Column::CreatedAt,
        like::Column::PostId,
        after,
        limit,
    )
    .await
}
