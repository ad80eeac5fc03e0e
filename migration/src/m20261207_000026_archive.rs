//! The account archive (`GET /users/me/archive`):
//! - `users.archive_started_at`: when the account's last archive began, so that at most one runs
//!   per 10 minutes, on every replica and across restarts (the one conditional `UPDATE` that
//!   takes the turn decides it, whatever the concurrency).
//! - `idx_likes_user_created (user_id, created_at, post_id)` replaces `idx_likes_user (user_id,
//!   post_id)`: an account's likes newest first, page by page, read along the index instead of
//!   sorted whole for every page; it still leads with `user_id` for the cascade and the counts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    ArchiveStartedAt,
}

#[derive(DeriveIden)]
enum Likes {
    Table,
    UserId,
    PostId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    // Milliseconds since the Unix epoch; null until the first archive.
                    .add_column(big_integer_null(Users::ArchiveStartedAt))
                    .to_owned(),
            )
            .await?;
        // Made before the old one goes: MySQL keeps an index for the foreign key on `user_id`.
        manager
            .create_index(
                Index::create()
                    .name("idx_likes_user_created")
                    .table(Likes::Table)
                    .col(Likes::UserId)
                    .col(Likes::CreatedAt)
                    .col(Likes::PostId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_likes_user")
                    .table(Likes::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_likes_user")
                    .table(Likes::Table)
                    .col(Likes::UserId)
                    .col(Likes::PostId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_likes_user_created")
                    .table(Likes::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::ArchiveStartedAt)
                    .to_owned(),
            )
            .await
    }
}
