//! User search's key, folded again: `display_name_key` as migration 12 filled it kept a display
//! name's leading white space (a search's text is trimmed, so `" Bob"` could not be found) and
//! the word-final `ς` (whose capital `Σ` folds to `σ`, so `ΝΊΚΟΣ` missed `Νίκος`). The fold now
//! drops the one and maps the other to `σ` (`api::domain::search_key`); this fills in every key
//! again with it. Nothing to undo: the old keys were the mistake.

use sea_orm_migration::prelude::*;

use crate::m20261202_000012_user_search::fill_keys;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        fill_keys(manager).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
