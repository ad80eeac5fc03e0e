//! The schema of the social API, as one ordered set of migrations that runs unchanged on SQLite,
//! PostgreSQL and MySQL/MariaDB. Every migration has a working `down`.

pub use sea_orm_migration::prelude::*;

mod m20261121_000001_create_users;
mod m20261121_000002_create_follows;
mod m20261121_000003_create_posts;
mod m20261122_000004_cover_posts_created;
mod m20261122_000005_vacuum_often;
mod m20261129_000006_fold_email_keys;
mod m20261130_000007_commit_order_positions;
mod m20261130_000008_safety;
mod m20261130_000009_locked_accounts;
mod m20261130_000010_notifications;
mod m20261201_000011_sessions;
mod m20261202_000012_user_search;
mod m20261203_000013_search_key_fold;
mod m20261204_000014_last_write;
mod m20261205_000015_post_deletions;
mod m20261206_000016_display_name_prefixes;
mod m20261207_000017_operators;
mod m20261207_000018_stream_tickets;
mod m20261207_000019_replies_likes;
mod m20261207_000020_idempotency_keys;
mod m20261207_000021_markers;
mod m20261207_000022_suggestion_dismissals;
mod m20261207_000023_reposts;
mod m20261207_000024_email_tokens;
mod m20261207_000025_outbox;
mod m20261207_000026_archive;
mod m20261207_000027_media;
mod m20261207_000030_push_subscriptions;
mod m20261207_000031_post_clock_shards;
mod m20261208_000032_feeds;

pub use m20261207_000031_post_clock_shards::POST_CLOCK_SHARDS;

/// Applies the schema in order; `Migrator::up(db, None)` runs whatever is pending.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261121_000001_create_users::Migration),
            Box::new(m20261121_000002_create_follows::Migration),
            Box::new(m20261121_000003_create_posts::Migration),
            Box::new(m20261122_000004_cover_posts_created::Migration),
            Box::new(m20261122_000005_vacuum_often::Migration),
            Box::new(m20261129_000006_fold_email_keys::Migration),
            Box::new(m20261130_000007_commit_order_positions::Migration),
            Box::new(m20261130_000008_safety::Migration),
            Box::new(m20261130_000009_locked_accounts::Migration),
            Box::new(m20261130_000010_notifications::Migration),
            Box::new(m20261201_000011_sessions::Migration),
            Box::new(m20261202_000012_user_search::Migration),
            Box::new(m20261203_000013_search_key_fold::Migration),
            Box::new(m20261204_000014_last_write::Migration),
            Box::new(m20261205_000015_post_deletions::Migration),
            Box::new(m20261206_000016_display_name_prefixes::Migration),
            Box::new(m20261207_000017_operators::Migration),
            Box::new(m20261207_000018_stream_tickets::Migration),
            Box::new(m20261207_000019_replies_likes::Migration),
            Box::new(m20261207_000020_idempotency_keys::Migration),
            Box::new(m20261207_000021_markers::Migration),
            Box::new(m20261207_000022_suggestion_dismissals::Migration),
            Box::new(m20261207_000023_reposts::Migration),
            Box::new(m20261207_000024_email_tokens::Migration),
            Box::new(m20261207_000025_outbox::Migration),
            Box::new(m20261207_000026_archive::Migration),
            Box::new(m20261207_000027_media::Migration),
            Box::new(m20261207_000030_push_subscriptions::Migration),
            Box::new(m20261207_000031_post_clock_shards::Migration),
            Box::new(m20261208_000032_feeds::Migration),
        ]
    }
}

/// Table options for MySQL/MariaDB (the other backends have no such options): `utf8mb4` so that
/// emoji and every other Unicode character fit, and a binary collation so that comparisons are
/// exact; case-insensitivity is done with the `*_key` columns.
pub(crate) fn mysql_table_options(manager: &SchemaManager, table: &mut TableCreateStatement) {
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::MySql {
        table.character_set("utf8mb4").collate("utf8mb4_bin");
    }
}
