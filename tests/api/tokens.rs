//! Bearer tokens: what is accepted, what is refused, and that a secret kept beside the SQLite
//! database lets tokens survive a restart.

use std::time::{SystemTime, UNIX_EPOCH};

use api::Settings;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::helpers::{TEST_SECRET, fresh_database_url, spawn_app, spawn_app_with, test_settings};

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn sign(alg: Algorithm, secret: &str, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn b64(value: &serde_json::Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The claims of a JWT, read without checking it.
pub fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn forged_expired_and_malformed_tokens_are_401_on_auth_and_optional_auth_endpoints() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    // The next id is an account too, so that naming it with john's session tests the pairing.
    app.register("mary").await;
    let id = app.user_id("john").await;
    assert_eq!(app.user_id("mary").await, id + 1);
    let sub = id.to_string();
    let sid = claims_of(&john.token)["sid"].as_str().unwrap().to_owned();
    let valid_claims = json!({"sub": sub, "sid": sid, "iat": now(), "exp": now() + 3600});
    // The real token's header and payload with no signature, as `alg: none`.
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&valid_claims)
    );
    let cases: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        (
            "signed with another key",
            sign(
                Algorithm::HS256,
                "another-secret-that-is-32-bytes-long!!",
                valid_claims.clone(),
            ),
        ),
        (
            "another algorithm with the same key",
            sign(Algorithm::HS512, TEST_SECRET, valid_claims.clone()),
        ),
        (
            "expired a second ago",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sub": sub, "sid": sid, "iat": now() - 100, "exp": now() - 1}),
            ),
        ),
        (
            "without exp",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sub": sub, "sid": sid, "iat": now()}),
            ),
        ),
        (
            "without sub",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sid": sid, "iat": now(), "exp": now() + 3600}),
            ),
        ),
        (
            "without sid",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sub": sub, "iat": now(), "exp": now() + 3600}),
            ),
        ),
        (
            "a sid that names no session",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sub": sub, "sid": "nosuchsession", "iat": now(), "exp": now() + 3600}),
            ),
        ),
        (
            "another user's session",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sub": (id + 1).to_string(), "sid": sid, "iat": now(), "exp": now() + 3600}),
            ),
        ),
        (
            "a sub that is not an id",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                json!({"sub": "john", "sid": sid, "iat": now(), "exp": now() + 3600}),
            ),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("the real token, tampered", format!("{}x", john.token)),
    ];
    for (case, token) in &cases {
        // Only a good token that has run out is `token_expired`: the client refreshes it.
        let code = if *case == "expired a second ago" {
            "token_expired"
        } else {
            "unauthorized"
        };
        for path in ["/users/me", "/users/john"] {
            let response = app.get(path, Some(token)).await;
            let problem = response.assert_problem(401, code);
            assert_eq!(
                response.header("www-authenticate").as_deref(),
                Some("Bearer error=\"invalid_token\""),
                "{case} on {path}"
            );
            assert!(problem["detail"].is_string(), "{case}");
        }
    }
    // The control: a token made the same way with the right key and algorithm is accepted.
    let good = sign(Algorithm::HS256, TEST_SECRET, valid_claims);
    app.get("/users/me", Some(&good)).await.expect(200);
}

#[tokio::test]
async fn the_authorization_header_must_be_a_bearer_token_in_any_letter_case() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let response = app
            .send(
                app.client
                    .get(app.url("/users/me"))
                    .header("authorization", format!("{scheme} {}", john.token)),
            )
            .await;
        response.expect(200);
    }
    for header in [
        format!("Basic {}", john.token),
        john.token.clone(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
    ] {
        let response = app
            .send(
                app.client
                    .get(app.url("/users/john"))
                    .header("authorization", header.clone()),
            )
            .await;
        response.assert_problem(401, "unauthorized");
    }
    app.get("/users/me", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_token_expires_after_its_lifetime_without_leeway() {
    let mut settings = test_settings().await;
    settings.jwt_ttl = std::time::Duration::from_secs(1);
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    app.get("/users/me", Some(&john.token)).await.expect(200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    app.get("/users/me", Some(&john.token))
        .await
        .assert_problem(401, "token_expired");
}

#[tokio::test]
async fn without_a_secret_on_sqlite_one_is_kept_beside_the_database_and_tokens_survive_a_restart() {
    let dir =
        std::env::temp_dir().join(format!("social-restart-{}", uuid::Uuid::new_v4().simple()));
    let url = format!("sqlite://{}?mode=rwc", dir.join("app.db").display());
    let mut settings = Settings::for_database(url);
    settings.bind_addr = "127.0.0.1:0".into();
    assert!(settings.jwt_secret.is_none());

    let first = spawn_app_with(settings.clone()).await;
    let john = first.register("john").await;
    first.stop().await;
    first.db.clone().close().await.unwrap();
    assert!(dir.join("app.db.jwt-secret").exists());

    let second = spawn_app_with(settings).await;
    second.get("/users/me", Some(&john.token)).await.expect(200);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_server_refuses_to_start_on_a_server_database_without_a_secret() {
    for url in [
        "postgres://postgres@127.0.0.1:5432/social",
        "mysql://root@127.0.0.1:3306/social",
    ] {
        let mut settings = Settings::for_database(url);
        settings.bind_addr = "127.0.0.1:0".into();
        let error = api::Application::build(settings)
            .await
            .err()
            .expect("refused");
        assert!(error.to_string().contains("JWT_SECRET"), "{error}");
    }
    let mut short = Settings::for_database(fresh_database_url().await);
    short.jwt_secret = Some("too-short".into());
    let error = api::Application::build(short).await.err().expect("refused");
    assert!(error.to_string().contains("at least 32 bytes"), "{error}");
}

#[tokio::test]
async fn the_binary_starts_with_nothing_but_a_port_configured_and_stops_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("social-bare-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = crate::helpers::free_port();
    let start = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_social"))
            .current_dir(&dir)
            .env_clear()
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let wait_ready = || crate::helpers::wait_until_ready(&client, port);

    let mut server = start();
    wait_ready().await;
    let registered: serde_json::Value = client
        .post(format!("{base}/auth/register"))
        .json(&json!({"username": "john", "email": "john@example.com", "password": "password123"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = registered["access_token"].as_str().unwrap().to_owned();
    assert!(
        dir.join("data/social.db").exists(),
        "the default database is under ./data/"
    );

    let terminate = |pid: u32| {
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
    };
    assert!(terminate(server.id()).success());
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends the server cleanly: {status}"
    );

    let mut server = start();
    wait_ready().await;
    let me = client
        .get(format!("{base}/users/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "the token survives a restart");
    terminate(server.id());
    server.wait().unwrap();
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn the_binary_refuses_a_setting_out_of_range_in_one_line_naming_it() {
    for (name, value) in [
        ("JWT_TTL_SECONDS", "18446744073709551615"),
        ("JWT_TTL_SECONDS", "0"),
        ("DATABASE_POOL_SIZE", "100000"),
        ("REQUEST_TIMEOUT_SECONDS", "-1"),
        ("RATE_LIMIT_WRITES_PER_MINUTE", "lots"),
    ] {
        let dir =
            std::env::temp_dir().join(format!("social-range-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_social"))
            .current_dir(&dir)
            .env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .env(name, value)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(!output.status.success(), "{name}={value} started");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: {name}: '{value}' is not a whole number from "
            )),
            "{name}={value}: {stderr}"
        );
    }
}

#[tokio::test]
async fn every_401_carries_a_bearer_challenge_naming_invalid_token_only_when_one_was_sent() {
    let app = spawn_app().await;
    app.register("john").await;
    let without = app.get("/users/me", None).await;
    without.assert_problem(401, "unauthorized");
    assert_eq!(
        without.header("www-authenticate").as_deref(),
        Some("Bearer")
    );
    let login = app
        .post(
            "/auth/login",
            None,
            &json!({"username": "john", "password": "not the password"}),
        )
        .await;
    login.assert_problem(401, "invalid_credentials");
    assert_eq!(login.header("www-authenticate").as_deref(), Some("Bearer"));
    let ticket = app.get("/stream?ticket=not.a.ticket", None).await;
    ticket.assert_problem(401, "unauthorized");
    assert_eq!(
        ticket.header("www-authenticate").as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );
}

#[test]
fn configuration_that_cannot_work_stops_the_start_with_one_line_naming_it() {
    for (name, value, says) in [
        (
            "CORS_ALLOWED_ORIGINS",
            "http://a.example/",
            "write 'http://a.example'",
        ),
        ("CORS_ALLOWED_ORIGINS", "localhost:3000", "is not an origin"),
        ("CORS_ALLOWED_ORIGINS", "*", "is not an origin"),
        (
            "CORS_ALLOWED_ORIGINS",
            "https://ok.example,https://a.example/app",
            "'https://a.example/app'",
        ),
        (
            "DATABASE_URL",
            "postgres//user:hunter2@db/social",
            "is not a URL",
        ),
        (
            "DATABASE_URL",
            "oracle://user:hunter2@db/social",
            "is not a URL of a kind",
        ),
        ("REDIS_URL", "127.0.0.1:6379", "is not a URL"),
    ] {
        let dir =
            std::env::temp_dir().join(format!("social-config-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_social"))
            .current_dir(&dir)
            .env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("JWT_SECRET", TEST_SECRET)
            .env(name, value)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts does not exit by itself: give it 10 s, then stop it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while server.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let started = server.try_wait().unwrap().is_none();
        if started {
            server.kill().unwrap();
        }
        let output = server.wait_with_output().unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            !started && !output.status.success(),
            "{name}={value} started"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {name}: ")) && stderr.contains(says),
            "{name}={value}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2"),
            "a password in the line: {stderr}"
        );
    }
}
