//! `Idempotency-Key` on `POST /posts` and `POST /reports`: a repeat answers the first answer and
//! writes nothing; another body is 422; a repeat while the first runs is 409.

use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, TestUser, spawn_app};

async fn post_with_key(app: &TestApp, user: &TestUser, key: &str, raw_body: &str) -> TestResponse {
    app.send(
        app.client
            .post(app.url("/posts"))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(raw_body.to_owned()),
    )
    .await
}

async fn posts_count(app: &TestApp, username: &str) -> i64 {
    app.profile(username, None).await["posts_count"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_repeat_with_the_same_key_and_body_answers_the_first_answer_and_writes_nothing() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let first = post_with_key(
        &app,
        &john,
        "k-1",
        r#"{"body": "hello", "extra": [1, {"b": 2, "a": 1}]}"#,
    )
    .await;
    let created = first.expect(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    // The same JSON with its keys in another order and other spacing is the same request.
    let again = post_with_key(
        &app,
        &john,
        "k-1",
        r#"{ "extra":[1,{"a":1,"b":2}],   "body":"hello" }"#,
    )
    .await;
    assert_eq!(again.expect(201), created);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(posts_count(&app, "john").await, 1);

    // A new key is a new post.
    post_with_key(&app, &john, "k-2", r#"{"body": "hello"}"#)
        .await
        .expect(201);
    assert_eq!(posts_count(&app, "john").await, 2);
}

#[tokio::test]
async fn the_same_key_for_another_request_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    post_with_key(&app, &john, "k", r#"{"body": "one"}"#)
        .await
        .expect(201);
    post_with_key(&app, &john, "k", r#"{"body": "two"}"#)
        .await
        .assert_problem(422, "idempotency_key_reused");
    // Another endpoint with the same key is another request too.
    let report = app
        .send(
            app.client
                .post(app.url("/reports"))
                .bearer_auth(&john.token)
                .header("idempotency-key", "k")
                .json(&json!({"username": "susan", "reason": "spam"})),
        )
        .await;
    report.assert_problem(422, "idempotency_key_reused");
    assert_eq!(posts_count(&app, "john").await, 1);
}

#[tokio::test]
async fn keys_are_each_callers_own_and_a_refused_request_keeps_none() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let johns = post_with_key(&app, &john, "shared", r#"{"body": "by john"}"#)
        .await
        .expect(201);
    let susans = post_with_key(&app, &susan, "shared", r#"{"body": "by susan"}"#).await;
    assert_eq!(susans.header("idempotent-replayed"), None);
    assert_ne!(susans.expect(201)["id"], johns["id"]);

    // A request refused before it wrote anything keeps no key: the corrected one goes through.
    post_with_key(&app, &john, "fix", r#"{"body": "   "}"#)
        .await
        .assert_problem(422, "validation_failed");
    post_with_key(&app, &john, "fix", r#"{"body": "corrected"}"#)
        .await
        .expect(201);
}

#[tokio::test]
async fn a_key_that_is_not_1_to_255_visible_ascii_characters_is_400() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let too_long = "k".repeat(256);
    for (key, why) in [
        ("", "empty"),
        (too_long.as_str(), "256 characters"),
        ("has space", "a space is not visible"),
        ("tab\there", "a control character"),
    ] {
        let response = post_with_key(&app, &john, key, r#"{"body": "x"}"#).await;
        assert_eq!(response.status, 400, "{why}: {}", response.text);
        response.assert_problem(400, "invalid_parameter");
    }
    post_with_key(&app, &john, &"k".repeat(255), r#"{"body": "x"}"#)
        .await
        .expect(201);
    assert_eq!(posts_count(&app, "john").await, 1);
}

/// Eight identical requests at once make one post: the first answers 201, each other one either
/// replays it (201 with `Idempotent-Replayed`) or is told it is still running (409 with
/// `Retry-After: 1`), on every backend.
#[tokio::test]
async fn eight_concurrent_repeats_make_one_post() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    for round in 0..3 {
        let key = format!("burst-{round}");
        let body = format!(r#"{{"body": "burst {round}"}}"#);
        let answers =
            futures_util::future::join_all((0..8).map(|_| post_with_key(&app, &john, &key, &body)))
                .await;
        let mut ids = std::collections::BTreeSet::new();
        let mut fresh = 0;
        for answer in &answers {
            match answer.status {
                201 => {
                    ids.insert(answer.json()["id"].as_i64().unwrap());
                    if answer.header("idempotent-replayed").is_none() {
                        fresh += 1;
                    }
                }
                409 => {
                    answer.assert_problem(409, "idempotency_key_in_use");
                    assert_eq!(answer.header("retry-after").as_deref(), Some("1"));
                }
                other => panic!("unexpected {other}: {}", answer.text),
            }
        }
        assert_eq!(fresh, 1, "exactly one answer wrote the post");
        assert_eq!(ids.len(), 1, "every 201 names the one post");
        // After the burst, a repeat replays.
        let after = post_with_key(&app, &john, &key, &body).await;
        assert_eq!(after.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!(after.expect(201)["id"].as_i64(), ids.first().copied());
    }
    assert_eq!(posts_count(&app, "john").await, 3);
}

/// The key is written with the post, its answer's body after the commit: a repeat that finds no
/// body (a crash came between) answers the post as it is, with the first status and `Location`.
#[tokio::test]
async fn a_repeat_whose_first_answer_was_not_kept_renders_the_post_again() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let first = post_with_key(&app, &john, "crash", r#"{"body": "kept?"}"#).await;
    let created = first.expect(201);
    let backend = app.db.get_database_backend();
    app.db
        .execute_raw(Statement::from_string(
            backend,
            "UPDATE idempotency_keys SET response = NULL",
        ))
        .await
        .unwrap();
    let again = post_with_key(&app, &john, "crash", r#"{"body": "kept?"}"#).await;
    assert_eq!(again.expect(201), created);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(posts_count(&app, "john").await, 1);
}

/// A key lives 24 hours: past them it is forgotten (a new request may use it), and the sweep
/// removes it.
#[tokio::test]
async fn a_key_older_than_24_hours_is_forgotten_and_swept() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    post_with_key(&app, &john, "old", r#"{"body": "yesterday"}"#)
        .await
        .expect(201);
    let backend = app.db.get_database_backend();
    let day_and_a_minute_ago = api::time::now_millis() - 24 * 3_600_000 - 60_000;
    app.db
        .execute_raw(Statement::from_string(
            backend,
            format!("UPDATE idempotency_keys SET created_at = {day_and_a_minute_ago}"),
        ))
        .await
        .unwrap();
    assert_eq!(api::services::idempotency::sweep(&app.db).await.unwrap(), 1);
    let today = post_with_key(&app, &john, "old", r#"{"body": "today"}"#).await;
    assert_eq!(today.header("idempotent-replayed"), None);
    assert_eq!(today.expect(201)["body"], "today");
    assert_eq!(posts_count(&app, "john").await, 2);
}

#[tokio::test]
async fn a_report_repeat_answers_the_first_receipt_and_files_nothing() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let report = async |key: &str| {
        app.send(
            app.client
                .request(Method::POST, app.url("/reports"))
                .bearer_auth(&john.token)
                .header("idempotency-key", key)
                .json(&json!({"username": "susan", "reason": "spam"})),
        )
        .await
    };
    let first = report("r-1").await;
    let receipt: Value = first.expect(201);
    let again = report("r-1").await;
    assert_eq!(again.expect(201), receipt);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    // Another key for the same report meets the open one: 200, as without keys.
    let other = report("r-2").await;
    assert_eq!(other.expect(200)["id"], receipt["id"]);
}

/// Two servers on one database (replicas) share the keys: repeats sent to both at once make one
/// post, the ones that reach the database after the first queue on the caller's lock and replay
/// it.
#[tokio::test]
async fn repeats_through_two_servers_on_one_database_make_one_post() {
    let first = spawn_app().await;
    let mut settings = crate::helpers::test_settings().await;
    settings.database_url = first.database_url.clone().into();
    let second = crate::helpers::spawn_app_with(settings).await;
    let john = first.register("john").await;
    for round in 0..3 {
        let key = format!("replicas-{round}");
        let body = format!(r#"{{"body": "round {round}"}}"#);
        let answers = futures_util::future::join_all((0..8).map(|i| {
            let app = if i % 2 == 0 { &first } else { &second };
            post_with_key(app, &john, &key, &body)
        }))
        .await;
        let mut ids = std::collections::BTreeSet::new();
        let mut fresh = 0;
        for answer in &answers {
            match answer.status {
                201 => {
                    ids.insert(answer.json()["id"].as_i64().unwrap());
                    fresh += usize::from(answer.header("idempotent-replayed").is_none());
                }
                409 => {
                    answer.assert_problem(409, "idempotency_key_in_use");
                }
                other => panic!("unexpected {other}: {}", answer.text),
            }
        }
        assert_eq!(fresh, 1, "exactly one answer wrote the post");
        assert_eq!(ids.len(), 1, "every 201 names the one post");
        let replayed = post_with_key(&second, &john, &key, &body).await;
        assert_eq!(
            replayed.header("idempotent-replayed").as_deref(),
            Some("true")
        );
    }
    assert_eq!(posts_count(&first, "john").await, 3);
}

/// A keyed reply whose parent is deleted after it was written is still answered as it was: the
/// committed key is found before the parent is checked again.
#[tokio::test]
async fn a_repeated_reply_is_replayed_after_its_parent_is_gone() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let parent = app.post_as(&susan, "ask me").await;
    let body = format!(r#"{{"body": "an answer", "in_reply_to_id": {parent}}}"#);
    let first = post_with_key(&app, &john, "reply-1", &body).await;
    let reply = first.expect(201);
    assert_eq!(reply["in_reply_to"]["id"], parent);
    app.delete(&format!("/posts/{parent}"), Some(&susan.token))
        .await
        .expect(204);
    let again = post_with_key(&app, &john, "reply-1", &body).await;
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.expect(201), reply);
    // Without the key, the same reply is refused now: its parent is gone.
    app.post(
        "/posts",
        Some(&john.token),
        &serde_json::from_str::<Value>(&body).unwrap(),
    )
    .await
    .assert_problem(404, "post_not_found");
    assert_eq!(posts_count(&app, "john").await, 1);
}
