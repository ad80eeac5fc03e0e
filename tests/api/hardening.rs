//! Abuse limits, CORS and the security headers.

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, spawn_replicas_with_redis, test_settings};

#[tokio::test]
async fn a_login_flood_from_one_ip_is_answered_429_with_retry_after() {
    let mut settings = test_settings().await;
    settings.rate_limit_auth_per_minute = 3;
    let app = spawn_app_with(settings).await;
    let credentials = json!({"username": "john", "password": "guess-guess"});
    let attempt = || app.post("/auth/login", None, &credentials);
    for remaining in [2, 1, 0] {
        let response = attempt().await;
        response.assert_problem(401, "invalid_credentials");
        assert_eq!(response.header("ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            response.header("ratelimit-remaining"),
            Some(remaining.to_string())
        );
        assert!(
            response
                .header("ratelimit-reset")
                .unwrap()
                .parse::<u64>()
                .unwrap()
                <= 60
        );
    }
    let limited = attempt().await;
    limited.assert_problem(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "Retry-After {retry_after}");
    assert_eq!(limited.header("ratelimit-remaining").as_deref(), Some("0"));
    // Registration shares the per-IP quota: a sign-up spammer is refused too.
    app.try_register("spammer")
        .await
        .assert_problem(429, "rate_limited");
    // Other routes are not limited.
    app.get("/health", None).await.expect(200);
}

/// Anyone behind the same address (a NAT) spending the login quota must not stop a phone from
/// refreshing: refreshes have a quota per session, and password checks one per account.
#[tokio::test]
async fn refreshes_have_a_quota_per_session_that_logins_cannot_spend() {
    let mut settings = test_settings().await;
    settings.rate_limit_auth_per_minute = 2;
    settings.rate_limit_refresh_per_minute = 3;
    let app = spawn_app_with(settings).await;
    let john = app.try_register("john").await.expect(201);
    let mary = app.try_register("mary").await.expect(201);
    // The address's login quota is spent.
    app.post(
        "/auth/login",
        None,
        &json!({"username": "john", "password": "password-of-john"}),
    )
    .await
    .assert_problem(429, "rate_limited");

    let mut refresh_token = john["refresh_token"].as_str().unwrap().to_owned();
    let mut access_token = String::new();
    for remaining in [2, 1, 0] {
        let response = app
            .post(
                "/auth/refresh",
                None,
                &json!({"refresh_token": refresh_token}),
            )
            .await;
        let body = response.expect(200);
        assert_eq!(response.header("ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            response.header("ratelimit-remaining"),
            Some(remaining.to_string())
        );
        refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        access_token = body["access_token"].as_str().unwrap().to_owned();
    }
    let limited = app
        .post(
            "/auth/refresh",
            None,
            &json!({"refresh_token": refresh_token}),
        )
        .await;
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    // Mary's session has a quota of its own.
    app.post(
        "/auth/refresh",
        None,
        &json!({"refresh_token": mary["refresh_token"]}),
    )
    .await
    .expect(200);

    // A password check is counted per account, at the login rate, not per address.
    let change = async |current: &str| {
        let body = json!({"current_password": current, "new_password": "a brand new one"});
        app.request(
            reqwest::Method::PUT,
            "/users/me/password",
            Some(&access_token),
            Some(&body),
        )
        .await
    };
    change("not it")
        .await
        .assert_problem(422, "validation_failed");
    change("password-of-john").await.expect(204);
    change("a brand new one")
        .await
        .assert_problem(429, "rate_limited");
}

#[tokio::test]
async fn writes_are_limited_per_user_not_globally() {
    let mut settings = test_settings().await;
    settings.rate_limit_writes_per_minute = 4;
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(app.unfollow(&john, "susan").await.status, 204);
    app.post_as(&john, "one").await;
    let last = app
        .post("/posts", Some(&john.token), &json!({"body": "two"}))
        .await;
    last.expect(201);
    assert_eq!(last.header("ratelimit-remaining").as_deref(), Some("0"));
    let limited = app
        .post("/posts", Some(&john.token), &json!({"body": "three"}))
        .await;
    limited.assert_problem(429, "rate_limited");
    assert!(limited.header("retry-after").is_some());
    app.follow(&john, "susan")
        .await
        .assert_problem(429, "rate_limited");
    assert_eq!(
        app.profile("john", None).await["posts_count"],
        2,
        "the refused post was not written"
    );
    // Susan has her own quota; reads are not limited.
    app.follow(&susan, "john").await.expect(201);
    app.get("/timeline", Some(&john.token)).await.expect(200);
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins_without_credentials() {
    let mut settings = test_settings().await;
    settings.cors_allowed_origins = vec!["https://app.example.com".into()];
    let app = spawn_app_with(settings).await;
    let preflight = |origin: &'static str| {
        app.send(
            app.client
                .request(reqwest::Method::OPTIONS, app.url("/timeline"))
                .header("origin", origin)
                .header("access-control-request-method", "GET")
                .header(
                    "access-control-request-headers",
                    "authorization, if-none-match",
                ),
        )
    };
    let allowed = preflight("https://app.example.com").await;
    assert!(allowed.status < 300, "{}", allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert!(allowed.header("access-control-allow-credentials").is_none());
    let refused = preflight("https://evil.example.net").await;
    assert!(refused.header("access-control-allow-origin").is_none());
    // A clear answer, not the framework's bare "Bad Request".
    let problem = refused.assert_problem(403, "forbidden");
    assert!(
        problem["detail"].as_str().unwrap().contains("CORS"),
        "{problem}"
    );
    let simple = app
        .send(
            app.client
                .get(app.url("/health"))
                .header("origin", "https://app.example.com"),
        )
        .await;
    assert_eq!(
        simple.header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    let exposed = simple
        .header("access-control-expose-headers")
        .unwrap()
        .to_lowercase();
    // A browser app reads the Link of a page and the ETag it revalidates with.
    assert!(
        exposed.contains("link") && exposed.contains("etag"),
        "{exposed}"
    );
}

#[tokio::test]
async fn responses_carry_nosniff_and_authenticated_ones_private_no_cache() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let anonymous = app.get("/users/john", None).await;
    assert_eq!(
        anonymous.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    // v2: clients may keep answers and revalidate them with their ETag; shared caches may not
    // keep what one user sees.
    assert_eq!(
        anonymous.header("cache-control").as_deref(),
        Some("no-cache")
    );
    let signed_in = app.get("/users/john", Some(&john.token)).await;
    assert_eq!(
        signed_in.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(
        signed_in.header("cache-control").as_deref(),
        Some("private, no-cache")
    );
    let error = app.get("/nope", Some(&john.token)).await;
    assert_eq!(
        error.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
}

#[tokio::test]
async fn each_request_is_logged_once_without_colour_codes_or_credentials() {
    use std::io::Read;
    let dir = std::env::temp_dir().join(format!("social-log-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = crate::helpers::free_port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_social"))
        .current_dir(&dir)
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    crate::helpers::wait_until_ready(&client, port).await;
    client
        .get(format!("http://127.0.0.1:{port}/health"))
        .send()
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    client
        .get(format!("{base}/users/nobody"))
        .send()
        .await
        .unwrap();
    client
        .post(format!("{base}/auth/login"))
        .json(&serde_json::json!({"username": "someone", "password": 31_415_926_535_i64}))
        .send()
        .await
        .unwrap();
    // One the HTTP layer refuses, carrying a secret in a header it cannot parse.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nX Secret: 27182818284\r\n\r\n")
            .await
            .unwrap();
        stream.read_to_end(&mut Vec::new()).await.unwrap();
    }
    std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    server.wait().unwrap();
    let mut logs = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    server
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(logs.contains("/health"), "the request is logged: {logs}");
    assert_eq!(
        logs.matches("malformed_request").count(),
        1,
        "the refused request is logged once: {logs}"
    );
    assert!(!logs.contains("stream error"), "{logs}");
    for secret in ["31415926535", "27182818284"] {
        assert!(
            !logs.contains(secret),
            "what the client sent is logged: {logs}"
        );
    }
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in piped logs: {logs:?}"
    );
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_cut_off_after_10_seconds_with_a_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app().await;
    let john = app.register("john").await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /posts HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"body\": \"hel",
        john.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await;
    let waited = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer within 30 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(20),
        "answered after {waited:?}"
    );
    assert_eq!(app.profile("john", None).await["posts_count"], 0);
}

/// Sends raw bytes on a fresh connection and reads until the server closes it (or 30 s pass).
async fn raw_exchange(app: &crate::helpers::TestApp, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection within 30 s")
    .unwrap();
    String::from_utf8(answer).unwrap()
}

/// The status, the lower-cased head and the problem body of the last response in `answer`.
fn last_problem(answer: &str) -> (u16, String, serde_json::Value) {
    let start = answer.rfind("HTTP/1.1 ").expect("a response");
    let (head, body) = answer[start..]
        .split_once("\r\n\r\n")
        .expect("a whole head");
    let status = head[9..12].parse().unwrap();
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("\r\ncontent-type: application/problem+json\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nx-request-id: "), "{head}");
    assert!(
        head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
        "{head}"
    );
    let problem: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["status"], status, "{problem}");
    (status, head, problem)
}

#[tokio::test]
async fn the_http_layer_refuses_unparseable_requests_with_problem_bodies() {
    let app = spawn_app().await;
    let url = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000));
    let headers = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("X-Header-{i}: 1\r\n"))
            .collect::<String>()
    );
    let cases: [(&str, &[u8], u16, &str); 4] = [
        (
            "garbage request line",
            b"GARBAGE\r\n\r\n",
            400,
            "malformed_request",
        ),
        (
            "invalid header",
            b"GET /health HTTP/1.1\r\nHo st: x\r\n\r\n",
            400,
            "malformed_request",
        ),
        ("100 KB URL", url.as_bytes(), 400, "malformed_request"),
        ("200 headers", headers.as_bytes(), 431, "headers_too_large"),
    ];
    for (name, request, status, code) in cases {
        let answer = raw_exchange(&app, request).await;
        let (got, _, problem) = last_problem(&answer);
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{name}: {answer}"
        );
        assert!(
            answer.len() < 1000,
            "{name}: nothing of the request is echoed"
        );
    }
}

#[tokio::test]
async fn a_garbage_request_after_a_good_one_leaves_the_good_answer_whole() {
    let app = spawn_app().await;
    let answer = raw_exchange(
        &app,
        b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains("\r\n\r\n{\"status\":\"ok\"}HTTP/1.1 400 "),
        "{answer}"
    );
    let (status, _, problem) = last_problem(&answer);
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("malformed_request"))
    );
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_answered_408_with_a_problem_body() {
    let app = spawn_app().await;
    let started = std::time::Instant::now();
    let answer = raw_exchange(&app, b"GET /health HTTP/1.1\r\nHost: x\r\n").await;
    let waited = started.elapsed();
    let (status, head, problem) = last_problem(&answer);
    assert_eq!(
        (status, problem["code"].as_str()),
        (408, Some("request_timeout"))
    );
    assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    assert!(
        waited >= std::time::Duration::from_secs(9) && waited < std::time::Duration::from_secs(20),
        "answered after {waited:?}"
    );
}

#[tokio::test]
async fn two_servers_with_redis_draw_on_one_quota() {
    let mut settings = test_settings().await;
    settings.rate_limit_writes_per_minute = 4;
    let Some((first, second)) = spawn_replicas_with_redis(settings).await else {
        return;
    };
    let john = first.register("john").await;
    first.register("susan").await;
    let mut remaining = Vec::new();
    for (i, app) in [&first, &second, &first, &second].into_iter().enumerate() {
        let written = app
            .post(
                "/posts",
                Some(&john.token),
                &json!({"body": format!("post {i}")}),
            )
            .await;
        written.expect(201);
        remaining.push(written.header("ratelimit-remaining").unwrap());
    }
    assert_eq!(
        remaining,
        ["3", "2", "1", "0"],
        "one quota counted down by both"
    );
    for app in [&first, &second] {
        let limited = app
            .post(
                "/posts",
                Some(&john.token),
                &json!({"body": "one too many"}),
            )
            .await;
        limited.assert_problem(429, "rate_limited");
        assert!(limited.header("retry-after").is_some());
    }
    assert_eq!(first.profile("john", None).await["posts_count"], 4);
}

#[tokio::test]
async fn a_redis_that_does_not_answer_leaves_the_quotas_to_each_process() {
    let mut settings = test_settings().await;
    settings.rate_limit_writes_per_minute = 2;
    // Nothing listens on port 1: every check falls back at once.
    settings.redis_url = Some("redis://127.0.0.1:1".into());
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    app.post_as(&john, "one").await;
    let second = app
        .post("/posts", Some(&john.token), &json!({"body": "two"}))
        .await;
    second.expect(201);
    assert_eq!(second.header("ratelimit-remaining").as_deref(), Some("0"));
    app.post("/posts", Some(&john.token), &json!({"body": "three"}))
        .await
        .assert_problem(429, "rate_limited");
}
