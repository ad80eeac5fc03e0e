//! Reads on a standby (`DATABASE_READ_URL`): what can be checked without one. A real primary and
//! hot standby, with replay paused, are `.ci/standby`'s: read-your-writes, the lag budget, a
//! standby stopped under load.

use std::time::Duration;

use entity::user;
use sea_orm::EntityTrait;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::helpers::{TestApp, free_port, spawn_app_with, test_settings};
use crate::metrics::{sample, scrape};

async fn last_write_at(app: &TestApp, username: &str) -> i64 {
    user::Entity::find_by_id(app.user_id(username).await)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
        .last_write_at
}

#[tokio::test]
async fn every_write_stamps_its_caller_and_only_its_caller() {
    let app = spawn_app_with(test_settings().await).await;
    let before = api::time::now_millis();
    let john = app.register("john").await;
    app.register("susan").await;
    let registered = last_write_at(&app, "john").await;
    assert!(registered >= before, "registration stamps the new account");
    let susan_registered = last_write_at(&app, "susan").await;
    let writes: [(&str, &str, serde_json::Value); 4] = [
        ("POST", "/users/susan/follow", json!({})),
        ("POST", "/posts", json!({"body": "hello"})),
        ("POST", "/users/susan/mute", json!({})),
        ("POST", "/notifications/read", json!({"last_read_id": 1})),
    ];
    let mut last = registered;
    for (method, path, body) in writes {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&john.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{method} {path}: {}",
            response.status()
        );
        let stamped = last_write_at(&app, "john").await;
        assert!(stamped > last, "{method} {path} did not move john's stamp");
        last = stamped;
    }
    // Followed and muted, but not the writer: not stamped.
    assert_eq!(last_write_at(&app, "susan").await, susan_registered);
}

/// An operator's actions on other accounts stamp the operator, whose next reads then come from
/// the primary (and see the suspension or the resolved report).
#[tokio::test]
async fn operator_actions_stamp_the_operator() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    let john = app.register("john").await;
    app.register("susan").await;
    let report = app
        .post(
            "/reports",
            Some(&john.token),
            &json!({"username": "susan", "reason": "spam"}),
        )
        .await
        .expect(201);
    let actions = [
        ("POST", "/admin/users/susan/suspension".to_owned()),
        ("DELETE", "/admin/users/susan/suspension".to_owned()),
        ("POST", format!("/admin/reports/{}/resolve", report["id"])),
    ];
    let mut last = last_write_at(&app, "admin").await;
    for (method, path) in actions {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(&path))
            .bearer_auth(&admin.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{method} {path}");
        let stamped = last_write_at(&app, "admin").await;
        assert!(
            stamped > last,
            "{method} {path} did not move the operator's stamp"
        );
        last = stamped;
    }
}

#[tokio::test]
async fn a_read_url_that_is_not_a_standby_in_recovery_takes_no_reads_and_costs_no_errors() {
    let settings = test_settings().await;
    if !settings
        .database_url
        .expose_secret()
        .starts_with("postgres")
    {
        // Reads on a standby are PostgreSQL's (its replay positions measure the lag).
        let mut settings = settings;
        settings.database_read_url = Some("postgres://postgres@127.0.0.1:1/social".into());
        let refused = api::Application::build(settings).await.err().unwrap();
        assert!(
            refused.to_string().starts_with("DATABASE_READ_URL: "),
            "{refused}"
        );
        return;
    }
    // The primary itself (not in recovery), and a port where nothing listens.
    let nothing_there = format!("postgres://postgres@127.0.0.1:{}/social", free_port());
    for read_url in [
        settings.database_url.expose_secret().to_owned(),
        nothing_there,
    ] {
        let mut settings = test_settings().await;
        settings.database_read_url = Some(read_url.clone().into());
        let app = spawn_app_with(settings).await;
        let john = app.register("john").await;
        app.register("susan").await;
        app.post("/users/susan/follow", Some(&john.token), &json!({}))
            .await
            .expect(201);
        // A few checks have run.
        tokio::time::sleep(Duration::from_millis(700)).await;
        let metrics = scrape(&app).await;
        assert!(
            metrics.contains("\ndb_read_standby_in_rotation 0\n"),
            "{read_url} was taken for a standby, or the gauge is missing:\n{metrics}"
        );
        assert_eq!(
            sample(&metrics, "db_read_standby_fallbacks_total"),
            0.0,
            "a read was tried on {read_url}"
        );
        let profile = app.get("/users/susan", None).await.expect(200);
        assert_eq!(profile["followers_count"], 1, "{read_url}");
        app.get("/users/john/following", None).await.expect(200);
        app.get("/timeline", Some(&john.token)).await.expect(200);
    }
}
