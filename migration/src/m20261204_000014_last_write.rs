//! `users.last_write_at`: when the account last changed something (milliseconds since the Unix
//! epoch; 0 for never). Every write stamps its caller's row under the lock it already takes, so
//! that a server reading from a standby sends a recent writer's reads to the primary instead
//! (read-your-writes). Adding a column with a constant default rewrites no rows on PostgreSQL
//! 11+, MariaDB 10.3+ or SQLite.

use sea_orm_migration::prelude::*;

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LastWrite {
    LastWriteAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(LastWrite::LastWriteAt)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(LastWrite::LastWriteAt)
                    .to_owned(),
            )
            .await
    }
}
