//! User search (`GET /users?q=`): a prefix of the username or of the display name, in any letter
//! case, served by index ranges on every backend.
//!
//! - `users.display_name_key`: the display name lower-cased character by character (Rust's
//!   `char::to_lowercase`, the fold of `api::domain::search_key`, which the API uses for new
//!   values and for the text searched for), `NULL` with the display name. Existing rows are
//!   filled in here. At most 100 characters: lower-casing turns one character into at most two
//!   (`İ`), and a display name has at most 50.
//! - Binary collations on both keys, so that a prefix is an exact range of the index
//!   (`key >= :prefix AND key < :prefix_with_its_last_character_incremented`): comparison is by
//!   code point (= UTF-8 byte order). `display_name_key` is created with it (`COLLATE "C"` on
//!   PostgreSQL, `utf8mb4_bin` on MySQL/MariaDB, SQLite's default `BINARY`); on PostgreSQL
//!   `username_key` had the database's default collation, under which (in a language's
//!   collation) `a_b` sorts between `ab` and `ac`, so it moves to `"C"` (its unique index is
//!   rebuilt; byte equality was already what made two keys equal). MySQL/MariaDB tables were
//!   created `utf8mb4_bin` by the first migration, so `username_key` has it already.
//! - `idx_users_display_name_key (display_name_key, username_key)`: the display-name range, and
//!   the username that orders the results and that the cursor compares, read from the index. The
//!   username range uses the unique index that `username_key` already has.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261121_000001_create_users::Users;

/// The widest a key can be: 50 characters, each lower-cased to at most two.
const KEY_CHARS: u32 = 100;
/// Rows read and written per statement while filling in the keys.
const BATCH: u64 = 1_000;
const INDEX: &str = "idx_users_display_name_key";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut column = ColumnDef::new(Search::DisplayNameKey);
        column.string_len(KEY_CHARS).null();
        if let Some(collation) = binary_collation(backend) {
            column.extra(format!("COLLATE {collation}"));
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        if backend == DbBackend::Postgres {
            set_username_key_collation(manager, "\"C\"").await?;
        }
        fill_keys(manager).await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(Users::Table)
                    .col(Search::DisplayNameKey)
                    .col(Users::UsernameKey)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(Users::Table).to_owned())
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            set_username_key_collation(manager, "\"default\"").await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Search::DisplayNameKey)
                    .to_owned(),
            )
            .await
    }
}

/// The collation that compares by code point, named explicitly where the column's default may be
/// another (SQLite's default, `BINARY`, is one).
fn binary_collation(backend: DbBackend) -> Option<&'static str> {
    match backend {
        DbBackend::Postgres => Some("\"C\""),
        DbBackend::MySql => Some("utf8mb4_bin"),
        _ => None,
    }
}

async fn set_username_key_collation(
    manager: &SchemaManager<'_>,
    collation: &str,
) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(&format!(
            "ALTER TABLE users ALTER COLUMN username_key TYPE varchar(30) COLLATE {collation}"
        ))
        .await
        .map(|_| ())
}

/// The display name's search key: `api::domain::search_key` (a migration cannot depend on the API
/// crate; a test checks that the two agree). Since migration 13 it also drops leading white space
/// and folds the final `ς` to `σ`; that migration fills the keys in again with it.
fn search_key(text: &str) -> String {
    text.trim_start()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ς' { 'σ' } else { c })
        .collect()
}

/// Sets `display_name_key` of every account with a display name, `BATCH` rows per `UPDATE`
/// (`CASE id WHEN ... THEN ... END`).
pub(crate) async fn fill_keys(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after = 0_i64;
    loop {
        let rows = db
            .query_all(
                Query::select()
                    .columns([Users::Id, Users::DisplayName])
                    .from(Users::Table)
                    .and_where(Expr::col(Users::Id).gt(after))
                    .and_where(Expr::col(Users::DisplayName).is_not_null())
                    .order_by(Users::Id, Order::Asc)
                    .limit(BATCH),
            )
            .await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.try_get("", "id")?;
        let mut keys = CaseStatement::new();
        let mut ids = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let name: String = row.try_get("", "display_name")?;
            keys = keys.case(Expr::col(Users::Id).eq(id), search_key(&name));
            ids.push(id);
        }
        db.execute(
            Query::update()
                .table(Users::Table)
                .value(Search::DisplayNameKey, keys)
                .and_where(Expr::col(Users::Id).is_in(ids)),
        )
        .await?;
    }
}

#[derive(DeriveIden)]
enum Search {
    DisplayNameKey,
}
