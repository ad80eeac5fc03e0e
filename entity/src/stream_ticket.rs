//! A stream ticket that has opened a stream, by its SHA-256: it may open it again while its
//! session lives.

use sea_orm::entity::prelude::*;

/// A row of `stream_tickets`. Times are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stream_tickets")]
pub struct Model {
    /// SHA-256 of the ticket, lower-case hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub hash: String,
    pub session_id: String,
    /// When it first opened a stream (within its 60 seconds).
    pub first_used_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
