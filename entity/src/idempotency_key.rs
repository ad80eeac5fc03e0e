//! An `Idempotency-Key` a caller sent with a write that created something, and its answer.

use sea_orm::entity::prelude::*;

/// A row of `idempotency_keys`. `created_at` is milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 (hex) of the method, path and canonical JSON body of the first request.
    pub fingerprint: String,
    /// The first answer's status.
    pub status: i32,
    /// The first answer's `Location`, if it had one.
    pub location: Option<String>,
    /// The id of what the first request created (or found), to render it again when `response`
    /// is missing.
    pub resource_id: Option<i64>,
    /// The first answer's body, once written after the commit.
    pub response: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
