//! Every error class a client can provoke is a problem+json with its documented status and code.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_body_that_is_not_json_is_400_invalid_json() {
    let app = spawn_app().await;
    for (case, body) in [
        ("not JSON", "this is not json"),
        ("truncated", "{\"username\": \"john\""),
        ("empty", ""),
        ("an array", "[1, 2]"),
        (
            "a wrong type",
            "{\"username\": 5, \"email\": \"a@b.co\", \"password\": \"password1\"}",
        ),
    ] {
        let response = app
            .send(
                app.client
                    .post(app.url("/auth/register"))
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        let problem = response.assert_problem(400, "invalid_json");
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{case}");
    }
}

#[tokio::test]
async fn a_body_must_be_a_json_object_even_where_an_array_could_fill_the_fields() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let cases = [
        (
            Method::POST,
            "/auth/register",
            r#"["susan", "susan@example.com", "password123"]"#,
        ),
        (
            Method::POST,
            "/auth/login",
            r#"["john", "password-of-john"]"#,
        ),
        (Method::PATCH, "/users/me", "[null, null]"),
        (Method::POST, "/posts", r#"["hello"]"#),
        (Method::POST, "/posts", "\"hello\""),
        (Method::PATCH, "/users/me", "null"),
    ];
    for (method, path, body) in cases {
        let response = app
            .send(
                app.client
                    .request(method.clone(), app.url(path))
                    .bearer_auth(&john.token)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        response.assert_problem(400, "invalid_json");
    }
    app.get("/users/susan", None)
        .await
        .assert_problem(404, "user_not_found");
    assert_eq!(app.profile("john", None).await["posts_count"], 0);
}

#[tokio::test]
async fn a_body_without_the_json_content_type_is_415() {
    let app = spawn_app().await;
    let body = r#"{"username": "john", "email": "j@example.com", "password": "password123"}"#;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = app.client.post(app.url("/auth/register")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        app.send(request)
            .await
            .assert_problem(415, "unsupported_media_type");
    }
    // A charset parameter is fine.
    let response = app
        .send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "application/json; charset=utf-8")
                .body(body),
        )
        .await;
    response.expect(201);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413_and_nothing_is_written() {
    let app = spawn_app().await;
    let big = json!({"username": "john", "email": "j@example.com", "password": "password123",
                     "bio": "x".repeat(70 * 1024)});
    app.post("/auth/register", None, &big)
        .await
        .assert_problem(413, "payload_too_large");
    app.get("/users/john", None)
        .await
        .assert_problem(404, "user_not_found");
}

#[tokio::test]
async fn unknown_routes_are_404_not_found() {
    let app = spawn_app().await;
    for path in ["/nope", "/users/", "/users/john/unknown", "/auth"] {
        app.get(path, None).await.assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn the_allow_header_of_a_405_names_exactly_the_methods_the_path_serves() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let post = app.post_as(&john, "hello").await;
    let paths = [
        ("/health".to_owned(), "GET, HEAD"),
        ("/health/ready".to_owned(), "GET, HEAD"),
        ("/auth/register".to_owned(), "POST"),
        ("/auth/login".to_owned(), "POST"),
        ("/users/me".to_owned(), "GET, HEAD, PATCH, DELETE"),
        ("/users".to_owned(), "GET, HEAD"),
        ("/users/susan".to_owned(), "GET, HEAD"),
        ("/users/susan/follow".to_owned(), "POST, DELETE"),
        ("/users/susan/followers".to_owned(), "GET, HEAD"),
        ("/users/susan/following".to_owned(), "GET, HEAD"),
        ("/users/susan/posts".to_owned(), "GET, HEAD"),
        ("/relationships".to_owned(), "GET, HEAD"),
        ("/posts".to_owned(), "POST"),
        (format!("/posts/{post}"), "GET, HEAD, DELETE"),
        ("/timeline".to_owned(), "GET, HEAD"),
        ("/openapi.json".to_owned(), "GET, HEAD"),
        ("/docs".to_owned(), "GET, HEAD"),
        ("/docs/".to_owned(), "GET, HEAD"),
        ("/docs/swagger-ui.css".to_owned(), "GET, HEAD"),
    ];
    let all = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    for (path, allow) in &paths {
        let allowed: Vec<&str> = allow.split(", ").collect();
        for method in all {
            if allowed.contains(&method) {
                continue;
            }
            let response = app
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    path,
                    Some(&john.token),
                    None,
                )
                .await;
            response.assert_problem(405, "method_not_allowed");
            assert_eq!(
                response.header("allow").as_deref(),
                Some(*allow),
                "{method} {path}"
            );
        }
    }
    // And every listed method is really served (DELETEs last: they remove things).
    for (path, allow) in &paths {
        for method in allow.split(", ").filter(|m| *m != "DELETE") {
            let response = app
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    path,
                    Some(&john.token),
                    None,
                )
                .await;
            assert_ne!(response.status, 405, "{method} {path}: {}", response.text);
        }
    }
    for path in [
        format!("/posts/{post}"),
        "/users/susan/follow".to_owned(),
        "/users/me".to_owned(),
    ] {
        assert_ne!(
            app.delete(&path, Some(&john.token)).await.status,
            405,
            "DELETE {path}"
        );
    }
}

#[tokio::test]
async fn a_known_path_with_a_wrong_method_is_405() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/auth/register"),
        (Method::PUT, "/users/me"),
        (Method::POST, "/users/john"),
        (Method::DELETE, "/health"),
    ] {
        app.request(method, path, None, None)
            .await
            .assert_problem(405, "method_not_allowed");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_echoes_the_clients() {
    let app = spawn_app().await;
    let generated = app.get("/health", None).await;
    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|id| id.len() >= 16)
    );
    let echoed = app
        .send(
            app.client
                .get(app.url("/nope"))
                .header("x-request-id", "client-chosen-id-42"),
        )
        .await;
    assert_eq!(echoed.status, 404);
    assert_eq!(
        echoed.header("x-request-id").as_deref(),
        Some("client-chosen-id-42")
    );
}

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/health", None).await.expect(200),
        json!({"status": "ok"})
    );
    assert_eq!(
        app.get("/health/ready", None).await.expect(200),
        json!({"status": "ok", "database": "ok"})
    );
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.clone().close().await.unwrap();
    app.get("/health/ready", None)
        .await
        .assert_problem(503, "service_unavailable");
    // Liveness does not depend on the database.
    app.get("/health", None).await.expect(200);
}

#[tokio::test]
async fn error_bodies_never_leak_sql_paths_or_hashes() {
    let app = spawn_app().await;
    app.register("john").await;
    let responses = vec![
        app.try_register("john").await,
        app.post(
            "/auth/login",
            None,
            &json!({"username": "john", "password": "wrong-password"}),
        )
        .await,
        app.get("/users/%27%3B%20DROP%20TABLE%20users%3B--", None)
            .await,
        app.send(
            app.client
                .post(app.url("/auth/register"))
                .header("content-type", "application/json")
                .body("{"),
        )
        .await,
    ];
    for response in responses {
        assert!(response.status >= 400);
        let text = response.text.to_lowercase();
        for leak in [
            "select ", "insert ", "sqlx", "argon2", "/src/", ".rs:", "sqlite", "postgres", "mysql",
        ] {
            assert!(!text.contains(leak), "'{leak}' leaked in {}", response.text);
        }
    }
}

#[tokio::test]
async fn error_details_are_sentences_that_name_the_field_and_never_echo_what_was_sent() {
    let app = spawn_app().await;
    app.register("john").await;
    for path in ["/posts/abc", "/posts/99999999999999999999999", "/posts/1.5"] {
        let body = app
            .get(path, None)
            .await
            .assert_problem(400, "invalid_parameter");
        assert_eq!(
            body["detail"], "the post id must be a whole number, such as 42",
            "{path}"
        );
    }

    let long = "a".repeat(20_000);
    for path in [
        format!("/users/{long}"),
        format!("/users/{long}/followers"),
        "/users/ünïcode".to_owned(),
    ] {
        let response = app.get(&path, None).await;
        let body = response.assert_problem(404, "user_not_found");
        let detail = body["detail"].as_str().unwrap();
        assert!(
            !detail.contains("aaaa") && !detail.contains("ünï"),
            "{detail}"
        );
        assert!(response.text.len() < 500, "{}", response.text.len());
    }
    assert_eq!(
        app.get("/users/nobody", None).await.json()["detail"],
        "user 'nobody' does not exist"
    );
    let response = app.get(&format!("/nothing/{long}"), None).await;
    response.assert_problem(404, "not_found");
    assert!(response.text.len() < 500, "{}", response.text.len());

    let writer = app.register("writer").await;
    for (path, body, field, value) in [
        (
            "/auth/register",
            json!({"username": 123, "email": "a@b.c", "password": "password123"}),
            "username",
            "123",
        ),
        (
            "/auth/login",
            json!({"username": "john", "password": 31_415_926_535_i64}),
            "password",
            "31415926535",
        ),
        ("/posts", json!({"body": ["a", "list"]}), "body", "list"),
    ] {
        let problem = app
            .post(path, Some(&writer.token), &body)
            .await
            .assert_problem(400, "invalid_json");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!("the field '{field}' must be ")),
            "{detail}"
        );
        assert!(!detail.contains(value), "{detail} repeats what was sent");
    }
}

#[tokio::test]
async fn repeated_parameters_broken_json_and_lone_surrogates_are_explained_in_words() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let body = app
        .get("/timeline?limit=1&limit=2", Some(&john.token))
        .await
        .assert_problem(400, "invalid_parameter");
    assert_eq!(
        body["detail"],
        "the query parameter 'limit' is given more than once"
    );
    let send = |raw: &'static str| {
        app.send(
            app.client
                .post(app.url("/posts"))
                .bearer_auth(&john.token)
                .header("content-type", "application/json")
                .body(raw),
        )
    };
    let surrogate = send(r#"{"body": "\ud800"}"#)
        .await
        .assert_problem(400, "invalid_json");
    let detail = surrogate["detail"].as_str().unwrap();
    assert!(
        detail.contains("surrogate") && detail.contains("line 1"),
        "{detail}"
    );
    let broken = send(r#"{"body": "#)
        .await
        .assert_problem(400, "invalid_json");
    assert!(
        broken["detail"].as_str().unwrap().contains("ends early"),
        "{broken}"
    );
    let array = send(r#"["a post"]"#)
        .await
        .assert_problem(400, "invalid_json");
    assert!(
        array["detail"].as_str().unwrap().contains("JSON object"),
        "{array}"
    );
    assert_eq!(app.profile("john", None).await["posts_count"], 0);
}
