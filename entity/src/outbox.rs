//! A message for the outside world (a mail; later a push), sent after the commit that wrote it.

use sea_orm::entity::prelude::*;

/// A row of `outbox`. Timestamps are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Which sender takes it.
    pub kind: String,
    /// JSON that only that sender reads. Never logged: it may name an address.
    pub payload: String,
    /// How many times a worker has claimed it.
    pub attempts: i32,
    /// When a worker may claim it (again): its due time, a claim's lease, or a retry's back-off.
    pub next_attempt_at: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
