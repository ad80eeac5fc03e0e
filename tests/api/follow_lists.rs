//! `GET` and `POST /users/me/following.csv`: the follow list out and in.

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, TestUser, spawn_app};

async fn import(app: &TestApp, user: &TestUser, content_type: &str, body: Vec<u8>) -> TestResponse {
    app.send(
        app.client
            .post(app.url("/users/me/following.csv"))
            .bearer_auth(&user.token)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

fn sorted(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_export_lists_whom_the_caller_follows_newest_first_as_csv() {
    let app = spawn_app().await;
    let me = app.register("reader").await;
    for name in ["ann", "bob", "cat"] {
        app.register(name).await;
    }
    let dan = app.register("dan").await;
    app.patch("/users/me", Some(&dan.token), &json!({"locked": true}))
        .await
        .expect(200);
    for name in ["bob", "ann", "cat"] {
        assert_eq!(app.follow(&me, name).await.status, 201);
    }
    // A pending request is no follow.
    assert_eq!(app.follow(&me, "dan").await.status, 202);

    let response = app.get("/users/me/following.csv", Some(&me.token)).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let lines: Vec<&str> = response.text.lines().collect();
    assert_eq!(lines[0], "username,followed_at");
    let rows: Vec<(&str, &str)> = lines[1..]
        .iter()
        .map(|line| line.split_once(',').unwrap())
        .collect();
    let names: Vec<&str> = rows.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["cat", "ann", "bob"]);
    // The same timestamps as the following list's `followed_at`, newest first.
    let listed = app.get("/users/reader/following", None).await.expect(200);
    for ((name, at), item) in rows.iter().zip(listed["items"].as_array().unwrap()) {
        assert_eq!(item["user"]["username"], *name);
        assert_eq!(item["followed_at"], *at);
    }
    app.get("/users/me/following.csv", None)
        .await
        .assert_problem(401, "unauthorized");

    // Nobody followed: the header alone.
    let none = app.register("loner").await;
    let response = app.get("/users/me/following.csv", Some(&none.token)).await;
    assert_eq!(response.text, "username,followed_at\n");
}

#[tokio::test]
async fn the_import_follows_as_the_follow_endpoint_does_and_reports_each_name() {
    let app = spawn_app().await;
    let me = app.register("reader").await;
    for name in ["ann", "bob", "already", "blocker", "blocked"] {
        app.register(name).await;
    }
    let locky = app.register("locky").await;
    app.patch("/users/me", Some(&locky.token), &json!({"locked": true}))
        .await
        .expect(200);
    assert_eq!(app.follow(&me, "already").await.status, 201);
    let blocker = app.register("spiky").await;
    app.post("/users/reader/block", Some(&blocker.token), &json!({}))
        .await
        .expect(201);
    app.post("/users/blocked/block", Some(&me.token), &json!({}))
        .await
        .expect(201);

    // A byte order mark, CRLF, a header with extra columns, quotes, a quoted comma, a repeat in
    // another letter case, an empty row, a leading `@`.
    let body = "\u{feff}username,note\r\n\"ann\",\"a, friend\"\r\nBOB,x,y,z\r\n\r\n\"locky\"\r\n\
                already\r\nspiky\r\nblocked\r\nreader\r\nnobody\r\nbad name!\r\nAnn\r\n@bob\r\n";
    let response = import(&app, &me, "text/csv; charset=utf-8", body.into()).await;
    let report = response.expect(200);
    assert_eq!(report["followed"], 2, "{report}");
    assert_eq!(report["requested"], 1, "{report}");
    assert_eq!(report["already"], 1, "{report}");
    assert_eq!(sorted(&report["not_found"]), ["bad name!", "nobody"]);
    assert_eq!(sorted(&report["refused"]), ["blocked", "reader", "spiky"]);

    // What the follow endpoint does: counts, notifications, requests.
    assert_eq!(app.profile("ann", None).await["followers_count"], 1);
    assert_eq!(app.profile("reader", None).await["following_count"], 3);
    let relation = app
        .get("/relationships?users=locky,ann,bob,spiky", Some(&me.token))
        .await
        .expect(200);
    assert_eq!(relation[0]["requested"], true);
    assert_eq!(relation[1]["following"], true);
    assert_eq!(relation[2]["following"], true);
    assert_eq!(relation[3]["following"], false);
    let notifications = app
        .get("/notifications", Some(&locky.token))
        .await
        .expect(200);
    assert_eq!(notifications["items"][0]["type"], "follow_request");
    assert_eq!(notifications["items"][0]["account"]["username"], "reader");
    app.assert_counts_match_rows().await;

    // Again: everything is there already.
    let again = import(&app, &me, "text/csv", "ann\nbob\nalready\nlocky\n".into())
        .await
        .expect(200);
    assert_eq!(again["followed"], 0);
    assert_eq!(again["already"], 3);
    assert_eq!(again["requested"], 1);
}

#[tokio::test]
async fn an_import_over_its_limits_or_not_csv_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let me = app.register("reader").await;
    app.register("ann").await;

    // One row over 10,000 (after a header): 413.
    let mut rows = String::from("username\n");
    rows.push_str(&"ann\n".repeat(10_001));
    import(&app, &me, "text/csv", rows.into_bytes())
        .await
        .assert_problem(413, "payload_too_large");
    // Over 1 MiB: 413.
    let big = format!("ann,{}\n", "x".repeat(1024 * 1024));
    import(&app, &me, "text/csv", big.into_bytes())
        .await
        .assert_problem(413, "payload_too_large");
    // Another content type, or none: 415.
    for content_type in ["application/json", "text/plain", "text/csvx"] {
        import(&app, &me, content_type, b"ann\n".to_vec())
            .await
            .assert_problem(415, "unsupported_media_type");
    }
    let response = app
        .send(
            app.client
                .post(app.url("/users/me/following.csv"))
                .bearer_auth(&me.token)
                .body("ann\n"),
        )
        .await;
    response.assert_problem(415, "unsupported_media_type");
    assert_eq!(app.profile("reader", None).await["following_count"], 0);

    // Exactly 10,000 rows is taken.
    let names: String = (0..10_000).map(|i| format!("nobody{i}\n")).collect();
    let report = import(&app, &me, "text/csv", names.into_bytes())
        .await
        .expect(200);
    assert_eq!(report["not_found"].as_array().unwrap().len(), 10_000);
    assert_eq!(report["followed"], 0);
}
