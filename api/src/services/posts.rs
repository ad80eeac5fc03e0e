//! Posts: writing, reading, deleting, and a user's posts newest first.

use entity::{post, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use crate::db;
use crate::domain::PostBody;
use crate::error::ApiError;
use crate::events::{self, Event, Transport};
use crate::services::clock::{self, Clock};
use crate::services::idempotency::{self, Claim, Outcome};
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::{stream_sources, users};

/// A post with its author.
pub struct PostWithAuthor {
    pub post: post::Model,
    pub author: user::Model,
}

/// The list name that cursors of a user's posts are bound to.
pub fn list_name(author_id: i64) -> String {
    format!("posts:{author_id}")
}

/// Writes a post by `author` and counts it, in one transaction. With an `Idempotency-Key`
/// (`claim`), a key used before answers that request's answer instead, and a new one is recorded
/// with the post.
#[tracing::instrument(name = "posts::create", skip_all, fields(author = author.id))]
pub async fn create(
    db: &DatabaseConnection,
    author: &user::Model,
    body: PostBody,
    claim: Option<&Claim>,
) -> Result<Outcome<post::Model>, ApiError> {
    db::write(db, async |txn| {
        // The author's row lock first, before the insert's foreign-key check would take a shared
        // one (which MySQL could not upgrade without deadlocking concurrent posts). Repeats of
        // one key queue here.
        users::lock(txn, author, &[]).await?;
        if let Some(claim) = claim
            && let Some(answer) = idempotency::prior(txn, claim).await?
        {
            return Ok(Outcome::Replay(answer));
        }
        users::add_to_count(
            txn,
            user::Column::PostsCount,
            user::Column::Id.eq(author.id),
            1,
        )
        .await?;
        // Last, so that the clock every post writer shares is held only for the insert and the
        // commit.
        let created_at = clock::next_at(txn, Clock::Posts).await?;
        let post = post::ActiveModel {
            author_id: Set(author.id),
            body: Set(body.as_str().to_owned()),
            created_at: Set(created_at),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        events::emit(
            txn,
            Event::Posted {
                author: author.id,
                post: post.id,
            },
        )
        .await?;
        if let Some(claim) = claim {
            idempotency::record(
                txn,
                claim,
                201,
                Some(format!("/posts/{}", post.id)),
                post.id,
            )
            .await?;
        }
        Ok(Outcome::Done(post))
    })
    .await
}

/// The post `id` with its author, or 404 `post_not_found` (also while its author is suspended).
#[tracing::instrument(name = "posts::find", skip_all, fields(post = id))]
pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<PostWithAuthor, ApiError> {
    let (post, author) = post::Entity::find_by_id(id)
        .find_also_related(user::Entity)
        .one(db)
        .await?
        .ok_or(ApiError::PostNotFound(id))?;
    let author = author
        .filter(|author| author.suspended_at.is_none())
        .ok_or(ApiError::PostNotFound(id))?;
    Ok(PostWithAuthor { post, author })
}

/// Deletes post `id` if `me` wrote it: 404 when there is no such post (or its author is
/// suspended, as [`find`] says: a 403 there would tell which ids are hidden posts), 403 when it
/// is someone else's. Where other processes' pollers look for deletions
/// ([`Transport::records_deletions`], MySQL/MariaDB), the deletion is also written to
/// `post_deletions` for them to find.
#[tracing::instrument(name = "posts::delete", skip_all, fields(user = me.id, post = id))]
pub async fn delete(db: &DatabaseConnection, me: &user::Model, id: i64) -> Result<(), ApiError> {
    let post = find(db, id).await?.post;
    if post.author_id != me.id {
        return Err(ApiError::Forbidden("only the author can delete a post"));
    }
    db::write(db, async |txn| {
        // The author's row first, as every writer does, then the post.
        users::lock(txn, me, &[]).await?;
        let removed = post::Entity::delete_many()
            .filter(post::Column::Id.eq(id))
            .filter(post::Column::AuthorId.eq(me.id))
            .exec(txn)
            .await?
            .rows_affected;
        if removed == 0 {
            // Deleted by a concurrent request in the meantime.
            return Err(ApiError::PostNotFound(id));
        }
        if Transport::of(txn.get_database_backend()).records_deletions() {
            stream_sources::record_deletion(txn, id, me.id).await?;
        }
        events::emit(
            txn,
            Event::Deleted {
                author: me.id,
                post: id,
            },
        )
        .await?;
        users::add_to_count(
            txn,
            user::Column::PostsCount,
            user::Column::Id.eq(me.id),
            -1,
        )
        .await
    })
    .await
}

/// A page of `author`'s posts, newest first, served by `idx_posts_author_created`.
#[tracing::instrument(name = "posts::list_by_author", skip_all, fields(author = author.id))]
pub async fn list_by_author(
    db: &impl ConnectionTrait,
    author: &user::Model,
    page: PageRequest,
) -> Result<(Vec<PostWithAuthor>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let (rows, next) = fetch_page(page, position, async |page| {
        Ok(list_by_author_query(backend, author.id, page)
            .all(db)
            .await?)
    })
    .await?;
    let posts = rows
        .into_iter()
        .map(|post| PostWithAuthor {
            post,
            author: author.clone(),
        })
        .collect();
    Ok((posts, next))
}

/// The query behind [`list_by_author`].
pub fn list_by_author_query(
    backend: DbBackend,
    author_id: i64,
    page: PageRequest,
) -> Select<post::Entity> {
    keyset_page(
        backend,
        post::Entity::find().filter(post::Column::AuthorId.eq(author_id)),
        page,
    )
}

/// Limits `query` to the posts of `page` in the order it reads them ([`PageRequest::order`],
/// [`PageRequest::keyset`], [`PageRequest::fetch_limit`]).
pub fn keyset_page(
    backend: DbBackend,
    query: Select<post::Entity>,
    page: PageRequest,
) -> Select<post::Entity> {
    let query = match page.keyset(backend, post::Column::CreatedAt, post::Column::Id) {
        Some(keyset) => query.filter(keyset),
        None => query,
    };
    query
        .order_by(post::Column::CreatedAt, page.order())
        .order_by(post::Column::Id, page.order())
        .limit(page.fetch_limit())
}

/// The keyset position of a post in any newest-first list of posts.
pub fn position(post: &post::Model) -> Position {
    Position {
        at: post.created_at,
        id: post.id,
    }
}

/// Attaches their authors to `posts`, in one query.
pub async fn with_authors(
    db: &impl ConnectionTrait,
    posts: Vec<post::Model>,
) -> Result<Vec<PostWithAuthor>, ApiError> {
    let authors = users::visible_by_ids(db, posts.iter().map(|p| p.author_id)).await?;
    Ok(posts
        .into_iter()
        .filter_map(|post| {
            authors.get(&post.author_id).map(|author| PostWithAuthor {
                author: author.clone(),
                post,
            })
        })
        .collect())
}
