//! Locked accounts and follow requests.
//!
//! - `users.locked`: the account chooses who follows it; following it makes a request.
//! - `follow_requests`: `requester_id` asks to follow `target_id` since `created_at`; shaped like
//!   `follows` (composite primary key, a `CHECK` against self-requests, `ON DELETE CASCADE` on both
//!   sides), with an index for the target's list of pending requests, newest first, and one for
//!   the requester's side.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(FollowRequests::Locked)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        let mut table = Table::create();
        table
            .table(FollowRequests::Table)
            .col(big_integer(FollowRequests::RequesterId))
            .col(big_integer(FollowRequests::TargetId))
            .col(big_integer(FollowRequests::CreatedAt))
            .primary_key(
                Index::create()
                    .col(FollowRequests::RequesterId)
                    .col(FollowRequests::TargetId),
            )
            .check(Expr::col(FollowRequests::RequesterId).ne(Expr::col(FollowRequests::TargetId)))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_follow_requests_requester")
                    .from(FollowRequests::Table, FollowRequests::RequesterId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_follow_requests_target")
                    .from(FollowRequests::Table, FollowRequests::TargetId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_follow_requests_target_created")
                    .table(FollowRequests::Table)
                    .col(FollowRequests::TargetId)
                    .col(FollowRequests::CreatedAt)
                    .col(FollowRequests::RequesterId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(FollowRequests::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(FollowRequests::Locked)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum FollowRequests {
    Table,
    RequesterId,
    TargetId,
    CreatedAt,
    Locked,
}
