//! Replaces `idx_posts_created (created_at, id)` with `idx_posts_created_author (created_at, id,
//! author_id)`. The timeline of a reader who follows many accounts walks all posts newest first
//! and keeps those of followees; with `author_id` in the index that walk reads the index alone
//! (an index-only scan) and visits only the rows it keeps, instead of every row it passes.

use sea_orm_migration::prelude::*;

use crate::m20261121_000003_create_posts::Posts;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_created_author")
                    .table(Posts::Table)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .col(Posts::AuthorId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_posts_created")
                    .table(Posts::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_created")
                    .table(Posts::Table)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_posts_created_author")
                    .table(Posts::Table)
                    .to_owned(),
            )
            .await
    }
}
