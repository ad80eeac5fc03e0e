//! Blocks, mutes and follow requests: rows that tie one user (the owner, whose list holds them) to
//! another, each kind in a table of its own (`blocks`, `mutes`, `follow_requests`) of the same
//! shape, so one set of steps and one list serve all three.
//!
//! What a mark does lives elsewhere: blocking ends the follows and requests between the two
//! ([`mark`]), a request waits for its owner's answer ([`crate::services::follows`]), and
//! [`crate::services::relationships`] (403 `blocked`, the viewer flags) and
//! [`crate::services::timeline`] (muted authors) read the tables.

use entity::{block, follow_request, mute, notification, user};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    FromQueryResult,
};

use crate::db;
use crate::error::ApiError;
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::relationships::{self, Relation};
use crate::services::{clock, follows, likes, notifications, reposts, users};

/// Which mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// The owner blocks the other user.
    Block,
    /// The owner mutes the other user.
    Mute,
    /// The other user asks to follow the owner, a locked account.
    FollowRequest,
}

impl Mark {
    /// The name of the owner's list of this mark, which its cursors are bound to.
    pub fn list_name(self, owner: i64) -> String {
        match self {
            Mark::Block => format!("blocks:{owner}"),
            Mark::Mute => format!("mutes:{owner}"),
            Mark::FollowRequest => format!("follow_requests:{owner}"),
        }
    }

    /// 422 for marking oneself.
    fn on_self(self) -> ApiError {
        match self {
            Mark::Block => ApiError::CannotBlockSelf,
            Mark::Mute => ApiError::CannotMuteSelf,
            Mark::FollowRequest => ApiError::CannotFollowSelf,
        }
    }
}

/// The columns of a mark's table: the owner, the other user, and when the mark was made.
#[derive(Clone, Copy)]
struct Columns<C> {
    owner: C,
    other: C,
    at: C,
}

const BLOCKS: Columns<block::Column> = Columns {
    owner: block::Column::BlockerId,
    other: block::Column::BlockedId,
    at: block::Column::CreatedAt,
};

const MUTES: Columns<mute::Column> = Columns {
    owner: mute::Column::MuterId,
    other: mute::Column::MutedId,
    at: mute::Column::CreatedAt,
};

const FOLLOW_REQUESTS: Columns<follow_request::Column> = Columns {
    owner: follow_request::Column::TargetId,
    other: follow_request::Column::RequesterId,
    at: follow_request::Column::CreatedAt,
};

/// Runs `$body` with `$c` bound to the columns of `$mark`'s table.
macro_rules! with_columns {
    ($mark:expr, |$c:ident| $body:expr) => {
        match $mark {
            Mark::Block => {
                let $c = BLOCKS;
                $body
            }
            Mark::Mute => {
                let $c = MUTES;
                $body
            }
            Mark::FollowRequest => {
                let $c = FOLLOW_REQUESTS;
                $body
            }
        }
    };
}

/// Whether a new mark was made, or it was there already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkOutcome {
    Created,
    AlreadyThere,
}

/// `owner` blocks or mutes `other`. Idempotent: a repeat changes nothing. Both users' rows are
/// locked first, in id order, as every writer of a pair does, so concurrent blocks, follows and
/// unfollows of the pair queue instead of deadlocking.
///
/// A block, in the same transaction: the follows between the two end both ways (counts drop at
/// once), so do the follow requests, the likes each made of the other's posts (their counts drop
/// too) and the blocked user's notifications to the blocker, then the block is recorded. A mute
/// changes nothing else, and the muted user cannot tell. (Follow requests are made by
/// [`crate::services::follows::follow`], which knows when one is needed.)
#[tracing::instrument(name = "marks::mark", skip_all, fields(mark = ?mark, owner = owner.id, other = other.id))]
pub async fn mark(
    db: &DatabaseConnection,
    mark: Mark,
    owner: &user::Model,
    other: &user::Model,
) -> Result<(MarkOutcome, Relation), ApiError> {
    if owner.id == other.id {
        return Err(mark.on_self());
    }
    db::write(db, async |txn| {
        users::lock(txn, owner, &[other]).await?;
        if mark == Mark::Block {
            follows::delete_follow(txn, owner.id, other.id).await?;
            follows::delete_follow(txn, other.id, owner.id).await?;
            delete_mark(txn, Mark::FollowRequest, owner.id, other.id).await?;
            delete_mark(txn, Mark::FollowRequest, other.id, owner.id).await?;
            // Likes and reposts end both ways (Blocks v3), with the counts of their posts.
            likes::end_between(txn, owner.id, other.id).await?;
            reposts::end_between(txn, owner.id, other.id).await?;
            // And the blocked user's notifications to the blocker.
            notifications::forget(
                txn,
                sea_orm::Condition::all()
                    .add(notification::Column::RecipientId.eq(owner.id))
                    .add(notification::Column::AccountId.eq(other.id)),
                user::Column::Id.eq(owner.id),
            )
            .await?;
        }
        let outcome = if insert_mark(txn, mark, owner.id, other.id).await? {
            MarkOutcome::Created
        } else {
            MarkOutcome::AlreadyThere
        };
        let relation = relationships::relation(txn, owner.id, other.id).await?;
        Ok((outcome, relation))
    })
    .await
}

/// Takes `owner`'s mark off `other`. Idempotent; unblocking restores no follow.
#[tracing::instrument(name = "marks::unmark", skip_all, fields(mark = ?mark, owner = owner.id, other = other.id))]
pub async fn unmark(
    db: &DatabaseConnection,
    mark: Mark,
    owner: &user::Model,
    other: &user::Model,
) -> Result<(), ApiError> {
    if owner.id == other.id {
        return Err(mark.on_self());
    }
    db::write(db, async |txn| {
        users::lock(txn, owner, &[other]).await?;
        delete_mark(txn, mark, owner.id, other.id).await?;
        Ok(())
    })
    .await
}

/// Step: records `owner`'s mark on `other` unless it is there; `true` when it was inserted. The
/// caller holds both users' locks; the mark takes its position on `owner`'s list clock.
pub async fn insert_mark(
    txn: &DatabaseTransaction,
    mark: Mark,
    owner: i64,
    other: i64,
) -> Result<bool, ApiError> {
    with_columns!(mark, |c| {
        let exists = Query::select()
            .expr(Expr::val(1))
            .from(c.owner.entity_name())
            .and_where(Expr::col(c.owner.as_column_ref()).eq(owner))
            .and_where(Expr::col(c.other.as_column_ref()).eq(other))
            .to_owned();
        if txn.query_one(&exists).await?.is_some() {
            return Ok(false);
        }
        let at = clock::next_list_at(txn, &[owner]).await?;
        let insert = Query::insert()
            .into_table(c.owner.entity_name())
            .columns([c.owner, c.other, c.at])
            .values([owner.into(), other.into(), at.into()])
            .map_err(ApiError::internal)?
            .to_owned();
        txn.execute(&insert).await?;
        Ok(true)
    })
}

/// Step: removes `owner`'s mark on `other` if there is one; `true` when there was.
pub async fn delete_mark(
    txn: &DatabaseTransaction,
    mark: Mark,
    owner: i64,
    other: i64,
) -> Result<bool, ApiError> {
    with_columns!(mark, |c| {
        let delete = Query::delete()
            .from_table(c.owner.entity_name())
            .and_where(Expr::col(c.owner.as_column_ref()).eq(owner))
            .and_where(Expr::col(c.other.as_column_ref()).eq(other))
            .to_owned();
        Ok(txn.execute(&delete).await?.rows_affected() == 1)
    })
}

/// One entry of a blocks or mutes list: the other user and when the mark was made.
pub struct MarkEntry {
    pub user: user::Model,
    pub at: i64,
}

/// A row of a mark's list.
#[derive(FromQueryResult)]
struct MarkRow {
    user_id: i64,
    at: i64,
}

/// The query behind [`list`]: the rows of one page (`user_id`, `at`), in the order [`fetch_page`]
/// reads them.
pub fn list_query(
    backend: DbBackend,
    mark: Mark,
    owner: i64,
    page: PageRequest,
) -> SelectStatement {
    with_columns!(mark, |c| {
        let mut query = Query::select()
            .expr_as(Expr::col(c.other.as_column_ref()), Alias::new("user_id"))
            .expr_as(Expr::col(c.at.as_column_ref()), Alias::new("at"))
            .from(c.owner.entity_name())
            .and_where(Expr::col(c.owner.as_column_ref()).eq(owner))
            .to_owned();
        if let Some(keyset) = page.keyset(backend, c.at, c.other) {
            query.cond_where(keyset);
        }
        query
            .order_by(c.at, page.order())
            .order_by(c.other, page.order())
            .limit(page.fetch_limit())
            .to_owned()
    })
}

/// A page of `owner`'s marks of one kind, newest first (`idx_blocks_blocker_id_created`,
/// `idx_mutes_muter_id_created`, `idx_follow_requests_target_created`). Suspended users are left
/// out.
#[tracing::instrument(name = "marks::list", skip_all, fields(mark = ?mark, owner = owner))]
pub async fn list(
    db: &impl ConnectionTrait,
    mark: Mark,
    owner: i64,
    page: PageRequest,
) -> Result<(Vec<MarkEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let position = |row: &MarkRow| Position {
        at: row.at,
        id: row.user_id,
    };
    let (rows, neighbours) = fetch_page(page, position, async |page| {
        let query = list_query(backend, mark, owner, page);
        Ok(MarkRow::find_by_statement(backend.build(&query))
            .all(db)
            .await?)
    })
    .await?;
    let mut found = users::visible_by_ids(db, rows.iter().map(|row| row.user_id)).await?;
    let entries = rows
        .into_iter()
        .filter_map(|row| {
            found
                .remove(&row.user_id)
                .map(|user| MarkEntry { user, at: row.at })
        })
        .collect();
    Ok((entries, neighbours))
}
