//! The follow graph over HTTP: follow, unfollow, lists, relationships, counts, concurrency.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

async fn users(app: &TestApp, names: &[&str]) -> Vec<TestUser> {
    let mut users = Vec::new();
    for name in names {
        users.push(app.register(name).await);
    }
    users
}

#[tokio::test]
async fn following_and_unfollowing_update_the_lists_and_the_counts() {
    // The seed's model test, over HTTP.
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    assert!(app.list_names("john", "following", "").await.is_empty());
    assert!(app.list_names("susan", "followers", "").await.is_empty());

    let body = app.follow(&john, "susan").await.expect(201);
    assert_eq!(body["username"], "susan");
    assert_eq!(body["following"], true);
    assert_eq!(body["followed_by"], false);
    assert!(body["followed_at"].is_string());
    assert_eq!(body["followed_by_at"], Value::Null);

    assert_eq!(app.profile("john", Some(&john)).await["following_count"], 1);
    assert_eq!(
        app.profile("susan", Some(&susan)).await["followers_count"],
        1
    );
    assert_eq!(app.list_names("susan", "followers", "").await, ["john"]);
    assert_eq!(app.list_names("john", "following", "").await, ["susan"]);
    let viewer = &app.profile("susan", Some(&john)).await["viewer"];
    assert_eq!(viewer["following"], true);
    assert_eq!(viewer["followed_at"], body["followed_at"]);

    let response = app.unfollow(&john, "susan").await;
    assert_eq!(response.status, 204);
    assert!(response.text.is_empty());
    assert_eq!(app.profile("john", None).await["following_count"], 0);
    assert_eq!(app.profile("susan", None).await["followers_count"], 0);
    assert!(app.list_names("susan", "followers", "").await.is_empty());
    assert!(app.list_names("john", "following", "").await.is_empty());
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn following_twice_keeps_the_first_timestamp_and_counts_once() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let first = app.follow(&john, "susan").await.expect(201);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = app.follow(&john, "SUSAN").await.expect(200);
    assert_eq!(first, second);
    assert_eq!(app.profile("susan", None).await["followers_count"], 1);
    assert_eq!(app.profile("john", None).await["following_count"], 1);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn unfollowing_twice_or_without_a_follow_is_204_and_counts_stay_exact() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    assert_eq!(app.unfollow(&john, "susan").await.status, 204);
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(app.unfollow(&john, "susan").await.status, 204);
    assert_eq!(app.unfollow(&john, "Susan").await.status, 204);
    assert_eq!(app.profile("susan", None).await["followers_count"], 0);
    assert_eq!(app.profile("john", None).await["following_count"], 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn following_or_unfollowing_yourself_is_422_in_any_letter_case() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    for name in ["john", "JOHN"] {
        app.follow(&john, name)
            .await
            .assert_problem(422, "cannot_follow_self");
        app.unfollow(&john, name)
            .await
            .assert_problem(422, "cannot_follow_self");
    }
    assert_eq!(app.profile("john", None).await["following_count"], 0);
}

#[tokio::test]
async fn unknown_users_are_404_on_every_follow_endpoint() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let problem = app
        .follow(&john, "nobody")
        .await
        .assert_problem(404, "user_not_found");
    assert_eq!(problem["detail"], "user 'nobody' does not exist");
    app.unfollow(&john, "nobody")
        .await
        .assert_problem(404, "user_not_found");
    app.get("/users/nobody/followers", None)
        .await
        .assert_problem(404, "user_not_found");
    app.get("/users/nobody/following", None)
        .await
        .assert_problem(404, "user_not_found");
}

#[tokio::test]
async fn follow_endpoints_need_a_valid_token() {
    let app = spawn_app().await;
    app.register("susan").await;
    for response in [
        app.request(reqwest::Method::POST, "/users/susan/follow", None, None)
            .await,
        app.delete("/users/susan/follow", None).await,
        app.get("/relationships?users=susan", None).await,
        app.get("/users/susan/followers", Some("bad.token.here"))
            .await,
    ] {
        response.assert_problem(401, "unauthorized");
    }
}

#[tokio::test]
async fn followed_by_is_the_follows_you_label_with_its_own_timestamp() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&susan, "john").await.expect(201);
    let viewer = &app.profile("susan", Some(&john)).await["viewer"];
    assert_eq!(viewer["following"], false);
    assert_eq!(viewer["followed_by"], true);
    assert_eq!(viewer["followed_at"], Value::Null);
    assert!(viewer["followed_by_at"].is_string());

    let body = app.follow(&john, "susan").await.expect(201);
    assert_eq!(body["following"], true);
    assert_eq!(body["followed_by"], true);
    assert_eq!(body["followed_by_at"], viewer["followed_by_at"]);
}

#[tokio::test]
async fn lists_are_ordered_by_most_recent_follow_and_cards_carry_viewer_state() {
    let app = spawn_app().await;
    let all = users(&app, &["target", "alice", "bob", "carol"]).await;
    for user in &all[1..] {
        app.follow(user, "target").await.expect(201);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    app.follow(&all[0], "bob").await.expect(201);
    assert_eq!(
        app.list_names("target", "followers", "").await,
        ["carol", "bob", "alice"]
    );
    assert_eq!(app.list_names("alice", "following", "").await, ["target"]);

    let body = app
        .get("/users/target/followers", Some(&all[0].token))
        .await
        .expect(200);
    let items = body["items"].as_array().unwrap();
    let bob = &items[1];
    assert_eq!(bob["user"]["username"], "bob");
    assert_eq!(
        bob["user"]["viewer"]["following"], true,
        "target follows bob"
    );
    assert_eq!(
        bob["user"]["viewer"]["followed_by"], true,
        "bob follows target"
    );
    assert_eq!(items[0]["user"]["viewer"]["following"], false);
    assert!(items.iter().all(|i| i["followed_at"].is_string()));
    let anonymous = app.get("/users/target/followers", None).await.expect(200);
    assert_eq!(anonymous["items"][0]["user"]["viewer"], Value::Null);
    assert_eq!(anonymous["next_cursor"], Value::Null);
}

#[tokio::test]
async fn paging_45_followers_by_20_while_others_follow_skips_and_repeats_nobody() {
    let app = spawn_app().await;
    app.register("star").await;
    let mut expected = Vec::new();
    for i in 0..45 {
        let name = format!("fan{i:02}");
        let fan = app.register(&name).await;
        app.follow(&fan, "star").await.expect(201);
        expected.push(name);
    }
    expected.reverse(); // most recent first

    let mut seen = Vec::new();
    let mut path = "/users/star/followers?limit=20".to_owned();
    let mut pages = 0;
    loop {
        let response = app.get(&path, None).await;
        let body = response.expect(200);
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            seen.push(item["user"]["username"].as_str().unwrap().to_owned());
        }
        // New followers arrive between pages: they are newer than everything already paged.
        let late = app.register(&format!("late{pages}")).await;
        app.follow(&late, "star").await.expect(201);

        match body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = response
                    .header("link")
                    .expect("a Link header when there is a next page");
                let next = format!("/users/star/followers?limit=20&cursor={cursor}");
                assert!(
                    link.starts_with(&format!("<{next}>; rel=\"next\", ")),
                    "{link}"
                );
                path = next;
            }
            None => {
                // The last page links only to what is newer than it.
                let link = response.header("link").unwrap();
                assert!(!link.contains("rel=\"next\""), "{link}");
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "no duplicate, no skip, most recent first");
}

#[tokio::test]
async fn invalid_limits_and_cursors_are_400_never_500() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    app.register("mary").await;
    app.follow(&john, "susan").await.expect(201);
    app.follow(&john, "mary").await.expect(201);
    let susan = app
        .get("/users/susan/followers?limit=1", None)
        .await
        .expect(200);
    assert_eq!(susan["items"].as_array().unwrap().len(), 1);
    let following = app
        .get("/users/john/following?limit=1", None)
        .await
        .expect(200);
    let cursor = following["next_cursor"].as_str().unwrap().to_owned();

    for limit in ["0", "abc", "101", "-1", "", "1.5", "99999999999999999999"] {
        app.get(&format!("/users/john/following?limit={limit}"), None)
            .await
            .assert_problem(400, "invalid_parameter");
    }
    for ok in ["1", "100"] {
        app.get(&format!("/users/john/following?limit={ok}"), None)
            .await
            .expect(200);
    }
    let mut tampered = cursor.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let cases = [
        ("garbage", "/users/john/following?cursor=garbage".to_owned()),
        ("empty", "/users/john/following?cursor=".to_owned()),
        (
            "tampered",
            format!("/users/john/following?cursor={tampered}"),
        ),
        (
            "another user's list",
            format!("/users/susan/following?cursor={cursor}"),
        ),
        (
            "the other direction",
            format!("/users/john/followers?cursor={cursor}"),
        ),
        (
            "percent-encoded junk",
            "/users/john/following?cursor=%00%FF".to_owned(),
        ),
    ];
    for (case, path) in cases {
        let response = app.get(&path, None).await;
        assert_eq!(response.status, 400, "{case}: {}", response.text);
        let code = response.json()["code"].as_str().unwrap().to_owned();
        assert!(
            code == "invalid_cursor" || code == "invalid_parameter",
            "{case}: {code}"
        );
    }
    // The real cursor works.
    let next = app
        .get(
            &format!("/users/john/following?limit=1&cursor={cursor}"),
            None,
        )
        .await
        .expect(200);
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn thirty_two_identical_follows_at_once_make_one_follow() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let requests = (0..32).map(|_| app.follow(&john, "susan"));
    let responses = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        31,
        "{statuses:?}"
    );
    let timestamps: HashSet<String> = responses
        .iter()
        .map(|r| r.json()["followed_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(timestamps.len(), 1, "every answer names the one follow");
    assert_eq!(app.profile("susan", None).await["followers_count"], 1);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn concurrent_follows_unfollows_and_removals_leave_every_count_exact() {
    let app = spawn_app().await;
    let names: Vec<String> = (0..8).map(|i| format!("user{i}")).collect();
    let mut all = Vec::new();
    for name in &names {
        all.push(app.register(name).await);
    }
    // Everyone follows and unfollows everyone else, in both directions at once, twice over,
    // while two accounts are removed in the middle of it.
    let mut requests = Vec::new();
    for round in 0..2 {
        for (i, user) in all.iter().enumerate() {
            for (j, other) in names.iter().enumerate() {
                if i != j {
                    if (i + j + round) % 3 == 0 {
                        requests.push(Box::pin(app.unfollow(user, other))
                            as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>);
                    } else {
                        requests.push(Box::pin(app.follow(user, other)));
                    }
                }
            }
        }
    }
    requests.insert(40, Box::pin(app.delete("/users/me", Some(&all[3].token))));
    requests.insert(80, Box::pin(app.delete("/users/me", Some(&all[5].token))));
    let responses = futures_util::future::join_all(requests).await;
    for response in &responses {
        assert!(
            [200, 201, 204, 401, 404].contains(&response.status),
            "unexpected answer under churn: {} {}",
            response.status,
            response.text
        );
    }
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn a_removed_account_vanishes_from_lists_and_counts_at_once() {
    let app = spawn_app().await;
    let all = users(&app, &["john", "susan", "mary"]).await;
    app.follow(&all[0], "susan").await.expect(201);
    app.follow(&all[1], "john").await.expect(201);
    app.follow(&all[2], "john").await.expect(201);
    app.follow(&all[1], "mary").await.expect(201);
    assert_eq!(app.profile("john", None).await["followers_count"], 2);

    assert_eq!(
        app.delete("/users/me", Some(&all[1].token)).await.status,
        204
    );
    let john = app.profile("john", None).await;
    assert_eq!(john["followers_count"], 1);
    assert_eq!(john["following_count"], 0);
    assert_eq!(app.profile("mary", None).await["followers_count"], 0);
    assert_eq!(app.list_names("john", "followers", "").await, ["mary"]);
    assert!(app.list_names("john", "following", "").await.is_empty());
    app.get("/users/susan/followers", None)
        .await
        .assert_problem(404, "user_not_found");
    app.assert_counts_match_rows().await;

    // The rows are gone too: the database cascaded them.
    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        entity::follow::Entity::find().count(&app.db).await.unwrap(),
        1
    );
}

#[tokio::test]
async fn relationships_answer_in_the_order_asked() {
    let app = spawn_app().await;
    let all = users(&app, &["john", "Susan", "mary", "david"]).await;
    app.follow(&all[0], "susan").await.expect(201);
    app.follow(&all[2], "john").await.expect(201);
    let body = app
        .get(
            "/relationships?users=mary,SUSAN,david,susan",
            Some(&all[0].token),
        )
        .await
        .expect(200);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mary", "Susan", "david", "Susan"]);
    assert_eq!(body[0]["following"], false);
    assert_eq!(body[0]["followed_by"], true);
    assert!(body[0]["followed_by_at"].is_string());
    assert_eq!(body[1]["following"], true);
    assert_eq!(body[1]["followed_by"], false);
    assert_eq!(
        body[2],
        json!({"username": "david", "following": false, "followed_by": false, "followed_at": null,
            "followed_by_at": null, "requested": false, "requested_by": false, "blocking": false,
            "blocked_by": false, "muting": false})
    );
}

#[tokio::test]
async fn relationships_refuse_unknown_names_and_bad_lists() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let problem = app
        .get(
            "/relationships?users=susan,ghost,phantom",
            Some(&john.token),
        )
        .await
        .assert_problem(404, "user_not_found");
    assert_eq!(problem["detail"], "user 'ghost' does not exist");
    for query in [
        "",
        "?users=",
        "?users=,,",
        "?users=susan,,john",
        "?users=susan,",
    ] {
        app.get(&format!("/relationships{query}"), Some(&john.token))
            .await
            .assert_problem(400, "invalid_parameter");
    }
    let too_many = vec!["susan"; 101].join(",");
    app.get(
        &format!("/relationships?users={too_many}"),
        Some(&john.token),
    )
    .await
    .assert_problem(400, "invalid_parameter");
    let just_enough = vec!["susan"; 100].join(",");
    let body = app
        .get(
            &format!("/relationships?users={just_enough}"),
            Some(&john.token),
        )
        .await
        .expect(200);
    assert_eq!(body.as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn me_in_a_users_path_is_the_caller() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    app.follow(&susan, "john").await.expect(201);
    app.post_as(&john, "by john").await;
    let token = Some(john.token.as_str());
    for list in ["followers", "following", "posts"] {
        for me in ["me", "ME", "Me"] {
            let mine = app
                .get(&format!("/users/{me}/{list}"), token)
                .await
                .expect(200);
            let named = app
                .get(&format!("/users/john/{list}"), token)
                .await
                .expect(200);
            assert_eq!(mine["items"], named["items"], "/users/{me}/{list}");
            assert!(!mine["items"].as_array().unwrap().is_empty());
        }
        // Without a token there is no caller to name.
        app.get(&format!("/users/me/{list}"), None)
            .await
            .assert_problem(401, "unauthorized");
    }
    // In any letter case; `/users/me` itself is the caller's own resource.
    let me = app.get("/users/ME", token).await.expect(200);
    assert_eq!(me["username"], "john");
    app.get("/users/Me", None)
        .await
        .assert_problem(401, "unauthorized");
    app.follow(&john, "me")
        .await
        .assert_problem(422, "cannot_follow_self");
    app.unfollow(&john, "me")
        .await
        .assert_problem(422, "cannot_follow_self");
    assert_eq!(app.profile("john", None).await["following_count"], 1);
}
