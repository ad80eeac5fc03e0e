//! Notifications: written in the transaction of the follow, request or acceptance that causes
//! them, so there is never one without the other; and so are their Web Pushes' outbox rows
//! ([`push::enqueue`]).
//!
//! Read state is a mark per user (`users.notifications_read_id`: every notification with an id up
//! to it is read) and a counter (`users.unread_notifications`: how many lie above it), changed in
//! the same transactions as the notifications, under the recipient's row lock: the unread count is
//! read from the caller's row, which authentication has loaded anyway, so it costs no query at
//! all, whatever the number of notifications. Marking read counts once what lies above the new
//! mark (an index range, `idx_notifications_recipient_id`).

use std::collections::HashMap;

use entity::{block, mute, notification, post, user};
use sea_orm::sea_query::{Expr, ExprTrait, Query, QueryStatementBuilder, SelectStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::error::ApiError;
use crate::events::{self, Event};
use crate::services::keyset::{Neighbours, PageRequest, Position, fetch_page};
use crate::services::posts::{PostWithAuthor, with_authors};
use crate::services::{clock, push, users};

/// What a notification says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The account followed the recipient.
    Follow,
    /// The account asks to follow the recipient.
    FollowRequest,
    /// The account accepted the recipient's request.
    FollowAccepted,
    /// The account liked the recipient's post (the notification's post).
    Like,
    /// The account replied to the recipient's post (the notification's post is the reply).
    Reply,
    /// The account reposted the recipient's post (the notification's post).
    Repost,
}

impl Kind {
    /// Every kind, for the document's list of them (a test checks it names each).
    pub const ALL: [Kind; 6] = [
        Kind::Follow,
        Kind::FollowRequest,
        Kind::FollowAccepted,
        Kind::Like,
        Kind::Reply,
        Kind::Repost,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Follow => "follow",
            Kind::FollowRequest => "follow_request",
            Kind::FollowAccepted => "follow_accepted",
            Kind::Like => "like",
            Kind::Reply => "reply",
            Kind::Repost => "repost",
        }
    }
}

/// The list name that cursors of `recipient`'s notifications are bound to.
pub fn list_name(recipient: i64) -> String {
    format!("notifications:{recipient}")
}

/// Step: tells `recipient` that `account` did `kind` (about `post`, for likes and replies), unless
/// the recipient blocks or mutes the account. An earlier notification of the same kind from the
/// same account about the same post goes (following, unfollowing and following again leaves one,
/// the latest; so does liking, unliking and liking again). The caller holds both users' locks.
pub async fn notify(
    txn: &DatabaseTransaction,
    recipient: i64,
    account: i64,
    kind: Kind,
    post: Option<i64>,
) -> Result<(), ApiError> {
    let blocked = block::Entity::find_by_id((recipient, account))
        .one(txn)
        .await?
        .is_some();
    let muted = mute::Entity::find_by_id((recipient, account))
        .one(txn)
        .await?
        .is_some();
    if blocked || muted {
        return Ok(());
    }
    forget(
        txn,
        Condition::all()
            .add(notification::Column::RecipientId.eq(recipient))
            .add(notification::Column::AccountId.eq(account))
            .add(notification::Column::Kind.eq(kind.as_str()))
            .add(match post {
                Some(post) => notification::Column::PostId.eq(post),
                None => notification::Column::PostId.is_null(),
            }),
        user::Column::Id.eq(recipient),
    )
    .await?;
    let created_at = clock::next_list_at(txn, &[recipient]).await?;
    let inserted = notification::ActiveModel {
        recipient_id: Set(recipient),
        account_id: Set(account),
        kind: Set(kind.as_str().to_owned()),
        created_at: Set(created_at),
        post_id: Set(post),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    events::emit(txn, Event::Notified { recipient }).await?;
    // Its pushes, in the same transaction: they exist if and only if it does.
    push::enqueue(txn, recipient, kind, inserted.id).await?;
    users::add_to_count(
        txn,
        user::Column::UnreadNotifications,
        user::Column::Id.eq(recipient),
        1,
    )
    .await
}

/// Step: deletes the notifications that `which` selects, first lowering the unread counters of
/// their recipients (those `recipients` selects, whose locks the caller holds) by the unread ones
/// among them.
pub async fn forget(
    txn: &DatabaseTransaction,
    which: Condition,
    recipients: impl sea_orm::sea_query::IntoCondition,
) -> Result<(), ApiError> {
    // For each recipient: how many of the doomed notifications lie above its read mark.
    let unread_doomed = Query::select()
        .expr(Expr::col((notification::Entity, notification::Column::Id)).count())
        .from(notification::Entity)
        .cond_where(which.clone())
        .and_where(
            Expr::col((notification::Entity, notification::Column::RecipientId))
                .equals((user::Entity, user::Column::Id)),
        )
        .and_where(
            Expr::col((notification::Entity, notification::Column::Id))
                .gt(Expr::col((user::Entity, user::Column::NotificationsReadId))),
        )
        .to_owned();
    user::Entity::update_many()
        .col_expr(
            user::Column::UnreadNotifications,
            Expr::col(user::Column::UnreadNotifications).sub(Expr::SubQuery(
                None,
                Box::new(unread_doomed.into_sub_query_statement()),
            )),
        )
        .filter(recipients)
        .exec(txn)
        .await?;
    notification::Entity::delete_many()
        .filter(which)
        .exec(txn)
        .await?;
    Ok(())
}

/// `SELECT recipient_id FROM notifications WHERE account_id = account`: whom `account` notified.
pub fn recipients_of(account: i64) -> SelectStatement {
    Query::select()
        .column(notification::Column::RecipientId)
        .from(notification::Entity)
        .and_where(notification::Column::AccountId.eq(account))
        .to_owned()
}

/// A notification with the account it is about, and its post (likes and replies) while that is
/// there to show.
pub struct NotificationEntry {
    pub notification: notification::Model,
    pub account: user::Model,
    pub post: Option<PostWithAuthor>,
}

/// A page of `recipient`'s notifications, newest first (`idx_notifications_recipient_created`).
/// Notifications from suspended accounts are left out.
#[tracing::instrument(name = "notifications::list", skip_all, fields(recipient = recipient))]
pub async fn list(
    db: &impl ConnectionTrait,
    recipient: i64,
    page: PageRequest,
) -> Result<(Vec<NotificationEntry>, Neighbours), ApiError> {
    let backend = db.get_database_backend();
    let position = |n: &notification::Model| Position {
        at: n.created_at,
        id: n.id,
    };
    let (rows, neighbours) = fetch_page(page, position, async |page| {
        let mut query =
            notification::Entity::find().filter(notification::Column::RecipientId.eq(recipient));
        if let Some(keyset) = page.keyset(
            backend,
            notification::Column::CreatedAt,
            notification::Column::Id,
        ) {
            query = query.filter(keyset);
        }
        Ok(query
            .order_by(notification::Column::CreatedAt, page.order())
            .order_by(notification::Column::Id, page.order())
            .limit(page.fetch_limit())
            .all(db)
            .await?)
    })
    .await?;
    let accounts = users::visible_by_ids(db, rows.iter().map(|n| n.account_id)).await?;
    let post_ids: Vec<i64> = rows.iter().filter_map(|n| n.post_id).collect();
    let mut posts: HashMap<i64, PostWithAuthor> = if post_ids.is_empty() {
        HashMap::new()
    } else {
        let found = post::Entity::find()
            .filter(post::Column::Id.is_in(post_ids))
            .all(db)
            .await?;
        with_authors(db, found)
            .await?
            .into_iter()
            .map(|p| (p.post.id, p))
            .collect()
    };
    let entries = rows
        .into_iter()
        .filter_map(|notification| {
            let account = accounts.get(&notification.account_id)?.clone();
            let post = notification.post_id.and_then(|id| posts.remove(&id));
            Some(NotificationEntry {
                notification,
                account,
                post,
            })
        })
        .collect();
    Ok((entries, neighbours))
}

/// Step, under `me`'s row lock: marks every notification of `me` with an id up to
/// `last_read_id` read; whether the mark moved. The mark never goes back (a lower id than before
/// changes nothing), and never past `me`'s newest notification (so that notifications to come
/// are unread, whatever id a client sends). The one writer of the read mark is
/// [`crate::services::markers::set`], which counts the move in the notifications marker.
pub async fn move_read_mark(
    txn: &DatabaseTransaction,
    me: i64,
    last_read_id: i64,
) -> Result<bool, ApiError> {
    let newest: Option<i64> = notification::Entity::find()
        .select_only()
        .column(notification::Column::Id)
        .filter(notification::Column::RecipientId.eq(me))
        .order_by_desc(notification::Column::Id)
        .limit(1)
        .into_tuple()
        .one(txn)
        .await?;
    let current: Option<i64> = user::Entity::find_by_id(me)
        .select_only()
        .column(user::Column::NotificationsReadId)
        .into_tuple()
        .one(txn)
        .await?;
    let mark = Ord::min(last_read_id, newest.unwrap_or(0));
    if mark <= current.unwrap_or(0) {
        return Ok(false);
    }
    let unread = notification::Entity::find()
        .filter(notification::Column::RecipientId.eq(me))
        .filter(notification::Column::Id.gt(mark))
        .count(txn)
        .await?;
    user::Entity::update_many()
        .col_expr(user::Column::NotificationsReadId, Expr::val(mark))
        .col_expr(
            user::Column::UnreadNotifications,
            Expr::val(i64::try_from(unread).unwrap_or(i64::MAX)),
        )
        .filter(user::Column::Id.eq(me))
        .exec(txn)
        .await?;
    Ok(true)
}
