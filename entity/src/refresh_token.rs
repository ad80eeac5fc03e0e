//! A refresh token a session was given, by its SHA-256.

use sea_orm::entity::prelude::*;

/// A row of `refresh_tokens`. Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// SHA-256 of the token, lower-case hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: String,
    pub session_id: String,
    /// When it was issued; it expires `REFRESH_TTL_SECONDS` later.
    pub created_at: i64,
    /// When it was exchanged for the next one; `None` while it is the session's current one.
    pub used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
