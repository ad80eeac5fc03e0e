//! Notifications.
//!
//! - `notifications`: `account_id` did something (`kind`: `follow`, `follow_request`,
//!   `follow_accepted`) that concerns `recipient_id`, at `created_at` (in commit order on the
//!   recipient's list clock). Goes with either account. Indexes: the recipient's list newest
//!   first, the recipient's ids (what is unread lies above the read mark), the recipient's
//!   notifications by account and kind (one of each), and the account's side (removals).
//! - `users.notifications_read_id`: every notification of the user with an id up to it is read.
//! - `users.unread_notifications`: how many lie above it, changed in the transactions that insert,
//!   delete or read them, so that reading the count never counts rows.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;
use Notifications as N;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            ReadState::NotificationsReadId,
            ReadState::UnreadNotifications,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(ColumnDef::new(column).big_integer().not_null().default(0))
                        .to_owned(),
                )
                .await?;
        }
        let mut table = Table::create();
        table
            .table(N::Table)
            .col(big_integer(N::Id).auto_increment().primary_key())
            .col(big_integer(N::RecipientId))
            .col(big_integer(N::AccountId))
            .col(string_len(N::Kind, 32))
            .col(big_integer(N::CreatedAt))
            .check(Expr::col(N::RecipientId).ne(Expr::col(N::AccountId)))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_notifications_recipient")
                    .from(N::Table, N::RecipientId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_notifications_account")
                    .from(N::Table, N::AccountId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        let indexes: [(&str, &[N]); 4] = [
            (
                "idx_notifications_recipient_created",
                &[N::RecipientId, N::CreatedAt, N::Id],
            ),
            ("idx_notifications_recipient_id", &[N::RecipientId, N::Id]),
            (
                "idx_notifications_recipient_account",
                &[N::RecipientId, N::AccountId, N::Kind],
            ),
            ("idx_notifications_account", &[N::AccountId]),
        ];
        for (name, columns) in indexes {
            let mut index = Index::create();
            index.name(name).table(N::Table);
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(N::Table).to_owned())
            .await?;
        for column in [
            ReadState::NotificationsReadId,
            ReadState::UnreadNotifications,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Notifications {
    Table,
    Id,
    RecipientId,
    AccountId,
    Kind,
    CreatedAt,
}

/// The read mark and the counter on `users`.
#[derive(DeriveIden, Clone, Copy)]
enum ReadState {
    NotificationsReadId,
    UnreadNotifications,
}
