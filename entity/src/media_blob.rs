//! The encoded bytes of a media: the image and its thumbnail.

use sea_orm::entity::prelude::*;

/// A row of `media_blobs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "media_blobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub media_id: String,
    /// `original` or `thumbnail`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    #[sea_orm(column_type = "Blob")]
    pub bytes: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
