//! API.md "Locked accounts": requests, accept, reject, unlock, and who may read a locked account.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

async fn lock(app: &TestApp, user: &TestUser, locked: bool) -> Value {
    app.patch("/users/me", Some(&user.token), &json!({"locked": locked}))
        .await
        .expect(200)
}

async fn counts(app: &TestApp, name: &str) -> (i64, i64) {
    let profile = app.profile(name, None).await;
    (
        profile["followers_count"].as_i64().unwrap(),
        profile["following_count"].as_i64().unwrap(),
    )
}

async fn request_names(app: &TestApp, user: &TestUser) -> Vec<String> {
    let page = app
        .get("/users/me/follow_requests?limit=100", Some(&user.token))
        .await
        .expect(200);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["user"]["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn following_a_locked_account_makes_a_request_it_accepts_or_rejects() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let profile = lock(&app, &bob, true).await;
    assert_eq!(profile["locked"], true);
    assert_eq!(app.profile("bob", None).await["locked"], true);

    // A request, idempotent, and no follow yet.
    let asked = app.follow(&alice, "bob").await.expect(202);
    assert_eq!(asked["requested"], true);
    assert_eq!(asked["following"], false);
    app.follow(&alice, "bob").await.expect(202);
    assert_eq!(counts(&app, "bob").await, (0, 0));
    assert_eq!(request_names(&app, &bob).await, ["alice"]);
    let page = app
        .get("/users/me/follow_requests", Some(&bob.token))
        .await
        .expect(200);
    assert!(page["items"][0]["requested_at"].is_string());
    assert_eq!(page["items"][0]["user"]["viewer"]["requested_by"], true);
    assert_eq!(
        app.profile("bob", Some(&alice)).await["viewer"]["requested"],
        true
    );

    // Withdrawn by an unfollow.
    app.unfollow(&alice, "bob").await.expect(204);
    assert!(request_names(&app, &bob).await.is_empty());
    assert_eq!(
        app.profile("bob", Some(&alice)).await["viewer"]["requested"],
        false
    );

    // Accepted: the follow begins then, counts change then.
    app.follow(&alice, "bob").await.expect(202);
    let accepted = app
        .post(
            "/users/me/follow_requests/Alice/accept",
            Some(&bob.token),
            &json!({}),
        )
        .await
        .expect(200);
    assert_eq!(accepted["username"], "alice");
    assert_eq!(accepted["followed_by"], true);
    assert!(accepted["followed_by_at"].is_string());
    assert_eq!(accepted["requested_by"], false);
    assert_eq!(counts(&app, "bob").await, (1, 0));
    assert_eq!(counts(&app, "alice").await, (0, 1));
    app.post(
        "/users/me/follow_requests/alice/accept",
        Some(&bob.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "follow_request_not_found");
    // A follower's repeat is a plain 200.
    app.follow(&alice, "bob").await.expect(200);

    // Rejected: gone, no follow.
    app.follow(&carol, "bob").await.expect(202);
    app.post(
        "/users/me/follow_requests/carol/reject",
        Some(&bob.token),
        &json!({}),
    )
    .await
    .expect(204);
    app.post(
        "/users/me/follow_requests/carol/reject",
        Some(&bob.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "follow_request_not_found");
    app.post(
        "/users/me/follow_requests/nobody/accept",
        Some(&bob.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "user_not_found");
    assert!(request_names(&app, &bob).await.is_empty());
    assert_eq!(counts(&app, "bob").await, (1, 0));
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn only_the_owner_and_accepted_followers_read_a_locked_account() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let post = app.post_as(&bob, "for my followers").await;
    app.follow(&alice, "bob").await.expect(201);
    lock(&app, &bob, true).await;
    let private = [
        "/users/bob/posts".to_owned(),
        "/users/bob/followers".to_owned(),
        "/users/bob/following".to_owned(),
        format!("/posts/{post}"),
    ];
    for path in &private {
        app.get(path, None)
            .await
            .assert_problem(403, "private_account");
        app.get(path, Some(&carol.token))
            .await
            .assert_problem(403, "private_account");
        app.get(path, Some(&alice.token)).await.expect(200);
        app.get(path, Some(&bob.token)).await.expect(200);
    }
    // The profile stays public; the follower's timeline carries the posts.
    app.get("/users/bob", None).await.expect(200);
    assert_eq!(app.timeline_bodies(&alice).await, ["for my followers"]);

    // Removing the follower ends access at once.
    app.delete("/users/me/followers/alice", Some(&bob.token))
        .await
        .expect(204);
    app.get("/users/bob/posts", Some(&alice.token))
        .await
        .assert_problem(403, "private_account");
    // And so does a block, of a follower who came back through a request.
    app.follow(&alice, "bob").await.expect(202);
    app.post(
        "/users/me/follow_requests/alice/accept",
        Some(&bob.token),
        &json!({}),
    )
    .await
    .expect(200);
    app.get("/users/bob/posts", Some(&alice.token))
        .await
        .expect(200);
    app.post("/users/alice/block", Some(&bob.token), &json!({}))
        .await
        .expect(201);
    app.get("/users/bob/posts", Some(&alice.token))
        .await
        .assert_problem(403, "blocked");
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn unlocking_accepts_every_pending_request_at_once() {
    let app = spawn_app().await;
    let bob = app.register("bob").await;
    lock(&app, &bob, true).await;
    let mut fans = Vec::new();
    for i in 0..5 {
        let fan = app.register(&format!("fan{i}")).await;
        app.follow(&fan, "bob").await.expect(202);
        fans.push(fan);
    }
    let profile = lock(&app, &bob, false).await;
    assert_eq!(profile["locked"], false);
    assert_eq!(profile["followers_count"], 5);
    assert!(request_names(&app, &bob).await.is_empty());
    let mut followers = app.list_names("bob", "followers", "").await;
    followers.sort();
    assert_eq!(followers, ["fan0", "fan1", "fan2", "fan3", "fan4"]);
    for i in 0..5 {
        assert_eq!(counts(&app, &format!("fan{i}")).await, (0, 1));
    }
    // Unlocked: a follow is a follow.
    let carol = app.register("carol").await;
    app.follow(&carol, "bob").await.expect(201);
    // Locking again changes no follow; unlocking with nothing pending is fine.
    lock(&app, &bob, true).await;
    lock(&app, &bob, false).await;
    assert_eq!(counts(&app, "bob").await, (6, 0));
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn unlocking_with_thousands_of_pending_requests_accepts_them_in_one_request() {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    const REQUESTS: usize = 3_000;
    let app = spawn_app().await;
    let bob = app.register("bob").await;
    lock(&app, &bob, true).await;
    let bob_id = app.user_id("bob").await;
    // Written below the API: registering 3,000 accounts would hash 3,000 passwords.
    let now = api::time::now_millis();
    let first = bob_id + 1;
    for chunk in (0..REQUESTS).collect::<Vec<_>>().chunks(500) {
        entity::user::Entity::insert_many(chunk.iter().map(|i| entity::user::ActiveModel {
            id: Set(first + *i as i64),
            username: Set(format!("fan{i}")),
            username_key: Set(format!("fan{i}")),
            email: Set(format!("fan{i}@example.com")),
            email_key: Set(format!("fan{i}@example.com")),
            password_hash: Set("not a hash".into()),
            display_name: Set(None),
            display_name_key: Set(None),
            bio: Set(None),
            created_at: Set(now),
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
            email_verified_at: Set(None),
            archive_started_at: Set(None),
            avatar_media_id: Set(None),
            feed_floor_at: Set(None),
            feed_floor_id: Set(None),
        }))
        .exec_without_returning(&app.db)
        .await
        .unwrap();
        entity::follow_request::Entity::insert_many(chunk.iter().map(|i| {
            entity::follow_request::ActiveModel {
                requester_id: Set(first + *i as i64),
                target_id: Set(bob_id),
                created_at: Set(now + *i as i64),
            }
        }))
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    }
    let started = std::time::Instant::now();
    let profile = lock(&app, &bob, false).await;
    eprintln!(
        "unlocking with {REQUESTS} pending requests took {:?} on {:?}",
        started.elapsed(),
        crate::helpers::backend()
    );
    assert_eq!(profile["followers_count"], REQUESTS as i64);
    assert!(request_names(&app, &bob).await.is_empty());
    app.assert_counts_match_rows().await;
    // The new follows page like any other, newest first, all of them.
    let mut seen = 0;
    let mut path = "/users/bob/followers?limit=100".to_owned();
    loop {
        let page = app.get(&path, None).await.expect(200);
        seen += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/users/bob/followers?limit=100&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, REQUESTS);
}

#[tokio::test]
async fn twenty_four_identical_requests_at_once_make_one_request() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    lock(&app, &bob, true).await;
    let requests = (0..24).map(|_| app.follow(&alice, "bob"));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status, 202, "{}", response.text);
    }
    assert_eq!(request_names(&app, &bob).await, ["alice"]);
    assert_eq!(counts(&app, "bob").await, (0, 0));
}

#[tokio::test]
async fn blocks_and_suspensions_drop_requests_both_ways() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    lock(&app, &alice, true).await;
    lock(&app, &bob, true).await;
    app.follow(&alice, "bob").await.expect(202);
    app.follow(&bob, "alice").await.expect(202);
    app.post("/users/alice/block", Some(&bob.token), &json!({}))
        .await
        .expect(201);
    assert!(request_names(&app, &bob).await.is_empty());
    assert!(request_names(&app, &alice).await.is_empty());
    app.follow(&alice, "bob")
        .await
        .assert_problem(403, "blocked");
    app.delete("/users/alice/block", Some(&bob.token))
        .await
        .expect(204);

    let carol = app.register("carol").await;
    app.follow(&carol, "bob").await.expect(202);
    app.follow(&alice, "carol").await.expect(201);
    app.post(
        "/admin/users/carol/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    assert!(request_names(&app, &bob).await.is_empty());
    app.delete("/admin/users/carol/suspension", Some(&admin.token))
        .await
        .expect(204);
    assert!(request_names(&app, &bob).await.is_empty());
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn locked_must_be_a_boolean() {
    let app = spawn_app().await;
    let bob = app.register("bob").await;
    let problem = app
        .patch("/users/me", Some(&bob.token), &json!({"locked": null}))
        .await
        .assert_problem(422, "validation_failed");
    assert!(problem["errors"]["locked"].is_array(), "{problem}");
    // Absent, it changes nothing.
    app.patch("/users/me", Some(&bob.token), &json!({"bio": "hi"}))
        .await
        .expect(200);
    app.patch("/users/me", Some(&bob.token), &json!({"locked": "yes"}))
        .await
        .assert_problem(400, "invalid_json");
    assert_eq!(app.profile("bob", None).await["locked"], false);
}
