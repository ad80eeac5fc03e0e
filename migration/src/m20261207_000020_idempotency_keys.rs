//! `idempotency_keys`: the `Idempotency-Key`s of the writes that create (`POST /posts`,
//! `POST /reports`), per caller, kept 24 hours. A row is written in the transaction that creates
//! the object, so a crash never leaves one without the other; its answer (`response`) is added
//! after the commit, and when a crash came between, a repeat renders the object again from
//! `resource_id`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    UserId,
    Key,
    Fingerprint,
    Status,
    Location,
    ResourceId,
    Response,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(IdempotencyKeys::Table)
            .col(big_integer(IdempotencyKeys::UserId))
            .col(string_len(IdempotencyKeys::Key, 255))
            // SHA-256 (hex) of the method, the path and the canonical JSON of the body.
            .col(string_len(IdempotencyKeys::Fingerprint, 64))
            .col(integer(IdempotencyKeys::Status))
            .col(string_len_null(IdempotencyKeys::Location, 200))
            .col(big_integer_null(IdempotencyKeys::ResourceId))
            .col(text_null(IdempotencyKeys::Response))
            .col(big_integer(IdempotencyKeys::CreatedAt))
            // A key is the caller's own: the same key of two users is two keys.
            .primary_key(
                Index::create()
                    .col(IdempotencyKeys::UserId)
                    .col(IdempotencyKeys::Key),
            )
            // Keys go with their account.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_idempotency_keys_user")
                    .from(IdempotencyKeys::Table, IdempotencyKeys::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // The sweep of keys past their 24 hours.
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_keys_created")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
