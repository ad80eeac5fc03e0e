//! Email verification and password reset: `users.email_verified_at`, and `email_tokens`, the
//! tokens mailed for both, stored only as their SHA-256. A token is single-use (`used_at` is set
//! by the one `UPDATE` that may take it) and lives until `expires_at` (24 hours to verify, 30
//! minutes to reset); used and expired rows are swept. Adding a nullable column rewrites no rows.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Verified {
    EmailVerifiedAt,
}

#[derive(DeriveIden)]
enum EmailTokens {
    Table,
    Hash,
    UserId,
    Purpose,
    Email,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Verified::EmailVerifiedAt)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        let mut table = Table::create();
        table
            .table(EmailTokens::Table)
            // SHA-256 (hex) of the token: the token itself is kept nowhere.
            .col(string_len(EmailTokens::Hash, 64).primary_key())
            .col(big_integer(EmailTokens::UserId))
            // `verify` or `reset`.
            .col(string_len(EmailTokens::Purpose, 16))
            // The address a verification token was mailed to: it confirms that one only.
            .col(string_len(EmailTokens::Email, 254))
            .col(big_integer(EmailTokens::CreatedAt))
            .col(big_integer(EmailTokens::ExpiresAt))
            .col(big_integer_null(EmailTokens::UsedAt))
            // Tokens go with their account.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_email_tokens_user")
                    .from(EmailTokens::Table, EmailTokens::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // A user's newest token of a purpose: the once-a-minute check of verification mail, and
        // the reset tokens a new one replaces.
        manager
            .create_index(
                Index::create()
                    .name("idx_email_tokens_user_purpose_created")
                    .table(EmailTokens::Table)
                    .col(EmailTokens::UserId)
                    .col(EmailTokens::Purpose)
                    .col(EmailTokens::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // The sweep of expired tokens.
        manager
            .create_index(
                Index::create()
                    .name("idx_email_tokens_expires")
                    .table(EmailTokens::Table)
                    .col(EmailTokens::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EmailTokens::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Verified::EmailVerifiedAt)
                    .to_owned(),
            )
            .await
    }
}
