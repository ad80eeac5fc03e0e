//! `push_subscriptions`: where a session's notifications are pushed (Web Push, RFC 8030), one per
//! session: the push service's `endpoint`, the browser's keys (`p256dh`, the subscription's P-256
//! public key, and `auth`, its 16-byte secret; base64url, as the browser gives them), and which
//! notification types it wants (`alert_*`).
//!
//! A subscription ends with its session (`session_id` cascades: logout, a deleted session, a
//! password change) and with its account (`user_id` cascades). Index: the recipient's
//! subscriptions, the one query a notification makes to decide whether it is pushed.

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PushSubscriptions {
    Table,
    Id,
    SessionId,
    UserId,
    Endpoint,
    P256dh,
    Auth,
    AlertFollow,
    AlertFollowRequest,
    AlertFollowAccepted,
    AlertLike,
    AlertRepost,
    AlertReply,
    CreatedAt,
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
            .table(PushSubscriptions::Table)
            .col(big_pk_auto(PushSubscriptions::Id))
            // One subscription per session: a new one replaces the old (unique index below).
            .col(string_len(PushSubscriptions::SessionId, 32))
            .col(big_integer(PushSubscriptions::UserId))
            .col(string_len(PushSubscriptions::Endpoint, 1000))
            .col(string_len(PushSubscriptions::P256dh, 100))
            .col(string_len(PushSubscriptions::Auth, 32))
            .col(boolean(PushSubscriptions::AlertFollow))
            .col(boolean(PushSubscriptions::AlertFollowRequest))
            .col(boolean(PushSubscriptions::AlertFollowAccepted))
            .col(boolean(PushSubscriptions::AlertLike))
            .col(boolean(PushSubscriptions::AlertRepost))
            .col(boolean(PushSubscriptions::AlertReply))
            .col(big_integer(PushSubscriptions::CreatedAt))
            // A subscription lives as long as its session.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_push_subscriptions_session")
                    .from(PushSubscriptions::Table, PushSubscriptions::SessionId)
                    .to(Sessions::Table, Sessions::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            // And as long as its account.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_push_subscriptions_user")
                    .from(PushSubscriptions::Table, PushSubscriptions::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_push_subscriptions_session")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::SessionId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A notification's look for its recipient's subscriptions.
        manager
            .create_index(
                Index::create()
                    .name("idx_push_subscriptions_user")
                    .table(PushSubscriptions::Table)
                    .col(PushSubscriptions::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PushSubscriptions::Table).to_owned())
            .await
    }
}
