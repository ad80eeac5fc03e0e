//! A notification on the wire.

use entity::user;
use sea_orm::DatabaseConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::UserCard;
use crate::error::ApiError;
use crate::services::notifications::NotificationEntry;
use crate::services::relationships::{self, ViewerStates};
use crate::time::Timestamp;

/// Something another account did that concerns the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    #[schema(example = 12)]
    pub id: i64,
    /// `follow` (the account followed you), `follow_request` (it asks to follow you) or
    /// `follow_accepted` (it accepted your request).
    #[serde(rename = "type")]
    #[schema(example = "follow")]
    pub kind: String,
    /// When it happened.
    pub created_at: Timestamp,
    /// Who did it.
    pub account: UserCard,
    /// Whether it is at or below the caller's read mark (`POST /notifications/read`).
    pub read: bool,
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
        }
    }
}

/// Turns `me`'s notifications into wire notifications, the accounts' cards carrying `me`'s view of
/// them, in one query whatever their number.
pub async fn render(
    db: &DatabaseConnection,
    me: &user::Model,
    entries: Vec<NotificationEntry>,
) -> Result<Vec<Notification>, ApiError> {
    let states =
        relationships::viewer_states(db, Some(me.id), entries.iter().map(|e| e.account.id)).await?;
    Ok(entries
        .iter()
        .map(|e| Notification::new(me, e, &states))
        .collect())
}
