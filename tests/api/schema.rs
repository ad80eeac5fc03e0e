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

#[tokio::test]
async fn every_migration_can_be_undone_and_redone() {
    use migration::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    let applied = Migrator::get_applied_migrations(&app.db)
        .await
        .unwrap()
        .len();
    assert_eq!(applied, Migrator::migrations().len());
    // One at a time, newest first, so each `down` runs against the schema its `up` left.
    for left in (0..applied).rev() {
        Migrator::down(&app.db, Some(1)).await.unwrap();
        let now = Migrator::get_applied_migrations(&app.db)
            .await
            .unwrap()
            .len();
        assert_eq!(now, left);
    }
    Migrator::up(&app.db, None).await.unwrap();
    // The redone schema serves the API as before.
    let john = app.register("john").await;
    let jane = app.register("jane").await;
    assert_eq!(app.follow(&john, "jane").await.status, 201);
    app.post_as(&jane, "hello again").await;
    assert_eq!(app.timeline_bodies(&john).await, ["hello again"]);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn postgresql_vacuums_posts_and_follows_after_thousands_of_writes() {
    if backend() != DbBackend::Postgres {
        return; // Only PostgreSQL has a visibility map for index-only scans to depend on.
    }
    let app = spawn_app().await;
    for (table, threshold) in [("posts", "2000"), ("follows", "5000")] {
        let row = app
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = '{table}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        let options: String = row.try_get_by_index(0).unwrap();
        for expected in [
            format!("autovacuum_vacuum_insert_threshold={threshold}"),
            "autovacuum_vacuum_insert_scale_factor=0".to_owned(),
        ] {
            assert!(options.contains(&expected), "{table}: {options}");
        }
    }
}
