//! Replies and likes (API.md v3, "Replies, likes and reposts"): the Post's new fields, the
//! endpoints, exact counts under concurrency, blocks, suspensions and removals, the timeline's
//! reply rule on both timeline queries, and the `like` and `reply` notifications.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with, test_settings};

/// Writes a reply to `parent` as `user` and returns its id.
async fn reply_as(app: &TestApp, user: &TestUser, parent: i64, body: &str) -> i64 {
    app.post(
        "/posts",
        Some(&user.token),
        &json!({"body": body, "in_reply_to_id": parent}),
    )
    .await
    .expect(201)["id"]
        .as_i64()
        .unwrap()
}

async fn like(app: &TestApp, user: &TestUser, post: i64) -> crate::helpers::TestResponse {
    app.post(
        &format!("/posts/{post}/like"),
        Some(&user.token),
        &json!({}),
    )
    .await
}

async fn get_post(app: &TestApp, post: i64, viewer: Option<&TestUser>) -> Value {
    app.get(&format!("/posts/{post}"), viewer.map(|u| u.token.as_str()))
        .await
        .expect(200)
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

async fn notifications(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.get("/notifications?limit=100", Some(&user.token))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

async fn unread(app: &TestApp, user: &TestUser) -> i64 {
    app.get("/notifications/unread_count", Some(&user.token))
        .await
        .expect(200)["count"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_post_carries_its_reply_link_counts_and_the_callers_like() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let parent = app.post_as(&susan, "question").await;
    let created = app
        .post(
            "/posts",
            Some(&john.token),
            &json!({"body": "answer", "in_reply_to_id": parent}),
        )
        .await
        .expect(201);
    assert_eq!(
        created["in_reply_to"],
        json!({"id": parent, "username": "susan"})
    );
    assert_eq!(created["replies_count"], 0);
    assert_eq!(created["likes_count"], 0);
    assert_eq!(created["reposts_count"], 0);
    assert_eq!(
        created["viewer"],
        json!({"liked": false, "reposted": false})
    );
    assert_eq!(created["reposted_by"], Value::Null);
    assert_eq!(created["reposted_at"], Value::Null);

    let liked = like(&app, &john, parent).await.expect(201);
    assert_eq!(liked["likes_count"], 1);
    assert_eq!(liked["viewer"], json!({"liked": true, "reposted": false}));
    assert_eq!(liked["replies_count"], 1);
    assert_eq!(liked["in_reply_to"], Value::Null);

    let anonymous = get_post(&app, parent, None).await;
    assert_eq!(anonymous["viewer"], Value::Null);
    assert_eq!(anonymous["likes_count"], 1);
    assert_eq!(
        get_post(&app, parent, Some(&susan)).await["viewer"],
        json!({"liked": false, "reposted": false})
    );
    // The same in lists: the author's posts, the timeline.
    let posts = app
        .get("/users/susan/posts", Some(&john.token))
        .await
        .expect(200);
    assert_eq!(
        posts["items"][0]["viewer"],
        json!({"liked": true, "reposted": false})
    );
    assert_eq!(posts["items"][0]["likes_count"], 1);
    app.follow(&john, "susan").await.expect(201);
    let timeline = app.get("/timeline", Some(&john.token)).await.expect(200);
    let items = timeline["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["in_reply_to"]["username"], "susan");
    assert_eq!(
        items[1]["viewer"],
        json!({"liked": true, "reposted": false})
    );
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn replying_to_a_post_one_may_not_read_or_that_does_not_exist_is_refused() {
    let app = spawn_app().await;
    let susan = app.register_with("susan", json!({})).await;
    let john = app.register("john").await;
    let post = app.post_as(&susan, "hello").await;
    let reply = async |parent: i64| {
        app.post(
            "/posts",
            Some(&john.token),
            &json!({"body": "hi", "in_reply_to_id": parent}),
        )
        .await
    };
    reply(post + 1000)
        .await
        .assert_problem(404, "post_not_found");
    app.patch("/users/me", Some(&susan.token), &json!({"locked": true}))
        .await
        .expect(200);
    reply(post).await.assert_problem(403, "private_account");
    like(&app, &john, post)
        .await
        .assert_problem(403, "private_account");
    // Her own locked post is hers to answer, and an accepted follower's to like.
    reply_as(&app, &susan, post, "to myself").await;
    app.follow(&john, "susan").await.expect(202);
    app.post(
        "/users/me/follow_requests/john/accept",
        Some(&susan.token),
        &json!({}),
    )
    .await
    .expect(200);
    like(&app, &john, post).await.expect(201);
    app.delete(&format!("/posts/{post}/like"), Some(&john.token))
        .await
        .expect(204);
    app.unfollow(&john, "susan").await.expect(204);
    app.patch("/users/me", Some(&susan.token), &json!({"locked": false}))
        .await
        .expect(200);
    app.post("/users/john/block", Some(&susan.token), &json!({}))
        .await
        .expect(201);
    reply(post).await.assert_problem(403, "blocked");
    // Nothing was written, nothing counted (but susan's own reply).
    assert_eq!(get_post(&app, post, None).await["replies_count"], 1);
    assert_eq!(app.profile("john", None).await["posts_count"], 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn while_a_block_stands_neither_can_like_or_reply_to_the_others_posts() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let alices = app.post_as(&alice, "by alice").await;
    let bobs = app.post_as(&bob, "by bob").await;
    app.post("/users/bob/block", Some(&alice.token), &json!({}))
        .await
        .expect(201);
    for (user, post) in [(&alice, bobs), (&bob, alices)] {
        like(&app, user, post).await.assert_problem(403, "blocked");
        app.post(
            "/posts",
            Some(&user.token),
            &json!({"body": "hey", "in_reply_to_id": post}),
        )
        .await
        .assert_problem(403, "blocked");
    }
    // Their own posts stay theirs to like and answer.
    like(&app, &alice, alices).await.expect(201);
    reply_as(&app, &bob, bobs, "to myself").await;
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn a_block_ends_likes_both_ways_and_the_counts_drop_at_once() {
    let app = spawn_app().await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let carol = app.register("carol").await;
    let alices = app.post_as(&alice, "by alice").await;
    let bobs = app.post_as(&bob, "by bob").await;
    like(&app, &alice, bobs).await.expect(201);
    like(&app, &bob, alices).await.expect(201);
    like(&app, &carol, alices).await.expect(201);
    like(&app, &alice, alices).await.expect(201);
    app.post("/users/alice/block", Some(&bob.token), &json!({}))
        .await
        .expect(201);
    assert_eq!(get_post(&app, alices, None).await["likes_count"], 2);
    assert_eq!(get_post(&app, bobs, None).await["likes_count"], 0);
    let likers: Vec<Value> = app
        .get(&format!("/posts/{alices}/likes"), None)
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["user"]["username"].clone())
        .collect();
    assert_eq!(likers, [json!("alice"), json!("carol")]);
    // Unblocking brings no like back.
    app.delete("/users/alice/block", Some(&bob.token))
        .await
        .expect(204);
    assert_eq!(get_post(&app, bobs, None).await["likes_count"], 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn liking_is_idempotent_and_unliking_too() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let post = app.post_as(&susan, "like me").await;
    assert_eq!(like(&app, &john, post).await.expect(201)["likes_count"], 1);
    let again = like(&app, &john, post).await.expect(200);
    assert_eq!(again["likes_count"], 1);
    assert_eq!(again["viewer"]["liked"], true);

    let likes = app
        .get(&format!("/posts/{post}/likes"), Some(&susan.token))
        .await
        .expect(200);
    let items = likes["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["user"]["username"], "john");
    assert!(items[0]["liked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(items[0]["user"]["viewer"]["followed_by"], false);

    app.delete(&format!("/posts/{post}/like"), Some(&john.token))
        .await
        .expect(204);
    app.delete(&format!("/posts/{post}/like"), Some(&john.token))
        .await
        .expect(204);
    let after = get_post(&app, post, Some(&john)).await;
    assert_eq!(after["likes_count"], 0);
    assert_eq!(after["viewer"]["liked"], false);
    app.delete(&format!("/posts/{}/like", post + 1000), Some(&john.token))
        .await
        .assert_problem(404, "post_not_found");
    like(&app, &john, post + 1000)
        .await
        .assert_problem(404, "post_not_found");
    app.delete(&format!("/posts/{post}/like"), None)
        .await
        .assert_problem(401, "unauthorized");
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn concurrent_identical_likes_make_exactly_one() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    for round in 0..3 {
        let post = app.post_as(&susan, &format!("round {round}")).await;
        let answers = join_all((0..12).map(|_| like(&app, &john, post))).await;
        let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        statuses.sort_unstable();
        let mut expected = vec![200; 11];
        expected.push(201);
        assert_eq!(statuses, expected, "round {round}");
        for answer in &answers {
            assert_eq!(answer.json()["likes_count"], 1, "{}", answer.text);
        }
    }
    // One notification per post.
    assert_eq!(notifications(&app, &susan).await.len(), 3);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn counts_equal_their_rows_after_a_concurrent_mix_of_likes_reposts_replies_deletions_and_blocks()
 {
    type Work<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = u16> + 'a>>;
    let app = spawn_app().await;
    let operator = app.register_operator("operator").await;
    let names = ["ann", "ben", "cat", "dan", "eve"];
    let mut users = Vec::new();
    for name in names {
        users.push(app.register(name).await);
    }
    let mut posts = Vec::new();
    for (i, user) in users.iter().enumerate() {
        posts.push(app.post_as(user, &format!("post {i}")).await);
        posts.push(app.post_as(user, &format!("post {i} b")).await);
    }
    let app = &app;
    // Round 0 suspends cat amid the rest, round 1 lifts it first and removes eve's account
    // amid the rest; both rounds delete a post and make a block.
    for round in 0..2 {
        if round == 1 {
            app.delete("/admin/users/cat/suspension", Some(&operator.token))
                .await
                .expect(204);
        }
        let mut work: Vec<Work> = Vec::new();
        for (i, user) in users.iter().enumerate() {
            for (j, post) in posts.iter().enumerate() {
                let post = *post;
                work.push(Box::pin(async move {
                    match (i + j + round) % 6 {
                        0 | 1 => like(app, user, post).await.status,
                        4 => {
                            let path = format!("/posts/{post}/repost");
                            app.post(&path, Some(&user.token), &json!({})).await.status
                        }
                        5 => {
                            app.delete(&format!("/posts/{post}/repost"), Some(&user.token))
                                .await
                                .status
                        }
                        2 => {
                            app.post(
                                "/posts",
                                Some(&user.token),
                                &json!({"body": "re", "in_reply_to_id": post}),
                            )
                            .await
                            .status
                        }
                        _ => {
                            app.delete(&format!("/posts/{post}/like"), Some(&user.token))
                                .await
                                .status
                        }
                    }
                }));
            }
        }
        let victim = posts[round * 2];
        let owner = &users[round];
        work.push(Box::pin(async move {
            app.delete(&format!("/posts/{victim}"), Some(&owner.token))
                .await
                .status
        }));
        let blocker = &users[3];
        let blocked = names[round + 1];
        work.push(Box::pin(async move {
            let path = format!("/users/{blocked}/block");
            app.post(&path, Some(&blocker.token), &json!({}))
                .await
                .status
        }));
        let operator = &operator;
        let eve = &users[4];
        work.push(Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if round == 0 {
                let path = "/admin/users/cat/suspension";
                app.post(path, Some(&operator.token), &json!({}))
                    .await
                    .status
            } else {
                let body = json!({"password": "password-of-eve"});
                app.request(
                    reqwest::Method::DELETE,
                    "/users/me",
                    Some(&eve.token),
                    Some(&body),
                )
                .await
                .status
            }
        }));
        let statuses = join_all(work).await;
        assert_eq!(statuses.len(), users.len() * posts.len() + 3);
        assert!(statuses.iter().all(|s| *s < 500), "{statuses:?}");
        app.assert_counts_match_rows().await;
    }
    // (cat's session ended with its suspension, eve is gone.)
    for user in [&users[0], &users[1], &users[3]] {
        let count = unread(app, user).await;
        let listed = notifications(app, user)
            .await
            .iter()
            .filter(|n| n["read"] == false)
            .count() as i64;
        assert_eq!(count, listed);
    }
}

#[tokio::test]
async fn deleting_a_parent_keeps_its_replies_and_their_link_loses_the_username() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let parent = app.post_as(&susan, "parent").await;
    let reply = reply_as(&app, &john, parent, "reply").await;
    let grandchild = reply_as(&app, &susan, reply, "grandchild").await;
    like(&app, &john, parent).await.expect(201);
    assert_eq!(get_post(&app, parent, None).await["replies_count"], 1);
    app.delete(&format!("/posts/{parent}"), Some(&susan.token))
        .await
        .expect(204);
    let kept = get_post(&app, reply, None).await;
    assert_eq!(kept["in_reply_to"], json!({"id": parent, "username": null}));
    assert_eq!(kept["replies_count"], 1);
    assert_eq!(
        get_post(&app, grandchild, None).await["in_reply_to"],
        json!({"id": reply, "username": "john"})
    );
    app.get(&format!("/posts/{parent}/replies"), None)
        .await
        .assert_problem(404, "post_not_found");

    // Deleting a reply lowers its parent's count; its own replies stay.
    app.delete(&format!("/posts/{grandchild}"), Some(&susan.token))
        .await
        .expect(204);
    assert_eq!(get_post(&app, reply, None).await["replies_count"], 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn a_posts_replies_come_newest_first_without_those_the_caller_may_not_read() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let reader = app.register("reader").await;
    let blocker = app.register("blocker").await;
    let blocked = app.register("blocked").await;
    let muted = app.register("muted").await;
    let locked = app.register("locked").await;
    let friend = app.register("friend").await;
    let parent = app.post_as(&susan, "parent").await;
    let mut by = std::collections::HashMap::new();
    for (name, user) in [
        ("blocker", &blocker),
        ("blocked", &blocked),
        ("muted", &muted),
        ("locked", &locked),
        ("friend", &friend),
        ("reader", &reader),
    ] {
        by.insert(name, reply_as(&app, user, parent, name).await);
    }
    app.post("/users/reader/block", Some(&blocker.token), &json!({}))
        .await
        .expect(201);
    app.post("/users/blocked/block", Some(&reader.token), &json!({}))
        .await
        .expect(201);
    app.post("/users/muted/mute", Some(&reader.token), &json!({}))
        .await
        .expect(201);
    app.patch("/users/me", Some(&locked.token), &json!({"locked": true}))
        .await
        .expect(200);
    let path = format!("/posts/{parent}/replies");
    let seen = ids(&app.get(&path, Some(&reader.token)).await.expect(200));
    assert_eq!(seen, [by["reader"], by["friend"]]);
    let anonymous = ids(&app.get(&path, None).await.expect(200));
    assert_eq!(
        anonymous,
        [
            by["reader"],
            by["friend"],
            by["muted"],
            by["blocked"],
            by["blocker"]
        ]
    );
    // Paging keeps the order: one at a time.
    let first = app.get(&format!("{path}?limit=1"), None).await.expect(200);
    assert_eq!(ids(&first), [by["reader"]]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(&format!("{path}?limit=1&cursor={cursor}"), None)
        .await
        .expect(200);
    assert_eq!(ids(&second), [by["friend"]]);
    // Replies of a locked author's post, as its posts: 403 for strangers.
    let locked_post = app.post_as(&locked, "mine").await;
    app.get(
        &format!("/posts/{locked_post}/replies"),
        Some(&reader.token),
    )
    .await
    .assert_problem(403, "private_account");
    app.get(&format!("/posts/{locked_post}/likes"), None)
        .await
        .assert_problem(403, "private_account");
    let blockers_post = app.post_as(&blocker, "not for reader").await;
    app.get(
        &format!("/posts/{blockers_post}/likes"),
        Some(&reader.token),
    )
    .await
    .assert_problem(403, "blocked");
    like(&app, &reader, locked_post)
        .await
        .assert_problem(403, "private_account");
    app.get("/posts/999999/likes", None)
        .await
        .assert_problem(404, "post_not_found");
    app.get("/posts/abc/replies", None)
        .await
        .assert_problem(400, "invalid_parameter");
}

#[tokio::test]
async fn a_reply_shows_on_the_timeline_only_when_the_reader_follows_both_sides() {
    // Both timeline queries: per-author (threshold 30) and the newest-first walk (threshold 0).
    for switch in [30, 0] {
        let mut settings = test_settings().await;
        settings.timeline_per_author_max_followees = switch;
        let app = spawn_app_with(settings).await;
        let reader = app.register("reader").await;
        let friend = app.register("friend").await;
        let other = app.register("other").await;
        let stranger = app.register("stranger").await;
        app.follow(&reader, "friend").await.expect(201);
        app.follow(&reader, "other").await.expect(201);
        app.post("/users/other/mute", Some(&reader.token), &json!({}))
            .await
            .expect(201);
        let strangers = app.post_as(&stranger, "stranger's").await;
        let friends = app.post_as(&friend, "friend's").await;
        let others = app.post_as(&other, "other's").await;
        let readers = app.post_as(&reader, "reader's").await;
        reply_as(&app, &friend, strangers, "to a stranger").await;
        reply_as(&app, &friend, friends, "to herself").await;
        reply_as(&app, &friend, readers, "to the reader").await;
        reply_as(&app, &friend, others, "to a muted followee").await;
        reply_as(&app, &stranger, friends, "by a stranger").await;
        reply_as(&app, &reader, strangers, "reader to a stranger").await;
        reply_as(&app, &reader, friends, "reader to friend").await;
        assert_eq!(
            app.timeline_bodies(&reader).await,
            [
                "reader to friend",
                "to a muted followee",
                "to the reader",
                "to herself",
                "reader's",
                "friend's"
            ],
            "threshold {switch}"
        );
        // Following the stranger brings the conversation in.
        app.follow(&reader, "stranger").await.expect(201);
        let bodies = app.timeline_bodies(&reader).await;
        assert!(
            bodies.contains(&"to a stranger".to_owned())
                && bodies.contains(&"reader to a stranger".to_owned())
                && bodies.contains(&"by a stranger".to_owned()),
            "threshold {switch}: {bodies:?}"
        );
    }
}

#[tokio::test]
async fn likes_and_replies_notify_the_author_once_per_account_and_post() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let post = app.post_as(&susan, "notable").await;
    like(&app, &john, post).await.expect(201);
    app.delete(&format!("/posts/{post}/like"), Some(&john.token))
        .await
        .expect(204);
    like(&app, &john, post).await.expect(201);
    let reply = reply_as(&app, &john, post, "nice").await;
    // Acting on one's own posts makes none.
    like(&app, &susan, post).await.expect(201);
    reply_as(&app, &susan, post, "thanks").await;

    let list = notifications(&app, &susan).await;
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["type"], "reply");
    assert_eq!(list[0]["account"]["username"], "john");
    assert_eq!(list[0]["post"]["id"], reply);
    assert_eq!(list[0]["post"]["in_reply_to"]["id"], post);
    assert_eq!(list[1]["type"], "like");
    assert_eq!(list[1]["post"]["id"], post);
    assert_eq!(list[1]["post"]["viewer"]["liked"], true);
    assert_eq!(list[1]["post"]["likes_count"], 2);
    assert_eq!(unread(&app, &susan).await, 2);

    // Follow types carry no post.
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(notifications(&app, &susan).await[0]["post"], Value::Null);

    // Deleting a post takes back the notifications that carry it.
    app.delete(&format!("/posts/{reply}"), Some(&john.token))
        .await
        .expect(204);
    assert_eq!(unread(&app, &susan).await, 2);
    app.delete(&format!("/posts/{post}"), Some(&susan.token))
        .await
        .expect(204);
    let left = notifications(&app, &susan).await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["type"], "follow");
    assert_eq!(unread(&app, &susan).await, 1);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn muted_and_blocked_accounts_make_no_like_or_reply_notifications() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let muted = app.register("muted").await;
    let post = app.post_as(&susan, "quiet").await;
    app.post("/users/muted/mute", Some(&susan.token), &json!({}))
        .await
        .expect(201);
    like(&app, &muted, post).await.expect(201);
    reply_as(&app, &muted, post, "hello?").await;
    assert!(notifications(&app, &susan).await.is_empty());
    assert_eq!(unread(&app, &susan).await, 0);
    // The like and the reply count all the same.
    let seen = get_post(&app, post, None).await;
    assert_eq!(
        (seen["likes_count"].clone(), seen["replies_count"].clone()),
        (json!(1), json!(1))
    );
}

#[tokio::test]
async fn suspension_ends_likes_and_hides_replies_from_the_counts_until_it_is_lifted() {
    let app = spawn_app().await;
    let operator = app.register_operator("operator").await;
    let susan = app.register("susan").await;
    let troll = app.register("troll").await;
    let post = app.post_as(&susan, "target").await;
    let trolls = app.post_as(&troll, "bait").await;
    like(&app, &troll, post).await.expect(201);
    reply_as(&app, &troll, post, "noise").await;
    let before = get_post(&app, post, None).await;
    assert_eq!(
        (
            before["likes_count"].clone(),
            before["replies_count"].clone()
        ),
        (json!(1), json!(1))
    );
    assert_eq!(unread(&app, &susan).await, 2);

    app.post(
        "/admin/users/troll/suspension",
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
    let during = get_post(&app, post, None).await;
    assert_eq!(
        (
            during["likes_count"].clone(),
            during["replies_count"].clone()
        ),
        (json!(0), json!(0))
    );
    assert!(
        ids(&app
            .get(&format!("/posts/{post}/replies"), None)
            .await
            .expect(200))
        .is_empty()
    );
    assert_eq!(unread(&app, &susan).await, 0);
    // The suspended account's posts are not there to like, answer or list.
    like(&app, &susan, trolls)
        .await
        .assert_problem(404, "post_not_found");
    app.delete(&format!("/posts/{trolls}/like"), Some(&susan.token))
        .await
        .assert_problem(404, "post_not_found");
    app.post(
        "/posts",
        Some(&susan.token),
        &json!({"body": "hm", "in_reply_to_id": trolls}),
    )
    .await
    .assert_problem(404, "post_not_found");
    for list in ["likes", "replies"] {
        app.get(&format!("/posts/{trolls}/{list}"), None)
            .await
            .assert_problem(404, "post_not_found");
    }
    app.assert_counts_match_rows().await;

    app.delete("/admin/users/troll/suspension", Some(&operator.token))
        .await
        .expect(204);
    let after = get_post(&app, post, None).await;
    assert_eq!(after["likes_count"], 0, "likes do not come back");
    assert_eq!(after["replies_count"], 1, "the reply shows again");
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn removing_an_account_drops_its_likes_and_replies_from_other_posts_counts() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let leaver = app.register("leaver").await;
    let post = app.post_as(&susan, "stay").await;
    like(&app, &leaver, post).await.expect(201);
    reply_as(&app, &leaver, post, "bye").await;
    reply_as(&app, &leaver, post, "bye again").await;
    let own = app.post_as(&leaver, "mine").await;
    let answer = reply_as(&app, &susan, own, "to the leaver").await;
    app.request(
        reqwest::Method::DELETE,
        "/users/me",
        Some(&leaver.token),
        Some(&json!({"password": "password-of-leaver"})),
    )
    .await
    .expect(204);
    let seen = get_post(&app, post, None).await;
    assert_eq!(
        (seen["likes_count"].clone(), seen["replies_count"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        get_post(&app, answer, None).await["in_reply_to"],
        json!({"id": own, "username": null})
    );
    assert_eq!(unread(&app, &susan).await, 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn the_stream_applies_the_reply_rule_and_carries_the_new_fields() {
    use crate::stream::EventStream;
    use std::time::Duration;

    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mary = app.register("mary").await;
    app.follow(&john, "susan").await.expect(201);
    let marys = app.post_as(&mary, "mary's").await;
    let johns = app.post_as(&john, "john's").await;
    let mut stream = EventStream::open(&app, &john, None).await;
    reply_as(&app, &susan, marys, "to a stranger").await;
    reply_as(&app, &susan, johns, "to john").await;
    // The post and the reply notification, in either order (they come from one transaction).
    let mut events = vec![stream.next().await, stream.next().await];
    events.sort_by(|a, b| a.event.cmp(&b.event));
    let [notification, post] = <[_; 2]>::try_from(events).unwrap();
    assert_eq!(post.event, "post");
    assert_eq!(post.data["body"], "to john");
    assert_eq!(
        post.data["in_reply_to"],
        json!({"id": johns, "username": "john"})
    );
    assert_eq!(
        post.data["viewer"],
        json!({"liked": false, "reposted": false})
    );
    assert_eq!(post.data["likes_count"], 0);
    assert_eq!(notification.event, "notification");
    assert_eq!(notification.data["type"], "reply");
    assert_eq!(notification.data["post"]["body"], "to john");
    // The timeline agrees: the reply to a stranger is on neither.
    assert_eq!(app.timeline_bodies(&john).await, ["to john", "john's"]);
    let next = stream.next_within(Duration::from_millis(500)).await;
    assert!(next.is_none(), "{next:?}");
}
