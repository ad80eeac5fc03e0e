//! Precomputed timelines, "feeds" (`api::services::feeds` explains the design): for readers who
//! follow many accounts, the candidate entries of their timeline, written by a background worker
//! as posts and reposts pass the posts' horizon, so that a timeline read walks the reader's own
//! short list instead of every recent post of the network.
//!
//! - `feeds`: the readers who have a feed (`reader_id`), and from where it is whole: every
//!   candidate entry above `(floor_at, floor_id)` is in `feed_entries` (up to the worker's
//!   position), none at or below it. A floor of `NULL` is a feed asked for and not built yet.
//!   The floor is copied to `users.feed_floor_at`/`feed_floor_id`, which a timeline read has in
//!   hand already (the caller's row), in the same transactions that change it.
//! - `feed_entries`: one row per candidate entry of a reader: `(at, post_id)` is the entry's
//!   position, `source_id` the account whose entry it is (the author of a writing, the reposter
//!   of a repost), `is_repost` which of the two. Candidates, not answers: the timeline's rules
//!   (mutes, blocks, locks, the reply rule, a post once at its newest entry, unfollows) are
//!   applied when it is read, as for the walk. The primary key is the reader's walk newest
//!   first; the entries go with their feed.
//! - `feed_fanout`: one row, the position up to which entries have been fanned out (the worker
//!   locks it, so one worker among all processes writes at a time).

use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Feeds {
    Table,
    ReaderId,
    FloorAt,
    FloorId,
}

#[derive(DeriveIden, Clone, Copy)]
enum FeedEntries {
    Table,
    ReaderId,
    At,
    PostId,
    SourceId,
    IsRepost,
}

#[derive(DeriveIden, Clone, Copy)]
enum FeedFanout {
    Table,
    Id,
    At,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserColumns {
    FeedFloorAt,
    FeedFloorId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [UserColumns::FeedFloorAt, UserColumns::FeedFloorId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(ColumnDef::new(column).big_integer().null())
                        .to_owned(),
                )
                .await?;
        }
        let mut feeds = Table::create();
        feeds
            .table(Feeds::Table)
            .col(big_integer(Feeds::ReaderId).primary_key())
            .col(big_integer_null(Feeds::FloorAt))
            .col(big_integer_null(Feeds::FloorId))
            .foreign_key(
                ForeignKey::create()
                    .name("fk_feeds_reader")
                    .from(Feeds::Table, Feeds::ReaderId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut feeds);
        manager.create_table(feeds.to_owned()).await?;
        let mut entries = Table::create();
        entries
            .table(FeedEntries::Table)
            .col(big_integer(FeedEntries::ReaderId))
            .col(big_integer(FeedEntries::At))
            .col(big_integer(FeedEntries::PostId))
            .col(big_integer(FeedEntries::SourceId))
            .col(boolean(FeedEntries::IsRepost))
            .primary_key(
                Index::create()
                    .col(FeedEntries::ReaderId)
                    .col(FeedEntries::At)
                    .col(FeedEntries::PostId)
                    .col(FeedEntries::SourceId),
            )
            .foreign_key(
                ForeignKey::create()
                    .name("fk_feed_entries_feed")
                    .from(FeedEntries::Table, FeedEntries::ReaderId)
                    .to(Feeds::Table, Feeds::ReaderId)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut entries);
        manager.create_table(entries.to_owned()).await?;
        let mut fanout = Table::create();
        fanout
            .table(FeedFanout::Table)
            .col(big_integer(FeedFanout::Id).primary_key())
            .col(big_integer(FeedFanout::At));
        mysql_table_options(manager, &mut fanout);
        manager.create_table(fanout.to_owned()).await?;
        // Nothing before the posts' horizon needs fanning out: no feed exists yet.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO feed_fanout (id, at) \
                 SELECT 1, COALESCE((SELECT MIN(at) FROM post_clocks), 0)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            FeedEntries::Table.into_iden(),
            Feeds::Table.into_iden(),
            FeedFanout::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        for column in [UserColumns::FeedFloorAt, UserColumns::FeedFloorId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
