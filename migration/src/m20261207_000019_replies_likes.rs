//! Replies and likes (API.md v3, "Replies, likes and reposts").
//!
//! - `posts.in_reply_to_id`: the post this one answers, while that post exists: a foreign key
//!   `ON DELETE SET NULL`, so a reply outlives its parent and the link never names a missing post
//!   (the replies list and `replies_count` follow it).
//! - `posts.parent_id`, `posts.parent_author_id`: the post answered and its author, as they were
//!   when the reply was written, never cleared: the wire shows `in_reply_to.id` after the parent
//!   is gone, and the timeline's reply rule (a reply shows to readers who follow its parent's
//!   author) reads the author from the reply's own row. No foreign keys: ids are never reused
//!   (sequences, `AUTOINCREMENT`), and a removed author follows nobody's timeline anyway.
//! - `posts.replies_count`, `posts.likes_count`: changed in the transactions that add or remove
//!   the rows they count, under the row locks of the users involved.
//! - `likes`: `user_id` likes `post_id` since `created_at` (in commit order on the post author's
//!   list clock). The primary key `(post_id, user_id)` makes a repeat impossible and serves the
//!   viewer's "did I like these posts" lookup; both sides cascade.
//! - `notifications.post_id`: the post a `like` or `reply` notification carries; deleting the post
//!   deletes them (`ON DELETE CASCADE`; the service lowers the unread counts first).
//! - `idx_posts_created_author_parent (created_at, id, author_id, parent_author_id)` replaces
//!   `idx_posts_created_author`, so the newest-first timeline walk still reads the index alone
//!   when it applies the reply rule.

use sea_orm_migration::sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::m20261121_000003_create_posts::Posts;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Likes {
    Table,
    UserId,
    PostId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PostColumns {
    InReplyToId,
    ParentId,
    ParentAuthorId,
    RepliesCount,
    LikesCount,
}

/// `ALTER TABLE {table} ADD COLUMN {column} BIGINT NULL` with a foreign key to `posts(id)`
/// (`on_delete` is `SET NULL` or `CASCADE`): inline on SQLite and PostgreSQL (SQLite cannot add a
/// constraint to an existing table otherwise), as a named constraint on MySQL (which ignores an
/// inline `REFERENCES`).
fn add_post_reference(
    backend: DbBackend,
    table: &str,
    column: &str,
    constraint: &str,
    on_delete: &str,
) -> String {
    match backend {
        DbBackend::MySql => format!(
            "ALTER TABLE {table} ADD COLUMN {column} BIGINT NULL, ADD CONSTRAINT {constraint} \
             FOREIGN KEY ({column}) REFERENCES posts (id) ON DELETE {on_delete}"
        ),
        _ => format!(
            "ALTER TABLE {table} ADD COLUMN {column} BIGINT NULL \
             CONSTRAINT {constraint} REFERENCES posts (id) ON DELETE {on_delete}"
        ),
    }
}

/// On MySQL, the first step of undoing [`add_post_reference`]: the constraint goes before the
/// index that serves it can (MySQL refuses to drop an index a foreign key needs). Elsewhere
/// dropping the column drops its constraint.
async fn drop_post_reference(
    manager: &SchemaManager<'_>,
    table: &str,
    constraint: &str,
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::MySql {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE {table} DROP FOREIGN KEY {constraint}"
            ))
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        db.execute_unprepared(&add_post_reference(
            backend,
            "posts",
            "in_reply_to_id",
            "fk_posts_in_reply_to",
            "SET NULL",
        ))
        .await?;
        for column in [PostColumns::ParentId, PostColumns::ParentAuthorId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Posts::Table)
                        .add_column(ColumnDef::new(column).big_integer().null())
                        .to_owned(),
                )
                .await?;
        }
        for column in [PostColumns::RepliesCount, PostColumns::LikesCount] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Posts::Table)
                        .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
                        .to_owned(),
                )
                .await?;
        }
        // A post's replies newest first; also what `ON DELETE SET NULL` looks the replies up by.
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_in_reply_to_created")
                    .table(Posts::Table)
                    .col(PostColumns::InReplyToId)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .to_owned(),
            )
            .await?;
        // The timeline walk keeps reading the index alone with the reply rule applied: the new
        // index first, then the old one goes.
        manager
            .create_index(
                Index::create()
                    .name("idx_posts_created_author_parent")
                    .table(Posts::Table)
                    .col(Posts::CreatedAt)
                    .col(Posts::Id)
                    .col(Posts::AuthorId)
                    .col(PostColumns::ParentAuthorId)
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
            .await?;

        let mut likes = Table::create();
        likes
            .table(Likes::Table)
            .col(big_integer(Likes::PostId))
            .col(big_integer(Likes::UserId))
            // Milliseconds since the Unix epoch, in commit order (`api::services::clock`).
            .col(big_integer(Likes::CreatedAt))
            // One like per account and post, whatever the concurrency.
            .primary_key(Index::create().col(Likes::PostId).col(Likes::UserId))
            // A like goes with its post and with its account.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_likes_post")
                    .from(Likes::Table, Likes::PostId)
                    .to(Posts::Table, Posts::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_likes_user")
                    .from(Likes::Table, Likes::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut likes);
        manager.create_table(likes).await?;
        // A post's likes newest first, the liker breaking ties.
        manager
            .create_index(
                Index::create()
                    .name("idx_likes_post_created")
                    .table(Likes::Table)
                    .col(Likes::PostId)
                    .col(Likes::CreatedAt)
                    .col(Likes::UserId)
                    .to_owned(),
            )
            .await?;
        // An account's likes: the cascade, and the counts that drop when it goes or is blocked.
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

        db.execute_unprepared(&add_post_reference(
            backend,
            "notifications",
            "post_id",
            "fk_notifications_post",
            "CASCADE",
        ))
        .await?;
        // What deleting a post deletes (and the cascade).
        manager
            .create_index(
                Index::create()
                    .name("idx_notifications_post")
                    .table(Alias::new("notifications"))
                    .col(Alias::new("post_id"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_post_reference(manager, "notifications", "fk_notifications_post").await?;
        drop_post_reference(manager, "posts", "fk_posts_in_reply_to").await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_notifications_post")
                    .table(Alias::new("notifications"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("notifications"))
                    .drop_column(Alias::new("post_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Likes::Table).to_owned())
            .await?;
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
                    .name("idx_posts_created_author_parent")
                    .table(Posts::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_posts_in_reply_to_created")
                    .table(Posts::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            PostColumns::LikesCount,
            PostColumns::RepliesCount,
            PostColumns::ParentAuthorId,
            PostColumns::ParentId,
            PostColumns::InReplyToId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Posts::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
