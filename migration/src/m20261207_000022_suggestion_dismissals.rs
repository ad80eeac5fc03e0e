//! `suggestion_dismissals`: accounts a user asked never to be suggested again
//! (`DELETE /suggestions/{username}`). One row per ordered pair, shaped like `mutes`; goes with
//! either account.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SuggestionDismissals {
    Table,
    UserId,
    DismissedId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(SuggestionDismissals::Table)
            .col(big_integer(SuggestionDismissals::UserId))
            .col(big_integer(SuggestionDismissals::DismissedId))
            .col(big_integer(SuggestionDismissals::CreatedAt))
            // One dismissal per pair: a repeat changes nothing.
            .primary_key(
                Index::create()
                    .col(SuggestionDismissals::UserId)
                    .col(SuggestionDismissals::DismissedId),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_suggestion_dismissals_user")
                    .from(SuggestionDismissals::Table, SuggestionDismissals::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_suggestion_dismissals_dismissed")
                    .from(
                        SuggestionDismissals::Table,
                        SuggestionDismissals::DismissedId,
                    )
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // The cascade from the dismissed account.
        manager
            .create_index(
                Index::create()
                    .name("idx_suggestion_dismissals_dismissed")
                    .table(SuggestionDismissals::Table)
                    .col(SuggestionDismissals::DismissedId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SuggestionDismissals::Table).to_owned())
            .await
    }
}
