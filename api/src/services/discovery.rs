//! Finding people: the followers of an account whom the caller follows ("followed by 3 people you
//! follow"), and follow suggestions (friends of friends).
//!
//! - **Known followers** are the followers of the account, newest follow first, kept when the
//!   caller follows them, read from whichever of the two sets is smaller
//!   ([`known_followers`]).
//! - **Suggestions** rank the accounts followed by the caller's followees by how many of them
//!   follow each. The followees counted are the caller's most recent ones: at most [`SAMPLE`] of
//!   them, and no more than the first whose followings add up to [`SAMPLE_FOLLOWS`] (at least
//!   one; both by default, [`Sample`]), so the cost is bounded by the follows read, however many
//!   accounts the caller follows and they follow (the ranking is that of the sample: the accounts
//!   the caller followed lately say most about what they look for now). A caller who
//!   follows nobody gets the most-followed accounts, from a list of [`POPULAR`] accounts that each
//!   process computes at most every [`POPULAR_TTL`] (reading every account's count costs a scan
//!   of `users`: too much for each new account's first request). Exclusions are applied in the
//!   query: the caller, accounts followed or asked to follow, blocked either way, muted,
//!   dismissed, suspended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use entity::{block, follow, follow_request, mute, suggestion_dismissal, user};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult,
    JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Select, SqlErr,
};

use crate::error::ApiError;
use crate::services::follows::FollowEntry;
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::users;
use crate::time::now_millis;

/// How many of the caller's most recent followees suggestions are drawn from at most, by default
/// (`Settings::suggestion_sample`).
pub const SAMPLE: u64 = 200;

/// How many follows the suggestions' sample may read, by default (`Settings::suggestion_sample`):
/// its followees are taken most recent first while the accounts they follow add up to at most
/// this many (the first is always taken).
pub const SAMPLE_FOLLOWS: i64 = 5_000;

/// Which of the caller's followees suggestions are drawn from: the `followees` most recent ones,
/// cut where their followings would add up to more than `follows` (the first always counts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub followees: u64,
    pub follows: i64,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            followees: SAMPLE,
            follows: SAMPLE_FOLLOWS,
        }
    }
}

impl Sample {
    /// The sample's followees among `recent` (`(followee, how many it follows)`, most recent
    /// first).
    pub fn cut(&self, recent: &[(i64, i64)]) -> Vec<i64> {
        let mut read = 0i64;
        recent
            .iter()
            .take(usize::try_from(self.followees).unwrap_or(usize::MAX))
            .enumerate()
            .take_while(|(i, (_, following))| {
                read = read.saturating_add(*following);
                *i == 0 || read <= self.follows
            })
            .map(|(_, (id, _))| *id)
            .collect()
    }
}

/// How many most-followed accounts the fallback suggestions are chosen among.
pub const POPULAR: u64 = 500;

/// How long a process keeps its list of most-followed accounts.
pub const POPULAR_TTL: Duration = Duration::from_secs(600);

/// The largest `limit` of `GET /suggestions`.
pub const MAX_SUGGESTIONS: u64 = 40;

/// How many of the caller's followees a suggestion names.
pub const FOLLOWED_BY_SHOWN: usize = 3;

/// The list name that known-follower cursors of `target` seen by `viewer` are bound to.
pub fn known_followers_list_name(target: i64, viewer: i64) -> String {
    format!("known_followers:{target}:{viewer}")
}

/// Up to this many followees of the viewer are listed in the known-followers query when the
/// viewer follows fewer accounts than the target has followers; past it, the target's followers
/// are walked.
pub const KNOWN_FOLLOWERS_MAX_LISTED: i64 = 10_000;

/// Whether listing the viewer's `following` followees (a primary-key probe each) costs less than
/// walking the target's `followers` newest first until `limit` of them are the viewer's, which
/// takes about `limit × followers / following` rows when the viewer's followees are spread among
/// them: listing wins when `following² < limit × followers` (and the list is at most
/// [`KNOWN_FOLLOWERS_MAX_LISTED`]). Measured on the bench dataset: reader5000 listing its
/// followees against celebrity1's 100,000 followers took 58 ms, where the walk reads some 400.
pub fn listing_is_cheaper(following: i64, followers: i64, limit: u64) -> bool {
    let limit = i128::from(Ord::max(limit, 1));
    following <= KNOWN_FOLLOWERS_MAX_LISTED
        && i128::from(following) * i128::from(following) < limit * i128::from(followers)
}

/// A page of `target`'s followers whom `viewer` follows, most recent follow of `target` first,
/// from whichever of two shapes [`listing_is_cheaper`] picks: the viewer's followees read and
/// each probed for a follow of the target (primary key), the matches sorted; or the target's
/// followers walked newest first (`idx_follows_followed_created`), each probed for a follow by
/// the viewer (primary key), until the page is full.
#[tracing::instrument(name = "discovery::known_followers", skip_all, fields(target = target.id, viewer = viewer.id))]
pub async fn known_followers(
    db: &impl ConnectionTrait,
    target: &user::Model,
    viewer: &user::Model,
    page: PageRequest,
) -> Result<(Vec<FollowEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let position = |row: &follow::Model| Position {
        at: row.created_at,
        id: row.follower_id,
    };
    let followees =
        if listing_is_cheaper(viewer.following_count, target.followers_count, page.limit) {
            let ids: Vec<i64> = follow::Entity::find()
                .select_only()
                .column(follow::Column::FollowedId)
                .filter(follow::Column::FollowerId.eq(viewer.id))
                .into_tuple()
                .all(db)
                .await?;
            Some(ids)
        } else {
            None
        };
    let (rows, next) = fetch_page(page, position, async |page| {
        Ok(
            known_followers_query(backend, target.id, viewer.id, followees.as_deref(), page)
                .all(db)
                .await?,
        )
    })
    .await?;
    let mut found = users::visible_by_ids(db, rows.iter().map(|row| row.follower_id)).await?;
    let entries = rows
        .iter()
        .filter_map(|row| {
            found.remove(&row.follower_id).map(|user| FollowEntry {
                user,
                followed_at: row.created_at,
            })
        })
        .collect();
    Ok((entries, next))
}

/// The query behind [`known_followers`]: `target`'s follows by `followees` when they are given
/// (the viewer's, read first), else by whoever `viewer` follows (a subquery probed per follower).
pub fn known_followers_query(
    backend: DbBackend,
    target: i64,
    viewer: i64,
    followees: Option<&[i64]>,
    page: PageRequest,
) -> Select<follow::Entity> {
    let mut query = follow::Entity::find().filter(follow::Column::FollowedId.eq(target));
    query = match followees {
        Some(ids) => query.filter(follow::Column::FollowerId.is_in(ids.iter().copied())),
        None => query.filter(
            follow::Column::FollowerId.in_subquery(
                Query::select()
                    .column(follow::Column::FollowedId)
                    .from(follow::Entity)
                    .and_where(follow::Column::FollowerId.eq(viewer))
                    .to_owned(),
            ),
        ),
    };
    if let Some(keyset) = page.keyset(
        backend,
        follow::Column::CreatedAt,
        follow::Column::FollowerId,
    ) {
        query = query.filter(keyset);
    }
    query
        .order_by(follow::Column::CreatedAt, page.order())
        .order_by(follow::Column::FollowerId, page.order())
        .limit(page.fetch_limit())
}

/// One suggestion: the account, how many of the caller's (sampled) followees follow it, and up to
/// [`FOLLOWED_BY_SHOWN`] of them, most recent follow first.
pub struct Suggestion {
    pub user: user::Model,
    pub followed_by_count: i64,
    pub followed_by: Vec<user::Model>,
}

#[derive(FromQueryResult)]
struct Ranked {
    id: i64,
    n: i64,
}

/// When a list of most-followed accounts was computed, and the list.
type Computed = Option<(Instant, Vec<i64>)>;

/// The most-followed accounts, as a process last computed them.
#[derive(Clone, Default)]
pub struct Popular(Arc<Mutex<Computed>>);

impl Popular {
    async fn ids(&self, db: &impl ConnectionTrait) -> Result<Vec<i64>, ApiError> {
        if let Ok(kept) = self.0.lock()
            && let Some((at, ids)) = kept.as_ref()
            && at.elapsed() < POPULAR_TTL
        {
            return Ok(ids.clone());
        }
        let ids: Vec<i64> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::SuspendedAt.is_null())
            .order_by_desc(user::Column::FollowersCount)
            .order_by_asc(user::Column::Id)
            .limit(POPULAR)
            .into_tuple()
            .all(db)
            .await?;
        if let Ok(mut kept) = self.0.lock() {
            *kept = Some((Instant::now(), ids.clone()));
        }
        Ok(ids)
    }
}

/// Up to `limit` follow suggestions for `me`, ranked as the module says.
#[tracing::instrument(name = "discovery::suggestions", skip_all, fields(user = me))]
pub async fn suggestions(
    db: &impl ConnectionTrait,
    popular: &Popular,
    sample: Sample,
    me: i64,
    limit: u64,
) -> Result<Vec<Suggestion>, ApiError> {
    let backend = db.get_database_backend();
    // The most recent followees with how many accounts each follows (their rows' count).
    let recent: Vec<(i64, i64)> = follow::Entity::find()
        .select_only()
        .column(follow::Column::FollowedId)
        .column(user::Column::FollowingCount)
        .join(JoinType::InnerJoin, follow::Relation::Followed.def())
        .filter(follow::Column::FollowerId.eq(me))
        .order_by_desc(follow::Column::CreatedAt)
        .order_by_desc(follow::Column::FollowedId)
        .limit(sample.followees)
        .into_tuple()
        .all(db)
        .await?;
    let sample = sample.cut(&recent);
    let candidate = Expr::col((Alias::new("u"), user::Column::Id));
    let mut query = Query::select();
    query
        .expr_as(candidate.clone(), Alias::new("id"))
        .from_as(user::Entity, Alias::new("u"))
        .and_where(Expr::col((Alias::new("u"), user::Column::SuspendedAt)).is_null())
        .and_where(candidate.clone().ne(me))
        .and_where(candidate.clone().not_in_subquery(followed_by(me)))
        .and_where(
            candidate.clone().not_in_subquery(
                Query::select()
                    .column(follow_request::Column::TargetId)
                    .from(follow_request::Entity)
                    .and_where(follow_request::Column::RequesterId.eq(me))
                    .to_owned(),
            ),
        )
        .and_where(
            candidate.clone().not_in_subquery(
                Query::select()
                    .column(block::Column::BlockedId)
                    .from(block::Entity)
                    .and_where(block::Column::BlockerId.eq(me))
                    .to_owned(),
            ),
        )
        .and_where(
            candidate.clone().not_in_subquery(
                Query::select()
                    .column(block::Column::BlockerId)
                    .from(block::Entity)
                    .and_where(block::Column::BlockedId.eq(me))
                    .to_owned(),
            ),
        )
        .and_where(
            candidate.clone().not_in_subquery(
                Query::select()
                    .column(mute::Column::MutedId)
                    .from(mute::Entity)
                    .and_where(mute::Column::MuterId.eq(me))
                    .to_owned(),
            ),
        )
        .and_where(
            candidate.clone().not_in_subquery(
                Query::select()
                    .column(suggestion_dismissal::Column::DismissedId)
                    .from(suggestion_dismissal::Entity)
                    .and_where(suggestion_dismissal::Column::UserId.eq(me))
                    .to_owned(),
            ),
        );
    if sample.is_empty() {
        // Nobody to learn from: the most-followed accounts.
        let ids = popular.ids(db).await?;
        query
            .expr_as(Expr::val(0i64), Alias::new("n"))
            .and_where(candidate.clone().is_in(ids))
            .order_by((Alias::new("u"), user::Column::FollowersCount), Order::Desc)
            .order_by((Alias::new("u"), user::Column::Username), Order::Asc)
            .limit(limit);
    } else {
        let count = Expr::col((Alias::new("follows"), follow::Column::FollowerId)).count();
        query
            .expr_as(count.clone(), Alias::new("n"))
            .inner_join(
                Alias::new("follows"),
                Expr::col((Alias::new("follows"), follow::Column::FollowedId))
                    .equals((Alias::new("u"), user::Column::Id)),
            )
            .and_where(
                Expr::col((Alias::new("follows"), follow::Column::FollowerId))
                    .is_in(sample.clone()),
            )
            .group_by_columns([
                (Alias::new("u"), user::Column::Id),
                (Alias::new("u"), user::Column::FollowersCount),
                (Alias::new("u"), user::Column::Username),
            ])
            .order_by_expr(count, Order::Desc)
            .order_by((Alias::new("u"), user::Column::FollowersCount), Order::Desc)
            .order_by((Alias::new("u"), user::Column::Username), Order::Asc)
            .limit(limit);
    }
    let ranked = Ranked::find_by_statement(backend.build(&query))
        .all(db)
        .await?;
    let ids: Vec<i64> = ranked.iter().map(|r| r.id).collect();
    // Who of the sample follows each, most recent follow first.
    let mut followers_of: HashMap<i64, Vec<i64>> = HashMap::new();
    if !sample.is_empty() && !ids.is_empty() {
        let pairs: Vec<(i64, i64)> = follow::Entity::find()
            .select_only()
            .columns([follow::Column::FollowedId, follow::Column::FollowerId])
            .filter(follow::Column::FollowedId.is_in(ids.clone()))
            .filter(follow::Column::FollowerId.is_in(sample.clone()))
            .order_by_desc(follow::Column::CreatedAt)
            .order_by_desc(follow::Column::FollowerId)
            .into_tuple()
            .all(db)
            .await?;
        for (followed, follower) in pairs {
            let shown = followers_of.entry(followed).or_default();
            if shown.len() < FOLLOWED_BY_SHOWN {
                shown.push(follower);
            }
        }
    }
    let found = users::visible_by_ids(
        db,
        ids.iter()
            .copied()
            .chain(followers_of.values().flatten().copied()),
    )
    .await?;
    Ok(ranked
        .into_iter()
        .filter_map(|ranked| {
            let user = found.get(&ranked.id)?.clone();
            let followed_by = followers_of
                .remove(&ranked.id)
                .unwrap_or_default()
                .iter()
                .filter_map(|id| found.get(id).cloned())
                .collect();
            Some(Suggestion {
                user,
                followed_by_count: ranked.n,
                followed_by,
            })
        })
        .collect())
}

/// `SELECT followed_id FROM follows WHERE follower_id = me`.
fn followed_by(me: i64) -> SelectStatement {
    Query::select()
        .column(follow::Column::FollowedId)
        .from(follow::Entity)
        .and_where(follow::Column::FollowerId.eq(me))
        .to_owned()
}

/// `me` asks never to be suggested `other` again. Idempotent.
#[tracing::instrument(name = "discovery::dismiss", skip_all, fields(user = me, other = other))]
pub async fn dismiss(db: &DatabaseConnection, me: i64, other: i64) -> Result<(), ApiError> {
    let inserted = suggestion_dismissal::Entity::insert(suggestion_dismissal::ActiveModel {
        user_id: sea_orm::Set(me),
        dismissed_id: sea_orm::Set(other),
        created_at: sea_orm::Set(now_millis()),
    })
    .exec(db)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(()),
        // One of the two accounts was removed meanwhile: nothing to keep.
        Err(err)
            if matches!(
                err.sql_err(),
                Some(SqlErr::ForeignKeyConstraintViolation(_))
            ) =>
        {
            Ok(())
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::listing_is_cheaper;

    /// The bench dataset's cases: reader5000 against celebrity1 walks; reader1000 and fewer list.
    #[test]
    fn listing_is_chosen_only_when_it_reads_fewer_rows_than_the_walk() {
        assert!(!listing_is_cheaper(5_000, 99_942, 20));
        assert!(listing_is_cheaper(1_000, 99_942, 20));
        assert!(listing_is_cheaper(2, 3, 20));
        assert!(!listing_is_cheaper(5, 3, 2));
        // Past the listing cap, always the walk.
        assert!(!listing_is_cheaper(10_001, i64::MAX / 100, 100));
    }
}
