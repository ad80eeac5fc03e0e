//! A report of an account (and optionally one of its posts), kept for the operators.

use sea_orm::entity::prelude::*;

/// A row of `reports`. Timestamps are milliseconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reports")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub reporter_id: i64,
    pub target_id: i64,
    /// The reported post, if one was named and still exists.
    pub post_id: Option<i64>,
    pub reason: String,
    pub created_at: i64,
    /// When an operator resolved it; `None` while it is open.
    pub resolved_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
