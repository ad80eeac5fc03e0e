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

use entity::{follow, post};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Select};

use crate::error::ApiError;
use crate::pagination::{PageRequest, Position, split_page};
use crate::services::posts::{PostWithAuthor, newest_first, position, with_authors};

/// The list name that timeline cursors of `reader_id` are bound to.
pub fn list_name(reader_id: i64) -> String {
    format!("timeline:{reader_id}")
}

/// A page of `reader_id`'s timeline in two queries (posts, then their authors).
pub async fn page(
    db: &impl ConnectionTrait,
    reader_id: i64,
    page: PageRequest,
) -> Result<(Vec<PostWithAuthor>, Option<Position>), ApiError> {
    let rows = page_query(reader_id, page).all(db).await?;
    let (rows, next) = split_page(rows, page.limit, position);
    Ok((with_authors(db, rows).await?, next))
}

/// The query behind [`page`].
pub fn page_query(reader_id: i64, page: PageRequest) -> Select<post::Entity> {
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
