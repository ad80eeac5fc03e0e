//! A token mailed to verify an address or to reset a password, kept only as its hash.

use sea_orm::entity::prelude::*;

/// A row of `email_tokens`. Timestamps are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "email_tokens")]
pub struct Model {
    /// SHA-256 (hex) of the token.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: String,
    pub user_id: i64,
    /// `verify` or `reset`.
    pub purpose: String,
    /// The address the token was mailed to.
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// When it was used; a used token is taken by nobody again.
    pub used_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
