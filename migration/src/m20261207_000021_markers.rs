//! `markers`: a reading position that follows the user from device to device (`GET`/`POST
//! /markers`), one row per user. The timeline marker is a position in the user's timeline; the
//! notifications marker's position is `users.notifications_read_id` itself (the read mark of
//! `POST /notifications/read`: one state, two ways to move it), and this row keeps when it last
//! moved and how often. Each marker's `version` grows by one at each change; `*_session` is the
//! session that made the last change (its own streams are not told of it); `changed_at` is when
//! either last moved, which the pollers of other processes read (MySQL/MariaDB, which has no
//! notification channel). The row goes with its account.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Markers {
    Table,
    UserId,
    TimelineAt,
    TimelineId,
    TimelineUpdatedAt,
    TimelineVersion,
    TimelineSession,
    NotificationsUpdatedAt,
    NotificationsVersion,
    NotificationsSession,
    ChangedAt,
}

#[derive(DeriveIden)]
enum ReadMark {
    NotificationsReadId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Markers::Table)
            .col(big_integer(Markers::UserId).primary_key())
            .col(big_integer_null(Markers::TimelineAt))
            .col(big_integer_null(Markers::TimelineId))
            .col(big_integer_null(Markers::TimelineUpdatedAt))
            .col(big_integer(Markers::TimelineVersion).default(0))
            .col(string_len_null(Markers::TimelineSession, 32))
            .col(big_integer_null(Markers::NotificationsUpdatedAt))
            .col(big_integer(Markers::NotificationsVersion).default(0))
            .col(string_len_null(Markers::NotificationsSession, 32))
            .col(big_integer(Markers::ChangedAt).default(0))
            // A user's markers go with the account.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_markers_user")
                    .from(Markers::Table, Markers::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // The pollers' look at the markers moved in the last seconds.
        manager
            .create_index(
                Index::create()
                    .name("idx_markers_changed")
                    .table(Markers::Table)
                    .col(Markers::ChangedAt)
                    .to_owned(),
            )
            .await?;
        // Read marks set before markers existed become notifications markers of version 1, moved
        // now (when is not known).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let existing = Query::select()
            .column(Users::Id)
            .expr(Expr::val(now))
            .expr(Expr::val(1))
            .expr(Expr::val(now))
            .from(Users::Table)
            .and_where(Expr::col(ReadMark::NotificationsReadId).gt(0))
            .to_owned();
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Markers::Table)
                    .columns([
                        Markers::UserId,
                        Markers::NotificationsUpdatedAt,
                        Markers::NotificationsVersion,
                        Markers::ChangedAt,
                    ])
                    .select_from(existing)
                    .map_err(|e| DbErr::Migration(e.to_string()))?
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Markers::Table).to_owned())
            .await
    }
}
