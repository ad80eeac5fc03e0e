//! The timeline: the reader's own posts and the posts of everyone the reader follows, newest first,
//! each post once; a reply only when its parent's author is the reader or someone the reader
//! follows ([`shows`], the one statement of the rule; both queries apply it as `reply_rule`).
//!
//! It is assembled by the database, with one of two queries chosen by how many accounts the reader
//! follows (the count is on the reader's row, so choosing costs nothing):
//!
//! - **Few followees** (at most `per_author_max_followees`, by default
//!   [`PER_AUTHOR_MAX_FOLLOWEES`]): the followee ids are read first, then
//!   one `UNION ALL` query takes each author's newest posts from `idx_posts_author_created` and
//!   the database keeps the newest of all. Cost grows with the number of followees, so it is cheap
//!   here.
//! - **Many followees**: `author_id = :me OR author_id IN (SELECT followed_id FROM follows ...)`,
//!   walking `idx_posts_created_author_parent` newest first and keeping the ids of followees' posts (an
//!   index-only walk), then reading just the page's posts. Cost grows with how far back the
//!   reader's newest posts lie, which shrinks as the reader follows more.
//!
//! `IN` (not a join) returns each post once; nothing is cached, so unfollows and deletions show on
//! the next read. `docs/design.md` and `bench/RESULTS.md` give the measured costs.

use entity::{follow, mute, post, user};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, JoinType, Query, SelectStatement, UnionType,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect, QueryTrait,
};

use crate::error::ApiError;
use crate::services::keyset::{Neighbours, PageRequest, fetch_page};
use crate::services::posts::{PostWithAuthor, keyset_page, position, with_authors};
use crate::services::relationships::Relation;

/// The list name that timeline cursors of `reader_id` are bound to.
pub fn list_name(reader_id: i64) -> String {
    format!("timeline:{reader_id}")
}

/// Whether a post by `author` belongs on `reader`'s timeline, given how the reader relates to the
/// author (`relationships::viewers_of`) and, for a reply, who wrote the post it answers and how
/// the reader relates to them: the rule the queries below apply, for the event stream's many
/// readers of one new post. The reader's own posts, and those of the accounts the reader follows
/// and does not mute (a block ends the follows both ways; a suspended author's posts are not
/// found at all); except a reply whose parent's author is neither the reader nor an account the
/// reader follows (API.md, "What the timeline holds, v3", item 1: a conversation shows when the
/// reader follows both sides; a reply to oneself counts).
pub fn shows(
    reader: i64,
    author: i64,
    relation: &Relation,
    reply_to: Option<(i64, &Relation)>,
) -> bool {
    let by_followed = reader == author || (relation.following_since.is_some() && !relation.muting);
    let to_followed = match reply_to {
        None => true,
        Some((parent_author, parent_relation)) => {
            parent_author == reader || parent_relation.following_since.is_some()
        }
    };
    by_followed && to_followed
}

/// Readers who follow at most this many accounts get the per-author query; others the
/// newest-first walk (see the module documentation). The server's setting
/// (`Settings::timeline_per_author_max_followees`) defaults to it; tests lower it so that a few
/// accounts reach both queries.
pub const PER_AUTHOR_MAX_FOLLOWEES: i64 = 30;

/// A page of `reader`'s timeline, in a fixed number of queries (posts, then their authors).
/// Readers following at most `per_author_max_followees` accounts get the per-author query.
#[tracing::instrument(name = "timeline::page", skip_all, fields(reader = reader.id))]
pub async fn page(
    db: &impl ConnectionTrait,
    reader: &user::Model,
    page: PageRequest,
    per_author_max_followees: i64,
) -> Result<(Vec<PostWithAuthor>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let authors = if reader.following_count <= per_author_max_followees {
        let mut authors: Vec<i64> = follow::Entity::find()
            .select_only()
            .column(follow::Column::FollowedId)
            .filter(follow::Column::FollowerId.eq(reader.id))
            .filter(follow::Column::FollowedId.not_in_subquery(muted_by(reader.id)))
            .into_tuple()
            .all(db)
            .await?;
        authors.push(reader.id);
        Some(authors)
    } else {
        None
    };
    let (rows, neighbours) = fetch_page(page, position, async |page| {
        let query = match &authors {
            Some(authors) => by_authors_query(backend, reader.id, authors, page),
            None => newest_first_query(backend, reader.id, page),
        };
        Ok(post::Model::find_by_statement(backend.build(&query))
            .all(db)
            .await?)
    })
    .await?;
    Ok((with_authors(db, rows).await?, neighbours))
}

/// Posts by any of `authors`, newest first: each author's newest posts from the cursor on (one
/// short backward range of `idx_posts_author_created` each, `LIMIT`ed), combined with `UNION ALL`
/// and cut by the database. Written out per author rather than as `author_id IN (...)`, which
/// planners may turn into a long walk of all recent posts when they misjudge how much the authors
/// write. Cheap when the authors are few.
pub fn by_authors_query(
    backend: DbBackend,
    reader_id: i64,
    authors: &[i64],
    page: PageRequest,
) -> SelectStatement {
    let member = |(i, author): (usize, &i64)| {
        let newest = keyset_page(
            backend,
            post::Entity::find()
                .filter(post::Column::AuthorId.eq(*author))
                .filter(reply_rule(reader_id)),
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
        .order_by(Alias::new("created_at"), page.order())
        .order_by(Alias::new("id"), page.order())
        .limit(page.fetch_limit())
        .to_owned()
}

/// Posts by the reader or anyone the reader follows, newest first, in two steps: the page's post
/// ids from a newest-first walk of `idx_posts_created_author_parent` that keeps the posts whose author is
/// followed (the index holds the author, so the walk reads no table rows), then those posts
/// themselves. Cheap when the reader follows many accounts.
pub fn newest_first_query(
    backend: DbBackend,
    reader_id: i64,
    page: PageRequest,
) -> SelectStatement {
    let followees = Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(reader_id))
        .to_owned();
    // SQLite's planner would rather gather every followee's posts from `idx_posts_author_created`
    // and sort them (22.7 ms for 5,000 followees on the benchmark dataset, 3.0 ms with the walk):
    // a unary `+` is its documented way to keep a term from choosing an index. (`?` is where
    // sea-query puts the column in a custom expression on SQLite; a numbered `$1` there is left as
    // written, and SQLite would bind it to the query's first value, the reader's id.)
    let author = Expr::col((post::Entity, post::Column::AuthorId));
    let author = match backend {
        DbBackend::Sqlite => Expr::cust_with_expr("+?", author),
        _ => author,
    };
    let page_ids = keyset_page(
        backend,
        post::Entity::find()
            .select_only()
            .column(post::Column::Id)
            .filter(
                Condition::any().add(author.clone().eq(reader_id)).add(
                    Condition::all()
                        .add(author.clone().in_subquery(followees))
                        .add(author.not_in_subquery(muted_by(reader_id))),
                ),
            )
            .filter(reply_rule(reader_id)),
        page,
    )
    .into_query();
    let page_alias = Alias::new("page_ids");
    post::Entity::find()
        .into_query()
        .join_subquery(
            JoinType::InnerJoin,
            page_ids,
            page_alias.clone(),
            Expr::col((post::Entity, post::Column::Id)).equals((page_alias, post::Column::Id)),
        )
        .order_by((post::Entity, post::Column::CreatedAt), page.order())
        .order_by((post::Entity, post::Column::Id), page.order())
        .to_owned()
}

/// The reply rule of [`shows`] as a condition on posts: not a reply, or a reply to a post by the
/// reader or by an account the reader follows (muted or not). `parent_author_id` is on the
/// reply's own row and in `idx_posts_created_author_parent`, so the newest-first walk still reads the
/// index alone.
fn reply_rule(reader_id: i64) -> Condition {
    let followees = Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(reader_id))
        .to_owned();
    let parent_author = Expr::col((post::Entity, post::Column::ParentAuthorId));
    Condition::any()
        .add(parent_author.clone().is_null())
        .add(parent_author.clone().eq(reader_id))
        .add(parent_author.in_subquery(followees))
}

/// `SELECT muted_id FROM mutes WHERE muter_id = reader_id`: the authors the reader muted, whose
/// posts leave the reader's timeline. (Blocked authors need no filter: a block ends the follows
/// both ways and no follow can begin while it stands, so their posts never qualify.)
fn muted_by(reader_id: i64) -> SelectStatement {
    Query::select()
        .column(mute::Column::MutedId)
        .from(mute::Entity)
        .and_where(mute::Column::MuterId.eq(reader_id))
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_shows_only_when_its_parents_author_is_the_reader_or_followed() {
        let followed = Relation {
            following_since: Some(1),
            ..Relation::default()
        };
        let stranger = Relation::default();
        let muted = Relation {
            muting: true,
            ..followed
        };
        // (reader 1; author 2 followed) replying to: nobody, the reader, a followee, a muted
        // followee, the author itself, a stranger.
        let cases = [
            (None, true),
            (Some((1, &stranger)), true),
            (Some((3, &followed)), true),
            (Some((3, &muted)), true),
            (Some((2, &followed)), true),
            (Some((4, &stranger)), false),
        ];
        for (reply_to, shown) in cases {
            assert_eq!(shows(1, 2, &followed, reply_to), shown, "{reply_to:?}");
        }
        // The reader's own reply to a stranger is left out too; a stranger's post never shows.
        assert!(!shows(1, 1, &stranger, Some((4, &stranger))));
        assert!(!shows(1, 4, &stranger, Some((1, &stranger))));
    }

    /// page size, and the text applies `+` to `author_id` in every term of the filter (the reader,
    /// the followees, the muted).
    /// page size, and the text applies `+` to `author_id` in both terms of the filter.
    #[test]
    fn the_sqlite_hint_applies_to_the_author_column() {
        let page = PageRequest::older(20, None);
        let statement = DbBackend::Sqlite.build(&newest_first_query(DbBackend::Sqlite, 42, page));
        let sql = statement.sql;
        let values = statement.values.map(|v| v.0).unwrap_or_default();
        assert_eq!(sql.matches(r#"+"posts"."author_id""#).count(), 3, "{sql}");
        assert!(!sql.contains('$'), "{sql}");
        assert_eq!(values.len(), sql.matches('?').count(), "{sql}");
    }
}
