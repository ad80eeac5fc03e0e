//! The timeline: *entries*, newest first (API.md, "What the timeline holds, v3"). A post's writing
//! is an entry for its author's readers, and each repost of it is one for the reposter's; a post
//! shows once, at its newest entry that the reader qualifies for, with `reposted_by` from that
//! entry when it is a repost. This module is the one place that decides what a timeline holds:
//! [`shows`] and [`sees_entries_of`] state the rules for one reader (the event stream's readers of
//! a new post or repost), and the queries below apply the same rules as conditions
//! (`followed_or_self`, `writing_shown_beyond_author`, `repost_shown_beyond_reposter`,
//! `no_newer_entry`).
//!
//! Positions: a writing is at `(posts.created_at, posts.id)`, a repost at
//! `(reposts.created_at, reposts.post_id)`. Both are taken on the posts' clock
//! ([`crate::services::clock`]) and shown only up to its horizon, below which no entry can land
//! later, so a reader polling `newer_than` meets every new entry once (a repost beyond the
//! horizon still hides the post's older entry, which `no_newer_entry` does not bound, for the
//! moment until the horizon passes it and the post shows there); and since a post shows only at its newest qualifying entry, `(at, post id)` is
//! unique among a timeline's items and a keyset over it is exact. "Only at its newest entry" is a
//! `NOT EXISTS` probe of `idx_reposts_post_created` per candidate entry (a newer repost of the same
//! post by an account the reader sees reposts of); so an unrepost or an unfollow lets the post fall
//! back to its next entry without anything being rewritten.
//!
//! The entries are assembled by the database, with one of two queries chosen by how many accounts
//! the reader follows (the count is on the reader's row, so choosing costs nothing):
//!
//! - **Few followees** (at most `per_author_max_followees`, by default
//!   [`PER_AUTHOR_MAX_FOLLOWEES`]): the followee ids are read first, then one `UNION ALL` query
//!   takes each account's newest writings from `idx_posts_author_created` and its newest reposts
//!   from `idx_reposts_user_created`, and the database keeps the newest of all. Cost grows with
//!   the number of followees, so it is cheap here.
//! - **Many followees**: two newest-first walks, of `idx_posts_created_author_parent` (writings by
//!   the reader or a followee) and of `idx_reposts_created` (reposts by the reader or a followee),
//!   each keeping only entries that qualify and reading the index alone for the author tests, cut
//!   to the page and merged. Cost grows with how far back the reader's newest entries lie, which
//!   shrinks as the reader follows more.
//! - **Many followees, with a feed** (when feeds are on, [`Strategy`]): a page toward older items
//!   reads the reader's precomputed candidates ([`crate::services::feeds`], [`feed_query`]) held
//!   to the same conditions in a probing form, with the walks above the feed's fan-out position;
//!   a page that reaches below the feed's floor, and every `newer_than` page, is read as above.
//!
//! The page's posts are joined in the same statement; no answer is cached (a feed holds
//! candidates, not answers), so unfollows, unreposts and deletions show on the next read.
//! `docs/design.md` and `bench/RESULTS.md` give the measured costs.

use entity::{block, feed_entry, follow, mute, post, repost, user};
use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, JoinType, Query, SelectStatement, UnionType,
};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryResult, QuerySelect, QueryTrait, Select,
};

use crate::error::ApiError;
use crate::services::clock;
use crate::services::feeds::{self, Feeds};
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::posts::{PostWithAuthor, keyset_page, with_authors_and};
use crate::services::relationships::Relation;

/// The list name that timeline cursors of `reader_id` are bound to.
pub fn list_name(reader_id: i64) -> String {
    format!("timeline:{reader_id}")
}

/// One item of a timeline: a post at its newest entry for the reader.
pub struct Entry {
    pub post: PostWithAuthor,
    /// Who reposted it, when the entry is a repost.
    pub reposted_by: Option<user::Model>,
    /// The entry's time: the post's `created_at` for a writing, the repost's for a repost.
    pub at: i64,
}

impl Entry {
    /// A post's writing as an entry.
    pub fn writing(post: PostWithAuthor) -> Entry {
        Entry {
            at: post.post.created_at,
            post,
            reposted_by: None,
        }
    }

    /// The entry's timeline position (its cursor, and its `id` on the event stream).
    pub fn position(&self) -> Position {
        Position {
            at: self.at,
            id: self.post.post.id,
        }
    }

    /// When the post was reposted, if the entry is a repost.
    pub fn reposted_at(&self) -> Option<i64> {
        self.reposted_by.as_ref().map(|_| self.at)
    }
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
    let by_followed = sees_entries_of(reader, author, relation);
    let to_followed = match reply_to {
        None => true,
        Some((parent_author, parent_relation)) => {
            parent_author == reader || parent_relation.following_since.is_some()
        }
    };
    by_followed && to_followed
}

/// Whether `reader` sees the entries (writings and reposts) of `account`, given how the reader
/// relates to it: the reader itself, or an account the reader follows and does not mute. The
/// event stream wakes the connected readers of a new repost by it; whether the repost shows, and
/// at which entry, the timeline query says when they read.
pub fn sees_entries_of(reader: i64, account: i64, relation: &Relation) -> bool {
    reader == account || (relation.following_since.is_some() && !relation.muting)
}

/// Readers who follow at most this many accounts get the per-author query; others the
/// newest-first walk (see the module documentation). The server's setting
/// (`Settings::timeline_per_author_max_followees`) defaults to it; tests lower it so that a few
/// accounts reach both queries.
pub const PER_AUTHOR_MAX_FOLLOWEES: i64 = 30;

/// How timelines are read: where the per-author query gives way to the newest-first walk, and the
/// precomputed feeds of readers past that point, when they are on ([`crate::services::feeds`]).
#[derive(Clone, Debug)]
pub struct Strategy {
    pub per_author_max_followees: i64,
    pub feeds: Option<Feeds>,
}

impl Strategy {
    /// The two queries alone, without feeds (what a reader without a built feed gets).
    pub fn without_feeds(per_author_max_followees: i64) -> Self {
        Strategy {
            per_author_max_followees,
            feeds: None,
        }
    }
}

/// A page of `reader`'s timeline, in a fixed number of queries (the entries with their posts, then
/// the users they show). Readers following at most `per_author_max_followees` accounts get the
/// per-author query; others their feed when it is built and the page goes toward older items
/// (falling back to the walk when the page reaches below the feed's floor), else the walk, and
/// a feed is asked for when they have none.
#[tracing::instrument(name = "timeline::page", skip_all, fields(reader = reader.id))]
pub async fn page(
    db: &impl ConnectionTrait,
    reader: &user::Model,
    page: PageRequest,
    strategy: &Strategy,
) -> Result<(Vec<Entry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let few = reader.following_count <= strategy.per_author_max_followees;
    let floor = match &strategy.feeds {
        Some(feeds) => {
            let floor = feeds::floor_of(reader);
            if floor.is_none() && !few {
                feeds.want(reader.id);
            }
            floor
        }
        None => None,
    };
    let authors = if few {
        // The posts' horizon comes with the followees (on each row), read once for the page's
        // many members rather than by each ([`clock::within_posts_horizon`]).
        let rows: Vec<(i64, Option<i64>)> = follow::Entity::find()
            .select_only()
            .column(follow::Column::FollowedId)
            .expr_as(clock::posts_horizon(), "horizon")
            .filter(follow::Column::FollowerId.eq(reader.id))
            .filter(follow::Column::FollowedId.not_in_subquery(muted_by(reader.id)))
            .into_tuple()
            .all(db)
            .await?;
        let horizon = rows.first().map(|(_, horizon)| horizon.unwrap_or(i64::MIN));
        let mut authors: Vec<i64> = rows.into_iter().map(|(id, _)| id).collect();
        authors.push(reader.id);
        Some((authors, horizon))
    } else {
        None
    };
    let position = |row: &EntryRow| Position {
        at: row.at,
        id: row.post.id,
    };
    let read = async |query: SelectStatement| -> Result<Vec<EntryRow>, ApiError> {
        Ok(EntryRow::find_by_statement(backend.build(&query))
            .all(db)
            .await?)
    };
    let (rows, neighbours) = fetch_page(page, position, async |page| {
        if let Some(floor) = floor.filter(|_| page.newer_than.is_none()) {
            let (fanned, horizon) = feeds::positions(db).await?;
            let query = feed_query(backend, reader.id, page, floor, fanned, horizon);
            let rows = read(query).await?;
            // A short page may lie partly below the floor, where the feed is not whole.
            if rows.len() as u64 >= page.fetch_limit() || floor == feeds::WHOLE {
                return Ok(rows);
            }
        }
        let query = match &authors {
            Some((authors, horizon)) => {
                by_authors_query(backend, reader.id, authors, page, *horizon)
            }
            None => newest_first_query(backend, reader.id, page),
        };
        read(query).await
    })
    .await?;
    Ok((entries(db, rows).await?, neighbours))
}

/// A row of the timeline queries: the post, and its entry's time and reposter.
struct EntryRow {
    post: post::Model,
    at: i64,
    reposter: Option<i64>,
}

impl FromQueryResult for EntryRow {
    fn from_query_result(res: &QueryResult, pre: &str) -> Result<Self, DbErr> {
        Ok(EntryRow {
            post: post::Model::from_query_result(res, pre)?,
            at: res.try_get(pre, ENTRY_AT)?,
            reposter: res.try_get(pre, ENTRY_REPOSTER)?,
        })
    }
}

const ENTRY_AT: &str = "entry_at";
const ENTRY_POST: &str = "entry_post_id";
const ENTRY_REPOSTER: &str = "entry_reposter_id";

/// The rows' posts with their authors and reposters (one query for all the users); an entry whose
/// post's author or reposter is suspended (or gone meanwhile) is left out.
async fn entries(db: &impl ConnectionTrait, rows: Vec<EntryRow>) -> Result<Vec<Entry>, ApiError> {
    let reposters: Vec<i64> = rows.iter().filter_map(|row| row.reposter).collect();
    let mut meta: std::collections::HashMap<i64, (i64, Option<i64>)> = Default::default();
    let posts = rows
        .into_iter()
        .map(|row| {
            meta.insert(row.post.id, (row.at, row.reposter));
            row.post
        })
        .collect();
    let (posts, users) = with_authors_and(db, posts, reposters).await?;
    Ok(posts
        .into_iter()
        .filter_map(|post| {
            let (at, reposter) = meta.get(&post.post.id).copied()?;
            let reposted_by = match reposter {
                Some(id) => Some(users.get(&id)?.clone()),
                None => None,
            };
            Some(Entry {
                post,
                reposted_by,
                at,
            })
        })
        .collect())
}

/// The entries (`entry_at`, `entry_post_id`, `entry_reposter_id`) of one page, merged from
/// `members` (each ordered and cut to the page already), joined with their posts, in the page's
/// order.
fn join_posts(members: Vec<SelectStatement>, page: PageRequest) -> SelectStatement {
    let mut members = members.into_iter().enumerate().map(|(i, member)| {
        Query::select()
            .column(Asterisk)
            .from_subquery(member, Alias::new(format!("member_{i}")))
            .to_owned()
    });
    let mut merged = members.next().unwrap_or_else(|| Query::select().to_owned());
    for other in members {
        merged.union(UnionType::All, other);
    }
    merged
        .order_by(Alias::new(ENTRY_AT), page.order())
        .order_by(Alias::new(ENTRY_POST), page.order())
        .limit(page.fetch_limit());
    let entries = Alias::new("entries");
    post::Entity::find()
        .into_query()
        .expr_as(
            Expr::col((entries.clone(), Alias::new(ENTRY_AT))),
            Alias::new(ENTRY_AT),
        )
        .expr_as(
            Expr::col((entries.clone(), Alias::new(ENTRY_REPOSTER))),
            Alias::new(ENTRY_REPOSTER),
        )
        .join_subquery(
            JoinType::InnerJoin,
            merged,
            entries.clone(),
            Expr::col((post::Entity, post::Column::Id))
                .equals((entries.clone(), Alias::new(ENTRY_POST))),
        )
        .order_by((entries.clone(), Alias::new(ENTRY_AT)), page.order())
        .order_by((entries, Alias::new(ENTRY_POST)), page.order())
        .to_owned()
}

/// `posts` (already filtered) as entries: `created_at`, `id` and no reposter, newest first from
/// the page's cursor, cut to the page, up to the posts' horizon (`horizon` if read already).
fn writings(
    backend: DbBackend,
    posts: Select<post::Entity>,
    page: PageRequest,
    horizon: Option<i64>,
) -> SelectStatement {
    let mut query = keyset_page(backend, posts, page, horizon).into_query();
    query
        .clear_selects()
        .expr_as(
            Expr::col((post::Entity, post::Column::CreatedAt)),
            Alias::new(ENTRY_AT),
        )
        .expr_as(
            Expr::col((post::Entity, post::Column::Id)),
            Alias::new(ENTRY_POST),
        )
        .expr_as(Expr::value(Option::<i64>::None), Alias::new(ENTRY_REPOSTER));
    query
}

/// `reposts` (already filtered) as entries: `created_at`, `post_id` and the reposter, newest first
/// from the page's cursor, cut to the page, up to the posts' horizon (`horizon` if read already).
fn repost_entries(
    backend: DbBackend,
    reposts: Select<repost::Entity>,
    page: PageRequest,
    horizon: Option<i64>,
) -> SelectStatement {
    let reposts = match page.keyset(backend, repost::Column::CreatedAt, repost::Column::PostId) {
        Some(keyset) => reposts.filter(keyset),
        None => reposts,
    };
    let at = Expr::col((repost::Entity, repost::Column::CreatedAt));
    let reposts = match clock::within_posts_horizon(&page, at, horizon) {
        Some(bound) => reposts.filter(bound),
        None => reposts,
    };
    let mut query = reposts.into_query();
    query
        .clear_selects()
        .expr_as(
            Expr::col((repost::Entity, repost::Column::CreatedAt)),
            Alias::new(ENTRY_AT),
        )
        .expr_as(
            Expr::col((repost::Entity, repost::Column::PostId)),
            Alias::new(ENTRY_POST),
        )
        .expr_as(
            Expr::col((repost::Entity, repost::Column::UserId)),
            Alias::new(ENTRY_REPOSTER),
        )
        .order_by((repost::Entity, repost::Column::CreatedAt), page.order())
        .order_by((repost::Entity, repost::Column::PostId), page.order())
        .limit(page.fetch_limit());
    query
}

/// Entries by any of `authors` (the reader and the followees it does not mute), newest first:
/// each account's newest writings and newest reposts from the cursor on (one short backward range
/// of `idx_posts_author_created` and one of `idx_reposts_user_created` each, `LIMIT`ed), combined
/// with `UNION ALL` and cut by the database. Written out per account rather than as `IN (...)`,
/// which planners may turn into a long walk of everything recent when they misjudge how much the
/// accounts write. Cheap when the accounts are few. `horizon`: the posts' horizon when it was read
/// already (else each member reads it).
pub fn by_authors_query(
    backend: DbBackend,
    reader_id: i64,
    authors: &[i64],
    page: PageRequest,
    horizon: Option<i64>,
) -> SelectStatement {
    let mut members = Vec::with_capacity(authors.len() * 2);
    for author in authors {
        members.push(writings(
            backend,
            post::Entity::find()
                .filter(post::Column::AuthorId.eq(*author))
                .filter(writing_shown_beyond_author(Form::Walk, reader_id)),
            page,
            horizon,
        ));
        members.push(repost_entries(
            backend,
            repost::Entity::find()
                .filter(repost::Column::UserId.eq(*author))
                .filter(repost_shown_beyond_reposter(reader_id)),
            page,
            horizon,
        ));
    }
    join_posts(members, page)
}

/// Entries by the reader or anyone the reader follows, newest first: a newest-first walk of
/// `idx_posts_created_author_parent` keeping the writings that qualify and one of
/// `idx_reposts_created` keeping the reposts that do (the indexes hold the authors and reposters,
/// so the walks test them without reading table rows), each cut to the page, merged, and joined
/// with the page's posts. Cheap when the reader follows many accounts.
pub fn newest_first_query(
    backend: DbBackend,
    reader_id: i64,
    page: PageRequest,
) -> SelectStatement {
    join_posts(
        newest_first_members(backend, reader_id, page, None, None),
        page,
    )
}

/// The two walks of [`newest_first_query`], each cut to the page; only the entries above `since`
/// and up to `horizon` when they are given (the feed's fan-out position and the posts' horizon
/// as read before the page: [`feed_query`]).
fn newest_first_members(
    backend: DbBackend,
    reader_id: i64,
    page: PageRequest,
    since: Option<i64>,
    horizon: Option<i64>,
) -> Vec<SelectStatement> {
    // SQLite's planner would rather gather every followee's posts from `idx_posts_author_created`
    // (and reposts from `idx_reposts_user_created`) and sort them (22.7 ms for 5,000 followees on
    // the benchmark dataset, 3.0 ms with the walk): a unary `+` is its documented way to keep a
    // term from choosing an index. (`?` is where sea-query puts the column in a custom expression
    // on SQLite; a numbered `$1` there is left as written, and SQLite would bind it to the
    // query's first value, the reader's id.)
    let hinted = |column: Expr| match backend {
        DbBackend::Sqlite => Expr::cust_with_expr("+?", column),
        _ => column,
    };
    let author = hinted(Expr::col((post::Entity, post::Column::AuthorId)));
    let reposter = hinted(Expr::col((repost::Entity, repost::Column::UserId)));
    let mut posts = post::Entity::find()
        .filter(followed_or_self(Form::Walk, author, reader_id))
        .filter(writing_shown_beyond_author(Form::Walk, reader_id));
    let mut reposts = repost::Entity::find()
        .filter(followed_or_self(Form::Walk, reposter, reader_id))
        .filter(repost_shown_beyond_reposter(reader_id));
    if let Some(since) = since {
        posts = posts.filter(post::Column::CreatedAt.gt(since));
        reposts = reposts.filter(repost::Column::CreatedAt.gt(since));
    }
    vec![
        writings(backend, posts, page, horizon),
        repost_entries(backend, reposts, page, horizon),
    ]
}

/// A page of a reader's timeline from its feed ([`crate::services::feeds`]): the feed's
/// writings and reposts above `floor` and up to the fan-out position `fanned`, each held to the
/// same rules as on the walk (in their probing form: one primary-key probe per candidate, rather
/// than the reader's followees as a list), and the entries above `fanned` and up to the posts'
/// `horizon` from the walk (left out when there are none to find: the worker caught up, or a
/// page older than `fanned`), merged and joined with their posts. `fanned` and `horizon` are
/// read before the page ([`feeds::positions`]): the fewer members, the less PostgreSQL plans
/// (about 4.7 ms for all four members, against 1.3 ms for the walk, on the benchmark dataset).
/// Whether the page lies wholly above the floor is the caller's question ([`page`]).
pub fn feed_query(
    backend: DbBackend,
    reader_id: i64,
    page: PageRequest,
    floor: Position,
    fanned: i64,
    horizon: i64,
) -> SelectStatement {
    let at = Expr::col((feed_entry::Entity, feed_entry::Column::At));
    let entry_post = Expr::col((feed_entry::Entity, feed_entry::Column::PostId));
    let member = |is_repost: bool| {
        let mut query = Query::select();
        query
            .expr_as(at.clone(), Alias::new(ENTRY_AT))
            .expr_as(entry_post.clone(), Alias::new(ENTRY_POST))
            .from(feed_entry::Entity)
            .and_where(feed_entry::Column::ReaderId.eq(reader_id))
            .and_where(feed_entry::Column::IsRepost.eq(is_repost))
            .and_where(at.clone().lte(fanned));
        if floor != feeds::WHOLE {
            query.cond_where(crate::services::keyset::newer_than(
                backend,
                feed_entry::Column::At,
                feed_entry::Column::PostId,
                floor,
            ));
        }
        if let Some(keyset) =
            page.keyset(backend, feed_entry::Column::At, feed_entry::Column::PostId)
        {
            query.cond_where(keyset);
        }
        query
            .order_by((feed_entry::Entity, feed_entry::Column::At), page.order())
            .order_by(
                (feed_entry::Entity, feed_entry::Column::PostId),
                page.order(),
            )
            .limit(page.fetch_limit());
        query
    };
    let mut writings = member(false);
    writings
        .expr_as(Expr::value(Option::<i64>::None), Alias::new(ENTRY_REPOSTER))
        .inner_join(
            post::Entity,
            Expr::col((post::Entity, post::Column::Id))
                .equals((feed_entry::Entity, feed_entry::Column::PostId)),
        )
        .cond_where(followed_or_self(
            Form::Probe,
            Expr::col((post::Entity, post::Column::AuthorId)),
            reader_id,
        ))
        .cond_where(writing_shown_beyond_author(Form::Probe, reader_id));
    let mut reposts = member(true);
    reposts
        .expr_as(
            Expr::col((feed_entry::Entity, feed_entry::Column::SourceId)),
            Alias::new(ENTRY_REPOSTER),
        )
        .inner_join(
            repost::Entity,
            Condition::all()
                .add(
                    Expr::col((repost::Entity, repost::Column::PostId))
                        .equals((feed_entry::Entity, feed_entry::Column::PostId)),
                )
                .add(
                    Expr::col((repost::Entity, repost::Column::UserId))
                        .equals((feed_entry::Entity, feed_entry::Column::SourceId)),
                )
                .add(
                    Expr::col((repost::Entity, repost::Column::CreatedAt))
                        .equals((feed_entry::Entity, feed_entry::Column::At)),
                ),
        )
        .cond_where(followed_or_self(
            Form::Probe,
            Expr::col((repost::Entity, repost::Column::UserId)),
            reader_id,
        ))
        .cond_where(repost_shown_beyond_reposter(reader_id));
    let mut members = vec![writings, reposts];
    let above_fanned = horizon > fanned && page.after.is_none_or(|after| after.at > fanned);
    if above_fanned {
        members.extend(newest_first_members(
            backend,
            reader_id,
            page,
            Some(fanned),
            Some(horizon),
        ));
    }
    join_posts(members, page)
}

/// How a rule asks about the reader's followees: as the list (`IN (SELECT followed_id ...)`),
/// which the walks test index entries against, or as one primary-key probe per candidate
/// (`EXISTS`), for the feed's few candidates (hashing thousands of followees to test twenty
/// entries costs more than the entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Walk,
    Probe,
}

/// `account = reader OR (account IN followees AND account NOT IN muted)`: an account whose
/// entries the reader sees.
fn followed_or_self(form: Form, account: Expr, reader_id: i64) -> Condition {
    let followed = match form {
        Form::Walk => Condition::all()
            .add(account.clone().in_subquery(followees(reader_id)))
            .add(account.clone().not_in_subquery(muted_by(reader_id))),
        Form::Probe => Condition::all()
            .add(Expr::exists(follow_probe(reader_id, account.clone())))
            .add(Expr::exists(mute_probe(reader_id, account.clone())).not()),
    };
    Condition::any().add(account.eq(reader_id)).add(followed)
}

/// `SELECT 1 FROM follows WHERE follower_id = reader AND followed_id = account`.
fn follow_probe(reader_id: i64, account: Expr) -> SelectStatement {
    let probe = Alias::new("probe_follow");
    Query::select()
        .expr(Expr::val(1))
        .from_as(follow::Entity, probe.clone())
        .and_where(Expr::col((probe.clone(), follow::Column::FollowerId)).eq(reader_id))
        .and_where(Expr::col((probe, follow::Column::FollowedId)).eq(account))
        .to_owned()
}

/// `SELECT 1 FROM mutes WHERE muter_id = reader AND muted_id = account`.
fn mute_probe(reader_id: i64, account: Expr) -> SelectStatement {
    let probe = Alias::new("probe_mute");
    Query::select()
        .expr(Expr::val(1))
        .from_as(mute::Entity, probe.clone())
        .and_where(Expr::col((probe.clone(), mute::Column::MuterId)).eq(reader_id))
        .and_where(Expr::col((probe, mute::Column::MutedId)).eq(account))
        .to_owned()
}

/// What a writing by an account whose entries the reader sees must also meet: the reply rule,
/// and no newer entry for the post (a repost the reader sees; every repost is newer than the
/// writing).
fn writing_shown_beyond_author(form: Form, reader_id: i64) -> Condition {
    Condition::all()
        .add(reply_rule(form, reader_id))
        .add(no_newer_entry(
            reader_id,
            Expr::col((post::Entity, post::Column::Id)),
            None,
        ))
}

/// What a repost by an account whose entries the reader sees must also meet: its post is one the
/// reader may read and has not muted the author of (`post_author_id` not muted, no block either
/// way, an author neither suspended nor locked unless the reader is it or follows it), and no newer
/// repost of the post is an entry for the reader.
fn repost_shown_beyond_reposter(reader_id: i64) -> Condition {
    let author = Expr::col((repost::Entity, repost::Column::PostAuthorId));
    let blockers = Query::select()
        .column(block::Column::BlockerId)
        .from(block::Entity)
        .and_where(block::Column::BlockedId.eq(reader_id))
        .to_owned();
    let blocked = Query::select()
        .column(block::Column::BlockedId)
        .from(block::Entity)
        .and_where(block::Column::BlockerId.eq(reader_id))
        .to_owned();
    let author_row = Alias::new("post_author");
    let author_id = Expr::col((author_row.clone(), user::Column::Id));
    let readable_author = Query::select()
        .expr(Expr::val(1))
        .from_as(user::Entity, author_row.clone())
        .and_where(
            author_id
                .clone()
                .equals((repost::Entity, repost::Column::PostAuthorId)),
        )
        .and_where(Expr::col((author_row.clone(), user::Column::SuspendedAt)).is_null())
        .cond_where(
            Condition::any()
                .add(Expr::col((author_row.clone(), user::Column::Locked)).eq(false))
                .add(author_id.clone().eq(reader_id))
                .add(Expr::exists(
                    Query::select()
                        .expr(Expr::val(1))
                        .from_as(follow::Entity, Alias::new("author_follow"))
                        .and_where(
                            Expr::col((Alias::new("author_follow"), follow::Column::FollowerId))
                                .eq(reader_id),
                        )
                        .and_where(
                            Expr::col((Alias::new("author_follow"), follow::Column::FollowedId))
                                .equals((author_row, user::Column::Id)),
                        )
                        .to_owned(),
                )),
        )
        .to_owned();
    Condition::all()
        .add(author.clone().not_in_subquery(muted_by(reader_id)))
        .add(author.clone().not_in_subquery(blockers))
        .add(author.not_in_subquery(blocked))
        .add(Expr::exists(readable_author))
        .add(no_newer_entry(
            reader_id,
            Expr::col((repost::Entity, repost::Column::PostId)),
            Some(Expr::col((repost::Entity, repost::Column::CreatedAt))),
        ))
}

/// `NOT EXISTS` a repost of `post` (newer than `since`, when given) by the reader or an account
/// the reader follows and does not mute: a newer entry for the same post, at which the post shows
/// instead. (The post's own conditions are the same for every entry of it, and hold already.) One
/// range of `idx_reposts_post_created`, empty for most posts; the follow and the mute of each
/// repost found are primary-key probes, correlated rather than `IN (followees)`, so that the
/// planner prices the probe as the few rows it is (a hashed list of thousands of followees per
/// probe made PostgreSQL plan the walks in parallel, at ten times the cost).
fn no_newer_entry(reader_id: i64, post: Expr, since: Option<Expr>) -> Expr {
    let newer = Alias::new("newer_entry");
    let reposter = Expr::col((newer.clone(), repost::Column::UserId));
    let follows_reposter = Query::select()
        .expr(Expr::val(1))
        .from_as(follow::Entity, Alias::new("newer_follow"))
        .and_where(
            Expr::col((Alias::new("newer_follow"), follow::Column::FollowerId)).eq(reader_id),
        )
        .and_where(
            Expr::col((Alias::new("newer_follow"), follow::Column::FollowedId))
                .equals((newer.clone(), repost::Column::UserId)),
        )
        .to_owned();
    let mutes_reposter = Query::select()
        .expr(Expr::val(1))
        .from_as(mute::Entity, Alias::new("newer_mute"))
        .and_where(Expr::col((Alias::new("newer_mute"), mute::Column::MuterId)).eq(reader_id))
        .and_where(
            Expr::col((Alias::new("newer_mute"), mute::Column::MutedId))
                .equals((newer.clone(), repost::Column::UserId)),
        )
        .to_owned();
    let mut query = Query::select();
    query
        .expr(Expr::val(1))
        .from_as(repost::Entity, newer.clone())
        .and_where(Expr::col((newer.clone(), repost::Column::PostId)).eq(post))
        .cond_where(
            Condition::any()
                .add(reposter.eq(reader_id))
                .add(Expr::exists(follows_reposter)),
        )
        .and_where(Expr::exists(mutes_reposter).not());
    if let Some(since) = since {
        query.and_where(Expr::col((newer, repost::Column::CreatedAt)).gt(since));
    }
    Expr::exists(query.to_owned()).not()
}

/// The reply rule of [`shows`] as a condition on posts: not a reply, or a reply to a post by the
/// reader or by an account the reader follows (muted or not). `parent_author_id` is on the
/// reply's own row and in `idx_posts_created_author_parent`, so the newest-first walk still reads the
/// index alone.
fn reply_rule(form: Form, reader_id: i64) -> Condition {
    let parent_author = Expr::col((post::Entity, post::Column::ParentAuthorId));
    let followed = match form {
        Form::Walk => parent_author.clone().in_subquery(followees(reader_id)),
        Form::Probe => Expr::exists(follow_probe(reader_id, parent_author.clone())),
    };
    Condition::any()
        .add(parent_author.clone().is_null())
        .add(parent_author.eq(reader_id))
        .add(followed)
}

/// `SELECT followed_id FROM follows WHERE follower_id = reader_id`.
fn followees(reader_id: i64) -> SelectStatement {
    Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(reader_id))
        .to_owned()
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
