//! Precomputed timelines ("feeds"): for a reader who follows many accounts, the candidate entries
//! of the timeline, kept in `feed_entries` by a background worker, so that reading the newest
//! page walks the reader's own short list rather than every recent post of the network (whose
//! cost grows with the network: `bench/RESULTS.md`). Twitter's hybrid fan-out and Mastodon's home
//! feeds are the models; what differs is that a feed holds *candidates*, not answers: the
//! timeline's rules ([`crate::services::timeline`], the one place that decides what a timeline
//! holds) are applied when it is read, exactly as on the walk, so an unfollow, a mute, a block, a
//! lock, a suspension, an unrepost or a deletion shows on the next read with nothing rewritten.
//!
//! What a feed holds. Every entry (a post's writing, a repost) by the reader or by an account the
//! reader followed when the entry was fanned out or the follow was made, with a position above the
//! feed's **floor** and at or below the worker's **fan-out position** (`feed_fanout.at`), and
//! nothing at or below the floor. A read takes the feed's entries up to the fan-out position and
//! the entries above it from the newest-first walk (a short walk: the worker follows the posts'
//! horizon closely), so nothing committed is missed while the worker catches up; when a page
//! reaches below the floor (fewer rows than it asked for), the page is read by the walk instead.
//! Only pages toward older items (the first page, `cursor`) use the feed; `newer_than` pages walk
//! from their position, which is cheap for the short gaps that clients poll.
//!
//! How it stays whole, under the locks every writer already takes:
//! - **New entries**: the worker ([`step`]) fans out the entries between its position and the
//!   posts' horizon (final there: [`crate::services::clock`]) to the feeds of their source's
//!   followers and of the source itself, in one `INSERT ... SELECT`, then moves its position.
//!   One worker at a time in all processes: it locks the `feed_fanout` row (`SKIP LOCKED`: the
//!   others pass).
//! - **A new feed** is asked for by a read ([`Feeds::want`]; a reader above the per-author
//!   threshold without one) and built by the worker ([`build`]): the reader's and followees' newest
//!   [`FEED_LENGTH`] entries up to the fan-out position, under the reader's row lock, so a follow
//!   by the reader is wholly before the build (which reads it) or after it (and fills it in).
//! - **A follow** ([`backfill`], in the follow's transaction, under both users' locks) copies the
//!   followee's entries above the follower's floor. Every entry of the followee is written under
//!   the followee's lock, so each one either committed before (and is copied) or commits after
//!   the follow (and the worker, which fans out only committed entries, finds the follow).
//! - **Raising a floor** ([`raise_floor`]: a follow of an account with more than [`FEED_LENGTH`]
//!   entries above it) deletes the entries at or below the new floor in the same transaction, so
//!   a read that still holds the old floor finds its page cut short and reads the walk.
//!
//! - **Trimming** ([`trim`]): every [`TRIM_EVERY`] the worker looks at the next
//!   [`TRIMS_PER_LOOK`] feeds, and one that holds more than twice [`FEED_LENGTH`] entries keeps
//!   its newest [`FEED_LENGTH`]: its floor rises as above, under the reader's row lock (so no
//!   follow copies entries in below the new floor meanwhile).
//!
//! Not yet: dropping the feeds of readers who stopped reading, and keeping very large accounts
//! out of the fan-out (their entries go to every follower with a feed, in the worker).

use std::collections::HashSet;
use std::time::Duration;

use entity::{feed, feed_entry, feed_fanout, follow, post, repost, user};
use sea_orm::sea_query::{Expr, LockBehavior, LockType, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    IsolationLevel, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::{Notify, mpsc};

use crate::error::ApiError;
use crate::services::clock;
use crate::services::keyset::Position;

/// How many entries a new feed starts with (Mastodon keeps 400), and the most a follow copies
/// from one account before the floor rises.
pub const FEED_LENGTH: usize = 400;

/// The floor of a feed that holds every entry its reader ever had.
pub const WHOLE: Position = Position {
    at: i64::MIN,
    id: i64::MIN,
};

/// How often the worker looks for work when nothing wakes it.
const WORKER_EVERY: Duration = Duration::from_millis(50);

/// The most feeds one step builds.
const BUILDS_PER_STEP: u64 = 8;

/// About how many posts one step fans out (a step covers whole milliseconds of the clock).
const FANOUT_BATCH: u64 = 1_000;

/// How many accounts one read of a build asks for at once.
const SOURCES_PER_READ: usize = 100;

/// How often the worker trims feeds, and how many it looks at each time ([`trim`]).
const TRIM_EVERY: Duration = Duration::from_secs(10);
const TRIMS_PER_LOOK: u64 = 100;

/// The floor of `reader`'s built feed, as the row shows it; `None` without one.
pub fn floor_of(reader: &user::Model) -> Option<Position> {
    match (reader.feed_floor_at, reader.feed_floor_id) {
        (Some(at), Some(id)) => Some(Position { at, id }),
        _ => None,
    }
}

/// A process's handle on the feeds: where reads ask for new ones.
#[derive(Clone, Debug)]
pub struct Feeds {
    wanted: mpsc::Sender<i64>,
}

impl Feeds {
    /// Starts the worker on `db` (the primary), unless `worker` is false (tests that step it
    /// themselves: [`step`]), and returns the handle its reads use.
    pub fn start(db: DatabaseConnection, worker: bool) -> Feeds {
        let (wanted, asks) = mpsc::channel(1_024);
        let wake = std::sync::Arc::new(Notify::new());
        tokio::spawn(record_wanted(db.clone(), asks, wake.clone()));
        if worker {
            tokio::spawn(work_forever(db, wake));
        }
        Feeds { wanted }
    }

    /// Asks for a feed for `reader_id` (a read found none): recorded and built in the background;
    /// until then the reader's pages are read by the walk. Dropped when the queue is full (the
    /// next read asks again).
    pub fn want(&self, reader_id: i64) {
        let _ = self.wanted.try_send(reader_id);
    }
}

/// Writes the feeds asked for (`feeds` rows without a floor), a batch at a time, and wakes the
/// worker.
async fn record_wanted(
    db: DatabaseConnection,
    mut asks: mpsc::Receiver<i64>,
    wake: std::sync::Arc<Notify>,
) {
    let mut batch = Vec::new();
    while asks.recv_many(&mut batch, 256).await > 0 {
        let readers: HashSet<i64> = batch.drain(..).collect();
        let rows = readers.into_iter().map(|reader_id| feed::ActiveModel {
            reader_id: sea_orm::Set(reader_id),
            floor_at: sea_orm::Set(None),
            floor_id: sea_orm::Set(None),
        });
        let inserted = feed::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(feed::Column::ReaderId)
                    .do_nothing_on([feed::Column::ReaderId])
                    .to_owned(),
            )
            .exec_without_returning(&db)
            .await;
        match inserted {
            Ok(_) => wake.notify_one(),
            // A reader removed meanwhile (the foreign key), or the database away: the reads ask
            // again.
            Err(err) => tracing::warn!(error = %err, "could not record the feeds asked for"),
        }
    }
}

async fn work_forever(db: DatabaseConnection, wake: std::sync::Arc<Notify>) {
    let mut trimmed_after = 0;
    let mut next_trim = tokio::time::Instant::now() + TRIM_EVERY;
    loop {
        let mut pause = WORKER_EVERY;
        match step(&db, FEED_LENGTH).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "the feeds' worker failed a step");
                pause = Duration::from_secs(1);
            }
        }
        if tokio::time::Instant::now() >= next_trim {
            next_trim = tokio::time::Instant::now() + TRIM_EVERY;
            match trim(&db, trimmed_after, TRIMS_PER_LOOK, FEED_LENGTH).await {
                Ok(last) => trimmed_after = last.unwrap_or(0),
                Err(err) => tracing::warn!(error = %err, "the feeds' worker failed a trim"),
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Trims the built feeds of up to `count` readers after `after` (by id): one holding more than
/// `2 * keep` entries keeps its newest `keep`, and its floor rises below them. Returns the last
/// reader looked at (`None`: none was left, start again from the first).
pub async fn trim(
    db: &DatabaseConnection,
    after: i64,
    count: u64,
    keep: usize,
) -> Result<Option<i64>, ApiError> {
    let txn = begin(db).await?;
    let readers: Vec<i64> = feed::Entity::find()
        .select_only()
        .column(feed::Column::ReaderId)
        .filter(feed::Column::ReaderId.gt(after))
        .filter(feed::Column::FloorAt.is_not_null())
        .order_by_asc(feed::Column::ReaderId)
        .limit(count)
        .into_tuple()
        .all(&txn)
        .await?;
    let fanned: i64 = feed_fanout::Entity::find_by_id(1)
        .select_only()
        .column(feed_fanout::Column::At)
        .into_tuple()
        .one(&txn)
        .await?
        .unwrap_or(i64::MIN);
    for reader in &readers {
        let nth = |n: usize| {
            feed_entry::Entity::find()
                .select_only()
                .column(feed_entry::Column::At)
                .column(feed_entry::Column::PostId)
                .filter(feed_entry::Column::ReaderId.eq(*reader))
                .order_by_desc(feed_entry::Column::At)
                .order_by_desc(feed_entry::Column::PostId)
                .offset(n as u64)
                .limit(1)
                .into_tuple::<(i64, i64)>()
        };
        if nth(2 * keep).one(&txn).await?.is_none() {
            continue;
        }
        // Under the reader's lock: a follow copying entries in is wholly before or after. A
        // reader busy writing is left for the next round.
        let mut lock = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.eq(*reader));
        if txn.get_database_backend() != DbBackend::Sqlite {
            lock = lock.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        if lock.into_tuple::<i64>().one(&txn).await?.is_none() {
            continue;
        }
        // Never above the fan-out position: what the worker fans out meanwhile lies above it,
        // so nothing lands at or below the new floor.
        match nth(keep).one(&txn).await? {
            Some((at, id)) if at <= fanned => {
                raise_floor(&txn, *reader, Position { at, id }).await?;
            }
            _ => {}
        }
    }
    txn.commit().await?;
    Ok(readers.last().copied())
}

/// One step of the feeds' worker: builds the feeds asked for (a few, `length` entries each), and
/// fans out the entries between the fan-out position and the posts' horizon (a batch); true when
/// more is waiting. Nothing when another process's worker holds the fan-out row. Public so that
/// tests (and the benchmark) can bring the feeds up to date when they choose.
pub async fn step(db: &DatabaseConnection, length: usize) -> Result<bool, ApiError> {
    if !work_waiting(db).await? {
        return Ok(false);
    }
    let txn = begin(db).await?;
    let Some(fanned) = lock_fanout(&txn).await? else {
        txn.rollback().await?;
        return Ok(false);
    };
    // Fans out first, so that the feeds built below start where the worker stands now.
    let mut fanned = fanned;
    let mut more = false;
    let horizon = clock::read_posts_horizon(&txn).await?;
    if horizon > fanned {
        let any_feed = feed::Entity::find()
            .select_only()
            .column(feed::Column::ReaderId)
            .filter(feed::Column::FloorAt.is_not_null())
            .limit(1)
            .into_tuple::<i64>()
            .one(&txn)
            .await?
            .is_some();
        let target = if any_feed {
            let target = batch_end(&txn, fanned, horizon).await?;
            fan_out(&txn, fanned, target).await?;
            target
        } else {
            horizon
        };
        feed_fanout::Entity::update_many()
            .col_expr(feed_fanout::Column::At, Expr::val(target))
            .filter(feed_fanout::Column::Id.eq(1))
            .exec(&txn)
            .await?;
        more = target < horizon;
        fanned = target;
    }
    let pending: Vec<i64> = feed::Entity::find()
        .select_only()
        .column(feed::Column::ReaderId)
        .filter(feed::Column::FloorAt.is_null())
        .order_by_asc(feed::Column::ReaderId)
        .limit(BUILDS_PER_STEP)
        .into_tuple()
        .all(&txn)
        .await?;
    for reader in &pending {
        build(&txn, *reader, fanned, length).await?;
    }
    more |= pending.len() as u64 == BUILDS_PER_STEP;
    txn.commit().await?;
    Ok(more)
}

/// Whether a feed waits to be built or the posts' horizon is past the fan-out position: one read,
/// outside any transaction, so that an idle worker costs one statement a look.
async fn work_waiting(db: &DatabaseConnection) -> Result<bool, ApiError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT (SELECT at FROM feed_fanout WHERE id = 1), \
             (SELECT MIN(at) FROM post_clocks), \
             (SELECT COUNT(*) FROM (SELECT 1 AS one FROM feeds WHERE floor_at IS NULL LIMIT 1) AS pending)",
        ))
        .await?;
    let Some(row) = row else { return Ok(false) };
    let fanned: Option<i64> = row.try_get_by_index(0)?;
    let horizon: Option<i64> = row.try_get_by_index(1)?;
    let pending: i64 = row.try_get_by_index(2)?;
    Ok(pending > 0 || horizon.unwrap_or(i64::MIN) > fanned.unwrap_or(i64::MIN))
}

/// The worker's transaction. On MySQL/MariaDB at `READ COMMITTED`, as PostgreSQL's default is:
/// each statement sees what committed before it (a follow that committed while the step waited
/// for a reader's lock), not a snapshot from the step's first read.
async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, ApiError> {
    Ok(match db.get_database_backend() {
        DbBackend::MySql => {
            db.begin_with_config(Some(IsolationLevel::ReadCommitted), None)
                .await?
        }
        _ => crate::db::begin_write(db).await?,
    })
}

/// Locks the fan-out row and returns its position; `None` when another worker holds it.
/// (SQLite has no row locks and runs one write transaction at a time: the clause is left out.)
async fn lock_fanout(txn: &DatabaseTransaction) -> Result<Option<i64>, ApiError> {
    let mut query = feed_fanout::Entity::find_by_id(1)
        .select_only()
        .column(feed_fanout::Column::At);
    if txn.get_database_backend() != DbBackend::Sqlite {
        query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    Ok(query.into_tuple().one(txn).await?)
}

/// The end of the next batch to fan out after `fanned`, at most `horizon`: about
/// [`FANOUT_BATCH`] posts, in whole milliseconds of the clock.
async fn batch_end(txn: &DatabaseTransaction, fanned: i64, horizon: i64) -> Result<i64, ApiError> {
    let beyond: Option<i64> = post::Entity::find()
        .select_only()
        .column(post::Column::CreatedAt)
        .filter(post::Column::CreatedAt.gt(fanned))
        .filter(post::Column::CreatedAt.lte(horizon))
        .order_by_asc(post::Column::CreatedAt)
        .offset(FANOUT_BATCH)
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    Ok(match beyond {
        Some(at) if at - 1 > fanned => at - 1,
        Some(at) => at,
        None => horizon,
    })
}

/// Writes the entries in `(from, to]` into the built feeds of their sources' followers and of
/// their sources: one statement.
async fn fan_out(txn: &DatabaseTransaction, from: i64, to: i64) -> Result<(), ApiError> {
    let backend = txn.get_database_backend();
    let member = |source: &str, table: &str, at: &str, post: &str, kind: &str, followers: bool| {
        let (join, reader) = if followers {
            (
                format!(
                    "JOIN follows f ON f.followed_id = e.{source} \
                     JOIN feeds d ON d.reader_id = f.follower_id"
                ),
                "f.follower_id",
            )
        } else {
            (
                format!("JOIN feeds d ON d.reader_id = e.{source}"),
                "d.reader_id",
            )
        };
        format!(
            "SELECT {reader} AS reader_id, e.{at} AS at, e.{post} AS post_id, \
             e.{source} AS source_id, {kind} AS is_repost \
             FROM {table} e {join} \
             WHERE e.{at} > ? AND e.{at} <= ? AND d.floor_at IS NOT NULL"
        )
    };
    let members = [
        member("author_id", "posts", "created_at", "id", "FALSE", true),
        member("author_id", "posts", "created_at", "id", "FALSE", false),
        member("user_id", "reposts", "created_at", "post_id", "TRUE", true),
        member("user_id", "reposts", "created_at", "post_id", "TRUE", false),
    ];
    let select = format!(
        "SELECT reader_id, at, post_id, source_id, is_repost FROM ({}) AS fanned WHERE 1 = 1",
        members.join(" UNION ALL ")
    );
    let sql = match backend {
        DbBackend::MySql => format!(
            "INSERT IGNORE INTO feed_entries (reader_id, at, post_id, source_id, is_repost) {select}"
        ),
        _ => format!(
            "INSERT INTO feed_entries (reader_id, at, post_id, source_id, is_repost) {select} \
             ON CONFLICT DO NOTHING"
        ),
    };
    let values: Vec<sea_orm::Value> = (0..members.len())
        .flat_map(|_| [from.into(), to.into()])
        .collect();
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        numbered(backend, &sql),
        values,
    ))
    .await?;
    Ok(())
}

/// `sql` with PostgreSQL's numbered placeholders in place of `?` (the statements here hold no
/// other question mark).
fn numbered(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// A candidate entry of a feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    at: i64,
    post_id: i64,
    source_id: i64,
    is_repost: bool,
}

impl Candidate {
    fn position(&self) -> Position {
        Position {
            at: self.at,
            id: self.post_id,
        }
    }
}

/// Builds the feed of `reader` (asked for, not built): under the reader's row lock, the newest
/// `length` entries of the reader and its followees at or below `fanned` (what the worker fans
/// out later lies above it), and the floor below them.
async fn build(
    txn: &DatabaseTransaction,
    reader: i64,
    fanned: i64,
    length: usize,
) -> Result<(), ApiError> {
    if crate::db::lock_users(txn, user::Column::Id.eq(reader))
        .await?
        .is_empty()
    {
        // Gone meanwhile: its feed row went with it.
        return Ok(());
    }
    let mut sources: Vec<i64> = follow::Entity::find()
        .select_only()
        .column(follow::Column::FollowedId)
        .filter(follow::Column::FollowerId.eq(reader))
        .into_tuple()
        .all(txn)
        .await?;
    sources.push(reader);
    let mut newest: Vec<Candidate> = Vec::new();
    for chunk in sources.chunks(SOURCES_PER_READ) {
        // Once `length` + 1 are in hand, only entries at least as new as the last of them can
        // still count.
        let since = newest.get(length).map(|c| c.at);
        newest.extend(newest_by(txn, chunk, since, Some(fanned), length + 1).await?);
        newest.sort_unstable_by(|a, b| b.cmp(a));
        newest.truncate(length + 1);
    }
    let floor = match newest.get(length) {
        Some(beyond) => beyond.position(),
        None => WHOLE,
    };
    newest.retain(|c| c.position() > floor);
    insert(txn, reader, &newest).await?;
    set_floor(txn, reader, floor).await
}

/// The newest `limit` writings and `limit` reposts by any of `sources`, at or after `since` and
/// at or below `until` when given.
async fn newest_by(
    txn: &DatabaseTransaction,
    sources: &[i64],
    since: Option<i64>,
    until: Option<i64>,
    limit: usize,
) -> Result<Vec<Candidate>, ApiError> {
    let limit = limit as u64;
    let mut writings = post::Entity::find()
        .select_only()
        .column(post::Column::CreatedAt)
        .column(post::Column::Id)
        .column(post::Column::AuthorId)
        .filter(post::Column::AuthorId.is_in(sources.iter().copied()));
    let mut reposts = repost::Entity::find()
        .select_only()
        .column(repost::Column::CreatedAt)
        .column(repost::Column::PostId)
        .column(repost::Column::UserId)
        .filter(repost::Column::UserId.is_in(sources.iter().copied()));
    if let Some(since) = since {
        writings = writings.filter(post::Column::CreatedAt.gte(since));
        reposts = reposts.filter(repost::Column::CreatedAt.gte(since));
    }
    if let Some(until) = until {
        writings = writings.filter(post::Column::CreatedAt.lte(until));
        reposts = reposts.filter(repost::Column::CreatedAt.lte(until));
    }
    let writings: Vec<(i64, i64, i64)> = writings
        .order_by_desc(post::Column::CreatedAt)
        .order_by_desc(post::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(txn)
        .await?;
    let reposts: Vec<(i64, i64, i64)> = reposts
        .order_by_desc(repost::Column::CreatedAt)
        .order_by_desc(repost::Column::PostId)
        .limit(limit)
        .into_tuple()
        .all(txn)
        .await?;
    let kind = |is_repost| {
        move |(at, post_id, source_id)| Candidate {
            at,
            post_id,
            source_id,
            is_repost,
        }
    };
    Ok(writings
        .into_iter()
        .map(kind(false))
        .chain(reposts.into_iter().map(kind(true)))
        .collect())
}

/// Step of a new follow `reader` -> `source`: copies `source`'s entries above the floor of
/// `reader`'s feed into it, when `reader` has a built feed (an unbuilt one reads the follow when
/// it is built). At most [`FEED_LENGTH`]: past that the floor rises. The caller holds both users'
/// locks.
pub async fn backfill(txn: &DatabaseTransaction, reader: i64, source: i64) -> Result<(), ApiError> {
    backfill_at_most(txn, reader, source, FEED_LENGTH).await
}

/// [`backfill`], copying at most `most` entries before the floor rises (tests reach the rise
/// with a few).
pub async fn backfill_at_most(
    txn: &DatabaseTransaction,
    reader: i64,
    source: i64,
    most: usize,
) -> Result<(), ApiError> {
    let Some(found) = feed::Entity::find_by_id(reader).one(txn).await? else {
        return Ok(());
    };
    let (Some(at), Some(id)) = (found.floor_at, found.floor_id) else {
        return Ok(());
    };
    let floor = Position { at, id };
    let since = (floor != WHOLE).then_some(floor.at);
    let mut newest = newest_by(txn, &[source], since, None, most + 1).await?;
    newest.sort_unstable_by(|a, b| b.cmp(a));
    newest.retain(|c| c.position() > floor);
    if let Some(beyond) = newest.get(most).copied() {
        raise_floor(txn, reader, beyond.position()).await?;
        newest.retain(|c| c.position() > beyond.position());
    }
    insert(txn, reader, &newest).await
}

/// Raises the floor of `reader`'s feed to `floor`, and deletes its entries at or below it (so
/// that a read holding the old floor finds its page cut short, and reads the walk).
async fn raise_floor(
    txn: &DatabaseTransaction,
    reader: i64,
    floor: Position,
) -> Result<(), ApiError> {
    let backend = txn.get_database_backend();
    feed_entry::Entity::delete_many()
        .filter(feed_entry::Column::ReaderId.eq(reader))
        .filter(crate::services::keyset::older_than(
            backend,
            feed_entry::Column::At,
            feed_entry::Column::PostId,
            Position {
                at: floor.at,
                id: floor.id.saturating_add(1),
            },
        ))
        .exec(txn)
        .await?;
    set_floor(txn, reader, floor).await
}

/// Sets the floor of `reader`'s feed, in `feeds` and on the reader's row.
async fn set_floor(
    txn: &DatabaseTransaction,
    reader: i64,
    floor: Position,
) -> Result<(), ApiError> {
    feed::Entity::update_many()
        .col_expr(feed::Column::FloorAt, Expr::val(floor.at))
        .col_expr(feed::Column::FloorId, Expr::val(floor.id))
        .filter(feed::Column::ReaderId.eq(reader))
        .exec(txn)
        .await?;
    user::Entity::update_many()
        .col_expr(user::Column::FeedFloorAt, Expr::val(floor.at))
        .col_expr(user::Column::FeedFloorId, Expr::val(floor.id))
        .filter(user::Column::Id.eq(reader))
        .exec(txn)
        .await?;
    Ok(())
}

/// Writes `entries` into `reader`'s feed (those there already stay as they are).
async fn insert(
    txn: &DatabaseTransaction,
    reader: i64,
    entries: &[Candidate],
) -> Result<(), ApiError> {
    // A few hundred rows a statement: well within every backend's limit on bound values.
    for chunk in entries.chunks(200) {
        let rows = chunk.iter().map(|c| feed_entry::ActiveModel {
            reader_id: sea_orm::Set(reader),
            at: sea_orm::Set(c.at),
            post_id: sea_orm::Set(c.post_id),
            source_id: sea_orm::Set(c.source_id),
            is_repost: sea_orm::Set(c.is_repost),
        });
        feed_entry::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    feed_entry::Column::ReaderId,
                    feed_entry::Column::At,
                    feed_entry::Column::PostId,
                    feed_entry::Column::SourceId,
                ])
                .do_nothing_on([feed_entry::Column::ReaderId])
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// The fan-out position and the posts' horizon, as they are now, in one statement: a feed's page
/// reads the feed up to the first and the walk from there up to the second
/// ([`crate::services::timeline::feed_query`]). Both only grow, so values read before the page
/// are safe to show up to.
pub async fn positions(db: &impl ConnectionTrait) -> Result<(i64, i64), ApiError> {
    let backend = db.get_database_backend();
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT (SELECT at FROM feed_fanout WHERE id = 1), (SELECT MIN(at) FROM post_clocks)",
        ))
        .await?;
    let (fanned, horizon) = match row {
        Some(row) => (
            row.try_get_by_index::<Option<i64>>(0)?,
            row.try_get_by_index::<Option<i64>>(1)?,
        ),
        None => (None, None),
    };
    let fanned = fanned.unwrap_or(i64::MIN);
    Ok((fanned, horizon.unwrap_or(i64::MIN).max(fanned)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(
            numbered(DbBackend::Postgres, "a > ? AND b <= ?"),
            "a > $1 AND b <= $2"
        );
        assert_eq!(numbered(DbBackend::MySql, "a > ?"), "a > ?");
        assert_eq!(numbered(DbBackend::Sqlite, "a > ?"), "a > ?");
    }

    #[test]
    fn candidates_order_newest_first_by_position() {
        let older = Candidate {
            at: 5,
            post_id: 9,
            source_id: 1,
            is_repost: false,
        };
        let newer = Candidate {
            at: 6,
            post_id: 1,
            source_id: 1,
            is_repost: true,
        };
        let mut all = vec![older, newer];
        all.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(all, vec![newer, older]);
        assert!(newer.position() > older.position());
    }
}
