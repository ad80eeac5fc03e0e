//! How far the feeds' worker has fanned entries out (`api::services::feeds`).

use sea_orm::entity::prelude::*;

/// The one row of `feed_fanout` (`id` 1): every entry at or below `at` is in the feeds it
/// belongs to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feed_fanout")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
