//! `display_name_prefixes`: user search's display-name half as one index range in username order.
//!
//! Search answers the users whose username or display name starts with `q`, ordered by username.
//! The username half is a range of `username_key`'s unique index, read in order and stopped at a
//! page. The display-name half had no such index: `(display_name_key, username_key)` gives the
//! matches of a prefix in display-name order, so a page either sorted every match (`q=u`: every
//! account) or walked the usernames in order looking for matching display names (`q=user 99` on
//! the benchmark's data: 73 ms, growing with the number of accounts).
//!
//! Here every account with a display name has one row per prefix of its `display_name_key`, 1 to
//! 30 characters long (the longest `q`; a longer key, made longer by lower-casing, is looked up
//! by its first 30 and checked against the whole key) and not ending in white space (no trimmed
//! `q` does, and MySQL/MariaDB would take `"mary "` for a second `"mary"`), with its
//! `username_key`. The primary key
//! `(prefix, username_key)` is then the display-name matches of a prefix in username order: a
//! page reads its rows after the cursor and stops. Rows are written with the display name, in the
//! same transaction (register, `PATCH /users/me`), and go with the account (`ON DELETE
//! CASCADE`, served by the index on `user_id`). Both key columns compare by code point, like
//! `users.username_key` (`COLLATE "C"` on PostgreSQL, the tables' `utf8mb4_bin` on MySQL/MariaDB,
//! SQLite's `BINARY`), so the order and the cursor are the username half's.
//!
//! The existing accounts' rows are filled in here from their keys. Search no longer reads
//! `idx_users_display_name_key` (migration 12), so it goes (`down` builds it again).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261121_000001_create_users::Users;
use crate::mysql_table_options;

/// The longest prefix stored, in characters (`api::domain::SEARCH_PREFIX_CHARS`).
const PREFIX_CHARS: usize = 30;
/// Accounts read per batch while filling in the rows.
const BATCH: u64 = 500;
/// Rows written per `INSERT` (three values each, under every backend's limit on bound values).
const ROWS_PER_INSERT: usize = 5_000;
/// Migration 12's index of display-name ranges, which search read before this migration.
const OLD_INDEX: &str = "idx_users_display_name_key";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DisplayNamePrefixes {
    Table,
    Prefix,
    UsernameKey,
    UserId,
}

#[derive(DeriveIden)]
enum Search {
    DisplayNameKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let key_column = |name: DisplayNamePrefixes| {
            let mut column = string_len(name, 30);
            // Code point order, as `users.username_key` has since migration 12.
            if backend == DbBackend::Postgres {
                column.extra("COLLATE \"C\"");
            }
            column
        };
        let mut table = Table::create();
        table
            .table(DisplayNamePrefixes::Table)
            .col(key_column(DisplayNamePrefixes::Prefix))
            .col(key_column(DisplayNamePrefixes::UsernameKey))
            .col(big_integer(DisplayNamePrefixes::UserId))
            // A prefix's accounts in username order: the search's range. One row per account
            // and prefix.
            .primary_key(
                Index::create()
                    .col(DisplayNamePrefixes::Prefix)
                    .col(DisplayNamePrefixes::UsernameKey),
            )
            // The rows go with the account.
            .foreign_key(
                ForeignKey::create()
                    .name("fk_display_name_prefixes_user_id")
                    .from(DisplayNamePrefixes::Table, DisplayNamePrefixes::UserId)
                    .to(Users::Table, Users::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            );
        mysql_table_options(manager, &mut table);
        manager.create_table(table).await?;
        // The cascade, and replacing an account's rows when its display name changes.
        manager
            .create_index(
                Index::create()
                    .name("idx_display_name_prefixes_user_id")
                    .table(DisplayNamePrefixes::Table)
                    .col(DisplayNamePrefixes::UserId)
                    .to_owned(),
            )
            .await?;
        fill_in(manager).await?;
        manager
            .drop_index(Index::drop().name(OLD_INDEX).table(Users::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(OLD_INDEX)
                    .table(Users::Table)
                    .col(Search::DisplayNameKey)
                    .col(Users::UsernameKey)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DisplayNamePrefixes::Table).to_owned())
            .await
    }
}

/// The prefixes of `key` stored for search: 1 to [`PREFIX_CHARS`] characters, less those that end
/// in white space (`api::domain::search_prefixes`, which says why; a test holds the rows written
/// here to it).
fn prefixes(key: &str) -> impl Iterator<Item = &str> {
    key.char_indices()
        .take(PREFIX_CHARS)
        .filter(|(_, c)| !c.is_whitespace())
        .map(|(at, c)| &key[..at + c.len_utf8()])
}

/// Writes the rows of every account with a display name, [`BATCH`] accounts at a time.
async fn fill_in(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after = 0_i64;
    loop {
        let accounts = db
            .query_all(
                Query::select()
                    .columns([Users::Id, Users::UsernameKey])
                    .column(Search::DisplayNameKey)
                    .from(Users::Table)
                    .and_where(Expr::col(Users::Id).gt(after))
                    .and_where(Expr::col(Search::DisplayNameKey).is_not_null())
                    .order_by(Users::Id, Order::Asc)
                    .limit(BATCH),
            )
            .await?;
        let Some(last) = accounts.last() else {
            return Ok(());
        };
        after = last.try_get("", "id")?;
        let mut rows = Vec::new();
        for account in &accounts {
            let id: i64 = account.try_get("", "id")?;
            let username_key: String = account.try_get("", "username_key")?;
            let key: String = account.try_get("", "display_name_key")?;
            rows.extend(prefixes(&key).map(|prefix| (prefix.to_owned(), username_key.clone(), id)));
        }
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let mut insert = Query::insert();
            insert.into_table(DisplayNamePrefixes::Table).columns([
                DisplayNamePrefixes::Prefix,
                DisplayNamePrefixes::UsernameKey,
                DisplayNamePrefixes::UserId,
            ]);
            for (prefix, username_key, id) in chunk {
                insert.values_panic([
                    prefix.as_str().into(),
                    username_key.as_str().into(),
                    (*id).into(),
                ]);
            }
            db.execute(&insert).await?;
        }
    }
}
