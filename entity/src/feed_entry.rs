//! A candidate entry of a reader's precomputed timeline (`api::services::feeds`).

use sea_orm::entity::prelude::*;

/// A row of `feed_entries`: an entry at `(at, post_id)` for `reader_id`, the writing of
/// `post_id` by `source_id`, or its repost by `source_id` when `is_repost`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feed_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub reader_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub at: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub source_id: i64,
    pub is_repost: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
