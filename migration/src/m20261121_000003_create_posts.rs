use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Posts::Table)
            .if_not_exists()
            .col(big_pk_auto(Posts::Id))
            .col(big_integer(Posts::AuthorId))
            // 280 characters; VARCHAR counts characters on PostgreSQL and on utf8mb4 MySQL.
            .col(string_len(Posts::Body, 280))
            // Milliseconds since the Unix epoch.
            .col(big_integer(Posts::CreatedAt))
            // Removing an account removes its posts.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_posts_author")
                    .from(Posts::Table, Posts::AuthorId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;

        // "X's posts, newest first": equality on author_id, then the keyset order (created_at, id).
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_author_created")
                    .table(Posts::Table)
                    .col(Posts::AuthorId)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .to_owned(),
            )
            .await?;
        // All posts newest first: lets a timeline walk recent posts and keep those of followees.
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_created")
                    .table(Posts::Table)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Posts::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Posts {
    Table,
    Id,
    AuthorId,
    Body,
    CreatedAt,
}
