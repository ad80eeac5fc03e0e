//! Posts: writing, reading, deleting, and a user's posts newest first.

use std::collections::HashMap;

use entity::{block, follow, mute, notification, post, user};
use sea_orm::sea_query::{Expr, ExprTrait, IntoCondition, Query, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use crate::db;
use crate::domain::PostBody;
use crate::error::ApiError;
use crate::events::{self, Event, Transport};
use crate::services::clock;
use crate::services::idempotency::{self, Claim, Outcome};
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::notifications::{self, Kind};
use crate::services::{media, relationships, stream_sources, users};

/// A post with its author.
pub struct PostWithAuthor {
    pub post: post::Model,
    pub author: user::Model,
    /// The author of the post this one answers, while that post exists and its author is not
    /// suspended (`in_reply_to.username` on the wire); `None` otherwise.
    pub parent_author: Option<user::Model>,
}

/// The list name that cursors of a user's posts are bound to.
pub fn list_name(author_id: i64) -> String {
    format!("posts:{author_id}")
}

/// Writes a post by `author` and counts it, in one transaction; a reply to `in_reply_to` when it
/// is set: 404 `post_not_found` when there is no such post, 403 `blocked` / `private_account` when
/// the author may not read it or a block stands between the two authors
/// ([`relationships::check_interaction`], decided under both users' locks, so a concurrent block
/// is wholly before or after). A reply counts in its parent's `replies_count` and notifies the
/// parent's author (`reply`), in the same transaction. With an `Idempotency-Key` (`claim`), a key
/// used before answers that request's answer instead (whatever became of the parent since), and
/// a new one is recorded with the post. The post shows `media_ids` ([`media::attach`], in the same
/// transaction: 422 when one cannot be taken, and nothing is written).
#[tracing::instrument(name = "posts::create", skip_all, fields(author = author.id))]
pub async fn create(
    db: &DatabaseConnection,
    author: &user::Model,
    body: PostBody,
    in_reply_to: Option<i64>,
    media_ids: &[String],
    claim: Option<&Claim>,
) -> Result<Outcome<PostWithAuthor>, ApiError> {
    // A key whose request committed is answered as it was, before anything is checked again.
    if let Some(claim) = claim
        && let Some(answer) = idempotency::prior(db, claim).await?
    {
        return Ok(Outcome::Replay(answer));
    }
    // Whom to lock: the parent's author, looked up before the transaction and checked again
    // under the lock.
    let parent = match in_reply_to {
        Some(id) => Some(find(db, id).await?),
        None => None,
    };
    db::write(db, async |txn| {
        // The author's row lock first (with the parent's author's, in id order), before the
        // insert's foreign-key check would take a shared one (which MySQL could not upgrade
        // without deadlocking concurrent posts). Repeats of one key queue here, and the later
        // ones find the first's key.
        let others: Vec<&user::Model> = parent
            .iter()
            .map(|p| &p.author)
            .filter(|a| a.id != author.id)
            .collect();
        // The new post is counted in the statement that stamps its author, unless a key's
        // earlier answer may still be found below (a replay commits, and must count nothing).
        let counted = claim.is_none().then_some((user::Column::PostsCount, 1));
        let locked = users::lock_counting(txn, author, &others, counted).await;
        if let Some(claim) = claim
            && let Some(answer) = idempotency::prior(txn, claim).await?
        {
            return Ok(Outcome::Replay(answer));
        }
        let parent = match &parent {
            Some(parent) => {
                let id = parent.post.id;
                match locked {
                    Err(ApiError::UserNotFound(_)) => return Err(ApiError::PostNotFound(id)),
                    other => other?,
                }
                // Read under the locks: its author's deletions take the same lock.
                let parent_author = users::find_by_id(txn, parent.author.id)
                    .await?
                    .ok_or(ApiError::PostNotFound(id))?;
                if post::Entity::find_by_id(id).one(txn).await?.is_none() {
                    return Err(ApiError::PostNotFound(id));
                }
                relationships::check_interaction(txn, &parent_author, author.id).await?;
                Some(PostWithAuthor {
                    post: parent.post.clone(),
                    author: parent_author,
                    parent_author: None,
                })
            }
            None => {
                locked?;
                None
            }
        };
        if counted.is_none() {
            users::add_to_count(
                txn,
                user::Column::PostsCount,
                user::Column::Id.eq(author.id),
                1,
            )
            .await?;
        }
        if let Some(parent) = &parent {
            add_to_post_count(
                txn,
                post::Column::RepliesCount,
                post::Column::Id.eq(parent.post.id),
                1,
            )
            .await?;
        }
        // Last, so that the shard of the posts' clock is held only for the insert and the commit.
        let created_at = clock::next_post_at(txn, author.id).await?;
        let post = post::ActiveModel {
            author_id: Set(author.id),
            body: Set(body.as_str().to_owned()),
            created_at: Set(created_at),
            in_reply_to_id: Set(parent.as_ref().map(|p| p.post.id)),
            parent_id: Set(parent.as_ref().map(|p| p.post.id)),
            parent_author_id: Set(parent.as_ref().map(|p| p.author.id)),
            replies_count: Set(0),
            likes_count: Set(0),
            reposts_count: Set(0),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        media::attach(txn, author.id, post.id, media_ids).await?;
        if let Some(parent) = &parent
            && parent.author.id != author.id
        {
            notifications::notify(txn, parent.author.id, author.id, Kind::Reply, Some(post.id))
                .await?;
        }
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
        Ok(Outcome::Done(PostWithAuthor {
            post,
            author: author.clone(),
            parent_author: parent.map(|p| p.author),
        }))
    })
    .await
}

/// Step: `me` is about to like or repost `found` (read before the transaction): locks `me` and
/// the post's author (in id order), then checks under those locks, which the post's deletion and
/// its author's suspension, removal, lock and blocks take too, that the post is still there (404
/// `post_not_found`, also for a gone or suspended author) and that `me` may interact with it
/// ([`relationships::check_interaction`]: 403 `blocked` / `private_account`). Returns the author
/// as it is now.
pub async fn lock_for_interaction(
    txn: &DatabaseTransaction,
    me: &user::Model,
    found: &PostWithAuthor,
) -> Result<user::Model, ApiError> {
    let id = found.post.id;
    let others: Vec<&user::Model> = Some(&found.author)
        .filter(|author| author.id != me.id)
        .into_iter()
        .collect();
    match users::lock(txn, me, &others).await {
        Err(ApiError::UserNotFound(_)) => return Err(ApiError::PostNotFound(id)),
        other => other?,
    }
    let author = users::find_by_id(txn, found.author.id)
        .await?
        .ok_or(ApiError::PostNotFound(id))?;
    if post::Entity::find_by_id(id).one(txn).await?.is_none() {
        return Err(ApiError::PostNotFound(id));
    }
    relationships::check_interaction(txn, &author, me.id).await?;
    Ok(author)
}

/// Step: adds `delta` to one count of the posts that `which` selects. The caller holds the locks
/// of their authors (every writer of a post's counts does).
pub async fn add_to_post_count(
    txn: &DatabaseTransaction,
    count: post::Column,
    which: impl IntoCondition,
    delta: i64,
) -> Result<(), ApiError> {
    post::Entity::update_many()
        .col_expr(count, Expr::col(count).add(delta))
        .filter(which)
        .exec(txn)
        .await?;
    Ok(())
}

/// The post `id` with its author, or 404 `post_not_found` (also while its author is suspended).
#[tracing::instrument(name = "posts::find", skip_all, fields(post = id))]
pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<PostWithAuthor, ApiError> {
    let post = post::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(ApiError::PostNotFound(id))?;
    with_authors(db, vec![post])
        .await?
        .pop()
        .ok_or(ApiError::PostNotFound(id))
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
    // The parent's author (whose `reply` notification goes, as it carries this post), suspended
    // or not; the field never changes, so it can be read before the locks.
    let parent_author = post.parent_author_id.filter(|a| *a != me.id);
    db::write(db, async |txn| {
        // The author's row first, as every writer does (with the parent's author's, in id
        // order), then the post.
        users::lock_with(txn, me, parent_author).await?;
        let Some(current) = post::Entity::find_by_id(id)
            .filter(post::Column::AuthorId.eq(me.id))
            .one(txn)
            .await?
        else {
            // Deleted by a concurrent request in the meantime.
            return Err(ApiError::PostNotFound(id));
        };
        // The notifications that carry it (likes of it, the reply it is) go first, with the
        // unread counts; the cascade would leave the counts behind.
        notifications::forget(
            txn,
            Condition::all().add(notification::Column::PostId.eq(id)),
            user::Column::Id.is_in(std::iter::once(me.id).chain(parent_author)),
        )
        .await?;
        // Its likes go by the cascade; its replies stay (their `in_reply_to_id` becomes null).
        post::Entity::delete_by_id(id).exec(txn).await?;
        if let Some(parent) = current.in_reply_to_id {
            add_to_post_count(
                txn,
                post::Column::RepliesCount,
                post::Column::Id.eq(parent),
                -1,
            )
            .await?;
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
    Ok((with_authors(db, rows).await?, next))
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
        None,
    )
}

/// Limits `query` to the posts of `page` in the order it reads them ([`PageRequest::order`],
/// [`PageRequest::keyset`], [`PageRequest::fetch_limit`]), none beyond the posts' horizon
/// ([`clock::within_posts_horizon`]: `horizon` when it was read already, else read by the
/// statement).
pub fn keyset_page(
    backend: DbBackend,
    query: Select<post::Entity>,
    page: PageRequest,
    horizon: Option<i64>,
) -> Select<post::Entity> {
    let query = match page.keyset(backend, post::Column::CreatedAt, post::Column::Id) {
        Some(keyset) => query.filter(keyset),
        None => query,
    };
    let at = Expr::col((post::Entity, post::Column::CreatedAt));
    let query = match clock::within_posts_horizon(&page, at, horizon) {
        Some(bound) => query.filter(bound),
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

/// Attaches their authors, and the authors of the posts they answer, to `posts`, in one query.
/// Posts whose authors are suspended are left out; a parent's author who is suspended, or whose
/// post is gone, is `None`.
pub async fn with_authors(
    db: &impl ConnectionTrait,
    posts: Vec<post::Model>,
) -> Result<Vec<PostWithAuthor>, ApiError> {
    Ok(with_authors_and(db, posts, []).await?.0)
}

/// [`with_authors`], reading the accounts `also` (those that are not suspended) in the same query:
/// a timeline's reposters.
pub async fn with_authors_and(
    db: &impl ConnectionTrait,
    posts: Vec<post::Model>,
    also: impl IntoIterator<Item = i64>,
) -> Result<(Vec<PostWithAuthor>, HashMap<i64, user::Model>), ApiError> {
    let live_parent_author = |p: &post::Model| p.in_reply_to_id.and(p.parent_author_id);
    let ids = posts
        .iter()
        .map(|p| p.author_id)
        .chain(posts.iter().filter_map(live_parent_author))
        .chain(also);
    let authors = users::visible_by_ids(db, ids).await?;
    let posts = posts
        .into_iter()
        .filter_map(|post| {
            let parent_author = live_parent_author(&post).and_then(|id| authors.get(&id).cloned());
            authors.get(&post.author_id).map(|author| PostWithAuthor {
                author: author.clone(),
                parent_author,
                post,
            })
        })
        .collect();
    Ok((posts, authors))
}

/// The list name that cursors of a post's replies are bound to.
pub fn replies_list_name(post_id: i64) -> String {
    format!("replies:{post_id}")
}

/// A page of the direct replies to `parent`, newest first (`idx_posts_in_reply_to_created`),
/// leaving out those `viewer` may not read: by an account that blocks the viewer or that the
/// viewer blocks or mutes, by a locked account the viewer does not follow (anonymous viewers:
/// every locked account), by a suspended account. The page's neighbours are those of the rows
/// read, so a page may hold fewer than `limit` replies and still have a next one.
#[tracing::instrument(name = "posts::list_replies", skip_all, fields(post = parent))]
pub async fn list_replies(
    db: &impl ConnectionTrait,
    parent: i64,
    viewer: Option<i64>,
    page: PageRequest,
) -> Result<(Vec<PostWithAuthor>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let (rows, next) = fetch_page(page, position, async |page| {
        Ok(replies_query(backend, parent, viewer, page).all(db).await?)
    })
    .await?;
    Ok((with_authors(db, rows).await?, next))
}

/// The query behind [`list_replies`]: the rows of one page, in the order [`fetch_page`] reads
/// them, from `idx_posts_in_reply_to_created`.
pub fn replies_query(
    backend: DbBackend,
    parent: i64,
    viewer: Option<i64>,
    page: PageRequest,
) -> Select<post::Entity> {
    let query = post::Entity::find().filter(post::Column::InReplyToId.eq(parent));
    let query = match viewer {
        Some(viewer) => query.filter(
            Condition::any().add(post::Column::AuthorId.eq(viewer)).add(
                Condition::all().add(hidden_from(viewer)).add(
                    Condition::any()
                        .add(by_unlocked_author())
                        .add(post::Column::AuthorId.in_subquery(followees(viewer))),
                ),
            ),
        ),
        None => query.filter(by_unlocked_author()),
    };
    keyset_page(backend, query, page, None)
}

/// The accounts whose posts `viewer` does not see among replies: those that block the viewer,
/// that the viewer blocks, that the viewer mutes (one `NOT IN` each, each an index range).
fn hidden_from(viewer: i64) -> Condition {
    let blockers = Query::select()
        .column(block::Column::BlockerId)
        .from(block::Entity)
        .and_where(block::Column::BlockedId.eq(viewer))
        .to_owned();
    let blocked = Query::select()
        .column(block::Column::BlockedId)
        .from(block::Entity)
        .and_where(block::Column::BlockerId.eq(viewer))
        .to_owned();
    let muted = Query::select()
        .column(mute::Column::MutedId)
        .from(mute::Entity)
        .and_where(mute::Column::MuterId.eq(viewer))
        .to_owned();
    Condition::all()
        .add(post::Column::AuthorId.not_in_subquery(blockers))
        .add(post::Column::AuthorId.not_in_subquery(blocked))
        .add(post::Column::AuthorId.not_in_subquery(muted))
}

/// `EXISTS (SELECT 1 FROM users WHERE users.id = posts.author_id AND NOT users.locked)`: the post's
/// author is not locked, so anyone may read it (one primary-key probe per post read).
fn by_unlocked_author() -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(user::Entity)
            .and_where(
                Expr::col((user::Entity, user::Column::Id))
                    .equals((post::Entity, post::Column::AuthorId)),
            )
            .and_where(Expr::col((user::Entity, user::Column::Locked)).eq(false))
            .to_owned(),
    )
}

/// `SELECT followed_id FROM follows WHERE follower_id = viewer`.
fn followees(viewer: i64) -> SelectStatement {
    Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(viewer))
        .to_owned()
}

/// Step: moves the `replies_count` of every post that `user` answers by `delta` per reply (-1 when
/// the account goes or is suspended: its replies no longer show; +1 when the suspension is
/// lifted). The caller holds the locks of `user` and of those posts' authors
/// ([`parent_authors_of`]). Read first and updated by count (MySQL cannot update `posts` from a
/// subquery on `posts`): one statement per distinct number of replies to one post.
pub async fn count_replies_of(
    txn: &DatabaseTransaction,
    user: i64,
    delta: i64,
) -> Result<(), ApiError> {
    // A locking read, so that MySQL/MariaDB read the latest committed replies rather than the
    // snapshot that the caller's first statement may have taken before it waited for its locks
    // (a reply committed meanwhile would be missed). Every writer of these rows holds `user`'s
    // lock, which the caller holds: nothing waits on this one.
    let parents: Vec<Option<i64>> = post::Entity::find()
        .select_only()
        .column(post::Column::InReplyToId)
        .filter(post::Column::AuthorId.eq(user))
        .filter(post::Column::InReplyToId.is_not_null())
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?;
    let mut per_parent: std::collections::BTreeMap<i64, i64> = Default::default();
    for parent in parents.into_iter().flatten() {
        *per_parent.entry(parent).or_default() += 1;
    }
    let mut by_count: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (parent, replies) in per_parent {
        by_count.entry(replies).or_default().push(parent);
    }
    for (replies, parents) in by_count {
        add_to_post_count(
            txn,
            post::Column::RepliesCount,
            post::Column::Id.is_in(parents),
            delta * replies,
        )
        .await?;
    }
    Ok(())
}

/// `SELECT parent_author_id FROM posts WHERE author_id = user AND in_reply_to_id IS NOT NULL`:
/// whose posts' counts [`count_replies_of`] changes, to be locked first.
pub fn parent_authors_of(user: i64) -> SelectStatement {
    Query::select()
        .column(post::Column::ParentAuthorId)
        .from(post::Entity)
        .and_where(post::Column::AuthorId.eq(user))
        .and_where(post::Column::InReplyToId.is_not_null())
        .to_owned()
}
