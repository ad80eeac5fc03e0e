use sea_orm_migration::{prelude::*, schema::*};

use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(Users::Table)
            .if_not_exists()
            .col(big_pk_auto(Users::Id))
            // As registered, for display.
            .col(string_len(Users::Username, 30))
            // Lower-cased username: a unique index on it makes usernames case-insensitively unique
            // on every backend, whatever its collation.
            .col(string_len_uniq(Users::UsernameKey, 30))
            .col(string_len(Users::Email, 254))
            // Lower-cased email, unique for the same reason.
            .col(string_len_uniq(Users::EmailKey, 254))
            .col(string_len(Users::PasswordHash, 255))
            .col(string_len_null(Users::DisplayName, 50))
            .col(string_len_null(Users::Bio, 500))
            // Milliseconds since the Unix epoch: an integer orders and compares the same way on
            // SQLite, PostgreSQL and MySQL, which their timestamp types do not.
            .col(big_integer(Users::CreatedAt))
            // Denormalised counts, kept in the same transaction as every change to the rows they
            // count, so that reading a profile never counts rows.
            .col(big_integer(Users::FollowersCount).default(0))
            .col(big_integer(Users::FollowingCount).default(0))
            .col(big_integer(Users::PostsCount).default(0));
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub(crate) enum Users {
    Table,
    Id,
    Username,
    UsernameKey,
    Email,
    EmailKey,
    PasswordHash,
    DisplayName,
    Bio,
    CreatedAt,
    FollowersCount,
    FollowingCount,
    PostsCount,
}
