//! `post_deletions`: a deleted post (`post_id`, by `author_id`, at `deleted_at`), written in the
//! deleting transaction on MySQL/MariaDB only, where no notification channel carries the event to
//! other API processes: their pollers read new rows by `id` and announce `post_deleted` to their
//! streams. Rows are removed ten minutes after the deletion. The table exists on every backend so
//! the schema is one; PostgreSQL (NOTIFY) and SQLite (one process) leave it empty.

use sea_orm_migration::{prelude::*, schema::*};

use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PostDeletions {
    Table,
    Id,
    PostId,
    AuthorId,
    DeletedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(PostDeletions::Table)
            .col(big_pk_auto(PostDeletions::Id))
            .col(big_integer(PostDeletions::PostId))
            .col(big_integer(PostDeletions::AuthorId))
            .col(big_integer(PostDeletions::DeletedAt));
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_post_deletions_deleted_at")
                    .table(PostDeletions::Table)
                    .col(PostDeletions::DeletedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PostDeletions::Table).to_owned())
            .await
    }
}
