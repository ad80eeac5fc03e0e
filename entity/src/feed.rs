//! A reader's precomputed timeline (`api::services::feeds`).

use sea_orm::entity::prelude::*;

/// A row of `feeds`: the feed of `reader_id`, whole above `(floor_at, floor_id)`; a floor of
/// `None` is a feed asked for and not built yet.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "feeds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub reader_id: i64,
    pub floor_at: Option<i64>,
    pub floor_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
