//! The event stream, `GET /stream`: live posts, deletions and notifications, replay with
//! `Last-Event-ID`, tickets, limits, and the ways a stream ends.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    TestApp, TestUser, spawn_app, spawn_app_with, spawn_replicas_with_redis, test_redis_url,
    test_settings,
};
use crate::metrics::{sample, scrape};

/// One Server-Sent Event.
#[derive(Debug)]
pub struct Event {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A small Server-Sent Events reader over a streaming response.
pub struct EventStream {
    response: reqwest::Response,
    buffer: String,
}

impl EventStream {
    /// Opens `/stream` with a bearer token (and `Last-Event-ID` when given); panics unless 200.
    pub async fn open(app: &TestApp, user: &TestUser, last_event_id: Option<&str>) -> Self {
        let response = open(app, Some(user), last_event_id).await;
        assert_eq!(response.status(), 200);
        Self::from(response)
    }

    fn from(response: reqwest::Response) -> Self {
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        EventStream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments and `retry` lines skipped), or `None` when the stream ended or
    /// nothing came within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = None;
                let mut id = None;
                let mut data = None;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        event = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str(value).unwrap());
                    }
                }
                match (event, data) {
                    (Some(event), Some(data)) => return Some(Event { event, id, data }),
                    _ => continue,
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await;
            match chunk {
                Ok(Ok(Some(bytes))) => self.buffer.push_str(std::str::from_utf8(&bytes).unwrap()),
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => return None,
            }
        }
    }

    /// The next event, which must come within 10 seconds.
    pub async fn next(&mut self) -> Event {
        self.next_within(Duration::from_secs(10))
            .await
            .expect("an event within 10 s")
    }

    /// Whether the server ends the stream within `wait` (events before the end are skipped).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

async fn open(
    app: &TestApp,
    user: Option<&TestUser>,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut request = app.client.get(app.url("/stream"));
    if let Some(user) = user {
        request = request.bearer_auth(&user.token);
    }
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.send().await.unwrap()
}

/// A time far ahead of every clock here, in milliseconds.
const FUTURE: i64 = 4_000_000_000_000;

/// Writes posts of `author` directly, one row per body at positions `first`, `first + 1`, ... (a
/// thousand requests would only slow a test), and moves the posts' clock past them, as a writer
/// would. Bodies are plain text without quotes.
async fn insert_posts(app: &TestApp, author: i64, bodies: &[String], first: i64) {
    use sea_orm::{ConnectionTrait, Statement};
    let backend = app.db.get_database_backend();
    let sql = |sql: String| Statement::from_string(backend, sql);
    let last = first + i64::try_from(bodies.len()).unwrap();
    app.db
        .execute_raw(sql(format!("UPDATE post_clocks SET at = {last}")))
        .await
        .unwrap();
    let rows: Vec<String> = (first..)
        .zip(bodies)
        .map(|(at, body)| format!("({author}, '{body}', {at})"))
        .collect();
    for chunk in rows.chunks(250) {
        app.db
            .execute_raw(sql(format!(
                "INSERT INTO posts (author_id, body, created_at) VALUES {}",
                chunk.join(", ")
            )))
            .await
            .unwrap();
    }
}

/// Announces the posts from position `first` on, in their order, as their writers' transactions
/// would have: on PostgreSQL, where posts reach the streams only through these notifications, one
/// per post; elsewhere the servers find new posts by position, unannounced.
async fn announce_posts(app: &TestApp, first: i64) {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    if app.db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    app.db
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT pg_notify('social_events', concat('p ', author_id, ' ', id)) \
                 FROM (SELECT author_id, id FROM posts WHERE created_at >= {first} \
                 ORDER BY created_at, id) AS announced"
            ),
        ))
        .await
        .unwrap();
}

/// The body of a `post` event, and its id.
fn post_body(event: &Event) -> &str {
    assert_eq!(event.event, "post", "{event:?}");
    assert!(event.id.is_some(), "{event:?}");
    event.data["body"].as_str().unwrap()
}

#[tokio::test]
async fn followed_and_own_posts_arrive_live_and_others_do_not() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mary = app.register("mary").await;
    app.follow(&john, "susan").await.expect(201);
    // Written before the opening: the stream starts after it.
    app.post_as(&susan, "susan's, before").await;
    let mut stream = EventStream::open(&app, &john, None).await;
    app.post_as(&mary, "a stranger's").await;
    app.post_as(&susan, "susan's").await;
    app.post_as(&john, "john's").await;
    let first = stream.next().await;
    assert_eq!(post_body(&first), "susan's");
    assert_eq!(first.data["author"]["username"], "susan");
    assert_eq!(post_body(&stream.next().await), "john's");
    // The id is the post's timeline cursor: the timeline agrees on what is newer than it.
    let newer = app
        .get(
            &format!("/timeline?newer_than={}", first.id.unwrap()),
            Some(&john.token),
        )
        .await
        .expect(200);
    assert_eq!(newer["items"][0]["body"], "john's");
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn posts_written_at_once_arrive_in_the_timelines_order_each_as_the_timeline_shows_it() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let authors = [
        app.register("susan").await,
        app.register("mary").await,
        app.register("tom").await,
    ];
    for name in ["susan", "mary", "tom"] {
        app.follow(&john, name).await.expect(201);
    }
    // Relationships that show in the authors' cards: one follows back, one is followed since a
    // known moment.
    app.follow(&authors[0], "john").await.expect(201);
    let mut stream = EventStream::open(&app, &john, None).await;
    let app = &app;
    let writes = authors.iter().flat_map(|author| {
        (0..8).map(move |i| async move { app.post_as(author, &format!("post {i}")).await })
    });
    futures_util::future::join_all(writes).await;
    let mut streamed = Vec::new();
    for _ in 0..24 {
        let event = stream.next().await;
        assert_eq!(event.event, "post", "{event:?}");
        streamed.push(event.data);
    }
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none(),
        "each post once"
    );
    let timeline = app
        .get("/timeline?limit=100", Some(&john.token))
        .await
        .expect(200);
    let mut listed: Vec<Value> = timeline["items"].as_array().unwrap().clone();
    listed.reverse();
    assert_eq!(listed.len(), 24);
    // Oldest first, and each post exactly as the timeline shows it, viewer state included.
    assert_eq!(streamed, listed);
    assert!(
        streamed[0]["author"]["viewer"].is_object(),
        "{:?}",
        streamed[0]
    );
}

#[tokio::test]
async fn posts_that_no_event_announced_still_reach_the_stream() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    let susan_id = app.user_id("susan").await;
    let mut stream = EventStream::open(&app, &john, None).await;
    app.post_as(&susan, "announced").await;
    assert_eq!(post_body(&stream.next().await), "announced");
    // Written behind the server's back: no request, so no event.
    let bodies: Vec<String> = (0..3).map(|i| format!("unannounced {i}")).collect();
    insert_posts(&app, susan_id, &bodies, FUTURE).await;
    if app.db.get_database_backend() == DbBackend::Postgres {
        // PostgreSQL only learns of posts through its notifications: this stands for any that
        // went missing. The listener that loses its connection has every stream read for itself
        // once it is back.
        let listeners = app
            .db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query ILIKE 'listen%' \
                 AND pid <> pg_backend_pid()",
            ))
            .await
            .unwrap();
        assert_eq!(listeners.len(), 1, "the process listens on one connection");
    }
    // (MySQL/MariaDB and SQLite read new posts by position: they find these at the next look.)
    for body in &bodies {
        assert_eq!(post_body(&stream.next().await), body);
    }
    app.post_as(&susan, "announced again").await;
    assert_eq!(post_body(&stream.next().await), "announced again");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_replays_what_was_missed_in_order_once() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    let mut stream = EventStream::open(&app, &john, None).await;
    app.post_as(&susan, "one").await;
    let seen = stream.next().await;
    assert_eq!(post_body(&seen), "one");
    drop(stream);
    for body in ["two", "three", "four"] {
        app.post_as(&susan, body).await;
    }
    let mut stream = EventStream::open(&app, &john, seen.id.as_deref()).await;
    for body in ["two", "three", "four"] {
        assert_eq!(post_body(&stream.next().await), body);
    }
    app.post_as(&susan, "five").await;
    assert_eq!(post_body(&stream.next().await), "five");
    assert!(
        stream
            .next_within(Duration::from_millis(500))
            .await
            .is_none()
    );

    // An id the server did not issue for this timeline is refused.
    let foreign = open(&app, Some(&susan), seen.id.as_deref()).await;
    assert_eq!(foreign.status(), 400);
    let body: Value = foreign.json().await.unwrap();
    assert_eq!(body["code"], "invalid_cursor");
}

/// A new `EventSource` cannot send `Last-Event-ID`: `?last_event_id=` does what the header does,
/// and the header wins when both are sent.
#[tokio::test]
async fn last_event_id_in_the_query_replays_like_the_header_and_the_header_wins() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    let mut stream = EventStream::open(&app, &john, None).await;
    app.post_as(&susan, "one").await;
    let one = stream.next().await;
    app.post_as(&susan, "two").await;
    let two = stream.next().await;
    drop(stream);
    app.post_as(&susan, "three").await;

    let by_query = app
        .client
        .get(app.url(&format!(
            "/stream?last_event_id={}",
            one.id.as_deref().unwrap()
        )))
        .bearer_auth(&john.token)
        .send()
        .await
        .unwrap();
    let mut stream = EventStream::from(by_query);
    assert_eq!(post_body(&stream.next().await), "two");
    assert_eq!(post_body(&stream.next().await), "three");
    drop(stream);

    // The header names "two", the query something that is no cursor at all: the header decides.
    let both = app
        .client
        .get(app.url("/stream?last_event_id=not-a-cursor"))
        .bearer_auth(&john.token)
        .header("last-event-id", two.id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let mut stream = EventStream::from(both);
    assert_eq!(post_body(&stream.next().await), "three");
    drop(stream);

    let bad = app
        .get("/stream?last_event_id=not-a-cursor", Some(&john.token))
        .await;
    bad.assert_problem(400, "invalid_cursor");
}

/// A stream ticket signed by the test server's secret for `user`'s session, issued `age` seconds
/// ago: what `POST /stream/ticket` gave then.
fn ticket_issued_ago(user: &TestUser, age: u64) -> String {
    let claims = crate::tokens::claims_of(&user.token);
    let issued = crate::tokens::now() - age;
    crate::tokens::sign(
        jsonwebtoken::Algorithm::HS256,
        crate::helpers::TEST_SECRET,
        json!({"sub": claims["sub"], "sid": claims["sid"], "iat": issued,
               "exp": issued + 60, "scope": "stream"}),
    )
}

async fn open_with_ticket(app: &TestApp, ticket: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/stream?ticket={ticket}")))
        .send()
        .await
        .unwrap()
}

/// `EventSource` reconnects by itself with the same URL after a drop, however late: a ticket that
/// opened a stream within its 60 seconds opens it again while its session lives; one that did
/// not is refused once its 60 seconds are over, and so is any once the session has ended.
#[tokio::test]
async fn a_ticket_that_opened_a_stream_reopens_it_while_its_session_lives() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    let used = ticket_issued_ago(&john, 57);
    let unused = ticket_issued_ago(&john, 58);
    let first = open_with_ticket(&app, &used).await;
    assert_eq!(first.status(), 200);
    drop(first);
    // Both are past their 60 seconds now.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let again = open_with_ticket(&app, &used).await;
    assert_eq!(again.status(), 200, "the used ticket reopens its stream");
    let mut stream = EventStream::from(again);
    app.post_as(&susan, "after the reconnect").await;
    assert_eq!(post_body(&stream.next().await), "after the reconnect");
    drop(stream);

    let late = app.get(&format!("/stream?ticket={unused}"), None).await;
    late.assert_problem(401, "unauthorized");
    assert!(
        late.json()["detail"].as_str().unwrap().contains("expired"),
        "{}",
        late.text
    );

    app.post("/auth/logout", Some(&john.token), &json!({}))
        .await
        .expect(204);
    app.get(&format!("/stream?ticket={used}"), None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn more_than_1000_missed_posts_are_a_reset_and_the_stream_goes_on_from_the_newest() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.follow(&john, "susan").await.expect(201);
    let mut stream = EventStream::open(&app, &john, None).await;
    app.post_as(&susan, "seen").await;
    let seen = stream.next().await;
    drop(stream);
    // 1,001 posts, positioned after everything so far.
    let susan_id = app.user_id("susan").await;
    let bodies: Vec<String> = (0..1_001).map(|i| format!("missed {i}")).collect();
    insert_posts(&app, susan_id, &bodies, FUTURE).await;
    let mut stream = EventStream::open(&app, &john, seen.id.as_deref()).await;
    let reset = stream.next().await;
    assert_eq!(reset.event, "reset", "{reset:?}");
    app.post_as(&susan, "after the reset").await;
    assert_eq!(post_body(&stream.next().await), "after the reset");

    drop(stream);

    // With two gone, exactly 1,000 were missed: that is still a replay, oldest first.
    app.db
        .execute_unprepared("DELETE FROM posts WHERE body IN ('missed 0', 'missed 1')")
        .await
        .unwrap();
    let mut stream = EventStream::open(&app, &john, seen.id.as_deref()).await;
    let mut replayed = Vec::new();
    while let Some(event) = stream.next_within(Duration::from_secs(2)).await {
        replayed.push(post_body(&event).to_owned());
    }
    assert_eq!(replayed.len(), 1_000);
    assert_eq!(replayed[0], "missed 2");
    assert_eq!(replayed[998], "missed 1000");
    assert_eq!(replayed[999], "after the reset");
}

#[tokio::test]
async fn deletions_and_notifications_arrive_and_muted_authors_do_not() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mary = app.register("mary").await;
    app.follow(&john, "susan").await.expect(201);
    app.follow(&john, "mary").await.expect(201);
    let mut stream = EventStream::open(&app, &john, None).await;
    let id = app.post_as(&susan, "soon gone").await;
    assert_eq!(post_body(&stream.next().await), "soon gone");
    app.delete(&format!("/posts/{id}"), Some(&susan.token))
        .await
        .expect(204);
    let deleted = stream.next().await;
    assert_eq!(deleted.event, "post_deleted");
    assert_eq!(deleted.data, json!({"id": id}));

    app.follow(&mary, "john").await.expect(201);
    let notification = stream.next().await;
    assert_eq!(notification.event, "notification");
    assert_eq!(notification.data["type"], "follow");
    assert_eq!(notification.data["account"]["username"], "mary");
    assert_eq!(notification.data["read"], false);

    app.post("/users/mary/mute", Some(&john.token), &json!({}))
        .await
        .expect(201);
    app.post_as(&mary, "muted").await;
    app.post_as(&susan, "not muted").await;
    assert_eq!(post_body(&stream.next().await), "not muted");
}

#[tokio::test]
async fn a_ticket_opens_a_stream_and_nothing_else() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let issued = app
        .post("/stream/ticket", Some(&john.token), &json!({}))
        .await;
    let ticket = issued.expect(201);
    assert_eq!(ticket["expires_in"], 60);
    assert_eq!(issued.header("cache-control").as_deref(), Some("no-store"));
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();

    let response = app
        .client
        .get(app.url(&format!("/stream?ticket={ticket}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = EventStream::from(response);
    app.post_as(&john, "by ticket").await;
    assert_eq!(post_body(&stream.next().await), "by ticket");

    // A ticket is not an access token, and an access token is not a ticket.
    app.get("/timeline", Some(&ticket))
        .await
        .assert_problem(401, "unauthorized");
    app.get(&format!("/stream?ticket={}", john.token), None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/stream", None)
        .await
        .assert_problem(401, "unauthorized");
    app.post("/stream/ticket", None, &json!({}))
        .await
        .assert_problem(401, "unauthorized");
}

/// A stream of `user`, opened as soon as a place is free (a closed stream's place comes free
/// once the server notices the client is gone), trying for 5 s; `None` if none came free.
async fn open_once_free(app: &TestApp, user: &TestUser) -> Option<EventStream> {
    for _ in 0..50 {
        let response = open(app, Some(user), None).await;
        if response.status() == 200 {
            return Some(EventStream::from(response));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn a_user_may_hold_5_streams_and_a_process_its_maximum() {
    let mut settings = test_settings().await;
    settings.stream_max_connections = 6;
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(EventStream::open(&app, &john, None).await);
    }
    let sixth = app.get("/stream", Some(&john.token)).await;
    sixth.assert_problem(429, "too_many_streams");
    assert_eq!(sixth.header("retry-after").as_deref(), Some("10"));
    // Closing one makes room (the server notices the client is gone).
    drop(streams.pop());
    streams.push(
        open_once_free(&app, &john)
            .await
            .expect("a closed stream frees its place"),
    );

    streams.push(EventStream::open(&app, &susan, None).await);
    let full = app.get("/stream", Some(&susan.token)).await;
    full.assert_problem(503, "service_unavailable");
    assert!(full.header("retry-after").is_some());
}

/// With `REDIS_URL`, a user's 5 streams are counted across every replica: 3 on one and 2 on the
/// other leave no room on either, and a stream closed on one makes room on the other.
#[tokio::test]
async fn with_redis_a_users_5_streams_are_counted_across_replicas() {
    let Some((first, second)) = spawn_replicas_with_redis(test_settings().await).await else {
        return;
    };
    let john = first.register("john").await;
    let susan = first.register("susan").await;
    let mut on_first = Vec::new();
    for _ in 0..3 {
        on_first.push(EventStream::open(&first, &john, None).await);
    }
    let mut on_second = Vec::new();
    for _ in 0..2 {
        on_second.push(EventStream::open(&second, &john, None).await);
    }
    for app in [&first, &second] {
        app.get("/stream", Some(&john.token))
            .await
            .assert_problem(429, "too_many_streams");
    }
    // Another user's count is their own.
    let _susan = EventStream::open(&second, &susan, None).await;
    // A stream closed on the first replica frees its place for the second.
    drop(on_first.pop());
    on_second.push(
        open_once_free(&second, &john)
            .await
            .expect("a stream closed on one replica frees its place"),
    );
    first
        .get("/stream", Some(&john.token))
        .await
        .assert_problem(429, "too_many_streams");
}

/// The leases behind the shared count: a place is held until its lease expires unless renewed,
/// so the places of a replica that died without closing its streams come free; a renewed lease
/// keeps its place, a released one frees it at once and is not brought back by a renewal.
#[tokio::test]
async fn stream_leases_in_redis_expire_unless_renewed() {
    let Some(redis_url) = test_redis_url() else {
        return;
    };
    let prefix = format!("social-test:{}", uuid::Uuid::new_v4());
    let shared = api::rate_limit::Shared::new(&redis_url, &prefix).unwrap();
    let ttl = Duration::from_millis(1_000);
    for lease in ["a", "b"] {
        assert_eq!(shared.claim_stream(7, lease, 2, ttl).await, Some(true));
    }
    assert_eq!(shared.claim_stream(7, "c", 2, ttl).await, Some(false));
    // Another user's places are their own.
    assert_eq!(shared.claim_stream(8, "c", 2, ttl).await, Some(true));
    // "a" is renewed for long, "b" is left to expire (its replica died).
    tokio::time::sleep(Duration::from_millis(400)).await;
    shared
        .renew_streams(&[(7, "a".to_owned())], Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let long = Duration::from_secs(60);
    assert_eq!(
        shared.claim_stream(7, "c", 2, long).await,
        Some(true),
        "b expired"
    );
    assert_eq!(
        shared.claim_stream(7, "d", 2, ttl).await,
        Some(false),
        "a renewed"
    );
    // Released, and a renewal that read it before cannot bring it back.
    shared.release_streams(&[(7, "a".to_owned())]).await;
    shared
        .renew_streams(&[(7, "a".to_owned())], Duration::from_secs(60))
        .await;
    assert_eq!(
        shared.claim_stream(7, "d", 2, long).await,
        Some(true),
        "a released"
    );
    assert_eq!(
        shared.claim_stream(7, "e", 2, ttl).await,
        Some(false),
        "c and d hold both places"
    );
}

/// A Redis that does not answer leaves the count to each process: streams open as without it.
#[tokio::test]
async fn a_redis_that_does_not_answer_leaves_the_stream_count_to_each_process() {
    let mut settings = test_settings().await;
    // Nothing listens on port 1.
    settings.redis_url = Some("redis://127.0.0.1:1".into());
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(EventStream::open(&app, &john, None).await);
    }
    app.get("/stream", Some(&john.token))
        .await
        .assert_problem(429, "too_many_streams");
}

#[tokio::test]
async fn suspension_account_removal_and_shutdown_end_streams() {
    let app = crate::helpers::spawn_app().await;
    let admin = app.register_operator("admin").await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mary = app.register("mary").await;

    let mut johns = EventStream::open(&app, &john, None).await;
    app.post(
        "/admin/users/john/suspension",
        Some(&admin.token),
        &json!({}),
    )
    .await
    .expect(204);
    assert!(johns.ends_within(Duration::from_secs(20)).await);
    app.get("/stream", Some(&john.token))
        .await
        .assert_problem(401, "unauthorized");

    let mut susans = EventStream::open(&app, &susan, None).await;
    app.delete("/users/me", Some(&susan.token)).await;
    assert!(susans.ends_within(Duration::from_secs(20)).await);

    let mut marys = EventStream::open(&app, &mary, None).await;
    app.stop().await;
    assert!(marys.ends_within(Duration::from_secs(20)).await);
}

#[tokio::test]
async fn a_post_written_through_another_process_reaches_the_stream() {
    if crate::helpers::backend() == sea_orm::DbBackend::Sqlite {
        // One process serves an SQLite database.
        return;
    }
    let first = spawn_app().await;
    let mut settings = test_settings().await;
    settings.database_url = first.database_url.clone().into();
    let second = spawn_app_with(settings).await;
    let john = first.register("john").await;
    let susan = first.register("susan").await;
    first.follow(&john, "susan").await.expect(201);
    let mut stream = EventStream::open(&first, &john, None).await;
    second.post_as(&susan, "from elsewhere").await;
    let event = stream.next().await;
    assert_eq!(post_body(&event), "from elsewhere");
    second.follow(&susan, "john").await.expect(201);
    assert_eq!(stream.next().await.event, "notification");
    // John's other device moves his timeline marker through the other process (on MariaDB the
    // poller finds it in `markers`).
    let laptop = second
        .post(
            "/auth/login",
            None,
            &json!({"username": "john", "password": "password-of-john"}),
        )
        .await
        .expect(200);
    let moved = second
        .post(
            "/markers",
            laptop["access_token"].as_str(),
            &json!({"timeline": {"position": event.id}}),
        )
        .await
        .expect(200);
    let marker = stream.next().await;
    assert_eq!(marker.event, "marker");
    assert_eq!(marker.data, moved);
    // A deletion through the other process (on MariaDB through `post_deletions`), once.
    let gone = second.post_as(&susan, "soon gone elsewhere").await;
    assert_eq!(post_body(&stream.next().await), "soon gone elsewhere");
    second
        .delete(&format!("/posts/{gone}"), Some(&susan.token))
        .await
        .expect(204);
    let deleted = stream.next().await;
    assert_eq!(deleted.event, "post_deleted");
    assert_eq!(deleted.data, json!({"id": gone}));
    // And the other process replays from this one's id (the deleted post is not replayed).
    second.post_as(&susan, "missed").await;
    let mut elsewhere = EventStream::open(&second, &john, event.id.as_deref()).await;
    assert_eq!(post_body(&elsewhere.next().await), "missed");
    // A logout through the other process ends the session's streams here too (on MariaDB at the
    // next 15-second sweep).
    second
        .post("/auth/logout", Some(&john.token), &json!({}))
        .await
        .expect(204);
    assert!(stream.ends_within(Duration::from_secs(20)).await);
    assert!(elsewhere.ends_within(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut settings = test_settings().await;
    settings.stream_slow_client_timeout = Duration::from_secs(1);
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    let john_id = app.user_id("john").await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let mut connection = socket.connect(address).await.unwrap();
    connection
        .write_all(
            format!(
                "GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
                john.token
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Posts for the stream, which the client does not read, until the server gives up on it:
    // how much the sockets and the server's buffers hold depends on the kernel (some 2.8 MB
    // here), so rounds go on until the stream is gone, up to far more than any default buffer
    // (40 rounds of some 0.7 MB each). Rounds of 1,000 rows written directly (thousands of
    // requests would only slow the test) and announced, each followed by a post through the API.
    let bodies = vec!["x".repeat(280); 1_000];
    let mut written = 0;
    for round in 0..40_i64 {
        insert_posts(&app, john_id, &bodies, FUTURE + round * 2_000).await;
        announce_posts(&app, FUTURE + round * 2_000).await;
        app.post_as(&john, "wake up").await;
        written += bodies.len() + 1;
        // Longer than the server waits for a full buffer.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        if sample(&scrape(&app).await, "event_streams_open") == 0.0 {
            break;
        }
    }
    let mut received = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(20),
        connection.read_to_end(&mut received),
    )
    .await;
    assert!(read.is_ok(), "the server keeps the connection open");
    let received = String::from_utf8_lossy(&received);
    assert!(
        received.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        &received[..200.min(received.len())]
    );
    assert!(
        received.matches("event: post\n").count() < written,
        "every post was delivered: the client was not slow enough for this test"
    );
    assert!(
        !received.ends_with("\r\n0\r\n\r\n"),
        "the response ended in order instead of the connection being cut"
    );
}

#[tokio::test]
async fn deleted_posts_are_kept_for_other_processes_on_mariadb_only_and_not_for_long() {
    use entity::post_deletion;
    use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, Set};
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let id = app.post_as(&susan, "soon gone").await;
    app.delete(&format!("/posts/{id}"), Some(&susan.token))
        .await
        .expect(204);
    let kept = post_deletion::Entity::find().all(&app.db).await.unwrap();
    if crate::helpers::backend() != sea_orm::DbBackend::MySql {
        // PostgreSQL announces through NOTIFY, and one process serves an SQLite database.
        assert!(kept.is_empty(), "{kept:?}");
        return;
    }
    assert_eq!(
        kept.iter()
            .map(|row| (row.post_id, row.author_id))
            .collect::<Vec<_>>(),
        [(id, app.user_id("susan").await)]
    );
    // One from eleven minutes ago goes at the next sweep (every 15 s); the recent one stays.
    post_deletion::ActiveModel {
        post_id: Set(1),
        author_id: Set(1),
        deleted_at: Set(api::time::now_millis() - 11 * 60_000),
        ..Default::default()
    }
    .insert(&app.db)
    .await
    .unwrap();
    let mut left = 2;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = post_deletion::Entity::find().count(&app.db).await.unwrap();
        if left == 1 {
            break;
        }
    }
    assert_eq!(left, 1, "the old row was not removed within 20 s");
    let remaining = post_deletion::Entity::find().one(&app.db).await.unwrap();
    assert_eq!(remaining.map(|row| row.post_id), Some(id));
}

#[tokio::test]
async fn a_head_of_the_stream_answers_its_headers_and_holds_no_place() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    for _ in 0..6 {
        let head = app
            .send(app.client.head(app.url("/stream")).bearer_auth(&john.token))
            .await;
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-type").as_deref(),
            Some("text/event-stream")
        );
        assert!(head.text.is_empty());
    }
    let anonymous = app.send(app.client.head(app.url("/stream"))).await;
    assert_eq!(anonymous.status, 401, "a HEAD is refused as its GET is");
    assert!(anonymous.text.is_empty());
    // The six HEADs took none of the five places.
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(EventStream::open(&app, &john, None).await);
    }
    app.get("/stream", Some(&john.token))
        .await
        .assert_problem(429, "too_many_streams");
    let full = app
        .send(app.client.head(app.url("/stream")).bearer_auth(&john.token))
        .await;
    assert_eq!(full.status, 429, "a HEAD answers what its GET would");
}

#[tokio::test]
async fn a_stream_ends_when_its_session_expires_unless_a_refresh_moved_the_expiry() {
    let mut settings = test_settings().await;
    settings.refresh_ttl = Duration::from_secs(3);
    let app = spawn_app_with(settings).await;
    let john = app.register("john").await;
    let mut expiring = EventStream::open(&app, &john, None).await;
    assert!(
        expiring.ends_within(Duration::from_secs(8)).await,
        "a stream outlived its session's expiry"
    );

    let susan = app.try_register("susan").await.expect(201);
    let user = TestUser {
        token: susan["access_token"].as_str().unwrap().to_owned(),
    };
    let mut kept = EventStream::open(&app, &user, None).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // The refresh moves the session's expiry 3 s on from now, past the first one.
    app.post(
        "/auth/refresh",
        None,
        &json!({"refresh_token": susan["refresh_token"]}),
    )
    .await
    .expect(200);
    assert!(
        !kept.ends_within(Duration::from_millis(2_500)).await,
        "the stream ended at the expiry a refresh had moved"
    );
    assert!(
        kept.ends_within(Duration::from_secs(6)).await,
        "and it ends at the new one"
    );
}
