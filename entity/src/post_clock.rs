//! One shard of the posts' clock: positions in commit order for posts and reposts.

use sea_orm::entity::prelude::*;

/// A row of `post_clocks`: `at` is the newest position (milliseconds since the Unix epoch) given
/// by the writers of this shard, or the horizon a sweep moved it to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "post_clocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub shard: i64,
    pub at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
