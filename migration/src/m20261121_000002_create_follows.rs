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
            .table(Follows::Table)
            .if_not_exists()
            .col(big_integer(Follows::FollowerId))
            .col(big_integer(Follows::FollowedId))
            // Milliseconds since the Unix epoch, when the follow began.
            .col(big_integer(Follows::CreatedAt))
            // One follow per ordered pair: a repeated follow can never create a second row.
            .primary_key(
                Index::create()
                    .col(Follows::FollowerId)
                    .col(Follows::FollowedId),
            )
            // Nobody follows themselves, whatever the application does.
            .check(Expr::col(Follows::FollowerId).ne(Expr::col(Follows::FollowedId)))
            // Removing an account removes every follow in which it is either side.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_follows_follower")
                    .from(Follows::Table, Follows::FollowerId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_follows_followed")
                    .from(Follows::Table, Follows::FollowedId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;

        // "Who follows X, most recent first": equality on followed_id, then the keyset order.
        manager
            .create_index(
                Index::create()
                    .name("idx_follows_followed_created")
                    .table(Follows::Table)
                    .col(Follows::FollowedId)
                    .col(Follows::CreatedAt)
                    .col(Follows::FollowerId)
                    .to_owned(),
            )
            .await?;
        // "Whom X follows, most recent first": equality on follower_id, then the keyset order.
        manager
            .create_index(
                Index::create()
                    .name("idx_follows_follower_created")
                    .table(Follows::Table)
                    .col(Follows::FollowerId)
                    .col(Follows::CreatedAt)
                    .col(Follows::FollowedId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Follows::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Follows {
    Table,
    FollowerId,
    FollowedId,
    CreatedAt,
}
