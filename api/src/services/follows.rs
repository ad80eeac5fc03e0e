//! The follow graph: follow, unfollow, and the followers and following lists.

use entity::{follow, follow_request, mute, notification, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
};

use crate::db;
use crate::error::ApiError;
use crate::services::clock;
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::marks::{self, Mark};
use crate::services::notifications::{self, Kind};
use crate::services::relationships::{self, Relation};
use crate::services::users;

/// What `POST /users/{username}/follow` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FollowOutcome {
    /// The follow began.
    Created,
    /// The follow was there already.
    AlreadyFollowing,
    /// The followed account is locked: a request waits for its answer (new or already there).
    Requested,
}

/// `follower` follows `followed`, or asks to when `followed` is locked. Idempotent: a repeat keeps
/// the original `followed_at` (or request time).
///
/// Concurrent identical requests queue on the two users' row locks, so exactly one inserts; the
/// counts change only when a row was really inserted, in the same transaction. Whether the
/// account is locked is read under its lock, so an unlock (which takes it too) is either wholly
/// before or wholly after.
#[tracing::instrument(name = "follows::follow", skip_all, fields(follower = follower.id, followed = followed.id))]
pub async fn follow(
    db: &DatabaseConnection,
    follower: &user::Model,
    followed: &user::Model,
) -> Result<(FollowOutcome, Relation), ApiError> {
    if follower.id == followed.id {
        return Err(ApiError::CannotFollowSelf);
    }
    db::write(db, async |txn| follow_in(txn, follower, followed).await).await
}

/// Step: [`follow`] in the caller's transaction, which may hold other follows of `follower` (a
/// list import, [`crate::services::follow_lists`]). Refusals (`cannot_follow_self`, `blocked`,
/// `user_not_found`) come before anything of the graph is written and fail no statement, so the
/// transaction can go on after one.
pub async fn follow_in(
    txn: &DatabaseTransaction,
    follower: &user::Model,
    followed: &user::Model,
) -> Result<(FollowOutcome, Relation), ApiError> {
    if follower.id == followed.id {
        return Err(ApiError::CannotFollowSelf);
    }
    users::lock(txn, follower, &[followed]).await?;
    // Under both locks, so a block of the pair cannot slip in between.
    let before = relationships::relation(txn, follower.id, followed.id).await?;
    before.ensure_unblocked(followed)?;
    let outcome = if before.following_since.is_some() {
        FollowOutcome::AlreadyFollowing
    } else if users::is_locked(txn, followed.id).await? {
        if marks::insert_mark(txn, Mark::FollowRequest, followed.id, follower.id).await? {
            notifications::notify(txn, followed.id, follower.id, Kind::FollowRequest, None).await?;
        }
        FollowOutcome::Requested
    } else {
        insert_follow(txn, follower.id, followed.id).await?;
        notifications::notify(txn, followed.id, follower.id, Kind::Follow, None).await?;
        FollowOutcome::Created
    };
    let relation = relationships::relation(txn, follower.id, followed.id).await?;
    Ok((outcome, relation))
}

/// `follower` stops following `followed`, or withdraws its request. Idempotent: nothing to remove
/// is not an error.
#[tracing::instrument(name = "follows::unfollow", skip_all, fields(follower = follower.id, followed = followed.id))]
pub async fn unfollow(
    db: &DatabaseConnection,
    follower: &user::Model,
    followed: &user::Model,
) -> Result<(), ApiError> {
    if follower.id == followed.id {
        return Err(ApiError::CannotFollowSelf);
    }
    db::write(db, async |txn| {
        users::lock(txn, follower, &[followed]).await?;
        delete_follow(txn, follower.id, followed.id).await?;
        marks::delete_mark(txn, Mark::FollowRequest, followed.id, follower.id).await?;
        Ok(())
    })
    .await
}

/// `owner` accepts `requester`'s request: the follow begins now (its position and
/// `followed_by_at` are the acceptance's), and the counts change now. 404
/// `follow_request_not_found` when there is no such request.
#[tracing::instrument(name = "follows::accept_request", skip_all, fields(owner = owner.id, requester = requester.id))]
pub async fn accept_request(
    db: &DatabaseConnection,
    owner: &user::Model,
    requester: &user::Model,
) -> Result<Relation, ApiError> {
    db::write(db, async |txn| {
        users::lock(txn, owner, &[requester]).await?;
        if !marks::delete_mark(txn, Mark::FollowRequest, owner.id, requester.id).await? {
            return Err(ApiError::FollowRequestNotFound(requester.username.clone()));
        }
        insert_follow(txn, requester.id, owner.id).await?;
        notifications::notify(txn, requester.id, owner.id, Kind::FollowAccepted, None).await?;
        relationships::relation(txn, owner.id, requester.id).await
    })
    .await
}

/// `owner` rejects `requester`'s request: it is gone. 404 `follow_request_not_found` when there is
/// no such request.
#[tracing::instrument(name = "follows::reject_request", skip_all, fields(owner = owner.id, requester = requester.id))]
pub async fn reject_request(
    db: &DatabaseConnection,
    owner: &user::Model,
    requester: &user::Model,
) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        users::lock(txn, owner, &[requester]).await?;
        if !marks::delete_mark(txn, Mark::FollowRequest, owner.id, requester.id).await? {
            return Err(ApiError::FollowRequestNotFound(requester.username.clone()));
        }
        Ok(())
    })
    .await
}

/// Step: accepts every pending request to follow `owner`, however many, in set-based statements
/// whose number does not grow with the requests: the owner and every requester are locked (in id
/// order, one statement), the follows are inserted from the requests (one `INSERT ... SELECT`,
/// all at one position on the owner's and the requesters' list clocks, told apart by the
/// requester's id), each requester's `following_count` and the owner's `followers_count` move
/// (two `UPDATE`s), and the requests are deleted. Returns how many were accepted.
pub async fn accept_all_requests(txn: &DatabaseTransaction, owner: i64) -> Result<u64, ApiError> {
    use sea_orm::sea_query::{Expr, ExprTrait, Query};
    let requesters = || {
        Query::select()
            .column(follow_request::Column::RequesterId)
            .from(follow_request::Entity)
            .and_where(follow_request::Column::TargetId.eq(owner))
            .to_owned()
    };
    let everyone = sea_orm::Condition::any()
        .add(user::Column::Id.eq(owner))
        .add(user::Column::Id.in_subquery(requesters()));
    let locked = db::lock_users(txn, everyone.clone()).await?;
    let pending = locked.len().saturating_sub(1) as u64;
    if pending == 0 {
        return Ok(0);
    }
    let at = clock::next_list_at_where(txn, everyone).await?;
    let insert = Query::insert()
        .into_table(follow::Entity)
        .columns([
            follow::Column::FollowerId,
            follow::Column::FollowedId,
            follow::Column::CreatedAt,
        ])
        .select_from(
            Query::select()
                .column(follow_request::Column::RequesterId)
                .column(follow_request::Column::TargetId)
                .expr(Expr::val(at))
                .from(follow_request::Entity)
                .and_where(follow_request::Column::TargetId.eq(owner))
                .to_owned(),
        )
        .map_err(ApiError::internal)?
        .to_owned();
    let inserted = txn.execute(&insert).await?.rows_affected();
    // Each requester is told, as one acceptance would tell it: an earlier `follow_accepted` from
    // the owner goes, and a requester who mutes the owner is not told.
    notifications::forget(
        txn,
        sea_orm::Condition::all()
            .add(notification::Column::AccountId.eq(owner))
            .add(notification::Column::Kind.eq(Kind::FollowAccepted.as_str()))
            .add(notification::Column::RecipientId.in_subquery(requesters())),
        user::Column::Id.in_subquery(requesters()),
    )
    .await?;
    let told =
        || {
            Query::select()
                .column((follow_request::Entity, follow_request::Column::RequesterId))
                .from(follow_request::Entity)
                .and_where(follow_request::Column::TargetId.eq(owner))
                .and_where(
                    Expr::exists(
                        Query::select()
                            .expr(Expr::val(1))
                            .from(mute::Entity)
                            .and_where(Expr::col((mute::Entity, mute::Column::MuterId)).equals((
                                follow_request::Entity,
                                follow_request::Column::RequesterId,
                            )))
                            .and_where(mute::Column::MutedId.eq(owner))
                            .to_owned(),
                    )
                    .not(),
                )
                .to_owned()
        };
    let notify = Query::insert()
        .into_table(notification::Entity)
        .columns([
            notification::Column::RecipientId,
            notification::Column::AccountId,
            notification::Column::Kind,
            notification::Column::CreatedAt,
        ])
        .select_from(
            told()
                .expr(Expr::val(owner))
                .expr(Expr::val(Kind::FollowAccepted.as_str()))
                .expr(Expr::val(at))
                .to_owned(),
        )
        .map_err(ApiError::internal)?
        .to_owned();
    txn.execute(&notify).await?;
    users::add_to_count(
        txn,
        user::Column::UnreadNotifications,
        user::Column::Id.in_subquery(told()),
        1,
    )
    .await?;
    users::add_to_count(
        txn,
        user::Column::FollowingCount,
        user::Column::Id.in_subquery(requesters()),
        1,
    )
    .await?;
    users::add_to_count(
        txn,
        user::Column::FollowersCount,
        user::Column::Id.eq(owner),
        inserted as i64,
    )
    .await?;
    follow_request::Entity::delete_many()
        .filter(follow_request::Column::TargetId.eq(owner))
        .exec(txn)
        .await?;
    Ok(inserted)
}

/// `owner` removes `follower` from their followers (ends `follower`'s follow of `owner`).
/// Idempotent: nothing to remove is not an error.
#[tracing::instrument(name = "follows::remove_follower", skip_all, fields(owner = owner.id, follower = follower.id))]
pub async fn remove_follower(
    db: &DatabaseConnection,
    owner: &user::Model,
    follower: &user::Model,
) -> Result<(), ApiError> {
    if owner.id == follower.id {
        return Err(ApiError::CannotFollowSelf);
    }
    db::write(db, async |txn| {
        users::lock(txn, owner, &[follower]).await?;
        delete_follow(txn, follower.id, owner.id).await?;
        Ok(())
    })
    .await
}

/// Step: inserts the follow `follower` -> `followed` unless it exists, and counts it; `true` when
/// it was inserted. The caller holds both users' locks ([`users::lock`]).
pub async fn insert_follow(
    txn: &DatabaseTransaction,
    follower: i64,
    followed: i64,
) -> Result<bool, ApiError> {
    // A plain read is enough: every writer of this pair holds both users' row locks now. (A locking
    // read of a missing row would take a gap lock on MySQL, and two such gap locks deadlock when
    // both transactions then insert into the gap.)
    let existing = follow::Entity::find_by_id((follower, followed))
        .one(txn)
        .await?;
    if existing.is_some() {
        return Ok(false);
    }
    let created_at = clock::next_list_at(txn, &[follower, followed]).await?;
    follow::ActiveModel {
        follower_id: Set(follower),
        followed_id: Set(followed),
        created_at: Set(created_at),
    }
    .insert(txn)
    .await?;
    adjust_counts(txn, follower, followed, 1).await?;
    // The follow shows on the follower's next timeline read, a precomputed one too.
    crate::services::feeds::backfill(txn, follower, followed).await?;
    Ok(true)
}

/// Step: deletes the follow `follower` -> `followed` if it exists, and uncounts it; `true` when
/// there was one. The caller holds both users' locks ([`users::lock`]).
pub async fn delete_follow(
    txn: &DatabaseTransaction,
    follower: i64,
    followed: i64,
) -> Result<bool, ApiError> {
    let removed = follow::Entity::delete_by_id((follower, followed))
        .exec(txn)
        .await?
        .rows_affected;
    if removed == 1 {
        adjust_counts(txn, follower, followed, -1).await?;
    }
    Ok(removed == 1)
}

/// Step: moves `follower`'s `following_count` and `followed`'s `followers_count` by `delta`.
async fn adjust_counts(
    txn: &DatabaseTransaction,
    follower: i64,
    followed: i64,
    delta: i64,
) -> Result<(), ApiError> {
    users::add_to_count(
        txn,
        user::Column::FollowingCount,
        user::Column::Id.eq(follower),
        delta,
    )
    .await?;
    users::add_to_count(
        txn,
        user::Column::FollowersCount,
        user::Column::Id.eq(followed),
        delta,
    )
    .await
}

/// One entry of a followers or following list: the other user and when the follow began.
pub struct FollowEntry {
    pub user: user::Model,
    pub followed_at: i64,
}

/// Which side of the follows of a user a list shows.
#[derive(Clone, Copy, Debug)]
pub enum Direction {
    /// Who follows the user.
    Followers,
    /// Whom the user follows.
    Following,
}

impl Direction {
    /// The name of the list of `user_id` in this direction, which its cursors are bound to.
    pub fn list_name(self, user_id: i64) -> String {
        match self {
            Direction::Followers => format!("followers:{user_id}"),
            Direction::Following => format!("following:{user_id}"),
        }
    }
}

/// A page of the followers (or followees) of `user_id`, most recent follow first, ties broken by
/// the other user's id; and the position to continue from when there is a next page.
///
/// Served by `idx_follows_followed_created` (or `idx_follows_follower_created`): equality on the
/// user, then a range on `created_at` read backwards, so page 500 costs what page 1 does.
#[tracing::instrument(name = "follows::list", skip_all, fields(user = user_id, direction = ?direction))]
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: i64,
    direction: Direction,
    page: PageRequest,
) -> Result<(Vec<FollowEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let other_id = |row: &follow::Model| match direction {
        Direction::Followers => row.follower_id,
        Direction::Following => row.followed_id,
    };
    let position = |row: &follow::Model| Position {
        at: row.created_at,
        id: other_id(row),
    };
    let (rows, next) = fetch_page(page, position, async |page| {
        Ok(list_query(backend, user_id, direction, page)
            .all(db)
            .await?)
    })
    .await?;

    let mut users = users::any_by_ids(db, rows.iter().map(other_id)).await?;
    let entries = rows
        .iter()
        .filter_map(|row| {
            users.remove(&other_id(row)).map(|user| FollowEntry {
                user,
                followed_at: row.created_at,
            })
        })
        .collect();
    Ok((entries, next))
}

/// The query behind [`list`]: the rows of one page, in the order [`fetch_page`] reads them.
pub fn list_query(
    backend: DbBackend,
    user_id: i64,
    direction: Direction,
    page: PageRequest,
) -> Select<follow::Entity> {
    let (this_side, other_side) = match direction {
        Direction::Followers => (follow::Column::FollowedId, follow::Column::FollowerId),
        Direction::Following => (follow::Column::FollowerId, follow::Column::FollowedId),
    };
    let mut query = follow::Entity::find().filter(this_side.eq(user_id));
    if let Some(keyset) = page.keyset(backend, follow::Column::CreatedAt, other_side) {
        query = query.filter(keyset);
    }
    query
        .order_by(follow::Column::CreatedAt, page.order())
        .order_by(other_side, page.order())
        .limit(page.fetch_limit())
}
