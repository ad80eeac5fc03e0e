//! Reposts (API.md v3, "Replies, likes and reposts").
//!
//! - `reposts`: `user_id` reposted `post_id` (written by `post_author_id`) at `created_at`, a
//!   position on the posts' clock (`api::services::clock`, `Clock::Posts`): a repost is a timeline
//!   entry, given in commit order like a post, so `(created_at, post_id)` orders a timeline's
//!   writings and reposts together, and is unique across both (the clock never gives a value
//!   twice). The primary key `(post_id, user_id)` makes a repeat impossible; both sides cascade
//!   (a deleted post's reposts leave every timeline with it). `post_author_id` is copied from the
//!   post (it never changes), so the timeline can apply the author's blocks, mutes and lock to a
//!   repost from the indexes alone.
//! - `posts.reposts_count`: changed in the transactions that add or remove the rows it counts,
//!   under the row locks of the reposter and the post's author.
//! - `idx_reposts_created (created_at, post_id, user_id, post_author_id)`: the newest-first timeline
//!   walk over every repost, reading the index alone; `idx_reposts_user_created`: one account's
//!   reposts newest first (the per-author timeline query, and what ends with the account);
//!   `idx_reposts_post_created`: a post's reposts newest first (its list, and the timeline's
//!   "is there a newer entry for this post" probe).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::m20261121_000003_create_posts::Posts;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Reposts {
    Table,
    PostId,
    UserId,
    PostAuthorId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PostColumns {
    RepostsCount,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Posts::Table)
                    .add_column(
                        ColumnDef::new(PostColumns::RepostsCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let mut reposts = Table::create();
        reposts
            .table(Reposts::Table)
            .col(big_integer(Reposts::PostId))
            .col(big_integer(Reposts::UserId))
            .col(big_integer(Reposts::PostAuthorId))
            // Milliseconds since the Unix epoch, on the posts' clock (commit order).
            .col(big_integer(Reposts::CreatedAt))
            .primary_key(Index::create().col(Reposts::PostId).col(Reposts::UserId))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_reposts_post")
                    .from(Reposts::Table, Reposts::PostId)
                    .to(Posts::Table, Posts::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_reposts_user")
                    .from(Reposts::Table, Reposts::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut reposts);
        manager.create_table(reposts).await?;
        let indexes: [(&str, &[Reposts]); 3] = [
            (
                "idx_reposts_created",
                &[
                    Reposts::CreatedAt,
                    Reposts::PostId,
                    Reposts::UserId,
                    Reposts::PostAuthorId,
                ],
            ),
            (
                "idx_reposts_user_created",
                &[
                    Reposts::UserId,
                    Reposts::CreatedAt,
                    Reposts::PostId,
                    Reposts::PostAuthorId,
                ],
            ),
            (
                "idx_reposts_post_created",
                &[Reposts::PostId, Reposts::CreatedAt, Reposts::UserId],
            ),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(Reposts::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Reposts::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Posts::Table)
                    .drop_column(PostColumns::RepostsCount)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
