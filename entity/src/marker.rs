//! A user's reading positions across devices: the timeline marker, and when and how often the
//! notifications marker (`users.notifications_read_id`) moved.

use sea_orm::entity::prelude::*;

/// A row of `markers`. Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "markers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    /// The timeline position (`created_at`, `id` of the timeline's keyset), if set.
    pub timeline_at: Option<i64>,
    pub timeline_id: Option<i64>,
    pub timeline_updated_at: Option<i64>,
    pub timeline_version: i64,
    /// The session that moved the timeline marker last.
    pub timeline_session: Option<String>,
    pub notifications_updated_at: Option<i64>,
    pub notifications_version: i64,
    /// The session that moved the notifications marker last.
    pub notifications_session: Option<String>,
    /// When either marker last moved (what other processes' pollers look for).
    pub changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
