//! `account_id` did something (`kind`) that concerns `recipient_id`.

use sea_orm::entity::prelude::*;

/// A row of `notifications`. `created_at` is milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub recipient_id: i64,
    pub account_id: i64,
    /// `follow`, `follow_request`, `follow_accepted`, `like` or `reply`.
    pub kind: String,
    pub created_at: i64,
    /// The post a `like` (the liked post) or `reply` (the reply) is about.
    pub post_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
