//! A notification on the wire.

use entity::user;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::{Post, UserCard};
use crate::error::ApiError;
use crate::services::notifications::NotificationEntry;
use crate::services::relationships::ViewerStates;
use crate::time::Timestamp;

/// Something another account did that concerns the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    #[schema(example = 12)]
    pub id: i64,
    /// `follow` (the account followed you), `follow_request` (it asks to follow you),
    /// `follow_accepted` (it accepted your request), `like` (it liked your post) or `reply` (it
    /// replied to your post).
    #[serde(rename = "type")]
    #[schema(value_type = NotificationType, example = "follow")]
    pub kind: String,
    /// When it happened.
    pub created_at: Timestamp,
    /// Who did it.
    pub account: UserCard,
    /// Whether it is at or below the caller's read mark (`POST /notifications/read`).
    pub read: bool,
    /// The liked post (`like`) or the reply (`reply`); `null` for the follow types, and once the
    /// post cannot be shown.
    pub post: Option<Post>,
}

/// What a notification says happened: the document's name for the kinds of
/// [`crate::services::notifications::Kind`], which a client may switch on. (The wire carries the
/// kind's own text; a test checks this list names every kind.)
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum NotificationType {
    Follow,
    FollowRequest,
    FollowAccepted,
    Like,
    Reply,
    Repost,
}

crate::page_schema!(
    NotificationPage,
    Notification,
    "A page of the caller's notifications, newest first."
);

impl Notification {
    /// One of `me`'s notifications, the account's card carrying `me`'s view of it (`states`).
    pub fn new(me: &user::Model, e: &NotificationEntry, states: &ViewerStates) -> Self {
        Notification {
            id: e.notification.id,
            kind: e.notification.kind.clone(),
            created_at: Timestamp(e.notification.created_at),
            account: UserCard::new(&e.account, states),
            read: e.notification.id <= me.notifications_read_id,
            post: e.post.as_ref().map(|p| Post::new(p, states)),
        }
    }
}

/// Turns `me`'s notifications into wire notifications, the accounts' cards and the posts carrying
/// `me`'s view of them, in a fixed number of queries whatever their number.
pub async fn render(
    db: &DatabaseConnection,
    me: &user::Model,
    entries: Vec<NotificationEntry>,
) -> Result<Vec<Notification>, ApiError> {
    let posts: Vec<i64> = entries
        .iter()
        .filter_map(|e| e.post.as_ref().map(|p| p.post.id))
        .collect();
    let states = super::posts::states(
        db,
        Some(me.id),
        entries.iter().map(|e| e.account.id),
        &posts,
    )
    .await?;
    Ok(entries
        .iter()
        .map(|e| Notification::new(me, e, &states))
        .collect())
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;

    use super::NotificationType;
    use crate::services::notifications::Kind;

    #[test]
    fn the_documented_notification_types_are_exactly_the_kinds() {
        let schema = serde_json::to_value(NotificationType::schema()).unwrap_or_default();
        let mut documented: Vec<String> = schema["enum"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut kinds: Vec<String> = Kind::ALL.iter().map(|k| k.as_str().to_owned()).collect();
        documented.sort();
        kinds.sort();
        assert_eq!(documented, kinds);
    }
}
