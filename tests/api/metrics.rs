//! `GET /metrics`: Prometheus' text format, by route pattern, readable only from
//! `METRICS_ALLOWED_FROM`.
//!
//! The metrics are the process's, and the tests of this binary share one process: each test
//! reads a counter before and after what it does, and asserts the difference.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, test_settings};

/// The metrics' text.
pub async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4"
    );
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels exactly as exported), 0 when absent.
pub fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn requests_are_counted_and_timed_by_route_pattern_and_status() {
    let app = spawn_app().await;
    app.register("john").await;
    let ok = r#"http_requests_total{method="GET",route="/users/{username}",status="200"}"#;
    let missing = r#"http_requests_total{method="GET",route="/users/{username}",status="404"}"#;
    let timed = r#"http_request_duration_seconds_count{method="GET",route="/users/{username}"}"#;
    let before = scrape(&app).await;
    for _ in 0..3 {
        app.get("/users/john", None).await.expect(200);
    }
    app.get("/users/nobody", None).await.expect(404);
    let after = scrape(&app).await;
    assert!(sample(&after, ok) - sample(&before, ok) >= 3.0, "{after}");
    assert!(sample(&after, missing) - sample(&before, missing) >= 1.0);
    assert!(sample(&after, timed) - sample(&before, timed) >= 4.0);
    assert!(
        !after.contains("route=\"/users/john\""),
        "raw paths are never labels"
    );
    for name in [
        "event_streams_open",
        "db_pool_connections{state=\"in_use\"}",
        "db_pool_connections{state=\"idle\"}",
        "db_pool_max_connections",
        "db_transaction_retries_total",
    ] {
        assert!(
            after.lines().any(|line| line.starts_with(name)),
            "{name} missing from:\n{after}"
        );
    }
    // The tests' pools (`test_settings`) open at most 5.
    assert_eq!(sample(&after, "db_pool_max_connections"), 5.0);
}

#[tokio::test]
async fn rate_limited_requests_and_open_streams_show() {
    let mut settings = test_settings().await;
    settings.rate_limit_auth_per_minute = 1;
    let app = spawn_app_with(settings).await;
    // The one login or registration a minute that the quota allows.
    let john = app.register("john").await;
    let limited = r#"rate_limited_requests_total{quota="auth"}"#;
    let before = scrape(&app).await;
    for _ in 0..3 {
        app.post(
            "/auth/login",
            None,
            &json!({"username": "nobody", "password": "wrong password"}),
        )
        .await
        .assert_problem(429, "rate_limited");
    }
    let after = scrape(&app).await;
    assert!(
        sample(&after, limited) - sample(&before, limited) >= 3.0,
        "{after}"
    );

    let _stream = crate::stream::EventStream::open(&app, &john, None).await;
    assert!(sample(&scrape(&app).await, "event_streams_open") >= 1.0);
}

#[tokio::test]
async fn metrics_are_a_404_for_addresses_not_allowed() {
    let mut settings = test_settings().await;
    settings.metrics_allowed_from = vec!["10.0.0.0/8".parse().unwrap()];
    let app = spawn_app_with(settings).await;
    app.get("/metrics", None)
        .await
        .assert_problem(404, "not_found");
}
