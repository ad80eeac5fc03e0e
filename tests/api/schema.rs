//! The integrity rules live in the schema: checked here on the real migrations of each backend.

use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use crate::helpers::{backend, spawn_app};

#[tokio::test]
async fn sqlite_enforces_foreign_keys_on_every_pooled_connection() {
    if backend() != DbBackend::Sqlite {
        return; // PostgreSQL and MySQL always enforce them.
    }
    let app = spawn_app().await;
    // Hold five transactions at once: each is a different pooled connection (the pool size is 5).
    let mut transactions = Vec::new();
    for _ in 0..5 {
        transactions.push(app.db.begin().await.unwrap());
    }
    for txn in &transactions {
        let row = txn
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA foreign_keys",
            ))
            .await
            .unwrap()
            .unwrap();
        let enabled: i32 = row.try_get_by_index(0).unwrap();
        assert_eq!(enabled, 1, "a pooled connection has foreign keys off");
    }
}

#[tokio::test]
async fn the_schema_refuses_self_follows_and_follows_of_missing_users() {
    let app = spawn_app().await;
    app.register("john").await;
    let id: i64 = app.user_id("john").await;
    let insert = |follower: i64, followed: i64| {
        use sea_orm::{ActiveModelTrait, Set};
        entity::follow::ActiveModel {
            follower_id: Set(follower),
            followed_id: Set(followed),
            created_at: Set(0),
        }
        .insert(&app.db)
    };
    assert!(
        insert(id, id).await.is_err(),
        "CHECK (follower_id <> followed_id)"
    );
    assert!(
        insert(id, id + 1000).await.is_err(),
        "foreign key on followed_id"
    );
    assert!(
        insert(id + 1000, id).await.is_err(),
        "foreign key on follower_id"
    );
}
