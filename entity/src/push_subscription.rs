//! A session's Web Push subscription: where its notifications are pushed, and which.

use sea_orm::entity::prelude::*;

/// A row of `push_subscriptions`. `created_at` is milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_subscriptions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The session it belongs to (one subscription per session).
    pub session_id: String,
    pub user_id: i64,
    /// The push service's URL for this browser. Never logged: it names the browser.
    pub endpoint: String,
    /// The browser's P-256 public key, uncompressed, base64url.
    pub p256dh: String,
    /// The browser's 16-byte authentication secret, base64url. Never logged.
    pub auth: String,
    pub alert_follow: bool,
    pub alert_follow_request: bool,
    pub alert_follow_accepted: bool,
    pub alert_like: bool,
    pub alert_repost: bool,
    pub alert_reply: bool,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
