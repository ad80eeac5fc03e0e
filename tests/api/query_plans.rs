//! Every list query is served by an index whose column order matches its WHERE and ORDER BY, so
//! page 500 costs what page 1 does. Checked with EXPLAIN on SQLite and PostgreSQL.

use api::services::follows::{Direction, list_query};
use api::services::keyset::{PageRequest, Position};
use api::services::posts::list_by_author_query;
use api::services::timeline::{by_authors_query, newest_first_query};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, QueryTrait, Select, Statement, TransactionTrait,
};

use crate::helpers::{backend, spawn_app};

/// A database with a few hundred rows in every table and fresh planner statistics, so that plans
/// are those of a populated database rather than of empty tables.
async fn populated_app() -> crate::helpers::TestApp {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..40 {
        let user = entity::user::ActiveModel {
            username: Set(format!("user{i}")),
            username_key: Set(format!("user{i}")),
            email: Set(format!("user{i}@example.com")),
            email_key: Set(format!("user{i}@example.com")),
            password_hash: Set("not a hash".into()),
            display_name: Set(None),
            bio: Set(None),
            created_at: Set(i),
            followers_count: Set(0),
            following_count: Set(0),
            posts_count: Set(0),
            list_clock: Set(0),
            suspended_at: Set(None),
            locked: Set(false),
            notifications_read_id: Set(0),
            unread_notifications: Set(0),
            last_write_at: Set(0),
            is_operator: Set(false),
            ..Default::default()
        }
        .insert(&app.db)
        .await
        .unwrap();
        ids.push(user.id);
    }
    for (i, follower) in ids.iter().enumerate() {
        for step in 1..=10 {
            let followed = ids[(i + step * 3) % ids.len()];
            entity::follow::ActiveModel {
                follower_id: Set(*follower),
                followed_id: Set(followed),
                created_at: Set((i * 10 + step) as i64),
            }
            .insert(&app.db)
            .await
            .unwrap();
        }
        for step in 1..=3 {
            let other = ids[(i + step * 7) % ids.len()];
            let at = (i * 10 + step) as i64;
            for table in [
                "blocks (blocker_id, blocked_id",
                "mutes (muter_id, muted_id",
            ] {
                app.db
                    .execute_unprepared(&format!(
                        "INSERT INTO {table}, created_at) VALUES ({follower}, {other}, {at})"
                    ))
                    .await
                    .unwrap();
            }
            app.db
                .execute_unprepared(&format!(
                    "INSERT INTO follow_requests (target_id, requester_id, created_at) \
                     VALUES ({follower}, {other}, {at})"
                ))
                .await
                .unwrap();
        }
        for n in 0..10 {
            entity::post::ActiveModel {
                author_id: Set(*follower),
                body: Set(format!("post {n}")),
                created_at: Set((n * 40 + i) as i64),
                ..Default::default()
            }
            .insert(&app.db)
            .await
            .unwrap();
        }
    }
    // The posts' clock past every position written here, as writers would have moved it.
    app.db
        .execute_unprepared("UPDATE post_clocks SET at = (SELECT MAX(created_at) FROM posts)")
        .await
        .unwrap();
    // Replies (each of the first 40 posts has nine) and likes (ten each on the first 40 posts).
    app.db
        .execute_unprepared("UPDATE posts SET in_reply_to_id = 1 + (id % 40) WHERE id > 40")
        .await
        .unwrap();
    app.db
        .execute_unprepared(
            "INSERT INTO likes (post_id, user_id, created_at) SELECT posts.id, users.id, \
             posts.id * 100 + users.id FROM posts, users WHERE posts.id <= 40 AND users.id <= 10",
        )
        .await
        .unwrap();
    let analyze = match backend() {
        // MySQL/MariaDB name the tables.
        DbBackend::MySql => {
            "ANALYZE TABLE users, follows, posts, blocks, mutes, follow_requests, likes"
        }
        _ => "ANALYZE",
    };
    app.db.execute_unprepared(analyze).await.unwrap();
    app
}

/// The plan of `query`, one line per plan row. On PostgreSQL, sequential and bitmap scans and
/// explicit sorts are discouraged for the check, so the plan shows whether an index serves both the
/// filter and the order (on a table of a few hundred rows the planner would rightly prefer to scan
/// and sort; with millions it must not have to).
async fn plan<E: EntityTrait>(db: &sea_orm::DatabaseConnection, query: Select<E>) -> String {
    plan_of(db, query.build(db.get_database_backend())).await
}

async fn plan_of(db: &sea_orm::DatabaseConnection, statement: Statement) -> String {
    plan_without(
        db,
        statement,
        &["enable_seqscan", "enable_bitmapscan", "enable_sort"],
    )
    .await
}

/// The plan of `statement`, with PostgreSQL's `discouraged` plan kinds turned off.
async fn plan_without(
    db: &sea_orm::DatabaseConnection,
    statement: Statement,
    discouraged: &[&str],
) -> String {
    let backend = db.get_database_backend();
    let (prefix, column) = match backend {
        DbBackend::Sqlite => ("EXPLAIN QUERY PLAN ", "detail"),
        _ => ("EXPLAIN ", "QUERY PLAN"),
    };
    let explain = Statement::from_sql_and_values(
        backend,
        format!("{prefix}{}", statement.sql),
        statement.values.map(|v| v.0).unwrap_or_default(),
    );
    let txn = db.begin().await.unwrap();
    if backend == DbBackend::Postgres {
        for setting in discouraged {
            txn.execute_unprepared(&format!("SET LOCAL {setting} = off"))
                .await
                .unwrap();
        }
    }
    let rows = txn.query_all_raw(explain).await.unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|row| row.try_get::<String>("", column).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first page, an older page, and a newer page: each must walk its index (forwards for the
/// newer one) without a sort.
fn pages() -> [PageRequest; 3] {
    let position = Position {
        at: 1_800_000_000_000,
        id: 500,
    };
    [
        PageRequest::older(20, None),
        PageRequest::older(20, Some(position)),
        PageRequest::newer(20, position),
    ]
}

#[tokio::test]
async fn follower_and_following_lists_walk_their_index_without_sorting() {
    if backend() == DbBackend::MySql {
        return; // Checked on SQLite and PostgreSQL.
    }
    let app = populated_app().await;
    for page in pages() {
        for (direction, index) in [
            (Direction::Followers, "idx_follows_followed_created"),
            (Direction::Following, "idx_follows_follower_created"),
        ] {
            let plan = plan(&app.db, list_query(backend(), 1, direction, page)).await;
            assert!(
                plan.contains(index),
                "{direction:?} does not use {index}:\n{plan}"
            );
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
                "{direction:?} sorts:\n{plan}"
            );
        }
    }
}

#[tokio::test]
async fn blocks_mutes_and_follow_requests_walk_their_index_without_sorting() {
    use api::services::marks::{self, Mark};
    if backend() == DbBackend::MySql {
        return;
    }
    let app = populated_app().await;
    for page in pages() {
        for (mark, index) in [
            (Mark::Block, "idx_blocks_blocker_id_created"),
            (Mark::Mute, "idx_mutes_muter_id_created"),
            (Mark::FollowRequest, "idx_follow_requests_target_created"),
        ] {
            let query = marks::list_query(backend(), mark, 1, page);
            let plan = plan_of(&app.db, backend().build(&query)).await;
            assert!(
                plan.contains(index),
                "{mark:?} does not use {index}:\n{plan}"
            );
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
                "{mark:?} sorts:\n{plan}"
            );
        }
    }
}

#[tokio::test]
async fn a_users_posts_walk_their_index_without_sorting() {
    if backend() == DbBackend::MySql {
        return;
    }
    let app = populated_app().await;
    for page in pages() {
        let plan = plan(&app.db, list_by_author_query(backend(), 1, page)).await;
        assert!(plan.contains("idx_posts_author_created"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
            "{plan}"
        );
    }
}

#[tokio::test]
async fn the_timeline_reads_posts_through_an_index() {
    if backend() == DbBackend::MySql {
        return;
    }
    let app = populated_app().await;
    let backend = backend();
    for page in pages() {
        let by_authors = plan_of(
            &app.db,
            backend.build(&by_authors_query(backend, 1, &[1, 2, 3], page, None)),
        )
        .await;
        assert!(
            by_authors.contains("idx_posts_author_created"),
            "{by_authors}"
        );
        let newest_first = plan_of(
            &app.db,
            backend.build(&newest_first_query(backend, 1, page)),
        )
        .await;
        // The walk over all posts reads the covering index alone.
        // (Backwards for newest first, forwards toward newer posts.)
        let expected = match (backend, page.newer_than) {
            (DbBackend::Postgres, None) => {
                "Index Only Scan Backward using idx_posts_created_author"
            }
            (DbBackend::Postgres, Some(_)) => "Index Only Scan using idx_posts_created_author",
            _ => "posts USING COVERING INDEX idx_posts_created_author",
        };
        assert!(newest_first.contains(expected), "{newest_first}");
        for plan in [by_authors, newest_first] {
            assert!(
                !plan.contains("SCAN posts\n") && !plan.contains("Seq Scan on posts"),
                "{plan}"
            );
        }
    }
}

/// User search: every branch of the `UNION` is one range of an index, read in username order
/// and stopped by its `LIMIT` (the exact match, the username range, the display-name prefix's
/// range of `display_name_prefixes`), never a scan of `users` and never a sort of a branch's
/// matches: what a page costs does not grow with how many names match or where they sort.
#[tokio::test]
async fn user_search_reads_index_ranges_in_username_order() {
    use api::domain::{SearchPrefix, search_key, search_prefixes};
    use api::services::users::search_query;
    use entity::{display_name_prefix, user};
    use sea_orm::Set;
    let app = populated_app().await;
    // Display names that start like the usernames but belong to other accounts, with their
    // search rows (as the service writes them).
    for (i, account) in user::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .iter()
        .enumerate()
    {
        let name = format!("User{} Smith", i * 7 % 40);
        let key = search_key(&name);
        app.db
            .execute_unprepared(&format!(
                "UPDATE users SET display_name = '{name}', display_name_key = '{key}' \
                 WHERE id = {}",
                account.id
            ))
            .await
            .unwrap();
        display_name_prefix::Entity::insert_many(search_prefixes(&key).map(|prefix| {
            display_name_prefix::ActiveModel {
                prefix: Set(prefix.to_owned()),
                username_key: Set(account.username_key.clone()),
                user_id: Set(account.id),
            }
        }))
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    let prefix = SearchPrefix::parse("User1").unwrap();
    if backend() == DbBackend::MySql {
        // MySQL/MariaDB: the display-name branch is a range of `display_name_prefixes`' primary
        // key, in its order (no filesort), each row joined to its account by primary key.
        app.db
            .execute_unprepared("ANALYZE TABLE users, display_name_prefixes")
            .await
            .unwrap();
        for after in [None, Some("user15")] {
            let query = backend().build(&search_query(&prefix, after, 21));
            let explain = Statement::from_sql_and_values(
                backend(),
                format!("EXPLAIN {}", query.sql),
                query.values.map(|v| v.0).unwrap_or_default(),
            );
            let rows: Vec<(String, String, String, String)> = app
                .db
                .query_all_raw(explain)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    let text = |column: &str| {
                        row.try_get::<Option<String>>("", column)
                            .unwrap()
                            .unwrap_or_default()
                    };
                    (text("table"), text("type"), text("key"), text("Extra"))
                })
                .collect();
            let plan = format!("{rows:#?}");
            let prefixes = rows
                .iter()
                .position(|(table, ..)| table == "display_name_prefixes")
                .unwrap_or_else(|| panic!("{after:?}: no display_name_prefixes:\n{plan}"));
            let (_, kind, key, extra) = &rows[prefixes];
            assert_eq!(
                (kind.as_str(), key.as_str()),
                ("range", "PRIMARY"),
                "{plan}"
            );
            assert!(!extra.contains("filesort"), "{after:?}: {plan}");
            let (table, kind, key, _) = &rows[prefixes + 1];
            assert_eq!(
                (table.as_str(), kind.as_str(), key.as_str()),
                ("users", "eq_ref", "PRIMARY"),
                "{plan}"
            );
        }
        return;
    }
    app.db.execute_unprepared("ANALYZE").await.unwrap();
    for after in [None, Some(""), Some("user15")] {
        let query = search_query(&prefix, after, 21);
        // As on a large table, where reading a whole range to sort it or hashing all of `users`
        // would cost more than walking a page of one index.
        let plan = plan_without(
            &app.db,
            backend().build(&query),
            &[
                "enable_seqscan",
                "enable_bitmapscan",
                "enable_hashjoin",
                "enable_sort",
            ],
        )
        .await;
        // The username range starts after the cursor (or the exact match, its smallest key).
        let from = match after {
            Some(after) if after > "user1" => after,
            _ => "user1",
        };
        let lines: Vec<&str> = plan.lines().map(str::trim).collect();
        let expected: Vec<String> = match backend() {
            DbBackend::Postgres => vec![
                // Read in order from the unique index, stopping at the limit: no sort.
                "->  Limit".to_owned(),
                "->  Index Scan using users_username_key_key on users".to_owned(),
                format!(
                    "Index Cond: (((username_key)::text > '{from}'::text) AND ((username_key)::text < 'user2'::text))"
                ),
            ],
            _ => vec![
                "SEARCH users USING INDEX sqlite_autoindex_users_1 (username_key>? AND username_key<?)"
                    .to_owned(),
                "SCAN by_username".to_owned(),
            ],
        };
        let has = |expected: &[String]| {
            lines.windows(expected.len()).any(|window| {
                window
                    .iter()
                    .zip(expected)
                    .all(|(l, e)| l.starts_with(e.as_str()))
            })
        };
        assert!(
            has(&expected),
            "{after:?}: the username range is not {expected:?}:\n{plan}"
        );
        // The display-name prefix's rows after the cursor, in username order, each joined to
        // its account by primary key, stopping at the limit: no sort inside the branch.
        let expected: Vec<String> = match backend() {
            DbBackend::Postgres => vec![
                "->  Limit".to_owned(),
                "->  Nested Loop".to_owned(),
                "->  Index Scan using display_name_prefixes_pkey on display_name_prefixes"
                    .to_owned(),
                match after {
                    Some(after) => format!(
                        "Index Cond: (((prefix)::text = 'user1'::text) AND ((username_key)::text > '{after}'::text))"
                    ),
                    None => "Index Cond: ((prefix)::text = 'user1'::text)".to_owned(),
                },
            ],
            _ => vec![
                "CO-ROUTINE by_display_name".to_owned(),
                format!(
                    "SEARCH display_name_prefixes USING INDEX sqlite_autoindex_display_name_prefixes_1 (prefix=?{})",
                    if after.is_some() {
                        " AND username_key>?"
                    } else {
                        ""
                    }
                ),
                "SEARCH users USING INTEGER PRIMARY KEY (rowid=?)".to_owned(),
                "SCAN by_display_name".to_owned(),
            ],
        };
        assert!(
            has(&expected),
            "{after:?}: the display-name range is not {expected:?}:\n{plan}"
        );
        let exact = match backend() {
            DbBackend::Postgres => "Index Cond: ((username_key)::text = 'user1'::text)",
            _ => "SEARCH users USING INDEX sqlite_autoindex_users_1 (username_key=?)",
        };
        assert_eq!(plan.contains(exact), after.is_none(), "{after:?}:\n{plan}");
        assert!(
            !plan.contains("SCAN users") && !plan.contains("Seq Scan on users"),
            "{after:?}:\n{plan}"
        );
    }
}

/// Known followers of an account with many followers walk its followers newest first, in
/// `idx_follows_followed_created`, without a sort. (The other shape, the viewer's few followees
/// listed, is a primary-key probe each where the planner sees the skew; on tables this small
/// both backends rightly walk the followers index, so no plan of it is asserted here.)
#[tokio::test]
async fn known_followers_walk_the_followers_index_without_sorting() {
    use api::services::discovery::known_followers_query;
    if backend() == DbBackend::MySql {
        return; // Checked on SQLite and PostgreSQL.
    }
    let app = populated_app().await;
    for page in pages() {
        let walk = plan(&app.db, known_followers_query(backend(), 1, 2, None, page)).await;
        assert!(
            walk.contains("idx_follows_followed_created"),
            "the walk does not use the followers index:\n{walk}"
        );
        assert!(
            !walk.contains("TEMP B-TREE") && !walk.contains("Sort"),
            "the walk sorts:\n{walk}"
        );
    }
}

#[tokio::test]
async fn a_posts_replies_and_likes_walk_their_index_without_sorting() {
    use api::services::{likes, posts};
    if backend() == DbBackend::MySql {
        return;
    }
    let app = populated_app().await;
    // Positions within the posts and likes written (past them, PostgreSQL rightly expects no row
    // at all from any index).
    let position = Position { at: 200, id: 200 };
    let pages = [
        PageRequest::older(20, None),
        PageRequest::older(20, Some(position)),
        PageRequest::newer(20, Position { at: 100, id: 100 }),
    ];
    for page in pages {
        for viewer in [None, Some(2)] {
            let plan = plan(&app.db, posts::replies_query(backend(), 1, viewer, page)).await;
            assert!(plan.contains("idx_posts_in_reply_to_created"), "{plan}");
            assert!(
                !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
                "{plan}"
            );
        }
        let plan = plan(&app.db, likes::list_query(backend(), 1, page)).await;
        assert!(plan.contains("idx_likes_post_created"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
            "{plan}"
        );
    }
}

#[tokio::test]
async fn the_outbox_worker_claims_due_rows_along_its_index_without_sorting() {
    if backend() == DbBackend::MySql {
        return; // Checked on SQLite and PostgreSQL.
    }
    let app = populated_app().await;
    let kinds = ["mail".to_owned(), "password_forgot".to_owned()];
    let query = api::services::outbox::due_query(&kinds, 1_800_000_000_000, 20);
    let plan = plan(&app.db, query).await;
    assert!(plan.contains("idx_outbox_next_attempt"), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE") && !plan.contains("Sort"),
        "the claim sorts:\n{plan}"
    );
}

#[tokio::test]
async fn the_media_of_a_page_of_posts_are_read_through_their_index() {
    if backend() == DbBackend::MySql {
        return;
    }
    let app = populated_app().await;
    let posts: Vec<i64> = (1..=20).collect();
    let plan = plan(&app.db, api::services::media::of_posts_query(&posts)).await;
    assert!(plan.contains("idx_media_post_position"), "{plan}");
}
