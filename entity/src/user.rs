//! An account.

use sea_orm::entity::prelude::*;

/// A row of `users`. Timestamps are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The username as registered.
    pub username: String,
    /// The lower-cased username, unique; binary collation on every backend (search ranges).
    #[sea_orm(unique)]
    pub username_key: String,
    pub email: String,
    /// The lower-cased email, unique.
    #[sea_orm(unique)]
    pub email_key: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub display_name: Option<String>,
    /// The display name lower-cased for search (`api::domain::search_key`); `None` with it.
    /// Binary collation on every backend, so a prefix is an index range.
    pub display_name_key: Option<String>,
    pub bio: Option<String>,
    pub created_at: i64,
    pub followers_count: i64,
    pub following_count: i64,
    pub posts_count: i64,
    /// The newest `created_at` given to an item of this user's followers or following list; the
    /// next one is later (positions in commit order).
    pub list_clock: i64,
    /// When an operator suspended the account; `None` unless it is suspended.
    pub suspended_at: Option<i64>,
    /// The account chooses who follows it: following it makes a request.
    pub locked: bool,
    /// Every notification of the user with an id up to this one is read.
    pub notifications_read_id: i64,
    /// How many of the user's notifications lie above `notifications_read_id`.
    pub unread_notifications: i64,
    /// When the account last changed something (0: never): a server that reads from a standby
    /// reads a recent writer's requests from the primary.
    pub last_write_at: i64,
    /// The account is an operator: it may use `/admin/...`. Granted and revoked by the server's
    /// `operator` command (or at start-up, by `ADMIN_USERNAMES`, to accounts that exist then).
    pub is_operator: bool,
    /// When the account confirmed its email address (a token mailed to it); `None` until then.
    pub email_verified_at: Option<i64>,
    /// When the account's last archive (`GET /users/me/archive`) began; `None` before the first.
    pub archive_started_at: Option<i64>,
    /// The avatar (`media.id`); `None` when the user has none.
    pub avatar_media_id: Option<String>,
    /// Where the user's precomputed timeline is whole from (`feeds.floor_at`/`floor_id`, copied
    /// here so that a timeline read has it with the caller's row); `None` when the user has no
    /// built feed.
    pub feed_floor_at: Option<i64>,
    pub feed_floor_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::post::Entity")]
    Posts,
}

impl Related<super::post::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Posts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
