//! Sessions: refresh tokens and their rotation, reuse detection, logout, the session list, and
//! changing the password.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_settings};

/// Registers `name` from a client calling itself `agent`; the Token answer.
async fn register(app: &TestApp, name: &str, agent: &str) -> Value {
    app.send(
        app.client
            .post(app.url("/auth/register"))
            .header("user-agent", agent)
            .json(&json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "password": format!("password-of-{name}"),
            })),
    )
    .await
    .expect(201)
}

async fn login(app: &TestApp, name: &str, agent: &str) -> Value {
    app.send(
        app.client
            .post(app.url("/auth/login"))
            .header("user-agent", agent)
            .json(&json!({"username": name, "password": format!("password-of-{name}")})),
    )
    .await
    .expect(200)
}

fn access(token: &Value) -> &str {
    token["access_token"].as_str().unwrap()
}

fn refresh_token(token: &Value) -> &str {
    token["refresh_token"].as_str().unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> crate::helpers::TestResponse {
    app.post("/auth/refresh", None, &json!({"refresh_token": token}))
        .await
}

#[tokio::test]
async fn login_and_registration_start_a_session_with_both_tokens() {
    let app = spawn_app().await;
    let registered = register(&app, "john", "tests/1").await;
    assert_eq!(registered["expires_in"], 900);
    assert_eq!(registered["refresh_expires_in"], 2_592_000);
    assert!(refresh_token(&registered).len() >= 43);
    let logged_in = login(&app, "john", "tests/2").await;
    assert_ne!(refresh_token(&logged_in), refresh_token(&registered));
    // The refresh token is stored only as a hash.
    let hashes: Vec<String> = {
        use sea_orm::{EntityTrait, QuerySelect};
        entity::refresh_token::Entity::find()
            .select_only()
            .column(entity::refresh_token::Column::Hash)
            .into_tuple()
            .all(&app.db)
            .await
            .unwrap()
    };
    assert_eq!(hashes.len(), 2);
    for token in [&registered, &logged_in] {
        assert!(!hashes.iter().any(|h| h == refresh_token(token)));
    }
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_a_reuse_past_the_grace_window_ends_the_session() {
    let mut settings = test_settings().await;
    // No grace: any second use is past it.
    settings.refresh_reuse_grace = std::time::Duration::ZERO;
    let app = spawn_app_with(settings).await;
    let first = register(&app, "john", "phone").await;
    let other = login(&app, "john", "laptop").await;
    let second = refresh(&app, refresh_token(&first)).await;
    let second = second.expect(200);
    assert_eq!(second["user"]["username"], "john");
    assert_ne!(refresh_token(&second), refresh_token(&first));
    app.get("/users/me", Some(access(&second)))
        .await
        .expect(200);
    // The same session: one session listed for this client, not two.
    let sessions = app
        .get("/users/me/sessions", Some(access(&second)))
        .await
        .expect(200);
    assert_eq!(sessions.as_array().unwrap().len(), 2);

    // The first refresh token again: theft, as far as the server can tell.
    let reused = refresh(&app, refresh_token(&first)).await;
    reused.assert_problem(401, "invalid_refresh_token");
    app.get("/users/me", Some(access(&second)))
        .await
        .assert_problem(401, "unauthorized");
    refresh(&app, refresh_token(&second))
        .await
        .assert_problem(401, "invalid_refresh_token");
    // Another session of the same user is not touched.
    app.get("/users/me", Some(access(&other))).await.expect(200);

    refresh(&app, "not-a-token-we-issued")
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.post("/auth/refresh", None, &json!({}))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_all_get_the_same_new_pair() {
    let app = spawn_app().await;
    let token = register(&app, "john", "phone").await;
    let attempts = (0..8).map(|_| refresh(&app, refresh_token(&token)));
    let answers = futures_util::future::join_all(attempts).await;
    let pairs: std::collections::BTreeSet<(String, String)> = answers
        .iter()
        .map(|answer| {
            let body = answer.expect(200);
            (access(&body).to_owned(), refresh_token(&body).to_owned())
        })
        .collect();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    let (access_token, next) = pairs.into_iter().next().unwrap();
    app.get("/users/me", Some(&access_token)).await.expect(200);
    refresh(&app, &next).await.expect(200);
}

#[tokio::test]
async fn a_retried_refresh_gets_the_first_answer_within_the_grace_window_and_is_theft_after_it() {
    let mut settings = test_settings().await;
    settings.refresh_reuse_grace = std::time::Duration::from_secs(2);
    let app = spawn_app_with(settings).await;
    let token = register(&app, "john", "phone").await;
    let first = refresh(&app, refresh_token(&token)).await.expect(200);
    // A second later (another second of `iat`), the same refresh token: the same pair.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let retried = refresh(&app, refresh_token(&token)).await.expect(200);
    assert_eq!(access(&retried), access(&first));
    assert_eq!(refresh_token(&retried), refresh_token(&first));
    app.get("/users/me", Some(access(&first))).await.expect(200);
    let sessions = app
        .get("/users/me/sessions", Some(access(&first)))
        .await
        .expect(200);
    assert_eq!(
        sessions.as_array().unwrap().len(),
        1,
        "nothing was ended or added"
    );

    // The new one goes on; the old one, past its window, is theft: the session ends.
    let second = refresh(&app, refresh_token(&first)).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    refresh(&app, refresh_token(&token))
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.get("/users/me", Some(access(&second)))
        .await
        .assert_problem(401, "unauthorized");
    refresh(&app, refresh_token(&second))
        .await
        .assert_problem(401, "invalid_refresh_token");
}

#[tokio::test]
async fn an_expired_access_token_is_token_expired_and_a_refresh_carries_on() {
    let mut settings = test_settings().await;
    settings.jwt_ttl = std::time::Duration::from_secs(1);
    let app = spawn_app_with(settings).await;
    let token = register(&app, "john", "phone").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let expired = app.get("/users/me", Some(access(&token))).await;
    expired.assert_problem(401, "token_expired");
    assert_eq!(
        expired.header("www-authenticate").as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );
    let renewed = refresh(&app, refresh_token(&token)).await.expect(200);
    app.get("/users/me", Some(access(&renewed)))
        .await
        .expect(200);
}

#[tokio::test]
async fn logout_ends_the_session_and_only_that_one() {
    let app = spawn_app().await;
    let phone = register(&app, "john", "phone").await;
    let laptop = login(&app, "john", "laptop").await;
    app.post("/auth/logout", Some(access(&phone)), &json!({}))
        .await
        .expect(204);
    app.get("/users/me", Some(access(&phone)))
        .await
        .assert_problem(401, "unauthorized");
    refresh(&app, refresh_token(&phone))
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.get("/users/me", Some(access(&laptop)))
        .await
        .expect(200);
    app.post("/auth/logout", None, &json!({}))
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn the_session_list_shows_each_login_and_one_can_be_ended() {
    let app = spawn_app().await;
    let phone = register(&app, "john", "phone/1.0").await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let laptop = login(&app, "john", "laptop/2.0").await;
    let mary = register(&app, "mary", "mary's").await;
    let listed = app
        .get("/users/me/sessions", Some(access(&laptop)))
        .await
        .expect(200);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["user_agent"], "laptop/2.0");
    assert_eq!(listed[0]["current"], true);
    assert_eq!(listed[1]["user_agent"], "phone/1.0");
    assert_eq!(listed[1]["current"], false);
    for session in listed {
        assert!(session["created_at"].is_string() && session["last_used_at"].is_string());
    }
    let phone_id = listed[1]["id"].as_str().unwrap().to_owned();

    // Not mary's to end.
    app.delete(
        &format!("/users/me/sessions/{phone_id}"),
        Some(access(&mary)),
    )
    .await
    .assert_problem(404, "session_not_found");
    app.get("/users/me", Some(access(&phone))).await.expect(200);
    app.delete(
        &format!("/users/me/sessions/{phone_id}"),
        Some(access(&laptop)),
    )
    .await
    .expect(204);
    app.get("/users/me", Some(access(&phone)))
        .await
        .assert_problem(401, "unauthorized");
    app.delete(
        &format!("/users/me/sessions/{phone_id}"),
        Some(access(&laptop)),
    )
    .await
    .assert_problem(404, "session_not_found");
    let long = "x".repeat(5_000);
    let response = app
        .delete(&format!("/users/me/sessions/{long}"), Some(access(&laptop)))
        .await;
    response.assert_problem(404, "session_not_found");
    assert!(!response.text.contains(&long), "the id is not echoed");
    let listed = app
        .get("/users/me/sessions", Some(access(&laptop)))
        .await
        .expect(200);
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_password_change_checks_the_current_one_and_ends_every_other_session() {
    let app = spawn_app().await;
    let phone = register(&app, "john", "phone").await;
    let laptop = login(&app, "john", "laptop").await;
    let change = async |current: &str, new: &str| {
        let body = json!({"current_password": current, "new_password": new});
        app.request(
            reqwest::Method::PUT,
            "/users/me/password",
            Some(access(&phone)),
            Some(&body),
        )
        .await
    };
    let wrong = change("not-my-password", "a-new-password").await;
    let problem = wrong.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"]["current_password"][0], "is incorrect");
    let short = change("password-of-john", "short").await;
    let problem = short.assert_problem(422, "validation_failed");
    assert!(problem["errors"]["new_password"].is_array());
    app.get("/users/me", Some(access(&laptop)))
        .await
        .expect(200);

    change("password-of-john", "a-new-password")
        .await
        .expect(204);
    app.get("/users/me", Some(access(&phone))).await.expect(200);
    app.get("/users/me", Some(access(&laptop)))
        .await
        .assert_problem(401, "unauthorized");
    refresh(&app, refresh_token(&laptop))
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.post(
        "/auth/login",
        None,
        &json!({"username": "john", "password": "password-of-john"}),
    )
    .await
    .assert_problem(401, "invalid_credentials");
    app.post(
        "/auth/login",
        None,
        &json!({"username": "john", "password": "a-new-password"}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn suspension_ends_every_session_for_good_and_a_refresh_says_why() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    let john = register(&app, "john", "phone").await;
    app.post(
        "/admin/users/john/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    refresh(&app, refresh_token(&john))
        .await
        .assert_problem(403, "account_suspended");
    app.delete("/admin/users/john/suspension", Some(&admin.token))
        .await
        .expect(204);
    // Lifting the suspension brings the account back, not its old tokens.
    app.get("/users/me", Some(access(&john)))
        .await
        .assert_problem(401, "unauthorized");
    refresh(&app, refresh_token(&john))
        .await
        .assert_problem(401, "invalid_refresh_token");
    login(&app, "john", "phone").await;
}

#[tokio::test]
async fn logout_ends_the_sessions_event_streams() {
    let app = spawn_app().await;
    let john = register(&app, "john", "phone").await;
    let user = crate::helpers::TestUser {
        token: access(&john).to_owned(),
    };
    let mut stream = crate::stream::EventStream::open(&app, &user, None).await;
    app.post("/auth/logout", Some(access(&john)), &json!({}))
        .await
        .expect(204);
    assert!(stream.ends_within(std::time::Duration::from_secs(10)).await);
}

#[tokio::test]
async fn a_session_id_of_the_wrong_form_is_404_and_reaches_no_database() {
    let app = spawn_app().await;
    let john = register(&app, "john", "phone").await;
    // `%00` was a 500 on PostgreSQL, which refuses a NUL in text.
    for id in ["%00", "abc%00def", "a%20b", "%C3%A9t%C3%A9", "a.b"] {
        app.delete(&format!("/users/me/sessions/{id}"), Some(access(&john)))
            .await
            .assert_problem(404, "session_not_found");
    }
    app.get("/users/me", Some(access(&john))).await.expect(200);
}

#[tokio::test]
async fn past_the_session_cap_the_oldest_end_and_every_live_session_is_listed() {
    let app = spawn_app().await;
    let first = register(&app, "john", "first").await;
    let second = login(&app, "john", "second").await;
    let mut latest = Vec::new();
    for i in 0..api::services::sessions::MAX_LIVE {
        latest.push(login(&app, "john", &format!("login {i}")).await);
    }
    // 102 sessions were started: the two oldest ended.
    for ended in [&first, &second] {
        app.get("/users/me", Some(access(ended)))
            .await
            .assert_problem(401, "unauthorized");
        refresh(&app, refresh_token(ended))
            .await
            .assert_problem(401, "invalid_refresh_token");
    }
    let newest = latest.last().unwrap();
    let listed = app
        .get("/users/me/sessions", Some(access(newest)))
        .await
        .expect(200);
    let agents: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["user_agent"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..api::services::sessions::MAX_LIVE)
        .rev()
        .map(|i| format!("login {i}"))
        .collect();
    assert_eq!(agents, expected, "every live session, newest first");
    for token in [&latest[0], newest] {
        app.get("/users/me", Some(access(token))).await.expect(200);
    }
}
