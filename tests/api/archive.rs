//! `GET /users/me/archive`: the whole account in one streamed document, and its turn (one per
//! 10 minutes per account).

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app_with, test_settings};

/// Every item of a list of the API, page after page (as `viewer`).
async fn all_items(app: &TestApp, path: &str, viewer: &TestUser) -> Vec<Value> {
    let mut items = Vec::new();
    let mut url = format!("{path}?limit=100");
    loop {
        let page = app.get(&url, Some(&viewer.token)).await.expect(200);
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}?limit=100&cursor={cursor}"),
            None => return items,
        }
    }
}

async fn archive(app: &TestApp, user: &TestUser) -> crate::helpers::TestResponse {
    app.get("/users/me/archive", Some(&user.token)).await
}

/// The account of `archive_batch` rows per read: an archive spans several reads of each list
/// when the batch is small (with a list that is an exact multiple of it, whose last read is
/// empty), and one read at the default.
async fn each_list_is_the_apis_own(archive_batch: u64) {
    let mut settings = test_settings().await;
    settings.archive_batch = archive_batch;
    let app = spawn_app_with(settings).await;
    let me = app.register("archivist").await;
    let mut others = Vec::new();
    for name in ["ann", "bob", "cat", "dan", "eve"] {
        others.push(app.register(name).await);
    }
    let (ann, bob, dan) = (&others[0], &others[1], &others[3]);
    let ann_post = app.post_as(ann, "ann writes").await;
    let bob_post = app.post_as(bob, "bob writes").await;
    let mut mine = Vec::new();
    for i in 0..4 {
        mine.push(app.post_as(&me, &format!("mine {i}")).await);
    }
    let reply = app
        .post(
            "/posts",
            Some(&me.token),
            &json!({"body": "a reply", "in_reply_to_id": ann_post}),
        )
        .await
        .expect(201)["id"]
        .as_i64()
        .unwrap();
    for name in ["bob", "ann", "cat"] {
        app.follow(&me, name).await.expect(201);
    }
    for follower in [ann, bob, dan] {
        app.follow(follower, "archivist").await.expect(201);
    }
    app.post("/users/eve/block", Some(&me.token), &json!({}))
        .await
        .expect(201);
    app.post("/users/dan/mute", Some(&me.token), &json!({}))
        .await
        .expect(201);
    let liked = [ann_post, mine[0], bob_post, reply];
    for post in liked {
        app.post(&format!("/posts/{post}/like"), Some(&me.token), &json!({}))
            .await
            .expect(201);
    }
    for post in [bob_post, ann_post] {
        app.post(
            &format!("/posts/{post}/repost"),
            Some(&me.token),
            &json!({}),
        )
        .await
        .expect(201);
    }

    let response = archive(&app, &me).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        response.header("cache-control").as_deref(),
        Some("no-store")
    );
    assert_eq!(
        response.header("content-disposition").as_deref(),
        Some("attachment; filename=\"archive.json\"")
    );
    // Streamed: its length is not known when the answer begins, so it carries no ETag either.
    assert_eq!(response.header("content-length"), None);
    assert_eq!(response.header("etag"), None);
    let doc = response.json();
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "account",
        "posts",
        "following",
        "followers",
        "blocks",
        "mutes",
        "likes",
        "reposts",
    ];
    let mut sorted_keys = keys.clone();
    sorted_keys.sort();
    expected.sort();
    assert_eq!(sorted_keys, expected);

    assert_eq!(
        doc["account"],
        app.get("/users/me", Some(&me.token)).await.expect(200)
    );
    // Each list as the API lists it to the caller, item for item, newest first.
    for (key, path) in [
        ("posts", "/users/archivist/posts"),
        ("following", "/users/archivist/following"),
        ("followers", "/users/archivist/followers"),
        ("blocks", "/users/me/blocks"),
        ("mutes", "/users/me/mutes"),
    ] {
        let listed = all_items(&app, path, &me).await;
        assert!(!listed.is_empty(), "{key}");
        assert_eq!(doc[key].as_array().unwrap(), &listed, "{key}");
    }
    let post_ids: Vec<i64> = doc["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(post_ids, [reply, mine[3], mine[2], mine[1], mine[0]]);

    // Likes and reposts: the posts, most recent first, at the times their lists give.
    let likes: Vec<i64> = doc["likes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["post_id"].as_i64().unwrap())
        .collect();
    let mut newest_first = liked.to_vec();
    newest_first.reverse();
    assert_eq!(likes, newest_first);
    for like in doc["likes"].as_array().unwrap() {
        let post = like["post_id"].as_i64().unwrap();
        let likers = all_items(&app, &format!("/posts/{post}/likes"), &me).await;
        let mine = likers
            .iter()
            .find(|l| l["user"]["username"] == "archivist")
            .unwrap();
        assert_eq!(like["liked_at"], mine["liked_at"]);
    }
    let reposts: Vec<i64> = doc["reposts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["post_id"].as_i64().unwrap())
        .collect();
    assert_eq!(reposts, [ann_post, bob_post]);
    for repost in doc["reposts"].as_array().unwrap() {
        let post = repost["post_id"].as_i64().unwrap();
        let reposters = all_items(&app, &format!("/posts/{post}/reposts"), &me).await;
        assert_eq!(reposters.len(), 1);
        assert_eq!(repost["reposted_at"], reposters[0]["reposted_at"]);
    }
}

#[tokio::test]
async fn the_archive_holds_each_list_as_the_api_lists_it_read_in_small_batches() {
    each_list_is_the_apis_own(2).await;
}

#[tokio::test]
async fn the_archive_holds_each_list_as_the_api_lists_it_read_at_once() {
    each_list_is_the_apis_own(api::services::archive::BATCH).await;
}

#[tokio::test]
async fn an_empty_account_has_empty_lists_and_anonymous_callers_get_401() {
    let app = spawn_app_with(test_settings().await).await;
    let me = app.register("newcomer").await;
    let doc = archive(&app, &me).await.expect(200);
    assert_eq!(doc["account"]["username"], "newcomer");
    for key in [
        "posts",
        "following",
        "followers",
        "blocks",
        "mutes",
        "likes",
        "reposts",
    ] {
        assert_eq!(doc[key], json!([]), "{key}");
    }
    app.get("/users/me/archive", None)
        .await
        .assert_problem(401, "unauthorized");
}

/// One archive per account per 10 minutes, decided by the database whatever the concurrency:
/// of many requests at once exactly one is answered, and the others wait as `Retry-After` says.
/// Another account's turn is its own, and the turn comes back after 10 minutes.
#[tokio::test]
async fn one_archive_per_ten_minutes_per_account_even_when_asked_at_once() {
    let app = spawn_app_with(test_settings().await).await;
    let me = app.register("hasty").await;
    let other = app.register("patient").await;
    for round in 0..3 {
        let answers = futures_util::future::join_all((0..8).map(|_| archive(&app, &me))).await;
        let ok = answers.iter().filter(|a| a.status == 200).count();
        assert_eq!(
            ok,
            1,
            "round {round}: {:?}",
            answers.iter().map(|a| a.status).collect::<Vec<_>>()
        );
        for refused in answers.iter().filter(|a| a.status != 200) {
            refused.assert_problem(429, "rate_limited");
            let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=600).contains(&wait), "Retry-After {wait}");
        }
        archive(&app, &other)
            .await
            .expect(if round == 0 { 200 } else { 429 });
        // Ten minutes and a second later (as the database sees it), the turn is back.
        app.db
            .execute_raw(Statement::from_string(
                app.db.get_database_backend(),
                format!(
                    "UPDATE users SET archive_started_at = archive_started_at - {} WHERE username = 'hasty'",
                    10 * 60_000 + 1_000
                ),
            ))
            .await
            .unwrap();
    }
}
