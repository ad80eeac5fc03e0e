//! `outbox`: what must reach the outside world (mail today, Web Push later), written in the
//! transaction of the change that causes it and sent after the commit by a worker. Nothing due is
//! lost by a crash (the row is there until it is sent), and nothing rolled back is sent (the row
//! went with the transaction).
//!
//! A worker claims due rows by moving `next_attempt_at` past a lease (under `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL and MySQL/MariaDB, under SQLite's one writer), so several processes never
//! send one row twice at once; a worker that dies leaves its rows to be claimed again when the
//! lease runs out. A failure moves `next_attempt_at` by a growing back-off.

use sea_orm_migration::{prelude::*, schema::*};

use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Kind,
    Payload,
    Attempts,
    NextAttemptAt,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Outbox::Table)
            .col(big_pk_auto(Outbox::Id))
            // What the payload is and which sender takes it (`mail`, `password_forgot`, ...).
            .col(string_len(Outbox::Kind, 32))
            // JSON, read by the kind's sender only (never logged).
            .col(text(Outbox::Payload))
            .col(integer(Outbox::Attempts).default(0))
            .col(big_integer(Outbox::NextAttemptAt))
            .col(big_integer(Outbox::CreatedAt));
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // The claim: the due rows, oldest due first.
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_next_attempt")
                    .table(Outbox::Table)
                    .col(Outbox::NextAttemptAt)
                    .col(Outbox::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Outbox::Table).to_owned())
            .await
    }
}
