//! `user_id` reposted `post_id` (by `post_author_id`) at `created_at`.

use sea_orm::entity::prelude::*;

/// A row of `reposts`. `created_at` is milliseconds since the Unix epoch, a position on the posts'
/// clock.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reposts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub post_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub post_author_id: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
