//! `stream_tickets`: the stream tickets that have opened a stream, by their SHA-256. A ticket must
//! be used within 60 seconds of its issue, but a browser's `EventSource` reconnects by itself with
//! the same URL after any drop, however late: a ticket that opened a stream once may open it again
//! while its session lives (API.md, "v3 changes to v2 endpoints"). The row is that first use; it
//! goes with its session.

use sea_orm_migration::{prelude::*, schema::*};

use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StreamTickets {
    Table,
    Hash,
    SessionId,
    FirstUsedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(StreamTickets::Table)
            .col(string_len(StreamTickets::Hash, 64).primary_key())
            .col(string_len(StreamTickets::SessionId, 32))
            .col(big_integer(StreamTickets::FirstUsedAt))
            // A ticket works only while its session lives; it goes with it.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_stream_tickets_session")
                    .from(StreamTickets::Table, StreamTickets::SessionId)
                    .to(Sessions::Table, Sessions::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // The cascade's lookup when a session ends.
        manager
            .create_index(
                Index::create()
                    .name("idx_stream_tickets_session")
                    .table(StreamTickets::Table)
                    .col(StreamTickets::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(StreamTickets::Table).to_owned())
            .await
    }
}
