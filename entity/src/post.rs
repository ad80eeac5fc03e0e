//! A short post.

use sea_orm::entity::prelude::*;

/// A row of `posts`. `created_at` is milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "posts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub author_id: i64,
    pub body: String,
    pub created_at: i64,
    /// The post this one answers, while it exists (`ON DELETE SET NULL`).
    pub in_reply_to_id: Option<i64>,
    /// The post this one answers, as written; kept when that post is gone.
    pub parent_id: Option<i64>,
    /// The author of [`Model::parent_id`] when the reply was written.
    pub parent_author_id: Option<i64>,
    /// How many posts answer this one (`in_reply_to_id`) whose authors are not suspended.
    pub replies_count: i64,
    /// How many rows of `likes` name this post.
    pub likes_count: i64,
    /// How many rows of `reposts` name this post.
    pub reposts_count: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::AuthorId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    Author,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Author.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
