//! An uploaded image: its description and sizes. Its bytes are in `media_blob`, which no list
//! query reads.

use sea_orm::entity::prelude::*;

/// A row of `media`. Timestamps are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media")]
pub struct Model {
    /// 128 random bits, base64url without padding (22 characters).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub owner_id: i64,
    /// `post` (attachable to one post) or `avatar`.
    pub purpose: String,
    /// The post that shows it; `None` until one does (and always, for an avatar).
    pub post_id: Option<i64>,
    /// Its place among its post's media.
    pub position: i32,
    /// `image/jpeg` or `image/png`, for the image and its thumbnail.
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub thumb_width: i32,
    pub thumb_height: i32,
    /// The alt text.
    pub description: Option<String>,
    pub blurhash: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
