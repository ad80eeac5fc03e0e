//! The posts' clock in shards (`api::services::clock` explains the rule): `post_clocks`, one row
//! per shard, each the newest position given by the post writers that lock it. A writer locks one
//! shard (its account's), not a row every writer shares, and readers show entries up to the
//! smallest `at` of all shards: the safe horizon, below which no write in flight can still land.
//!
//! Every shard starts at the posts' single clock of migration 7 (or the newest position given, if
//! that is newer), so nothing new lands behind an old cursor, and that row of `clocks` goes.

use sea_orm_migration::prelude::*;

/// How many shards the posts' clock has: the one number the writers and readers agree on
/// (`api::services::clock::POST_CLOCK_SHARDS` reads it from here).
pub const POST_CLOCK_SHARDS: i64 = 16;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(PostClocks::Table)
            .col(
                ColumnDef::new(PostClocks::Shard)
                    .big_integer()
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new(PostClocks::At).big_integer().not_null())
            .to_owned();
        crate::mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        let db = manager.get_connection();
        let start = "(SELECT MAX(at) FROM ( \
             SELECT at FROM clocks WHERE name = 'posts' \
             UNION ALL SELECT MAX(created_at) FROM posts \
             UNION ALL SELECT MAX(created_at) FROM reposts) AS given)";
        for shard in 0..POST_CLOCK_SHARDS {
            db.execute_unprepared(&format!(
                "INSERT INTO post_clocks (shard, at) SELECT {shard}, COALESCE({start}, 0)"
            ))
            .await?;
        }
        db.execute_unprepared("DELETE FROM clocks WHERE name = 'posts'")
            .await?;
        // PostgreSQL: every post updates its shard, and a sweep the shards behind it, so the
        // table's few rows leave many dead versions, which every read of the horizon scans past
        // (35 pages for 32 rows after a write benchmark: 0.15 ms a read). Vacuumed after every
        // 500 of them, whatever the table's size.
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE post_clocks SET (autovacuum_vacuum_threshold = 500, \
                 autovacuum_vacuum_scale_factor = 0)",
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO clocks (name, at) SELECT 'posts', COALESCE(MAX(at), 0) FROM post_clocks",
        )
        .await?;
        manager
            .drop_table(Table::drop().table(PostClocks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum PostClocks {
    Table,
    Shard,
    At,
}
