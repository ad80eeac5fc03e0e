//! The timeline: the reader's own posts and the posts of everyone the reader follows, newest first,
//! each post once.
//!
//! Strategy (see the README's design notes): one pull query, assembled by the database,
//!
//! ```sql
//! SELECT * FROM posts
//! WHERE (author_id = :reader OR author_id IN (SELECT followed_id FROM follows WHERE follower_id = :reader))
//!   AND <older than the cursor>
//! ORDER BY created_at DESC, id DESC LIMIT :limit + 1
//! ```
//!
//! `IN` (not a join) makes each post appear once, and unfollows and deletions are visible on the
//! next read because nothing is cached. The planner either walks `idx_posts_author_created` once
//! per followee and merges, or walks `idx_posts_created` newest first and keeps the posts of
//! followees; the first is cheap for readers who follow few accounts, the second for readers who
//! follow many. This function is the one place to change when the strategy changes.

use entity::{follow, post, user};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Select,
};

use crate::error::ApiError;
use crate::pagination::{PageRequest, Position, split_page};
use crate::services::posts::{PostWithAuthor, newest_first, position, with_authors};

/// The list name that timeline cursors of `reader_id` are bound to.
pub fn list_name(reader_id: i64) -> String {
    format!("timeline:{reader_id}")
}

/// Readers who follow at most this many accounts get the per-author query; others the
/// newest-first walk (see the module documentation).
pub const PER_AUTHOR_MAX_FOLLOWEES: i64 = 200;

/// A page of `reader`'s timeline, in a fixed number of queries (posts, then their authors).
pub async fn page(
    db: &impl ConnectionTrait,
    reader: &user::Model,
    page: PageRequest,
) -> Result<(Vec<PostWithAuthor>, Option<Position>), ApiError> {
    let query = if reader.following_count <= PER_AUTHOR_MAX_FOLLOWEES {
        let mut authors: Vec<i64> = follow::Entity::find()
            .select_only()
            .column(follow::Column::FollowedId)
            .filter(follow::Column::FollowerId.eq(reader.id))
            .into_tuple()
            .all(db)
            .await?;
        authors.push(reader.id);
        by_authors_query(&authors, page)
    } else {
        newest_first_query(reader.id, page)
    };
    let rows = query.all(db).await?;
    let (rows, next) = split_page(rows, page.limit, position);
    Ok((with_authors(db, rows).await?, next))
}

/// Posts by any of `authors`, newest first: one range of `idx_posts_author_created` per author,
/// merged and cut by the database. Cheap when the authors are few.
pub fn by_authors_query(authors: &[i64], page: PageRequest) -> Select<post::Entity> {
    newest_first(
        post::Entity::find().filter(post::Column::AuthorId.is_in(authors.iter().copied())),
        page,
    )
}

/// Posts by the reader or anyone the reader follows, walking `idx_posts_created` newest first and
/// keeping the posts whose author is followed. Cheap when the reader follows many accounts.
pub fn newest_first_query(reader_id: i64, page: PageRequest) -> Select<post::Entity> {
    let followees = Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(reader_id))
        .to_owned();
    newest_first(
        post::Entity::find().filter(
            Condition::any()
                .add(post::Column::AuthorId.eq(reader_id))
                .add(post::Column::AuthorId.in_subquery(followees)),
        ),
        page,
    )
}
