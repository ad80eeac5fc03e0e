//! The HTTP conventions of the contract: `HEAD` wherever `GET` answers, `ETag` and 304, and the
//! cache headers of authenticated and token-carrying answers.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn every_get_answers_head_with_the_same_status_and_headers_and_no_body() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    let post = app.post_as(&john, "hello").await;
    let token = Some(john.token.as_str());
    for (path, authenticated) in [
        ("/health".to_owned(), false),
        ("/health/ready".to_owned(), false),
        ("/users/me".to_owned(), true),
        ("/users/susan".to_owned(), false),
        ("/users/susan".to_owned(), true),
        ("/users/susan/followers".to_owned(), true),
        ("/users/john/following".to_owned(), false),
        ("/users/john/posts".to_owned(), false),
        ("/relationships?users=susan".to_owned(), true),
        (format!("/posts/{post}"), false),
        ("/timeline".to_owned(), true),
        ("/openapi.json".to_owned(), false),
        ("/users/nobody".to_owned(), false),
    ] {
        let token = if authenticated { token } else { None };
        let get = app.request(Method::GET, &path, token, None).await;
        let head = app.request(Method::HEAD, &path, token, None).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} sent a body");
        for name in ["content-type", "etag", "cache-control", "vary", "link"] {
            assert_eq!(head.header(name), get.header(name), "{name} of HEAD {path}");
        }
        if get.status == 200 {
            assert_eq!(
                head.header("content-length"),
                Some(get.text.len().to_string()),
                "HEAD {path} says how long the GET body is"
            );
        }
    }
    // HEAD is GET's: where GET is not served, neither is HEAD.
    let head = app.request(Method::HEAD, "/auth/login", None, None).await;
    assert_eq!(head.status, 405);
    assert_eq!(head.header("allow").as_deref(), Some("POST"));
    assert!(head.text.is_empty());
    // ... and a GET route's 405s list HEAD with it.
    let put = app.request(Method::PUT, "/timeline", None, None).await;
    assert_eq!(put.header("allow").as_deref(), Some("GET, HEAD"));
}

#[tokio::test]
async fn a_get_with_the_current_etag_is_304_and_a_change_makes_a_new_one() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let token = Some(john.token.as_str());
    app.post_as(&john, "first").await;
    let first = app.get("/timeline", token).await;
    first.expect(200);
    let etag = first.header("etag").expect("a 200 GET carries an ETag");
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let send = |tag: String| {
        app.send(
            app.client
                .get(app.url("/timeline"))
                .bearer_auth(&john.token)
                .header("if-none-match", tag),
        )
    };
    let again = send(etag.clone()).await;
    assert_eq!(again.status, 304);
    assert!(again.text.is_empty());
    assert_eq!(again.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(
        again.header("cache-control").as_deref(),
        Some("private, no-cache")
    );
    assert_eq!(send(format!("\"stale\", W/{etag}")).await.status, 304);
    assert_eq!(send("*".into()).await.status, 304);
    assert_eq!(send("\"stale\"".into()).await.status, 200);

    app.post_as(&john, "second").await;
    let changed = send(etag.clone()).await;
    let body = changed.expect(200);
    assert_eq!(body["items"][0]["body"], "second");
    assert_ne!(changed.header("etag"), Some(etag));

    // Another reader's view of the same list is another representation.
    let susan = app.register("susan").await;
    let anonymous = app.get("/users/john/posts", None).await;
    let signed_in = app.get("/users/john/posts", Some(&susan.token)).await;
    assert_ne!(anonymous.header("etag"), signed_in.header("etag"));
    // Errors carry none.
    assert_eq!(app.get("/users/nobody", None).await.header("etag"), None);
}

#[tokio::test]
async fn answers_say_how_they_may_be_cached() {
    let app = spawn_app().await;
    let registered = app.try_register("john").await;
    registered.expect(201);
    assert_eq!(
        registered.header("cache-control").as_deref(),
        Some("no-store")
    );
    let login = app
        .post(
            "/auth/login",
            None,
            &json!({"username": "john", "password": "password-of-john"}),
        )
        .await;
    login.expect(200);
    assert_eq!(login.header("cache-control").as_deref(), Some("no-store"));
    let token = login.json()["access_token"].as_str().unwrap().to_owned();

    let mine = app.get("/users/john", Some(&token)).await;
    assert_eq!(
        mine.header("cache-control").as_deref(),
        Some("private, no-cache")
    );
    assert!(
        mine.headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().contains("Authorization")),
        "{:?}",
        mine.headers
    );
    let public = app.get("/users/john", None).await;
    assert_eq!(public.header("cache-control").as_deref(), Some("no-cache"));
    assert!(public.header("vary").is_some());
}
