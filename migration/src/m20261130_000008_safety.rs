//! Safety: blocks, mutes, reports, and suspension by an operator.
//!
//! - `blocks` and `mutes`: one row per ordered pair (`blocker_id` blocks `blocked_id`, `muter_id`
//!   mutes `muted_id`) since `created_at`, shaped like `follows`: a composite primary key (a repeat
//!   can never make a second row), a `CHECK` against self-rows, `ON DELETE CASCADE` on both sides,
//!   an index for the owner's list newest first and one for the other side (the cascade and "who
//!   blocks me").
//! - `reports`: what a user reported (an account, and optionally one of its posts), kept for the
//!   operators; `resolved_at` is set when an operator resolves it. A report goes with either
//!   account; a reported post that is deleted leaves the report, without the post.
//! - `users.suspended_at`: set while an operator suspends the account.
//! - The `reports` clock (`clocks`, migration 7): the operators' list of reports spans every
//!   reporter, so reports take their positions in commit order from one clock, as posts do.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::m20261121_000003_create_posts::Posts;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A table of user-to-user marks: `blocks` or `mutes`.
struct Marks {
    table: &'static str,
    owner: &'static str,
    other: &'static str,
}

const MARKS: [Marks; 2] = [
    Marks {
        table: "blocks",
        owner: "blocker_id",
        other: "blocked_id",
    },
    Marks {
        table: "mutes",
        owner: "muter_id",
        other: "muted_id",
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for marks in MARKS {
            let (table, owner, other) = (
                Alias::new(marks.table),
                Alias::new(marks.owner),
                Alias::new(marks.other),
            );
            let mut create = Table::create();
            create
                .table(table.clone())
                .col(big_integer(owner.clone()))
                .col(big_integer(other.clone()))
                // Milliseconds since the Unix epoch, in commit order (`api::services::clock`).
                .col(big_integer(Alias::new("created_at")))
                .primary_key(Index::create().col(owner.clone()).col(other.clone()))
                .check(Expr::col(owner.clone()).ne(Expr::col(other.clone())))
                .foreign_key(
                    ForeignKey::create()
                        .name(format!("fk_{}_{}", marks.table, marks.owner))
                        .from(table.clone(), owner.clone())
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name(format!("fk_{}_{}", marks.table, marks.other))
                        .from(table.clone(), other.clone())
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                );
            mysql_table_options(manager, &mut create);
            manager.create_table(create).await?;
            // The owner's list, newest first: equality on the owner, then the keyset order.
            manager
                .create_index(
                    Index::create()
                        .name(format!("idx_{}_{}_created", marks.table, marks.owner))
                        .table(table.clone())
                        .col(owner.clone())
                        .col(Alias::new("created_at"))
                        .col(other.clone())
                        .to_owned(),
                )
                .await?;
            // The other side: the cascade when that account goes, and "who blocks me".
            manager
                .create_index(
                    Index::create()
                        .name(format!("idx_{}_{}", marks.table, marks.other))
                        .table(table)
                        .col(other)
                        .col(owner)
                        .to_owned(),
                )
                .await?;
        }

        let mut reports = Table::create();
        reports
            .table(Reports::Table)
            .col(big_integer(Reports::Id).auto_increment().primary_key())
            .col(big_integer(Reports::ReporterId))
            .col(big_integer(Reports::TargetId))
            .col(big_integer_null(Reports::PostId))
            .col(string_len(Reports::Reason, 1000))
            .col(big_integer(Reports::CreatedAt))
            .col(big_integer_null(Reports::ResolvedAt))
            .check(Expr::col(Reports::ReporterId).ne(Expr::col(Reports::TargetId)))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_reports_reporter")
                    .from(Reports::Table, Reports::ReporterId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_reports_target")
                    .from(Reports::Table, Reports::TargetId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_reports_post")
                    .from(Reports::Table, Reports::PostId)
                    .to(Posts::Table, Posts::Id)
                    .on_delete(ForeignKeyAction::SetNull),
            );
        mysql_table_options(manager, &mut reports);
        manager.create_table(reports).await?;
        // The operators' list, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_reports_created")
                    .table(Reports::Table)
                    .col(Reports::CreatedAt)
                    .col(Reports::Id)
                    .to_owned(),
            )
            .await?;
        // A reporter's open report of a target (one at a time), and the cascades.
        manager
            .create_index(
                Index::create()
                    .name("idx_reports_reporter_target")
                    .table(Reports::Table)
                    .col(Reports::ReporterId)
                    .col(Reports::TargetId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reports_target")
                    .table(Reports::Table)
                    .col(Reports::TargetId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reports_post")
                    .table(Reports::Table)
                    .col(Reports::PostId)
                    .to_owned(),
            )
            .await?;

        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Reports::SuspendedAt).big_integer().null())
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared("INSERT INTO clocks (name, at) VALUES ('reports', 0)")
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM clocks WHERE name = 'reports'")
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Reports::SuspendedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Reports::Table).to_owned())
            .await?;
        for marks in MARKS {
            manager
                .drop_table(Table::drop().table(Alias::new(marks.table)).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Reports {
    Table,
    Id,
    ReporterId,
    TargetId,
    PostId,
    Reason,
    CreatedAt,
    ResolvedAt,
    SuspendedAt,
}
