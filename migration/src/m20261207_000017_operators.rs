//! `users.is_operator`: the operator role belongs to an account, not to a name. Before it, any
//! account whose username was in `ADMIN_USERNAMES` was an operator, so whoever registered the name
//! of a removed operator (or of a listed name nobody had yet) became one. The role is granted and
//! revoked by the server's own command (`social operator grant NAME`), or at start-up to the
//! accounts `ADMIN_USERNAMES` names that exist then, and dies with the account. Adding a column
//! with a constant default rewrites no rows on PostgreSQL 11+, MariaDB 10.3+ or SQLite.

use sea_orm_migration::prelude::*;

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Operators {
    IsOperator,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Operators::IsOperator)
                            .boolean()
                            .not_null()
                            .default(false),
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
                    .drop_column(Operators::IsOperator)
                    .to_owned(),
            )
            .await
    }
}
