//! A clock that gives positions in commit order to a list spanning many users.

use sea_orm::entity::prelude::*;

/// A row of `clocks`: `at` is the newest position (milliseconds since the Unix epoch) given.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
