//! Markers: a reading position that follows the user from device to device.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};
use crate::stream::EventStream;

/// The timeline cursors of `user`'s newest `count` timeline items, newest first (each a page of
/// one's `prev_cursor`).
async fn positions(app: &TestApp, user: &TestUser, count: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = "/timeline?limit=1".to_owned();
    while out.len() < count {
        let page = app.get(&path, Some(&user.token)).await.expect(200);
        out.push(page["prev_cursor"].as_str().unwrap().to_owned());
        if let Some(next) = page["next_cursor"].as_str() {
            path = format!("/timeline?limit=1&cursor={next}");
        }
    }
    out
}

async fn move_markers(app: &TestApp, user: &TestUser, body: Value) -> Value {
    app.post("/markers", Some(&user.token), &body)
        .await
        .expect(200)
}

#[tokio::test]
async fn markers_start_unset_and_move_only_forward() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    assert_eq!(
        app.get("/markers", Some(&john.token)).await.expect(200),
        json!({"timeline": null, "notifications": null})
    );
    for body in ["one", "two", "three"] {
        app.post_as(&john, body).await;
    }
    let [newest, middle, _oldest] = positions(&app, &john, 3).await.try_into().unwrap();

    let moved = move_markers(&app, &john, json!({"timeline": {"position": middle}})).await;
    assert_eq!(moved["timeline"]["position"], middle);
    assert_eq!(moved["timeline"]["version"], 1);
    assert!(moved["timeline"]["updated_at"].is_string());
    assert_eq!(moved["notifications"], Value::Null);
    let moved = move_markers(&app, &john, json!({"timeline": {"position": newest}})).await;
    assert_eq!(moved["timeline"]["position"], newest);
    assert_eq!(moved["timeline"]["version"], 2);
    // An older position changes nothing.
    let stayed = move_markers(&app, &john, json!({"timeline": {"position": middle}})).await;
    assert_eq!(stayed["timeline"], moved["timeline"]);
    assert_eq!(
        app.get("/markers", Some(&john.token)).await.expect(200),
        stayed
    );

    // The notifications marker is the read mark.
    app.follow(&susan, "john").await.expect(201);
    let notifications = app
        .get("/notifications", Some(&john.token))
        .await
        .expect(200);
    let id = notifications["items"][0]["id"].as_i64().unwrap();
    let read = move_markers(&app, &john, json!({"notifications": {"last_read_id": id}})).await;
    assert_eq!(read["notifications"]["last_read_id"], id);
    assert_eq!(read["notifications"]["version"], 1);
    assert_eq!(
        read["timeline"], moved["timeline"],
        "the other marker stays"
    );
    let notifications = app
        .get("/notifications", Some(&john.token))
        .await
        .expect(200);
    assert_eq!(notifications["items"][0]["read"], true);
    assert_eq!(
        app.get("/notifications/unread_count", Some(&john.token))
            .await
            .expect(200)["count"],
        0
    );
    let lower = move_markers(&app, &john, json!({"notifications": {"last_read_id": 0}})).await;
    assert_eq!(lower["notifications"]["version"], 1);
}

#[tokio::test]
async fn reading_notifications_moves_the_notifications_marker() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    for name in ["susan", "mary"] {
        let user = app.register(name).await;
        app.follow(&user, "john").await.expect(201);
    }
    let notifications = app
        .get("/notifications", Some(&john.token))
        .await
        .expect(200);
    let newest = notifications["items"][0]["id"].as_i64().unwrap();
    let oldest = notifications["items"][1]["id"].as_i64().unwrap();
    app.post(
        "/notifications/read",
        Some(&john.token),
        &json!({"last_read_id": oldest}),
    )
    .await
    .expect(204);
    let markers = app.get("/markers", Some(&john.token)).await.expect(200);
    assert_eq!(markers["notifications"]["last_read_id"], oldest);
    assert_eq!(markers["notifications"]["version"], 1);
    app.post(
        "/notifications/read",
        Some(&john.token),
        &json!({"last_read_id": newest}),
    )
    .await
    .expect(204);
    let markers = app.get("/markers", Some(&john.token)).await.expect(200);
    assert_eq!(markers["notifications"]["last_read_id"], newest);
    assert_eq!(markers["notifications"]["version"], 2);
}

#[tokio::test]
async fn a_position_that_is_not_a_cursor_of_the_callers_timeline_is_refused() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.post_as(&susan, "hers").await;
    let [hers] = positions(&app, &susan, 1).await.try_into().unwrap();
    for position in [json!("not-a-cursor"), json!(hers)] {
        app.post(
            "/markers",
            Some(&john.token),
            &json!({"timeline": {"position": position}}),
        )
        .await
        .assert_problem(400, "invalid_cursor");
    }
    let missing = app
        .post(
            "/markers",
            Some(&john.token),
            &json!({"timeline": {}, "notifications": {}}),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert!(
        missing["errors"]["timeline.position"].is_array(),
        "{missing}"
    );
    assert!(
        missing["errors"]["notifications.last_read_id"].is_array(),
        "{missing}"
    );
    app.post(
        "/markers",
        Some(&john.token),
        &json!({"timeline": {"position": 5}}),
    )
    .await
    .assert_problem(400, "invalid_json");
    assert_eq!(
        app.get("/markers", Some(&john.token)).await.expect(200),
        json!({"timeline": null, "notifications": null}),
        "nothing moved"
    );
    app.get("/markers", None)
        .await
        .assert_problem(401, "unauthorized");
}

/// The phone moves the marker; the laptop's open stream hears of it, the phone's own does not.
#[tokio::test]
async fn a_marker_moved_on_one_device_reaches_the_others_streams() {
    let app = spawn_app().await;
    app.register("john").await;
    let phone = app.login("john").await;
    let laptop = app.login("john").await;
    app.post_as(&phone, "read me").await;
    let mut phones_stream = EventStream::open(&app, &phone, None).await;
    let mut laptops_stream = EventStream::open(&app, &laptop, None).await;
    let [position] = positions(&app, &phone, 1).await.try_into().unwrap();
    let moved = move_markers(&app, &phone, json!({"timeline": {"position": position}})).await;

    let event = laptops_stream.next().await;
    assert_eq!(event.event, "marker");
    assert_eq!(event.data, moved);
    assert!(
        phones_stream
            .next_within(Duration::from_millis(700))
            .await
            .is_none(),
        "the phone's own stream is not told of its own move"
    );
    // A move that changes nothing tells nobody.
    move_markers(&app, &laptop, json!({"timeline": {"position": position}})).await;
    assert!(
        phones_stream
            .next_within(Duration::from_millis(700))
            .await
            .is_none()
    );
}

/// Two devices moving the marker at once: the newest position stays, and the version counts each
/// change once (a move that changed it sees its own position in its answer; one that came too
/// late sees a newer one and counted nothing).
#[tokio::test]
async fn concurrent_moves_keep_the_newest_position_and_count_each_change_once() {
    let app = spawn_app().await;
    app.register("john").await;
    let phone = app.login("john").await;
    let laptop = app.login("john").await;
    for i in 0..10 {
        app.post_as(&phone, &format!("post {i}")).await;
    }
    let positions = positions(&app, &phone, 10).await;
    let answers =
        futures_util::future::join_all(positions.iter().rev().enumerate().map(|(i, position)| {
            let device = if i % 2 == 0 { &phone } else { &laptop };
            move_markers(&app, device, json!({"timeline": {"position": position}}))
        }))
        .await;
    let effective = answers
        .iter()
        .zip(positions.iter().rev())
        .filter(|(answer, sent)| answer["timeline"]["position"] == **sent)
        .count();
    let markers = app.get("/markers", Some(&phone.token)).await.expect(200);
    assert_eq!(markers["timeline"]["position"], positions[0], "the newest");
    assert_eq!(markers["timeline"]["version"], effective);
}
