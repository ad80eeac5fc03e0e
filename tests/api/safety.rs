//! API.md "Blocks", "Mutes", "Reports and moderation", and the Viewer flags they add.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with, test_settings};

/// A server whose operator is `admin` (registered).
async fn app_with_admin() -> (TestApp, TestUser) {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    (app, admin)
}

async fn counts(app: &TestApp, name: &str) -> (i64, i64) {
    let profile = app.profile(name, None).await;
    (
        profile["followers_count"].as_i64().unwrap(),
        profile["following_count"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_block_ends_both_follows_and_keeps_the_two_apart_until_lifted() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&alice, "bob").await.expect(201);
    app.follow(&bob, "alice").await.expect(201);
    let alices_post = app.post_as(&alice, "alice writes").await;
    let bobs_post = app.post_as(&bob, "bob writes").await;
    assert_eq!(
        app.timeline_bodies(&alice).await,
        ["bob writes", "alice writes"]
    );

    let blocked = app
        .post("/users/bob/block", Some(&alice.token), &json!({}))
        .await
        .expect(201);
    assert_eq!(blocked["username"], "bob");
    assert_eq!(blocked["blocking"], true);
    assert_eq!(blocked["blocked_by"], false);
    assert_eq!(blocked["following"], false);
    assert_eq!(blocked["followed_by"], false);
    // Both follows ended in the same transaction, counts too.
    assert_eq!(counts(&app, "alice").await, (0, 0));
    assert_eq!(counts(&app, "bob").await, (0, 0));
    app.assert_counts_match_rows().await;
    // A repeat changes nothing.
    let again = app
        .post("/users/bob/block", Some(&alice.token), &json!({}))
        .await
        .expect(200);
    assert_eq!(again["blocking"], true);

    // Neither can follow the other.
    let problem = app
        .follow(&bob, "alice")
        .await
        .assert_problem(403, "blocked");
    assert_eq!(problem["detail"], "'alice' blocks you");
    app.follow(&alice, "bob")
        .await
        .assert_problem(403, "blocked");
    // The blocked user cannot read the blocker's posts or lists, one post included.
    for path in [
        "/users/alice/posts".to_owned(),
        "/users/alice/followers".to_owned(),
        "/users/alice/following".to_owned(),
        format!("/posts/{alices_post}"),
    ] {
        app.get(&path, Some(&bob.token))
            .await
            .assert_problem(403, "blocked");
        // Anyone else can, and so can the blocker read the blocked user's.
        app.get(&path, None).await.expect(200);
    }
    app.get(&format!("/posts/{bobs_post}"), Some(&alice.token))
        .await
        .expect(200);
    app.get("/users/bob/posts", Some(&alice.token))
        .await
        .expect(200);
    // Profiles stay visible, with the flags.
    let seen_by_bob = app.profile("alice", Some(&bob)).await;
    assert_eq!(seen_by_bob["viewer"]["blocked_by"], true);
    assert_eq!(seen_by_bob["viewer"]["blocking"], false);
    let seen_by_alice = app.profile("bob", Some(&alice)).await;
    assert_eq!(seen_by_alice["viewer"]["blocking"], true);
    // Neither timeline carries the other's posts.
    assert_eq!(app.timeline_bodies(&alice).await, ["alice writes"]);
    assert_eq!(app.timeline_bodies(&bob).await, ["bob writes"]);

    // The blocker's list.
    let blocks = app
        .get("/users/me/blocks", Some(&alice.token))
        .await
        .expect(200);
    assert_eq!(blocks["items"][0]["user"]["username"], "bob");
    assert!(blocks["items"][0]["blocked_at"].is_string());
    assert_eq!(blocks["items"][0]["user"]["viewer"]["blocking"], true);
    let bobs_blocks = app
        .get("/users/me/blocks", Some(&bob.token))
        .await
        .expect(200);
    assert_eq!(bobs_blocks["items"], json!([]));

    // Unblocking restores no follow, and the two may follow again.
    app.delete("/users/bob/block", Some(&alice.token))
        .await
        .expect(204);
    app.delete("/users/bob/block", Some(&alice.token))
        .await
        .expect(204);
    assert_eq!(counts(&app, "alice").await, (0, 0));
    app.get("/users/alice/posts", Some(&bob.token))
        .await
        .expect(200);
    app.follow(&bob, "alice").await.expect(201);
    let relation = app.profile("alice", Some(&bob)).await;
    assert_eq!(relation["viewer"]["blocked_by"], false);
}

#[tokio::test]
async fn marking_yourself_or_nobody_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    for (mark, code) in [("block", "cannot_block_self"), ("mute", "cannot_mute_self")] {
        for path in [format!("/users/alice/{mark}"), format!("/users/me/{mark}")] {
            app.post(&path, Some(&alice.token), &json!({}))
                .await
                .assert_problem(422, code);
            app.delete(&path, Some(&alice.token))
                .await
                .assert_problem(422, code);
        }
        app.post(
            &format!("/users/nobody/{mark}"),
            Some(&alice.token),
            &json!({}),
        )
        .await
        .assert_problem(404, "user_not_found");
        app.post(&format!("/users/alice/{mark}"), None, &json!({}))
            .await
            .assert_problem(401, "unauthorized");
    }
    for list in ["blocks", "mutes"] {
        let page = app
            .get(&format!("/users/me/{list}"), Some(&alice.token))
            .await
            .expect(200);
        assert_eq!(page["items"], json!([]));
        app.get(&format!("/users/me/{list}"), None)
            .await
            .assert_problem(401, "unauthorized");
    }
}

#[tokio::test]
async fn twenty_four_identical_blocks_at_once_make_one_block() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&alice, "bob").await.expect(201);
    app.follow(&bob, "alice").await.expect(201);
    let empty = json!({});
    let requests = (0..24).map(|_| app.post("/users/bob/block", Some(&alice.token), &empty));
    let statuses: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        23,
        "{statuses:?}"
    );
    app.assert_counts_match_rows().await;
    let blocks = app
        .get("/users/me/blocks", Some(&alice.token))
        .await
        .expect(200);
    assert_eq!(blocks["items"].as_array().unwrap().len(), 1);
}

/// Blocks, unblocks, follows and unfollows of one pair, from both sides at once: every answer is
/// one the contract allows (never a 503 from a deadlock), and the counts equal the rows after.
#[tokio::test]
async fn concurrent_blocks_and_follows_of_one_pair_never_deadlock_or_miscount() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let mut calls = Vec::new();
    for i in 0..8 {
        let (me, them) = if i % 2 == 0 {
            (&alice, "bob")
        } else {
            (&bob, "alice")
        };
        for action in ["follow", "block"] {
            let path = format!("/users/{them}/{action}");
            calls.push((Method::POST, path.clone(), me.token.as_str()));
            calls.push((Method::DELETE, path, me.token.as_str()));
        }
    }
    let requests = calls
        .iter()
        .map(|(method, path, token)| app.request(method.clone(), path, Some(token), None));
    for response in futures_util::future::join_all(requests).await {
        assert!(
            [200, 201, 204, 403].contains(&response.status),
            "{} {}",
            response.status,
            response.text
        );
    }
    app.assert_counts_match_rows().await;
    // Whatever the order, no follow stands where a block does.
    let relation = app
        .get("/relationships?users=bob", Some(&alice.token))
        .await
        .expect(200);
    let r = &relation[0];
    if r["blocking"] == true || r["blocked_by"] == true {
        assert_eq!(r["following"], false, "{r}");
        assert_eq!(r["followed_by"], false, "{r}");
    }
}

#[tokio::test]
async fn a_mute_takes_the_author_out_of_the_timeline_and_changes_nothing_else() {
    // Both timeline queries: the per-author one (default threshold) and the newest-first walk
    // (threshold 0).
    for switch in [30, 0] {
        let mut settings = test_settings().await;
        settings.timeline_per_author_max_followees = switch;
        let app = spawn_app_with(settings).await;
        let alice = app.register("alice").await;
        let bob = app.register("bob").await;
        let carol = app.register("carol").await;
        app.follow(&alice, "bob").await.expect(201);
        app.follow(&alice, "carol").await.expect(201);
        app.follow(&bob, "alice").await.expect(201);
        app.post_as(&bob, "bob 1").await;
        app.post_as(&carol, "carol 1").await;
        app.post_as(&alice, "alice 1").await;

        let muted = app
            .post("/users/bob/mute", Some(&alice.token), &json!({}))
            .await
            .expect(201);
        assert_eq!(muted["muting"], true);
        assert_eq!(muted["following"], true, "the follow stays");
        assert_eq!(muted["followed_by"], true);
        app.post("/users/bob/mute", Some(&alice.token), &json!({}))
            .await
            .expect(200);
        assert_eq!(
            app.timeline_bodies(&alice).await,
            ["alice 1", "carol 1"],
            "threshold {switch}"
        );
        // Nothing else changed, and bob cannot tell.
        assert_eq!(counts(&app, "alice").await, (1, 2));
        assert_eq!(counts(&app, "bob").await, (1, 1));
        let bobs_view = app.profile("alice", Some(&bob)).await;
        assert_eq!(
            bobs_view["viewer"]
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| k.contains("mut"))
                .count(),
            1,
            "only bob's own `muting`"
        );
        assert_eq!(bobs_view["viewer"]["muting"], false);
        assert_eq!(app.timeline_bodies(&bob).await, ["alice 1", "bob 1"]);
        app.get("/users/alice/posts", Some(&bob.token))
            .await
            .expect(200);

        let mutes = app
            .get("/users/me/mutes", Some(&alice.token))
            .await
            .expect(200);
        assert_eq!(mutes["items"][0]["user"]["username"], "bob");
        assert!(mutes["items"][0]["muted_at"].is_string());

        app.delete("/users/bob/mute", Some(&alice.token))
            .await
            .expect(204);
        assert_eq!(
            app.timeline_bodies(&alice).await,
            ["alice 1", "carol 1", "bob 1"]
        );
        app.delete("/users/bob/mute", Some(&alice.token))
            .await
            .expect(204);
    }
}

#[tokio::test]
async fn removing_a_follower_ends_their_follow_only() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.follow(&bob, "alice").await.expect(201);
    app.follow(&alice, "bob").await.expect(201);
    app.delete("/users/me/followers/Bob", Some(&alice.token))
        .await
        .expect(204);
    assert!(app.list_names("alice", "followers", "").await.is_empty());
    assert_eq!(app.list_names("alice", "following", "").await, ["bob"]);
    assert_eq!(counts(&app, "alice").await, (0, 1));
    assert_eq!(counts(&app, "bob").await, (1, 0));
    app.delete("/users/me/followers/bob", Some(&alice.token))
        .await
        .expect(204);
    app.delete("/users/me/followers/alice", Some(&alice.token))
        .await
        .assert_problem(422, "cannot_follow_self");
    app.delete("/users/me/followers/nobody", Some(&alice.token))
        .await
        .assert_problem(404, "user_not_found");
    // Nothing stops bob from following again: removing is not blocking.
    app.follow(&bob, "alice").await.expect(201);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn reports_are_filed_once_while_open_and_only_operators_see_them() {
    let (app, admin) = app_with_admin().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let bobs_post = app.post_as(&bob, "something bad").await;
    let alices_post = app.post_as(&alice, "fine").await;

    let first = app
        .post(
            "/reports",
            Some(&alice.token),
            &json!({"username": "BOB", "reason": "  spam  "}),
        )
        .await
        .expect(201);
    let repeat = app
        .post(
            "/reports",
            Some(&alice.token),
            &json!({"username": "bob", "reason": "more spam"}),
        )
        .await
        .expect(200);
    assert_eq!(repeat["id"], first["id"]);
    assert_eq!(repeat["created_at"], first["created_at"]);
    // A report of a post is another report (its id may be written `7.0`, a JSON Schema integer).
    let of_post = app
        .post(
            "/reports",
            Some(&alice.token),
            &json!({"username": "bob", "post_id": bobs_post as f64, "reason": "this post"}),
        )
        .await
        .expect(201);
    assert_ne!(of_post["id"], first["id"]);

    // Refusals, and none of them files anything.
    for (body, status, code) in [
        (
            json!({"username": "bob", "post_id": alices_post, "reason": "x"}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "bob", "post_id": 999_999, "reason": "x"}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "alice", "reason": "x"}),
            422,
            "cannot_report_self",
        ),
        (
            json!({"username": "bob", "reason": "   "}),
            422,
            "validation_failed",
        ),
        (
            json!({"username": "bob", "reason": "a".repeat(1001)}),
            422,
            "validation_failed",
        ),
        (json!({"username": "bob"}), 422, "validation_failed"),
        (json!({"reason": "x"}), 422, "validation_failed"),
        (
            json!({"username": "nobody", "reason": "x"}),
            404,
            "user_not_found",
        ),
        (json!({"username": "bob", "reason": 5}), 400, "invalid_json"),
    ] {
        let problem = app
            .post("/reports", Some(&alice.token), &body)
            .await
            .assert_problem(status, code);
        if code == "validation_failed" {
            assert!(problem["errors"].is_object(), "{problem}");
        }
    }
    app.post("/reports", None, &json!({"username": "bob", "reason": "x"}))
        .await
        .assert_problem(401, "unauthorized");

    // Only operators list and resolve.
    for path in ["/admin/reports"] {
        app.get(path, Some(&alice.token))
            .await
            .assert_problem(403, "forbidden");
        app.get(path, None)
            .await
            .assert_problem(401, "unauthorized");
    }
    app.post(
        &format!("/admin/reports/{}/resolve", first["id"]),
        Some(&alice.token),
        &json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    let list = app
        .get("/admin/reports", Some(&admin.token))
        .await
        .expect(200);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert_eq!(items[0]["id"], of_post["id"], "newest first");
    assert_eq!(items[0]["post_id"], bobs_post);
    assert_eq!(items[1]["reason"], "spam", "stored trimmed");
    assert_eq!(items[1]["reporter"]["username"], "alice");
    assert_eq!(items[1]["target"]["username"], "bob");
    assert_eq!(items[1]["post_id"], Value::Null);
    assert_eq!(items[1]["resolved"], false);

    app.post(
        &format!("/admin/reports/{}/resolve", first["id"]),
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    app.post(
        "/admin/reports/999999/resolve",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    let list = app
        .get("/admin/reports", Some(&admin.token))
        .await
        .expect(200);
    assert_eq!(list["items"][1]["resolved"], true);
    // Once resolved, the same report may be filed again.
    let anew = app
        .post(
            "/reports",
            Some(&alice.token),
            &json!({"username": "bob", "reason": "again"}),
        )
        .await
        .expect(201);
    assert_ne!(anew["id"], first["id"]);
}

#[tokio::test]
async fn suspension_hides_the_account_ends_its_follows_and_is_lifted_without_them() {
    let (app, admin) = app_with_admin().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    app.register("carol").await;
    app.follow(&alice, "bob").await.expect(201);
    app.follow(&bob, "alice").await.expect(201);
    app.follow(&bob, "carol").await.expect(201);
    let post = app.post_as(&bob, "bob's post").await;

    // Only operators, and not on themselves.
    app.post(
        "/admin/users/bob/suspension",
        Some(&alice.token),
        &json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(
        "/admin/users/admin/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(
        "/admin/users/nobody/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .assert_problem(404, "user_not_found");

    app.post(
        "/admin/users/BOB/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    app.post(
        "/admin/users/bob/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    // Its token answers 401 at once; its login 403, but only with the right password.
    app.get("/users/me", Some(&bob.token))
        .await
        .assert_problem(401, "unauthorized");
    app.post(
        "/auth/login",
        None,
        &json!({"username": "bob", "password": "password-of-bob"}),
    )
    .await
    .assert_problem(403, "account_suspended");
    app.post(
        "/auth/login",
        None,
        &json!({"username": "bob", "password": "wrong password"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    // Hidden everywhere.
    for path in [
        "/users/bob",
        "/users/bob/posts",
        "/users/bob/followers",
        "/users/bob/following",
    ] {
        app.get(path, Some(&alice.token))
            .await
            .assert_problem(404, "user_not_found");
        app.get(path, None)
            .await
            .assert_problem(404, "user_not_found");
    }
    app.get(&format!("/posts/{post}"), None)
        .await
        .assert_problem(404, "post_not_found");
    app.get("/relationships?users=bob", Some(&alice.token))
        .await
        .assert_problem(404, "user_not_found");
    app.follow(&alice, "bob")
        .await
        .assert_problem(404, "user_not_found");
    assert!(app.list_names("alice", "followers", "").await.is_empty());
    assert!(app.list_names("carol", "followers", "").await.is_empty());
    assert!(app.timeline_bodies(&alice).await.is_empty());
    // Its follows ended both ways, counts exact.
    assert_eq!(counts(&app, "alice").await, (0, 0));
    assert_eq!(counts(&app, "carol").await, (0, 0));
    app.assert_counts_match_rows().await;

    // Lifted: the account and its post are back, not its follows.
    app.delete("/admin/users/bob/suspension", Some(&admin.token))
        .await
        .expect(204);
    app.delete("/admin/users/bob/suspension", Some(&admin.token))
        .await
        .expect(204);
    let profile = app.profile("bob", None).await;
    assert_eq!(profile["followers_count"], 0);
    assert_eq!(profile["following_count"], 0);
    assert_eq!(profile["posts_count"], 1);
    app.get(&format!("/posts/{post}"), None).await.expect(200);
    app.post(
        "/auth/login",
        None,
        &json!({"username": "bob", "password": "password-of-bob"}),
    )
    .await
    .expect(200);
}
