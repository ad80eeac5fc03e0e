//! The timeline: the reader's own posts and the posts of everyone the reader follows, newest first,
//! each post once.
//!
//! It is assembled by the database, with one of two queries chosen by how many accounts the reader
//! follows (the count is on the reader's row, so choosing costs nothing):
//!
//! - **Few followees** (at most [`PER_AUTHOR_MAX_FOLLOWEES`]): the followee ids are read first, then
//!   one `UNION ALL` query takes each author's newest posts from `idx_posts_author_created` and
//!   the database keeps the newest of all. Cost grows with the number of followees, so it is cheap
//!   here.
//! - **Many followees**: `author_id = :me OR author_id IN (SELECT followed_id FROM follows ...)`,
//!   walking `idx_posts_created` newest first and keeping the posts of followees. Cost grows with
//!   how far back the reader's newest posts lie, which shrinks as the reader follows more.
//!
//! `IN` (not a join) returns each post once; nothing is cached, so unfollows and deletions show on
//! the next read. The README's design notes and `bench/RESULTS.md` give the measured costs.

use entity::{follow, post, user};
use sea_orm::sea_query::{Alias, Asterisk, Order, Query, SelectStatement, UnionType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, QueryTrait, Select,
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
pub const PER_AUTHOR_MAX_FOLLOWEES: i64 = 30;

/// A page of `reader`'s timeline, in a fixed number of queries (posts, then their authors).
pub async fn page(
    db: &impl ConnectionTrait,
    reader: &user::Model,
    page: PageRequest,
) -> Result<(Vec<PostWithAuthor>, Option<Position>), ApiError> {
    let rows = if reader.following_count <= PER_AUTHOR_MAX_FOLLOWEES {
        let mut authors: Vec<i64> = follow::Entity::find()
            .select_only()
            .column(follow::Column::FollowedId)
            .filter(follow::Column::FollowerId.eq(reader.id))
            .into_tuple()
            .all(db)
            .await?;
        authors.push(reader.id);
        let statement = db
            .get_database_backend()
            .build(&by_authors_query(&authors, page));
        post::Model::find_by_statement(statement).all(db).await?
    } else {
        newest_first_query(reader.id, page).all(db).await?
    };
    let (rows, next) = split_page(rows, page.limit, position);
    Ok((with_authors(db, rows).await?, next))
}

/// Posts by any of `authors`, newest first: each author's newest posts from the cursor on (one
/// short backward range of `idx_posts_author_created` each, `LIMIT`ed), combined with `UNION ALL`
/// and cut by the database. Written out per author rather than as `author_id IN (...)`, which
/// planners may turn into a long walk of all recent posts when they misjudge how much the authors
/// write. Cheap when the authors are few.
pub fn by_authors_query(authors: &[i64], page: PageRequest) -> SelectStatement {
    let member = |(i, author): (usize, &i64)| {
        let newest = newest_first(
            post::Entity::find().filter(post::Column::AuthorId.eq(*author)),
            page,
        )
        .into_query();
        Query::select()
            .column(Asterisk)
            .from_subquery(newest, Alias::new(format!("author_{i}")))
            .to_owned()
    };
    let mut members = authors.iter().enumerate().map(member);
    let mut query = members.next().unwrap_or_else(|| Query::select().to_owned());
    for other in members {
        query.union(UnionType::All, other);
    }
    query
        .order_by(Alias::new("created_at"), Order::Desc)
        .order_by(Alias::new("id"), Order::Desc)
        .limit(page.limit + 1)
        .to_owned()
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
