//! A prefix of an account's display-name search key, for user search (migration 16).

use sea_orm::entity::prelude::*;

/// A row of `display_name_prefixes`: `user_id`, whose username key is `username_key`, has a
/// display name whose search key starts with `prefix` (1 to 30 characters).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "display_name_prefixes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub prefix: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub username_key: String,
    pub user_id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
