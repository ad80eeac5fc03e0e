//! Web Push subscriptions, one per session, and the pushes a notification owes them.
//!
//! [`enqueue`] runs in the transaction that makes a notification ([`super::notifications::notify`]):
//! one indexed query (`idx_push_subscriptions_user`) finds the recipient's subscriptions whose
//! alerts select the notification's type, and each gets an outbox row of kind [`PUSH`] naming
//! the subscription and the notification. So a notification that commits has its pushes, and one
//! rolled back has none. The worker ([`crate::outbox_worker`]) reads both back when it sends
//! ([`message`]): what the push says is what is there then, and a subscription or notification
//! gone in between is simply not pushed.

use entity::{notification, post, push_subscription, session, user};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Set, SqlErr,
};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::error::ApiError;
use crate::services::notifications::Kind;
use crate::services::outbox;
use crate::time::now_millis;

/// The outbox kind of a push ([`PushJob`]).
pub const PUSH: &str = "push";

/// Which notification types a subscription wants pushed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alerts {
    pub follow: bool,
    pub follow_request: bool,
    pub follow_accepted: bool,
    pub like: bool,
    pub repost: bool,
    pub reply: bool,
}

impl Default for Alerts {
    /// Every type, as a subscription that names none gets.
    fn default() -> Self {
        Alerts {
            follow: true,
            follow_request: true,
            follow_accepted: true,
            like: true,
            repost: true,
            reply: true,
        }
    }
}

impl Alerts {
    /// The alerts of a stored subscription.
    pub fn of(row: &push_subscription::Model) -> Self {
        Alerts {
            follow: row.alert_follow,
            follow_request: row.alert_follow_request,
            follow_accepted: row.alert_follow_accepted,
            like: row.alert_like,
            repost: row.alert_repost,
            reply: row.alert_reply,
        }
    }
}

/// The column that says whether a subscription wants notifications of `kind`.
fn alert_column(kind: Kind) -> push_subscription::Column {
    match kind {
        Kind::Follow => push_subscription::Column::AlertFollow,
        Kind::FollowRequest => push_subscription::Column::AlertFollowRequest,
        Kind::FollowAccepted => push_subscription::Column::AlertFollowAccepted,
        Kind::Like => push_subscription::Column::AlertLike,
        Kind::Repost => push_subscription::Column::AlertRepost,
        Kind::Reply => push_subscription::Column::AlertReply,
    }
}

/// A subscription as a client sends it, its fields checked ([`crate::push`]).
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    pub alerts: Alerts,
}

/// Makes `session`'s subscription (of `user_id`), replacing the one it had. A replaced
/// subscription keeps its row (and id), so the pushes already due to the session, queued or
/// waiting for a retry, go to the new endpoint rather than being lost: browsers send the same
/// subscription again on every page load.
#[tracing::instrument(name = "push::subscribe", skip_all, fields(user = user_id))]
pub async fn subscribe(
    db: &DatabaseConnection,
    user_id: i64,
    session: &str,
    new: NewSubscription,
) -> Result<push_subscription::Model, ApiError> {
    db::write(db, async |txn| {
        if let Some(old) = push_subscription::Entity::find()
            .filter(push_subscription::Column::SessionId.eq(session))
            .filter(push_subscription::Column::UserId.eq(user_id))
            .one(txn)
            .await?
        {
            let mut row: push_subscription::ActiveModel = old.into();
            row.endpoint = Set(new.endpoint.clone());
            row.p256dh = Set(new.p256dh.clone());
            row.auth = Set(new.auth.clone());
            row.alert_follow = Set(new.alerts.follow);
            row.alert_follow_request = Set(new.alerts.follow_request);
            row.alert_follow_accepted = Set(new.alerts.follow_accepted);
            row.alert_like = Set(new.alerts.like);
            row.alert_repost = Set(new.alerts.repost);
            row.alert_reply = Set(new.alerts.reply);
            row.created_at = Set(now_millis());
            return Ok(row.update(txn).await?);
        }
        let inserted = push_subscription::ActiveModel {
            session_id: Set(session.to_owned()),
            user_id: Set(user_id),
            endpoint: Set(new.endpoint.clone()),
            p256dh: Set(new.p256dh.clone()),
            auth: Set(new.auth.clone()),
            alert_follow: Set(new.alerts.follow),
            alert_follow_request: Set(new.alerts.follow_request),
            alert_follow_accepted: Set(new.alerts.follow_accepted),
            alert_like: Set(new.alerts.like),
            alert_repost: Set(new.alerts.repost),
            alert_reply: Set(new.alerts.reply),
            created_at: Set(now_millis()),
            ..Default::default()
        }
        .insert(txn)
        .await;
        inserted.map_err(insert_error)
    })
    .await
}

/// A failed insert of a subscription: another request of the same session inserted first (run
/// again, and replace it), or the session ended meanwhile (401).
fn insert_error(err: DbErr) -> ApiError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::Contention(err),
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            ApiError::Unauthorized("the session of this access token has ended")
        }
        _ => err.into(),
    }
}

/// `session`'s subscription, if it has one.
pub async fn find(
    db: &impl ConnectionTrait,
    session: &str,
) -> Result<Option<push_subscription::Model>, ApiError> {
    Ok(push_subscription::Entity::find()
        .filter(push_subscription::Column::SessionId.eq(session))
        .one(db)
        .await?)
}

/// Ends `session`'s subscription, if it has one.
pub async fn unsubscribe(db: &impl ConnectionTrait, session: &str) -> Result<(), ApiError> {
    push_subscription::Entity::delete_many()
        .filter(push_subscription::Column::SessionId.eq(session))
        .exec(db)
        .await?;
    Ok(())
}

/// Step: ends every subscription of `user_id` (a suspension, which keeps the sessions' rows).
pub async fn unsubscribe_user(txn: &DatabaseTransaction, user_id: i64) -> Result<(), ApiError> {
    push_subscription::Entity::delete_many()
        .filter(push_subscription::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// The payload of a [`PUSH`] outbox row.
#[derive(Debug, Serialize, Deserialize)]
pub struct PushJob {
    pub subscription_id: i64,
    pub notification_id: i64,
}

/// Step: the pushes that `recipient`'s new notification `notification_id` of `kind` owes, one
/// outbox row per subscription whose alerts select `kind`; whether any was written.
pub async fn enqueue(
    txn: &DatabaseTransaction,
    recipient: i64,
    kind: Kind,
    notification_id: i64,
) -> Result<bool, ApiError> {
    // Of live sessions only: one whose refresh token expired is over, and so is its subscription.
    let live_sessions = Query::select()
        .column(session::Column::Id)
        .from(session::Entity)
        .and_where(session::Column::UserId.eq(recipient))
        .and_where(session::Column::ExpiresAt.gt(now_millis()))
        .to_owned();
    let subscriptions: Vec<i64> = push_subscription::Entity::find()
        .select_only()
        .column(push_subscription::Column::Id)
        .filter(push_subscription::Column::UserId.eq(recipient))
        .filter(alert_column(kind).eq(true))
        .filter(push_subscription::Column::SessionId.in_subquery(live_sessions))
        .into_tuple()
        .all(txn)
        .await?;
    for subscription_id in &subscriptions {
        let job = PushJob {
            subscription_id: *subscription_id,
            notification_id,
        };
        outbox::enqueue(
            txn,
            PUSH,
            serde_json::to_string(&job).map_err(ApiError::internal)?,
        )
        .await?;
    }
    Ok(!subscriptions.is_empty())
}

/// The JSON a push carries (at most [`crate::push::MAX_PAYLOAD_BYTES`] bytes).
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Payload {
    pub notification_id: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub account: PayloadAccount,
    pub post_id: Option<i64>,
    pub title: String,
    pub body: String,
}

/// Who the notification is about.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PayloadAccount {
    pub username: String,
    pub display_name: Option<String>,
}

/// The longest excerpt of a post in a push's `body`, in characters.
const EXCERPT_CHARS: usize = 140;

/// The account a push names.
pub struct Actor<'a> {
    pub username: &'a str,
    pub display_name: Option<&'a str>,
}

/// What a push shows for `notification`, from `account`, about a post whose text is
/// `post_body` (if the post is still there).
pub fn payload(
    notification: &notification::Model,
    account: Actor<'_>,
    post_body: Option<&str>,
) -> Payload {
    let name = account
        .display_name
        .filter(|name| !name.trim().is_empty())
        .map_or_else(|| format!("@{}", account.username), str::to_owned);
    let with_excerpt = |lead: String| match post_body {
        Some(text) => {
            let mut excerpt: String = text.chars().take(EXCERPT_CHARS).collect();
            if text.chars().count() > EXCERPT_CHARS {
                excerpt.push('…');
            }
            format!("{lead}: {excerpt}")
        }
        None => lead,
    };
    let (title, body) = match notification.kind.as_str() {
        "follow" => ("New follower", format!("{name} followed you")),
        "follow_request" => ("Follow request", format!("{name} asks to follow you")),
        "follow_accepted" => (
            "Request accepted",
            format!("{name} accepted your follow request"),
        ),
        "like" => ("New like", with_excerpt(format!("{name} liked your post"))),
        "repost" => (
            "New repost",
            with_excerpt(format!("{name} reposted your post")),
        ),
        "reply" => ("New reply", with_excerpt(format!("{name} replied"))),
        _ => ("New notification", format!("{name} did something")),
    };
    Payload {
        notification_id: notification.id,
        kind: notification.kind.clone(),
        account: PayloadAccount {
            username: account.username.to_owned(),
            display_name: account.display_name.map(str::to_owned),
        },
        post_id: notification.post_id,
        title: title.to_owned(),
        body,
    }
}

/// What the worker needs to send one [`PUSH`] row: the subscription and the payload; `None` when
/// either the subscription, the notification or its account is gone (nothing to send).
pub async fn message(
    db: &impl ConnectionTrait,
    job: &PushJob,
) -> Result<Option<(push_subscription::Model, Vec<u8>)>, ApiError> {
    let Some(subscription) = push_subscription::Entity::find_by_id(job.subscription_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(notification) = notification::Entity::find_by_id(job.notification_id)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let Some(account) = user::Entity::find_by_id(notification.account_id)
        .filter(user::Column::SuspendedAt.is_null())
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let post = match notification.post_id {
        Some(id) => post::Entity::find_by_id(id).one(db).await?,
        None => None,
    };
    let actor = Actor {
        username: &account.username,
        display_name: account.display_name.as_deref(),
    };
    let payload = payload(&notification, actor, post.as_ref().map(|p| p.body.as_str()));
    Ok(Some((subscription, encode(&payload)?)))
}

/// The payload's JSON, within [`crate::push::MAX_PAYLOAD_BYTES`]: a body that would overflow
/// it is shortened (a display name, a username and an excerpt never come near it, but the
/// limit is the push services' and is kept whatever the texts).
pub fn encode(payload: &Payload) -> Result<Vec<u8>, ApiError> {
    let mut bytes = serde_json::to_vec(payload).map_err(ApiError::internal)?;
    if bytes.len() > crate::push::MAX_PAYLOAD_BYTES {
        let over = bytes.len() - crate::push::MAX_PAYLOAD_BYTES;
        let mut body = payload.body.clone();
        // JSON escapes at most six bytes per character; drop enough characters to fit.
        let keep = body.chars().count().saturating_sub(over + 1);
        body = body.chars().take(keep.saturating_sub(over * 5)).collect();
        body.push('…');
        let shorter = Payload {
            body,
            title: payload.title.clone(),
            account: PayloadAccount {
                username: payload.account.username.clone(),
                display_name: payload.account.display_name.clone(),
            },
            kind: payload.kind.clone(),
            ..*payload
        };
        bytes = serde_json::to_vec(&shorter).map_err(ApiError::internal)?;
    }
    Ok(bytes)
}

/// Removes the subscription `id`: its push service said it is gone (404, 410).
pub async fn remove(db: &impl ConnectionTrait, id: i64) -> Result<(), ApiError> {
    push_subscription::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn susan(display_name: Option<&str>) -> Actor<'_> {
        Actor {
            username: "susan",
            display_name,
        }
    }

    #[test]
    fn a_payload_names_the_account_and_quotes_the_post_briefly() {
        let notification = notification::Model {
            id: 9,
            recipient_id: 2,
            account_id: 1,
            kind: "like".into(),
            created_at: 0,
            post_id: Some(5),
        };
        let body = "x".repeat(500);
        let payload = payload(&notification, susan(Some("Susan")), Some(&body));
        assert_eq!(payload.title, "New like");
        assert!(payload.body.starts_with("Susan liked your post: xxx"));
        assert_eq!(
            payload.body.chars().count(),
            "Susan liked your post: ".len() + 141
        );
        let payload = super::payload(&notification, susan(None), None);
        assert_eq!(payload.body, "@susan liked your post");
    }

    #[test]
    fn an_oversized_payload_is_shortened_to_the_limit() {
        let payload = Payload {
            notification_id: 1,
            kind: "reply".into(),
            account: PayloadAccount {
                username: "susan".into(),
                display_name: None,
            },
            post_id: Some(2),
            title: "New reply".into(),
            body: "\u{1}é".repeat(2_000),
        };
        let bytes = encode(&payload).unwrap();
        assert!(
            bytes.len() <= crate::push::MAX_PAYLOAD_BYTES,
            "{}",
            bytes.len()
        );
        let back: Payload = serde_json::from_slice(&bytes).unwrap();
        assert!(back.body.ends_with('…'));
    }
}
