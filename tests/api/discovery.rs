//! Finding people: known followers and follow suggestions.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

async fn users(app: &TestApp, names: &[&str]) -> Vec<TestUser> {
    let mut out = Vec::new();
    for name in names {
        out.push(app.register(name).await);
    }
    out
}

fn usernames(items: &Value, key: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[key]["username"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn known_followers_are_the_followers_the_caller_follows_newest_follow_first() {
    let app = spawn_app().await;
    let [susan, john, mary, david, alice] =
        users(&app, &["susan", "john", "mary", "david", "alice"])
            .await
            .try_into()
            .unwrap();
    for follower in [&mary, &john, &david] {
        app.follow(follower, "susan").await.expect(201);
    }
    for followee in ["david", "mary"] {
        app.follow(&alice, followee).await.expect(201);
    }
    let page = app
        .get("/users/susan/known_followers", Some(&alice.token))
        .await
        .expect(200);
    assert_eq!(usernames(&page["items"], "user"), ["david", "mary"]);
    assert!(page["items"][0]["followed_at"].is_string());
    assert_eq!(page["items"][0]["user"]["viewer"]["following"], true);

    // Paged like every list.
    let first = app
        .get("/users/susan/known_followers?limit=1", Some(&alice.token))
        .await
        .expect(200);
    assert_eq!(usernames(&first["items"], "user"), ["david"]);
    let next = first["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/users/susan/known_followers?limit=1&cursor={next}"),
            Some(&alice.token),
        )
        .await
        .expect(200);
    assert_eq!(usernames(&second["items"], "user"), ["mary"]);
    assert_eq!(second["next_cursor"], Value::Null);
    // A cursor is the caller's own: another reader's list refuses it.
    app.get(
        &format!("/users/susan/known_followers?limit=1&cursor={next}"),
        Some(&john.token),
    )
    .await
    .assert_problem(400, "invalid_cursor");

    // The followers list's access rules.
    app.get("/users/susan/known_followers", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/users/nobody/known_followers", Some(&alice.token))
        .await
        .assert_problem(404, "user_not_found");
    app.post("/users/alice/block", Some(&susan.token), &json!({}))
        .await
        .expect(201);
    app.get("/users/susan/known_followers", Some(&alice.token))
        .await
        .assert_problem(403, "blocked");
    app.patch("/users/me", Some(&david.token), &json!({"locked": true}))
        .await
        .expect(200);
    app.get("/users/david/known_followers", Some(&john.token))
        .await
        .assert_problem(403, "private_account");
    assert_eq!(
        app.get("/users/me/known_followers", Some(&susan.token))
            .await
            .expect(200)["items"],
        json!([]),
        "susan follows none of her followers"
    );
}

/// Both shapes give one answer: with 5 followees and a target of 3 followers, a page of 20 lists
/// the reader's followees (25 < 20 × 3) and pages of 2 walk the target's followers (25 ≥ 2 × 3).
#[tokio::test]
async fn known_followers_of_an_account_with_fewer_followers_than_the_reader_follows() {
    let app = spawn_app().await;
    let all = users(
        &app,
        &["reader", "target", "one", "two", "three", "four", "five"],
    )
    .await;
    let reader = &all[0];
    for name in ["one", "two", "three", "four", "five"] {
        app.follow(reader, name).await.expect(201);
    }
    // The target has 3 followers; the reader follows 5 accounts.
    for follower in [&all[3], &all[2], &all[6]] {
        app.follow(follower, "target").await.expect(201);
    }
    let page = app
        .get("/users/target/known_followers", Some(&reader.token))
        .await
        .expect(200);
    assert_eq!(usernames(&page["items"], "user"), ["five", "one", "two"]);
    let first = app
        .get("/users/target/known_followers?limit=2", Some(&reader.token))
        .await
        .expect(200);
    assert_eq!(usernames(&first["items"], "user"), ["five", "one"]);
    let next = first["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/users/target/known_followers?limit=2&cursor={next}"),
            Some(&reader.token),
        )
        .await
        .expect(200);
    assert_eq!(usernames(&rest["items"], "user"), ["two"]);
}

#[tokio::test]
async fn suggestions_rank_friends_of_friends_by_how_many_followees_follow_them() {
    let app = spawn_app().await;
    let all = users(
        &app,
        &[
            "reader", "ann", "bob", "cat", "xena", "yuri", "zoe", "walt", "vera",
        ],
    )
    .await;
    let (me, a, b, c) = (&all[0], &all[1], &all[2], &all[3]);
    for (follower, followees) in [
        (me, &["ann", "bob", "cat"][..]),
        (a, &["xena", "yuri", "walt"][..]),
        (b, &["xena", "yuri", "zoe"][..]),
        (c, &["xena", "vera"][..]),
    ] {
        for followee in followees {
            app.follow(follower, followee).await.expect(201);
        }
    }
    // walt, vera and zoe are each followed by one followee; walt has one more follower.
    app.follow(&app.register("extra").await, "walt")
        .await
        .expect(201);

    let got = app.get("/suggestions", Some(&me.token)).await.expect(200);
    let items = got["items"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|s| s["user"]["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["xena", "yuri", "walt", "vera", "zoe"]);
    let counts: Vec<i64> = items
        .iter()
        .map(|s| s["followed_by_count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts, [3, 2, 1, 1, 1]);
    // x is followed by c, b and a, most recent follow first.
    // xena is followed by cat, bob and ann: the most recent follow first.
    let followed_by: Vec<&str> = items[0]["followed_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(followed_by, ["cat", "bob", "ann"]);
    assert_eq!(items[0]["user"]["viewer"]["following"], false);

    let two = app
        .get("/suggestions?limit=2", Some(&me.token))
        .await
        .expect(200);
    assert_eq!(two["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn suggestions_leave_out_self_followed_requested_blocked_muted_dismissed_and_suspended() {
    let app = spawn_app().await;
    let names = [
        "reader",
        "friend",
        "followed",
        "asked",
        "blocked",
        "blocker",
        "muted",
        "dismissed",
        "suspended",
        "kept",
    ];
    let all = users(&app, &names).await;
    let (me, friend) = (&all[0], &all[1]);
    app.follow(me, "friend").await.expect(201);
    app.follow(friend, "reader").await.expect(201);
    for other in &names[2..] {
        app.follow(friend, other).await.expect(201);
    }
    app.follow(me, "followed").await.expect(201);
    app.patch("/users/me", Some(&all[3].token), &json!({"locked": true}))
        .await
        .expect(200);
    app.follow(me, "asked").await.expect(202);
    app.post("/users/blocked/block", Some(&me.token), &json!({}))
        .await
        .expect(201);
    app.post("/users/reader/block", Some(&all[5].token), &json!({}))
        .await
        .expect(201);
    app.post("/users/muted/mute", Some(&me.token), &json!({}))
        .await
        .expect(201);
    app.delete("/suggestions/dismissed", Some(&me.token))
        .await
        .expect(204);
    app.delete("/suggestions/dismissed", Some(&me.token))
        .await
        .expect(204);
    let admin = app.register_operator("admin").await;
    app.post(
        "/admin/users/suspended/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);

    let got = app.get("/suggestions", Some(&me.token)).await.expect(200);
    assert_eq!(usernames(&got["items"], "user"), ["kept"]);
    app.delete("/suggestions/nobody", Some(&me.token))
        .await
        .assert_problem(404, "user_not_found");
}

#[tokio::test]
async fn a_caller_who_follows_nobody_is_suggested_the_most_followed_accounts() {
    let app = spawn_app().await;
    let all = users(
        &app,
        &["reader", "big", "mid", "small", "hidden", "fan1", "fan2"],
    )
    .await;
    for (fan, followees) in [
        (&all[5], &["big", "mid", "hidden"][..]),
        (&all[6], &["big", "hidden"][..]),
    ] {
        for followee in followees {
            app.follow(fan, followee).await.expect(201);
        }
    }
    app.post("/users/hidden/mute", Some(&all[0].token), &json!({}))
        .await
        .expect(201);
    let got = app
        .get("/suggestions?limit=3", Some(&all[0].token))
        .await
        .expect(200);
    assert_eq!(usernames(&got["items"], "user"), ["big", "mid", "fan1"]);
    assert!(
        got["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["followed_by_count"] == 0 && s["followed_by"] == json!([]))
    );
}

#[tokio::test]
async fn a_suggestions_limit_outside_1_to_40_is_400() {
    let app = spawn_app().await;
    let me = app.register("reader").await;
    for bad in ["0", "41", "abc", "-1"] {
        app.get(&format!("/suggestions?limit={bad}"), Some(&me.token))
            .await
            .assert_problem(400, "invalid_parameter");
    }
    app.get("/suggestions?limit=40", Some(&me.token))
        .await
        .expect(200);
    app.get("/suggestions", None)
        .await
        .assert_problem(401, "unauthorized");
}

/// Suggestions are drawn from the caller's most recent followees (`suggestion_sample` of them):
/// an account followed only by an older followee is not suggested once the sample is full, and is
/// while the caller follows no more than the sample.
#[tokio::test]
async fn suggestions_come_from_the_most_recent_followees_on_both_sides_of_the_sample() {
    let mut settings = crate::helpers::test_settings().await;
    settings.suggestion_sample.followees = 2;
    let app = crate::helpers::spawn_app_with(settings).await;
    let all = users(&app, &["reader", "ann", "bob", "cat", "xena", "yuri"]).await;
    let (me, ann, bob, cat) = (&all[0], &all[1], &all[2], &all[3]);
    app.follow(ann, "xena").await.expect(201);
    app.follow(bob, "yuri").await.expect(201);
    app.follow(cat, "yuri").await.expect(201);
    app.follow(me, "ann").await.expect(201);
    app.follow(me, "bob").await.expect(201);
    // Two followees, within the sample: both are counted.
    let within = app.get("/suggestions", Some(&me.token)).await.expect(200);
    assert_eq!(usernames(&within["items"], "user"), ["yuri", "xena"]);
    // A third, newer followee: ann, the oldest, leaves the sample, and xena with her.
    app.follow(me, "cat").await.expect(201);
    let past = app.get("/suggestions", Some(&me.token)).await.expect(200);
    assert_eq!(usernames(&past["items"], "user"), ["yuri"]);
    assert_eq!(past["items"][0]["followed_by_count"], 2);
}

/// The sample also stops where its followees' followings add up to more than
/// `suggestion_sample.follows` (the most recent followee always counts): an older followee leaves
/// the sample once a newer one follows more.
#[tokio::test]
async fn suggestions_read_at_most_the_samples_follows_on_both_sides_of_it() {
    let mut settings = crate::helpers::test_settings().await;
    settings.suggestion_sample.follows = 2;
    let app = crate::helpers::spawn_app_with(settings).await;
    let all = users(&app, &["reader", "ann", "bob", "xena", "yuri", "zed"]).await;
    let (me, ann, bob) = (&all[0], &all[1], &all[2]);
    app.follow(ann, "xena").await.expect(201);
    app.follow(bob, "yuri").await.expect(201);
    app.follow(me, "ann").await.expect(201);
    app.follow(me, "bob").await.expect(201);
    // bob (the newest) and ann follow one account each: two follows, within the sample.
    let within = app.get("/suggestions", Some(&me.token)).await.expect(200);
    assert_eq!(usernames(&within["items"], "user"), ["xena", "yuri"]);
    // bob follows a second account: bob's two fill the sample, and ann leaves it.
    app.follow(bob, "zed").await.expect(201);
    let past = app.get("/suggestions", Some(&me.token)).await.expect(200);
    assert_eq!(usernames(&past["items"], "user"), ["yuri", "zed"]);
    // The newest followee counts whatever it follows.
    app.follow(bob, "xena").await.expect(201);
    let first = app.get("/suggestions", Some(&me.token)).await.expect(200);
    assert_eq!(usernames(&first["items"], "user"), ["xena", "yuri", "zed"]);
}

/// The ranking reads the accounts only as far down the counts as the page needs, and further when
/// a suspended account leaves a gap: `limit=1` gets the top account, then the next one once the
/// top one is suspended.
#[tokio::test]
async fn a_suspended_top_suggestion_gives_way_to_the_next_level() {
    let app = crate::helpers::spawn_app().await;
    let operator = app.register_operator("operator").await;
    let all = users(&app, &["reader", "ann", "bob", "top", "next", "third"]).await;
    let (me, ann, bob) = (&all[0], &all[1], &all[2]);
    for follower in [ann, bob] {
        app.follow(follower, "top").await.expect(201);
    }
    app.follow(ann, "next").await.expect(201);
    app.follow(bob, "next").await.expect(201);
    app.follow(ann, "third").await.expect(201);
    app.follow(me, "ann").await.expect(201);
    app.follow(me, "bob").await.expect(201);
    let first = app
        .get("/suggestions?limit=1", Some(&me.token))
        .await
        .expect(200);
    assert_eq!(usernames(&first["items"], "user"), ["next"]);
    app.post(
        "/admin/users/next/suspension",
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
    let after = app
        .get("/suggestions?limit=1", Some(&me.token))
        .await
        .expect(200);
    assert_eq!(usernames(&after["items"], "user"), ["top"]);
    app.post(
        "/admin/users/top/suspension",
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
    let last = app
        .get("/suggestions?limit=2", Some(&me.token))
        .await
        .expect(200);
    assert_eq!(usernames(&last["items"], "user"), ["third"]);
    assert_eq!(last["items"][0]["followed_by_count"], 1);
}
