//! Emails are unique by Unicode case folding, not lower-casing: `xσ@example.com` and
//! `xς@example.com` are one address (both are `XΣ@EXAMPLE.COM` in capitals), and folding can make a
//! key longer than its address (`İ` folds to two characters). This migration widens `email_key`
//! to what the folded key of a 254-character address can be, then rebuilds every key that folding
//! changes.
//!
//! Two accounts whose addresses fold alike were both registered under lower-cased keys. Only one
//! can hold the folded key: the one already holding it, else the oldest. The others keep their old
//! keys (still unique; they log in by username, since their address now names the first account)
//! and are logged by id for the operators.

use std::collections::BTreeMap;

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::m20261121_000001_create_users::Users;

/// The longest a folded key can be: an address is at most 254 characters, and full case folding
/// turns one character into at most three (`ΐ` into `ΐ`).
const KEY_CHARS: u32 = 254 * 3;
/// The width before this migration.
const OLD_KEY_CHARS: u32 = 254;
/// Rows read per query while rebuilding keys.
const BATCH: u64 = 1_000;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_key_width(manager, KEY_CHARS).await?;
        rekey(manager, |email| {
            unicase::UniCase::new(email).to_folded_case()
        })
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rekey(manager, str::to_lowercase).await?;
        set_key_width(manager, OLD_KEY_CHARS).await
    }
}

/// SQLite does not enforce `varchar` lengths (and cannot alter a column), so only PostgreSQL and
/// MySQL change; the unique index stays in place on both.
async fn set_key_width(manager: &SchemaManager<'_>, chars: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Sqlite {
        return Ok(());
    }
    manager
        .alter_table(
            Table::alter()
                .table(Users::Table)
                .modify_column(ColumnDef::new(Users::EmailKey).string_len(chars).not_null())
                .to_owned(),
        )
        .await
}

/// Sets every account's `email_key` to `key(email)` where that changes it, keeping keys unique as
/// the module documentation says.
async fn rekey(manager: &SchemaManager<'_>, key: impl Fn(&str) -> String) -> Result<(), DbErr> {
    let db = manager.get_connection();
    // New key -> ids (ascending) of the accounts whose key would change to it.
    let mut changes: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut after = 0_i64;
    loop {
        let rows = db
            .query_all(
                Query::select()
                    .columns([Users::Id, Users::Email, Users::EmailKey])
                    .from(Users::Table)
                    .and_where(Expr::col(Users::Id).gt(after))
                    .order_by(Users::Id, Order::Asc)
                    .limit(BATCH),
            )
            .await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.try_get("", "id")?;
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let email: String = row.try_get("", "email")?;
            let old: String = row.try_get("", "email_key")?;
            let new = key(&email);
            if new != old {
                changes.entry(new).or_default().push(id);
            }
        }
    }
    for (new, ids) in changes {
        let held = db
            .query_one(
                Query::select()
                    .column(Users::Id)
                    .from(Users::Table)
                    .and_where(Expr::col(Users::EmailKey).eq(new.as_str())),
            )
            .await?
            .is_some();
        let (winner, kept) = if held {
            (None, &ids[..])
        } else {
            (ids.first(), ids.get(1..).unwrap_or_default())
        };
        if let Some(id) = winner {
            db.execute(
                Query::update()
                    .table(Users::Table)
                    .value(Users::EmailKey, new.as_str())
                    .and_where(Expr::col(Users::Id).eq(*id)),
            )
            .await?;
        }
        if !kept.is_empty() {
            tracing::warn!(
                accounts = ?kept,
                "these accounts' emails now match another account's; they keep their old keys and \
                 log in by username"
            );
        }
    }
    Ok(())
}
