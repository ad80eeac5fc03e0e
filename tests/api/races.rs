//! Writes already in flight when an account is suspended, removed or changes its password: each
//! of those operations must lie wholly before or wholly after every write that involves the
//! account. The shape is the one that found the bugs: a burst of parallel requests, the other
//! operation about 20 ms in, several rounds.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{TestApp, TestUser, spawn_app_with, test_settings};

const ROUNDS: usize = 3;

/// The operation lands this long after the burst starts.
const INTO_THE_BURST: Duration = Duration::from_millis(20);

async fn spawn_app_with_operator() -> (TestApp, TestUser) {
    let app = crate::helpers::spawn_app().await;
    let operator = app.register_operator("operator").await;
    (app, operator)
}

async fn login(app: &TestApp, username: &str, password: &str) -> crate::helpers::TestResponse {
    app.post(
        "/auth/login",
        None,
        &json!({"username": username, "password": password}),
    )
    .await
}

/// `operator` suspends `username` [`INTO_THE_BURST`] after it is awaited (204 expected).
async fn suspend_into_the_burst(app: &TestApp, operator: &TestUser, username: &str) {
    tokio::time::sleep(INTO_THE_BURST).await;
    app.post(
        &format!("/admin/users/{username}/suspension"),
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
}

/// `operator` lifts the suspension of `username` (204 expected).
async fn lift_suspension(app: &TestApp, operator: &TestUser, username: &str) {
    app.delete(
        &format!("/admin/users/{username}/suspension"),
        Some(&operator.token),
    )
    .await
    .expect(204);
}

/// Whether `username`'s unread count equals the unread notifications it is shown.
async fn unread_count_matches_the_list(app: &TestApp, user: &TestUser) -> Result<(), String> {
    let count = app
        .get("/notifications/unread_count", Some(&user.token))
        .await
        .expect(200)["count"]
        .as_i64()
        .unwrap();
    let listed = app
        .get("/notifications?limit=100", Some(&user.token))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["read"] == false)
        .count() as i64;
    if count == listed {
        Ok(())
    } else {
        Err(format!("unread_count {count}, unread listed {listed}"))
    }
}

#[tokio::test]
async fn a_suspension_lies_wholly_before_or_after_every_follow_by_or_of_the_account() {
    let (app, operator) = spawn_app_with_operator().await;
    for round in 0..ROUNDS {
        let suspect = format!("suspect{round}");
        let s = app.register(&suspect).await;
        let mut followees = Vec::new();
        for i in 0..24 {
            let name = format!("followee{round}x{i}");
            followees.push((app.register(&name).await, name));
        }
        let mut followers = Vec::new();
        for i in 0..12 {
            followers.push(app.register(&format!("follower{round}x{i}")).await);
        }

        let follows_by_s = followees.iter().map(|(_, name)| app.follow(&s, name));
        let follows_of_s = followers.iter().map(|f| app.follow(f, &suspect));
        let suspension = suspend_into_the_burst(&app, &operator, &suspect);
        let (by_s, of_s, ()) =
            tokio::join!(join_all(follows_by_s), join_all(follows_of_s), suspension);
        for answer in by_s.iter().chain(&of_s) {
            assert!(
                matches!(answer.status, 201 | 401 | 404),
                "round {round}: a follow answered {} {}",
                answer.status,
                answer.text
            );
        }

        // Nothing of the suspended account survives, to anyone.
        for (followee, name) in &followees {
            assert!(
                app.list_names(name, "followers", "").await.is_empty(),
                "round {round}: {suspect} still follows {name}"
            );
            assert_eq!(app.profile(name, None).await["followers_count"], 0);
            unread_count_matches_the_list(&app, followee)
                .await
                .unwrap_or_else(|e| panic!("round {round}, {name}: {e}"));
        }
        for follower in &followers {
            let me = app
                .get("/users/me", Some(&follower.token))
                .await
                .expect(200);
            assert_eq!(me["following_count"], 0, "round {round}");
        }
        app.assert_counts_match_rows().await;

        // Lifted: the account comes back without a single follow.
        lift_suspension(&app, &operator, &suspect).await;
        let profile = app.profile(&suspect, None).await;
        assert_eq!(profile["followers_count"], 0, "round {round}");
        assert_eq!(profile["following_count"], 0, "round {round}");
        assert!(app.list_names(&suspect, "following", "").await.is_empty());
        assert!(app.list_names(&suspect, "followers", "").await.is_empty());
        app.assert_counts_match_rows().await;
    }
}

/// A post's author is checked by the statement that stamps them (`users::lock_counting`): a post
/// in flight when its author is suspended is answered 201 and counted, or 401, and every count
/// stays exact, through the suspension and after it is lifted. (Which side of the suspension a
/// plain post committed on leaves no trace the API shows; replies do, and take the other path,
/// the locking read of several users, which the follow test above covers.)
#[tokio::test]
async fn posts_racing_their_authors_suspension_are_counted_or_refused_and_counts_stay_exact() {
    let (app, operator) = spawn_app_with_operator().await;
    for round in 0..ROUNDS {
        let suspect = format!("writer{round}");
        let s = app.register(&suspect).await;
        let bodies: Vec<_> = (0..24)
            .map(|i| json!({"body": format!("post {i} of round {round}")}))
            .collect();
        let posts = bodies
            .iter()
            .map(|body| app.post("/posts", Some(&s.token), body));
        let suspension = suspend_into_the_burst(&app, &operator, &suspect);
        let (answers, ()) = tokio::join!(join_all(posts), suspension);
        let mut written = 0;
        for answer in &answers {
            match answer.status {
                201 => written += 1,
                401 => {}
                other => panic!("round {round}: a post answered {other} {}", answer.text),
            }
        }
        app.assert_counts_match_rows().await;

        lift_suspension(&app, &operator, &suspect).await;
        assert_eq!(
            app.profile(&suspect, None).await["posts_count"],
            written,
            "round {round}"
        );
        let listed = app
            .get(&format!("/users/{suspect}/posts?limit=100"), None)
            .await
            .expect(200)["items"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(listed, written, "round {round}: the posts answered 201");
        app.assert_counts_match_rows().await;
    }
}

#[tokio::test]
async fn logins_racing_the_removal_of_their_account_are_refused_not_failed() {
    let app = spawn_app_with(test_settings().await).await;
    for round in 0..ROUNDS {
        let name = format!("leaver{round}");
        let leaver = app.register(&name).await;
        let password = format!("password-of-{name}");
        let logins = (0..30).map(|_| login(&app, &name, &password));
        let removal = async {
            tokio::time::sleep(INTO_THE_BURST).await;
            app.delete("/users/me", Some(&leaver.token)).await
        };
        let (answers, removed) = tokio::join!(join_all(logins), removal);
        removed.expect(204);
        for answer in &answers {
            match answer.status {
                200 => {
                    // A login that came first: its session went with the account.
                    let token = answer.json()["access_token"].as_str().unwrap().to_owned();
                    app.get("/users/me", Some(&token))
                        .await
                        .assert_problem(401, "unauthorized");
                }
                _ => {
                    answer.assert_problem(401, "invalid_credentials");
                }
            }
        }
    }
}

#[tokio::test]
async fn no_session_from_a_login_or_refresh_racing_a_suspension_outlives_it() {
    let (app, operator) = spawn_app_with_operator().await;
    for round in 0..ROUNDS {
        let name = format!("racer{round}");
        app.register(&name).await;
        let password = format!("password-of-{name}");
        // Sessions whose refresh tokens are sent during the suspension.
        let mut refresh_tokens = Vec::new();
        for _ in 0..4 {
            let body = login(&app, &name, &password).await.expect(200);
            refresh_tokens.push(body["refresh_token"].as_str().unwrap().to_owned());
        }
        let logins = join_all((0..8).map(|_| login(&app, &name, &password)));
        let refresh_bodies: Vec<_> = refresh_tokens
            .iter()
            .map(|token| json!({"refresh_token": token}))
            .collect();
        let refreshes = join_all(
            refresh_bodies
                .iter()
                .map(|body| app.post("/auth/refresh", None, body)),
        );
        let suspension = suspend_into_the_burst(&app, &operator, &name);
        let (logins, refreshes, ()) = tokio::join!(logins, refreshes, suspension);
        let mut granted = Vec::new();
        for answer in logins.iter().chain(&refreshes) {
            match answer.status {
                200 => granted.push(answer.json()),
                403 => {
                    answer.assert_problem(403, "account_suspended");
                }
                _ => {
                    answer.assert_problem(401, "invalid_refresh_token");
                }
            }
        }
        lift_suspension(&app, &operator, &name).await;
        // Every session granted in the burst ended with the suspension, and stays ended.
        for body in &granted {
            let access = body["access_token"].as_str().unwrap();
            app.get("/users/me", Some(access))
                .await
                .assert_problem(401, "unauthorized");
            let refresh = body["refresh_token"].as_str().unwrap();
            app.post("/auth/refresh", None, &json!({"refresh_token": refresh}))
                .await
                .assert_problem(401, "invalid_refresh_token");
        }
    }
}

#[tokio::test]
async fn no_session_from_a_login_racing_a_password_change_outlives_it() {
    let app = spawn_app_with(test_settings().await).await;
    for round in 0..ROUNDS {
        let name = format!("changer{round}");
        let changer = app.register(&name).await;
        let old_password = format!("password-of-{name}");
        // A password change hashes twice, a login once: logins spread over the change's whole
        // length, so that some read the old hash before it commits and start after.
        let logins = join_all((0..24u64).map(|i| {
            let (app, name, old_password) = (&app, &name, &old_password);
            async move {
                tokio::time::sleep(Duration::from_millis(8 * i)).await;
                login(app, name, old_password).await
            }
        }));
        let change = async {
            tokio::time::sleep(INTO_THE_BURST).await;
            app.request(
                reqwest::Method::PUT,
                "/users/me/password",
                Some(&changer.token),
                Some(&json!({
                    "current_password": old_password,
                    "new_password": "an entirely new password",
                })),
            )
            .await
        };
        let (logins, changed) = tokio::join!(logins, change);
        changed.expect(204);
        for answer in &logins {
            if answer.status == 200 {
                let access = answer.json()["access_token"].as_str().unwrap().to_owned();
                app.get("/users/me", Some(&access))
                    .await
                    .assert_problem(401, "unauthorized");
            } else {
                answer.assert_problem(401, "invalid_credentials");
            }
        }
        // The session that changed it goes on; the old password opens nothing.
        app.get("/users/me", Some(&changer.token)).await.expect(200);
        login(&app, &name, &old_password)
            .await
            .assert_problem(401, "invalid_credentials");
    }
}
