//! Positions in commit order, so that paging toward newer items never skips one
//! (`api::services::clock` explains the rule):
//!
//! - `clocks`, one row per ordered stream that spans many users; today `posts`, whose `at` is the
//!   newest `created_at` given to a post. Post writers lock it, so posts get increasing
//!   timestamps in the order they commit.
//! - `users.list_clock`: the newest `created_at` given to an item of one of the user's own lists
//!   (followers, following). It only grows, even when that item is removed.
//!
//! Both start at the newest position already given, so nothing new lands behind an old cursor.

use sea_orm_migration::prelude::*;

use crate::m20261121_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut clocks = Table::create()
            .table(Clocks::Table)
            .col(
                ColumnDef::new(Clocks::Name)
                    .string_len(32)
                    .not_null()
                    .primary_key(),
            )
            .col(ColumnDef::new(Clocks::At).big_integer().not_null())
            .to_owned();
        crate::mysql_table_options(manager, &mut clocks);
        manager.create_table(clocks).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(
                        ColumnDef::new(Clocks::ListClock)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "INSERT INTO clocks (name, at) SELECT 'posts', COALESCE(MAX(created_at), 0) FROM posts",
        )
        .await?;
        for side in ["followed_id", "follower_id"] {
            db.execute_unprepared(&format!(
                "UPDATE users SET list_clock = (SELECT MAX(created_at) FROM follows \
                 WHERE follows.{side} = users.id) \
                 WHERE (SELECT MAX(created_at) FROM follows WHERE follows.{side} = users.id) \
                 > list_clock"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Clocks::ListClock)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(Clocks::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Clocks {
    Table,
    Name,
    At,
    ListClock,
}
