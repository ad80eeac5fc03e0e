//! Registration, login, `/users/me` and profiles.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn registering_returns_201_a_bearer_token_and_the_new_profile() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/auth/register",
            None,
            &json!({"username": "Susan", "email": "susan@example.com", "password": "hunter2hunter2",
                    "display_name": "Susan S.", "bio": "Hello"}),
        )
        .await;
    let body = response.expect(201);
    assert_eq!(response.header("location").as_deref(), Some("/users/Susan"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 2_592_000);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    assert!(body["access_token"].as_str().unwrap().split('.').count() == 3);
    let user = &body["user"];
    assert_eq!(user["username"], "Susan");
    assert_eq!(user["display_name"], "Susan S.");
    assert_eq!(user["bio"], "Hello");
    assert_eq!(user["followers_count"], 0);
    assert_eq!(user["following_count"], 0);
    assert_eq!(user["posts_count"], 0);
    let created_at = user["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok()
            && created_at.ends_with('Z')
            && created_at.len() == "2026-11-20T10:00:00.123Z".len(),
        "{created_at} is not RFC 3339 UTC with milliseconds"
    );
    assert!(
        !body.to_string().contains("argon2"),
        "the hash leaked: {body}"
    );

    let me = app
        .get("/users/me", Some(body["access_token"].as_str().unwrap()))
        .await
        .expect(200);
    assert_eq!(me["username"], "Susan");
}

#[tokio::test]
async fn login_accepts_the_username_or_the_email_in_any_letter_case() {
    let app = spawn_app().await;
    app.register("John").await;
    for login in [
        "John",
        "john",
        "JOHN",
        "john@example.com",
        "John@Example.COM",
    ] {
        let response = app
            .post(
                "/auth/login",
                None,
                &json!({"username": login, "password": "password-of-John"}),
            )
            .await;
        let body = response.expect(200);
        assert_eq!(body["user"]["username"], "John", "login as {login}");
        let token = body["access_token"].as_str().unwrap();
        app.get("/users/me", Some(token)).await.expect(200);
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    app.register("john").await;
    let wrong_password = app
        .post(
            "/auth/login",
            None,
            &json!({"username": "john", "password": "not-the-password"}),
        )
        .await;
    let unknown_user = app
        .post(
            "/auth/login",
            None,
            &json!({"username": "nobody", "password": "not-the-password"}),
        )
        .await;
    let a = wrong_password.assert_problem(401, "invalid_credentials");
    let b = unknown_user.assert_problem(401, "invalid_credentials");
    assert_eq!(a, b);
}

#[tokio::test]
async fn login_without_fields_is_a_validation_error_naming_them() {
    let app = spawn_app().await;
    let body = app
        .post("/auth/login", None, &json!({}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(body["errors"]["username"][0], "is required");
    assert_eq!(body["errors"]["password"][0], "is required");
}

#[tokio::test]
async fn usernames_and_emails_are_taken_in_any_letter_case() {
    let app = spawn_app().await;
    app.register("Susan").await;
    let same_name = app
        .post(
            "/auth/register",
            None,
            &json!({"username": "sUSAN", "email": "other@example.com", "password": "password123"}),
        )
        .await;
    same_name.assert_problem(409, "username_taken");
    let same_email = app
        .post(
            "/auth/register",
            None,
            &json!({"username": "other", "email": "SUSAN@example.com", "password": "password123"}),
        )
        .await;
    same_email.assert_problem(409, "email_taken");
}

#[tokio::test]
async fn emails_are_one_address_under_unicode_case_folding() {
    let app = spawn_app().await;
    let register = |username: &str, email: String| {
        let body = json!({"username": username, "email": email, "password": "password123"});
        let app = &app;
        async move { app.post("/auth/register", None, &body).await }
    };
    register("sigma", "xσ@example.com".into()).await.expect(201);
    // The final sigma and the capital are the same letter folded.
    for (username, email) in [("final", "xς@example.com"), ("capital", "XΣ@EXAMPLE.COM")] {
        register(username, email.into())
            .await
            .assert_problem(409, "email_taken");
    }
    register("strasse", "Straße@example.com".into())
        .await
        .expect(201);
    register("upper", "STRASSE@example.com".into())
        .await
        .assert_problem(409, "email_taken");
    for login in ["XΣ@example.com", "xς@EXAMPLE.com"] {
        let body = app
            .post(
                "/auth/login",
                None,
                &json!({"username": login, "password": "password123"}),
            )
            .await
            .expect(200);
        assert_eq!(body["user"]["username"], "sigma", "{login}");
    }

    // 254 characters whose folded key is 255 (İ folds to i and a combining dot): accepted and
    // found again by its folding on every backend.
    let local = format!("İ{}", "a".repeat(63));
    let domain = format!("{}.com", "b".repeat(254 - 64 - 1 - 4));
    let long = format!("{local}@{domain}");
    assert_eq!(long.chars().count(), 254);
    register("dotted", long.clone()).await.expect(201);
    let body = app
        .post(
            "/auth/login",
            None,
            &json!({"username": long.to_uppercase(), "password": "password123"}),
        )
        .await
        .expect(200);
    assert_eq!(body["user"]["username"], "dotted");
    register("again", long.replace('a', "A"))
        .await
        .assert_problem(409, "email_taken");
}

#[tokio::test]
async fn every_registration_rule_is_a_422_naming_the_field() {
    let app = spawn_app().await;
    let valid =
        json!({"username": "valid_name", "email": "valid@example.com", "password": "password123"});
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("username too short", json!({"username": "ab"}), "username"),
        (
            "username too long",
            json!({"username": "a".repeat(31)}),
            "username",
        ),
        (
            "username with a dash",
            json!({"username": "bad-name"}),
            "username",
        ),
        (
            "username with a space",
            json!({"username": "bad name"}),
            "username",
        ),
        (
            "username with a non-ASCII letter",
            json!({"username": "josé"}),
            "username",
        ),
        (
            "username 'me' in any case",
            json!({"username": "ME"}),
            "username",
        ),
        ("username missing", json!({"username": null}), "username"),
        ("email without @", json!({"email": "not-an-email"}), "email"),
        (
            "email without a domain dot",
            json!({"email": "a@localhost"}),
            "email",
        ),
        (
            "email with a space",
            json!({"email": "a b@example.com"}),
            "email",
        ),
        (
            "email too long",
            json!({"email": format!("{}@example.com", "a".repeat(250))}),
            "email",
        ),
        ("email missing", json!({"email": null}), "email"),
        (
            "password too short",
            json!({"password": "1234567"}),
            "password",
        ),
        (
            "password too long",
            json!({"password": "p".repeat(129)}),
            "password",
        ),
        (
            "password too short in characters",
            json!({"password": "ééééééé"}),
            "password",
        ),
        (
            "display_name too long",
            json!({"display_name": "d".repeat(51)}),
            "display_name",
        ),
        (
            "display_name with a line break",
            json!({"display_name": "two\nlines"}),
            "display_name",
        ),
        ("bio too long", json!({"bio": "b".repeat(501)}), "bio"),
        ("bio with a NUL", json!({"bio": "nul\u{0}byte"}), "bio"),
        (
            "display_name with a right-to-left override",
            json!({"display_name": "admin\u{202e}nimda"}),
            "display_name",
        ),
        (
            "display_name with a directional isolate",
            json!({"display_name": "\u{2067}susan\u{2069}"}),
            "display_name",
        ),
        ("bio with an embedding", json!({"bio": "a\u{202a}b"}), "bio"),
    ];
    for (case, change, field) in cases {
        let mut body = valid.clone();
        for (key, value) in change.as_object().unwrap() {
            if value.is_null() {
                body.as_object_mut().unwrap().remove(key);
            } else {
                body[key] = value.clone();
            }
        }
        let response = app.post("/auth/register", None, &body).await;
        let problem = response.assert_problem(422, "validation_failed");
        assert!(
            problem["errors"][field]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "{case}: no message for {field}: {problem}"
        );
        assert_eq!(
            problem["errors"].as_object().unwrap().len(),
            1,
            "{case}: {problem}"
        );
    }
    // Nothing was written by any of them.
    let count: i64 = {
        use sea_orm::{EntityTrait, PaginatorTrait};
        entity::user::Entity::find().count(&app.db).await.unwrap() as i64
    };
    assert_eq!(count, 0);
    // The limits themselves pass, counted in characters.
    let at_limits = json!({"username": "a".repeat(30), "email": "x@example.com", "password": "é".repeat(128),
                           "display_name": "😀".repeat(50), "bio": "😀".repeat(500)});
    app.post("/auth/register", None, &at_limits)
        .await
        .expect(201);
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_cannot_set_server_fields() {
    let app = spawn_app().await;
    let body = app
        .post(
            "/auth/register",
            None,
            &json!({"username": "mallory", "email": "m@example.com", "password": "password123",
                    "id": 999, "created_at": "2000-01-01T00:00:00.000Z", "followers_count": 1000000,
                    "password_hash": "x", "is_admin": true}),
        )
        .await
        .expect(201);
    assert_eq!(body["user"]["followers_count"], 0);
    assert_ne!(body["user"]["created_at"], "2000-01-01T00:00:00.000Z");
    let token = body["access_token"].as_str().unwrap();
    let patched = app
        .patch(
            "/users/me",
            Some(token),
            &json!({"followers_count": 5, "username": "eve", "bio": "hi"}),
        )
        .await
        .expect(200);
    assert_eq!(patched["username"], "mallory");
    assert_eq!(patched["followers_count"], 0);
    assert_eq!(patched["bio"], "hi");
}

#[tokio::test]
async fn patching_me_changes_given_fields_keeps_absent_ones_and_null_clears() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let token = Some(john.token.as_str());
    let body = app
        .patch(
            "/users/me",
            token,
            &json!({"display_name": "John", "bio": "Writes things"}),
        )
        .await
        .expect(200);
    assert_eq!(body["display_name"], "John");
    assert_eq!(body["bio"], "Writes things");
    let body = app
        .patch("/users/me", token, &json!({"bio": null}))
        .await
        .expect(200);
    assert_eq!(body["display_name"], "John", "an absent field is kept");
    assert_eq!(body["bio"], serde_json::Value::Null, "null clears");
    let public = app.profile("JOHN", None).await;
    assert_eq!(public["display_name"], "John");
    assert_eq!(public["bio"], serde_json::Value::Null);
}

#[tokio::test]
async fn patching_me_with_broken_rules_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let token = Some(john.token.as_str());
    app.patch("/users/me", token, &json!({"display_name": "Before"}))
        .await
        .expect(200);
    let problem = app
        .patch(
            "/users/me",
            token,
            &json!({"display_name": "x".repeat(51), "bio": "b".repeat(501)}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert!(problem["errors"]["display_name"].is_array());
    assert!(problem["errors"]["bio"].is_array());
    let good_and_bad = app
        .patch(
            "/users/me",
            token,
            &json!({"display_name": "After", "bio": "b".repeat(501)}),
        )
        .await;
    good_and_bad.assert_problem(422, "validation_failed");
    let posing = app
        .patch("/users/me", token, &json!({"display_name": "\u{202e}nhoj"}))
        .await
        .assert_problem(422, "validation_failed");
    assert!(posing["errors"]["display_name"].is_array());
    assert_eq!(app.profile("john", None).await["display_name"], "Before");
}

#[tokio::test]
async fn profiles_are_found_in_any_letter_case_and_show_the_registered_name() {
    let app = spawn_app().await;
    app.register("Susan").await;
    for path in ["/users/Susan", "/users/susan", "/users/SUSAN"] {
        let body = app.get(path, None).await.expect(200);
        assert_eq!(body["username"], "Susan");
        assert_eq!(
            body["viewer"],
            serde_json::Value::Null,
            "anonymous has no viewer"
        );
    }
    let problem = app
        .get("/users/nobody", None)
        .await
        .assert_problem(404, "user_not_found");
    assert_eq!(problem["detail"], "user 'nobody' does not exist");
    // Text that cannot be a username is simply nobody.
    app.get("/users/bad%00name", None)
        .await
        .assert_problem(404, "user_not_found");
}

#[tokio::test]
async fn an_authenticated_profile_read_carries_viewer_state() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let body = app.profile("susan", Some(&john)).await;
    assert_eq!(
        body["viewer"],
        json!({"following": false, "followed_by": false, "followed_at": null, "followed_by_at": null,
            "requested": false, "requested_by": false, "blocking": false, "blocked_by": false,
            "muting": false})
    );
}

/// A stolen refresh token must not be enough to delete an account: after a refresh, deleting asks
/// for the password (a wrong one is refused too), and a body that is sent must be good JSON.
#[tokio::test]
async fn deleting_me_asks_for_the_password_unless_the_token_comes_from_a_fresh_login() {
    let app = spawn_app().await;
    let registered = app.try_register("john").await.expect(201);
    let refreshed = app
        .post(
            "/auth/refresh",
            None,
            &json!({"refresh_token": registered["refresh_token"]}),
        )
        .await
        .expect(200);
    let token = refreshed["access_token"].as_str().unwrap().to_owned();
    let problem = app
        .delete("/users/me", Some(&token))
        .await
        .assert_problem(403, "reauthentication_required");
    assert!(problem["detail"].as_str().unwrap().contains("password"));
    let wrong = app
        .request(
            reqwest::Method::DELETE,
            "/users/me",
            Some(&token),
            Some(&json!({"password": "not the password"})),
        )
        .await;
    wrong.assert_problem(403, "reauthentication_required");
    assert!(!wrong.text.contains("not the password"));
    let not_json = app
        .send(
            app.client
                .delete(app.url("/users/me"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{\"password\": "),
        )
        .await;
    not_json.assert_problem(400, "invalid_json");
    app.get("/users/john", None).await.expect(200);

    app.request(
        reqwest::Method::DELETE,
        "/users/me",
        Some(&token),
        Some(&json!({"password": "password-of-john"})),
    )
    .await
    .expect(204);
    app.get("/users/john", None)
        .await
        .assert_problem(404, "user_not_found");

    // A login's own token is proof enough for ten minutes.
    app.register("susan").await;
    let login = app
        .post(
            "/auth/login",
            None,
            &json!({"username": "susan", "password": "password-of-susan"}),
        )
        .await
        .expect(200);
    app.delete("/users/me", Some(login["access_token"].as_str().unwrap()))
        .await
        .expect(204);
}

/// The proof of a login lasts ten minutes: a token whose `auth_time` is older (signed with the
/// server's secret, as one issued then would be) is refused, one within them accepted.
#[tokio::test]
async fn a_login_older_than_ten_minutes_is_no_proof_for_deleting_the_account() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let claims = crate::tokens::claims_of(&john.token);
    let now = crate::tokens::now();
    let with_auth_time = |auth_time: u64| {
        crate::tokens::sign(
            jsonwebtoken::Algorithm::HS256,
            crate::helpers::TEST_SECRET,
            json!({"sub": claims["sub"], "sid": claims["sid"], "iat": now, "exp": now + 600,
                   "auth_time": auth_time}),
        )
    };
    app.delete("/users/me", Some(&with_auth_time(now - 601)))
        .await
        .assert_problem(403, "reauthentication_required");
    app.delete("/users/me", Some(&with_auth_time(now - 590)))
        .await
        .expect(204);
}

#[tokio::test]
async fn deleting_me_removes_the_account_and_its_token_answers_401() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let response = app.delete("/users/me", Some(&john.token)).await;
    assert_eq!(response.status, 204);
    assert!(response.text.is_empty());
    app.get("/users/john", None)
        .await
        .assert_problem(404, "user_not_found");
    let problem = app
        .get("/users/me", Some(&john.token))
        .await
        .assert_problem(401, "unauthorized");
    assert!(problem["detail"].as_str().unwrap().contains("has ended"));
    app.delete("/users/me", Some(&john.token))
        .await
        .assert_problem(401, "unauthorized");
    // The name and the email are free again, and the old token does not open the new account.
    let again = app.register("john").await;
    app.get("/users/me", Some(&john.token))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/users/me", Some(&again.token)).await.expect(200);
}
