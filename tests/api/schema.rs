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

/// `users::lock_counting` knows a live caller by the rows its stamp matched: an update that leaves
/// a row as it was must still count it. (MySQL counts changed rows unless the client asks for
/// found rows, as sqlx does; a stamp in the millisecond of the previous one changes nothing.)
#[tokio::test]
async fn an_update_that_changes_nothing_still_counts_the_row_it_matched() {
    use entity::user;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app().await;
    app.register("ann").await;
    let unchanged = user::Entity::update_many()
        .col_expr(
            user::Column::LastWriteAt,
            Expr::col(user::Column::LastWriteAt),
        )
        .filter(user::Column::Username.eq("ann"))
        .exec(&app.db)
        .await
        .unwrap();
    assert_eq!(unchanged.rows_affected, 1, "on {:?}", backend());
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
async fn migration_6_rekeys_emails_by_case_folding_and_keeps_colliding_accounts_apart() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
    let app = spawn_app().await;
    // Each phase on a connection of its own: PostgreSQL refuses to run a statement prepared
    // before a migration changed the type of a column it returns. (A server migrates before its
    // first query, so only this test meets it.)
    let connect = || Database::connect(app.database_url.as_str());
    let account = |i: usize, email: &str, key: String| entity::user::ActiveModel {
        username: Set(format!("user{i}")),
        username_key: Set(format!("user{i}")),
        email: Set(email.to_owned()),
        email_key: Set(key),
        password_hash: Set("not a hash".into()),
        created_at: Set(i as i64),
        followers_count: Set(0),
        following_count: Set(0),
        posts_count: Set(0),
        ..Default::default()
    };
    // Accounts as the lower-casing schema registered them, oldest first.
    let accounts = [
        // Already folded: unchanged.
        ("xσ@example.com", "xσ@example.com"),
        // Folds to the first one's key, which it keeps: this one keeps its own.
        ("xς@example.com", "xς@example.com"),
        // Folds to a key nobody holds: changes.
        ("ΣΑΣ@example.com", "σας@example.com"),
        // Two that fold alike to a key nobody holds: the older gets it, the other keeps its own.
        ("ﬆ@example.com", "ﬆ@example.com"),
        ("ſt@example.com", "ſt@example.com"),
    ];
    // Back to before migration 6 (7 goes first).
    let before = connect().await.unwrap();
    undo_to(&before, 5).await;
    for (i, (email, key)) in accounts.iter().enumerate() {
        entity::user::Entity::insert(account(i, email, (*key).to_owned()))
            .exec_without_returning(&before)
            .await
            .unwrap();
    }
    before.close().await.unwrap();
    // Read and written column by column: the accounts are written before migration 7 adds a
    // column that the entity has.
    let keys = |db: sea_orm::DatabaseConnection| async move {
        let keys: Vec<String> = entity::user::Entity::find()
            .select_only()
            .column(entity::user::Column::EmailKey)
            .filter(entity::user::Column::Username.starts_with("user"))
            .order_by_asc(entity::user::Column::Id)
            .into_tuple()
            .all(&db)
            .await
            .unwrap();
        db.close().await.unwrap();
        keys
    };

    let after = connect().await.unwrap();
    Migrator::up(&after, None).await.unwrap();
    // The new width holds the longest key on every backend: 254 characters that fold to three
    // each (U+0390) but for `@` and `.com`.
    let long = format!("{}@{}.com", "\u{390}".repeat(64), "\u{390}".repeat(185));
    assert_eq!(long.chars().count(), 254);
    let key = api::domain::Email::parse(&long).unwrap().key();
    entity::user::Entity::insert(account(9, &long, key))
        .exec_without_returning(&after)
        .await
        .unwrap();
    entity::user::Entity::delete_many()
        .filter(entity::user::Column::Username.eq("user9"))
        .exec(&after)
        .await
        .unwrap();
    assert_eq!(
        keys(after).await,
        [
            "xσ@example.com",
            "xς@example.com",
            "σασ@example.com",
            "st@example.com",
            "ſt@example.com"
        ]
    );

    // And down puts the lower-cased keys back.
    let undone = connect().await.unwrap();
    undo_to(&undone, 5).await;
    let expected: Vec<String> = accounts.iter().map(|(_, key)| (*key).to_owned()).collect();
    assert_eq!(keys(undone).await, expected);
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

/// Migration 7 starts the clocks at the newest position already given, so that nothing written
/// after it lands behind a cursor issued before it, even one of an item stamped by a host whose
/// clock ran ahead.
#[tokio::test]
async fn migration_7_starts_the_clocks_after_every_position_given() {
    use migration::{Migrator, MigratorTrait};
    let app = spawn_app().await;
    let john = app.register("john").await;
    let jane = app.register("jane").await;
    app.follow(&john, "jane").await.expect(201);
    app.post_as(&jane, "from the future").await;
    undo_to(&app.db, 6).await;
    // A day ahead of every clock here.
    let ahead = api::time::now_millis() + 86_400_000;
    for sql in [
        format!("UPDATE follows SET created_at = {ahead}"),
        format!("UPDATE posts SET created_at = {ahead}"),
    ] {
        app.db.execute_unprepared(&sql).await.unwrap();
    }
    Migrator::up(&app.db, None).await.unwrap();
    // Undoing migration 11 ended every session.
    let john = crate::helpers::TestUser {
        token: app
            .post(
                "/auth/login",
                None,
                &serde_json::json!({"username": "john", "password": "password-of-john"}),
            )
            .await
            .expect(200)["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
    };

    app.register("mary").await;
    app.follow(&john, "mary").await.expect(201);
    let post = app.post_as(&john, "now").await;
    let following = app.get("/users/john/following", None).await.expect(200);
    assert_eq!(following["items"][0]["user"]["username"], "mary");
    assert_eq!(following["items"][1]["user"]["username"], "jane");
    let timeline = app.get("/timeline", Some(&john.token)).await.expect(200);
    assert_eq!(timeline["items"][0]["id"], post);
    assert_eq!(timeline["items"][1]["body"], "from the future");
}

/// Undoes migrations, newest first, until the first `applied` of them are left.
async fn undo_to(db: &sea_orm::DatabaseConnection, applied: usize) {
    use migration::{Migrator, MigratorTrait};
    let now = Migrator::get_applied_migrations(db).await.unwrap().len();
    Migrator::down(db, Some((now - applied) as u32))
        .await
        .unwrap();
}
