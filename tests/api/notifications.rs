//! API.md "Notifications": what makes one, what makes none, the unread count and the read mark.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

/// The caller's notifications, newest first, as (type, account).
async fn notifications(app: &TestApp, user: &TestUser) -> Vec<(String, String)> {
    let page = app
        .get("/notifications?limit=100", Some(&user.token))
        .await
        .expect(200);
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["type"].as_str().unwrap().to_owned(),
                n["account"]["username"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn unread(app: &TestApp, user: &TestUser) -> i64 {
    app.get("/notifications/unread_count", Some(&user.token))
        .await
        .expect(200)["count"]
        .as_i64()
        .unwrap()
}

fn pair(kind: &str, who: &str) -> (String, String) {
    (kind.to_owned(), who.to_owned())
}

#[tokio::test]
async fn follows_requests_and_acceptances_notify_once_each() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.follow(&alice, "bob").await.expect(201);
    app.follow(&alice, "bob").await.expect(200);
    assert_eq!(notifications(&app, &bob).await, [pair("follow", "alice")]);
    // Following, unfollowing and following again leaves one, the latest.
    let first = app
        .get("/notifications", Some(&bob.token))
        .await
        .expect(200)["items"][0]["id"]
        .as_i64()
        .unwrap();
    app.unfollow(&alice, "bob").await.expect(204);
    app.follow(&alice, "bob").await.expect(201);
    let page = app
        .get("/notifications", Some(&bob.token))
        .await
        .expect(200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["items"][0]["id"].as_i64().unwrap() > first);
    assert_eq!(page["items"][0]["read"], false);
    assert_eq!(unread(&app, &bob).await, 1);
    // Nobody else was told anything.
    assert!(notifications(&app, &alice).await.is_empty());

    // A request tells the locked account; the acceptance tells the requester.
    app.patch("/users/me", Some(&carol.token), &json!({"locked": true}))
        .await
        .expect(200);
    app.follow(&bob, "carol").await.expect(202);
    app.follow(&bob, "carol").await.expect(202);
    assert_eq!(
        notifications(&app, &carol).await,
        [pair("follow_request", "bob")]
    );
    app.post(
        "/users/me/follow_requests/bob/accept",
        Some(&carol.token),
        &json!({}),
    )
    .await
    .expect(200);
    assert_eq!(
        notifications(&app, &bob).await,
        [pair("follow_accepted", "carol"), pair("follow", "alice")]
    );
    assert_eq!(unread(&app, &bob).await, 2);
    // Unlocking tells every requester at once.
    app.follow(&alice, "carol").await.expect(202);
    app.patch("/users/me", Some(&carol.token), &json!({"locked": false}))
        .await
        .expect(200);
    assert_eq!(
        notifications(&app, &alice).await,
        [pair("follow_accepted", "carol")]
    );
    assert_eq!(unread(&app, &alice).await, 1);
}

#[tokio::test]
async fn muted_and_blocked_accounts_make_none_and_a_block_takes_theirs_back() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    app.post("/users/alice/mute", Some(&bob.token), &json!({}))
        .await
        .expect(201);
    app.follow(&alice, "bob").await.expect(201);
    assert!(notifications(&app, &bob).await.is_empty());
    assert_eq!(unread(&app, &bob).await, 0);

    app.follow(&carol, "bob").await.expect(201);
    assert_eq!(unread(&app, &bob).await, 1);
    app.post("/users/carol/block", Some(&bob.token), &json!({}))
        .await
        .expect(201);
    assert!(notifications(&app, &bob).await.is_empty());
    assert_eq!(unread(&app, &bob).await, 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn the_read_mark_only_moves_forward_and_never_past_the_newest() {
    let app = spawn_app().await;
    let bob = app.register("bob").await;
    let mut ids = Vec::new();
    for name in ["fan1", "fan2", "fan3"] {
        let fan = app.register(name).await;
        app.follow(&fan, "bob").await.expect(201);
        let page = app
            .get("/notifications", Some(&bob.token))
            .await
            .expect(200);
        ids.push(page["items"][0]["id"].as_i64().unwrap());
    }
    assert_eq!(unread(&app, &bob).await, 3);
    let read = async |id: i64| {
        app.post(
            "/notifications/read",
            Some(&bob.token),
            &json!({"last_read_id": id}),
        )
        .await
    };
    read(ids[1]).await.expect(204);
    assert_eq!(unread(&app, &bob).await, 1);
    let page = app
        .get("/notifications", Some(&bob.token))
        .await
        .expect(200);
    let flags: Vec<&Value> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["read"])
        .collect();
    assert_eq!(flags, [&json!(false), &json!(true), &json!(true)]);
    // A lower id changes nothing.
    read(ids[0]).await.expect(204);
    assert_eq!(unread(&app, &bob).await, 1);
    // An id beyond the newest reads them all, but not the ones to come.
    read(i64::MAX).await.expect(204);
    assert_eq!(unread(&app, &bob).await, 0);
    let late = app.register("late").await;
    app.follow(&late, "bob").await.expect(201);
    assert_eq!(unread(&app, &bob).await, 1);
    // A whole number written as JSON Schema allows it (`12.0`) is a whole number; `1.5` is not.
    let newest = app
        .get("/notifications", Some(&bob.token))
        .await
        .expect(200)["items"][0]["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/notifications/read",
        Some(&bob.token),
        &json!({"last_read_id": newest as f64}),
    )
    .await
    .expect(204);
    assert_eq!(unread(&app, &bob).await, 0);
    let problem = app
        .post(
            "/notifications/read",
            Some(&bob.token),
            &json!({"last_read_id": 1.5}),
        )
        .await
        .assert_problem(400, "invalid_json");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("the field 'last_read_id' must be a whole number"),
        "{problem}"
    );
    // Out of range, in any form.
    for body in [
        r#"{"last_read_id": -9223372036854775809}"#,
        r#"{"last_read_id": 9223372036854775808}"#,
        r#"{"last_read_id": 1e19}"#,
    ] {
        app.send(
            app.client
                .post(app.url("/notifications/read"))
                .bearer_auth(&bob.token)
                .header("content-type", "application/json")
                .body(body),
        )
        .await
        .assert_problem(400, "invalid_json");
    }
    // Refusals.
    app.post("/notifications/read", Some(&bob.token), &json!({}))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        "/notifications/read",
        Some(&bob.token),
        &json!({"last_read_id": "x"}),
    )
    .await
    .assert_problem(400, "invalid_json");
    app.get("/notifications/unread_count", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_suspended_or_removed_account_takes_its_notifications_back() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    let bob = app.register("bob").await;
    let spammer = app.register("spammer").await;
    let leaver = app.register("leaver").await;
    app.follow(&spammer, "bob").await.expect(201);
    app.follow(&leaver, "bob").await.expect(201);
    // Read the first, so the counter must tell read from unread.
    let page = app
        .get("/notifications", Some(&bob.token))
        .await
        .expect(200);
    let oldest = page["items"][1]["id"].as_i64().unwrap();
    app.post(
        "/notifications/read",
        Some(&bob.token),
        &json!({"last_read_id": oldest}),
    )
    .await
    .expect(204);
    assert_eq!(unread(&app, &bob).await, 1);

    app.post(
        "/admin/users/spammer/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    assert_eq!(notifications(&app, &bob).await, [pair("follow", "leaver")]);
    assert_eq!(unread(&app, &bob).await, 1);
    app.delete("/users/me", Some(&leaver.token))
        .await
        .expect(204);
    assert!(notifications(&app, &bob).await.is_empty());
    assert_eq!(unread(&app, &bob).await, 0);
}
