//! Sessions and their refresh tokens.
//!
//! - `sessions`: one per login (or registration), of `user_id`; `id` is named by the session's
//!   access tokens (claim `sid`), so deleting the row ends them. `last_used_at` moves at most once
//!   a minute; `expires_at` is when its current refresh token expires (a session past it is over).
//!   Index: the user's sessions newest first.
//! - `refresh_tokens`: the SHA-256 (hex) of each refresh token a session was given, and when it
//!   was used (`NULL` while it is the current one). A used one presented again is how a stolen
//!   token shows itself: the session ends. Go with their session.

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
            .table(Sessions::Table)
            .col(string_len(Sessions::Id, 32).primary_key())
            .col(big_integer(Sessions::UserId))
            .col(string_len_null(Sessions::UserAgent, 200))
            .col(big_integer(Sessions::CreatedAt))
            .col(big_integer(Sessions::LastUsedAt))
            .col(big_integer(Sessions::ExpiresAt))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_sessions_user")
                    .from(Sessions::Table, Sessions::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user_created")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .col(Sessions::CreatedAt)
                    .to_owned(),
            )
            .await?;

        let mut table = Table::create();
        table
            .table(RefreshTokens::Table)
            .col(string_len(RefreshTokens::Hash, 64).primary_key())
            .col(string_len(RefreshTokens::SessionId, 32))
            .col(big_integer(RefreshTokens::CreatedAt))
            .col(big_integer_null(RefreshTokens::UsedAt))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_refresh_tokens_session")
                    .from(RefreshTokens::Table, RefreshTokens::SessionId)
                    .to(Sessions::Table, Sessions::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    UserAgent,
    CreatedAt,
    LastUsedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Hash,
    SessionId,
    CreatedAt,
    UsedAt,
}
