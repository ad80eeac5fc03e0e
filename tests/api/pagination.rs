//! API.md "Pagination": `prev_cursor`, `newer_than`, their `Link`s, and the promise that a client
//! polling with `newer_than` while others write receives every new item once.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use sea_orm::{ConnectionTrait, DbBackend};

use api::services::clock::POST_CLOCK_SHARDS;

use crate::helpers::{TestApp, TestUser, backend, spawn_app, spawn_app_with, test_settings};

/// One of the lists, set up so that the test can add items to it one at a time.
#[derive(Clone, Copy, Debug)]
enum List {
    Timeline,
    UserPosts,
    Followers,
    Following,
}

const LISTS: [List; 4] = [
    List::Timeline,
    List::UserPosts,
    List::Followers,
    List::Following,
];

/// The owner of the list under test, and what a test needs to grow it.
struct Fixture {
    owner: TestUser,
    author: TestUser,
    added: usize,
    /// The followers added to a followers list, by name.
    followers: HashMap<String, TestUser>,
}

impl List {
    fn path(self) -> &'static str {
        match self {
            List::Timeline => "/timeline",
            List::UserPosts => "/users/owner/posts",
            List::Followers => "/users/owner/followers",
            List::Following => "/users/owner/following",
        }
    }

    async fn fixture(self, app: &TestApp) -> Fixture {
        let owner = app.register("owner").await;
        let author = app.register("author").await;
        if let List::Timeline = self {
            app.follow(&owner, "author").await.expect(201);
        }
        Fixture {
            owner,
            author,
            added: 0,
            followers: HashMap::new(),
        }
    }

    /// Adds one item to the list and returns how items show it (a post id or a username).
    async fn add(self, app: &TestApp, fixture: &mut Fixture) -> String {
        fixture.added += 1;
        let n = fixture.added;
        match self {
            List::Timeline => app
                .post_as(&fixture.author, &format!("post {n}"))
                .await
                .to_string(),
            List::UserPosts => app
                .post_as(&fixture.owner, &format!("post {n}"))
                .await
                .to_string(),
            List::Followers => {
                let name = format!("follower{n}");
                let user = app.register(&name).await;
                app.follow(&user, "owner").await.expect(201);
                fixture.followers.insert(name.clone(), user);
                name
            }
            List::Following => {
                let name = format!("followee{n}");
                app.register(&name).await;
                app.follow(&fixture.owner, &name).await.expect(201);
                name
            }
        }
    }
}

impl List {
    /// Takes the item `key` out of the list again.
    async fn remove(self, app: &TestApp, fixture: &Fixture, key: &str) {
        match self {
            List::Timeline => {
                app.delete(&format!("/posts/{key}"), Some(&fixture.author.token))
                    .await
                    .expect(204);
            }
            List::UserPosts => {
                app.delete(&format!("/posts/{key}"), Some(&fixture.owner.token))
                    .await
                    .expect(204);
            }
            List::Followers => {
                app.unfollow(&fixture.followers[key], "owner")
                    .await
                    .expect(204);
            }
            List::Following => {
                app.unfollow(&fixture.owner, key).await.expect(204);
            }
        }
    }
}

/// How an item shows in a page: the post id, or the username of a follow list's entry.
fn key(item: &Value) -> String {
    match item["id"].as_i64() {
        Some(id) => id.to_string(),
        None => item["user"]["username"].as_str().unwrap().to_owned(),
    }
}

/// A page read with the owner's token: the keys of its items, the body and the `Link` header.
struct Read {
    keys: Vec<String>,
    body: Value,
    link: Option<String>,
}

async fn read(app: &TestApp, fixture: &Fixture, list: List, query: &str) -> Read {
    let response = app
        .get(
            &format!("{}?{query}", list.path()),
            Some(&fixture.owner.token),
        )
        .await;
    let body = response.expect(200);
    Read {
        keys: body["items"].as_array().unwrap().iter().map(key).collect(),
        link: response.header("link"),
        body,
    }
}

fn cursor(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field}: {body}"))
        .to_owned()
}

#[tokio::test]
async fn every_list_pages_toward_newer_items_as_documented() {
    for list in LISTS {
        let app = spawn_app().await;
        let mut fixture = list.fixture(&app).await;
        let path = list.path();

        // An empty list has no neighbours. (The timeline of a reader who follows an author who
        // has not posted yet is empty too.)
        let empty = read(&app, &fixture, list, "").await;
        assert!(empty.keys.is_empty(), "{list:?}");
        assert_eq!(empty.body["prev_cursor"], Value::Null, "{list:?}");
        assert_eq!(empty.link, None, "{list:?}");

        let mut items = Vec::new();
        for _ in 0..3 {
            items.push(list.add(&app, &mut fixture).await);
        }
        // The first page: `prev_cursor` is its newest item, linked as rel="prev".
        let first = read(&app, &fixture, list, "limit=2").await;
        assert_eq!(first.keys, [items[2].clone(), items[1].clone()], "{list:?}");
        let prev = cursor(&first.body, "prev_cursor");
        let next = cursor(&first.body, "next_cursor");
        let link = first.link.unwrap();
        assert!(
            link.contains(&format!("<{path}?limit=2&cursor={next}>; rel=\"next\""))
                && link.contains(&format!("<{path}?limit=2&newer_than={prev}>; rel=\"prev\"")),
            "{list:?}: {link}"
        );

        // Nothing newer yet: an empty page that echoes `newer_than` and links to it again.
        let nothing = read(&app, &fixture, list, &format!("limit=2&newer_than={prev}")).await;
        assert!(nothing.keys.is_empty(), "{list:?}: {}", nothing.body);
        assert_eq!(nothing.body["prev_cursor"], prev.as_str(), "{list:?}");
        assert_eq!(nothing.body["next_cursor"], Value::Null, "{list:?}");
        assert_eq!(
            nothing.link.as_deref(),
            Some(format!("<{path}?limit=2&newer_than={prev}>; rel=\"prev\"").as_str()),
            "{list:?}"
        );

        // Three new items: the two immediately newer than the cursor, newest first; the page
        // is full, so the client asks again and gets the third, in a page shorter than `limit`.
        for _ in 0..3 {
            items.push(list.add(&app, &mut fixture).await);
        }
        let newer = read(&app, &fixture, list, &format!("limit=2&newer_than={prev}")).await;
        assert_eq!(newer.keys, [items[4].clone(), items[3].clone()], "{list:?}");
        // Its next page goes on to older items from there.
        let older = cursor(&newer.body, "next_cursor");
        let back = read(&app, &fixture, list, &format!("limit=2&cursor={older}")).await;
        assert_eq!(back.keys, [items[2].clone(), items[1].clone()], "{list:?}");
        let prev = cursor(&newer.body, "prev_cursor");
        let last = read(&app, &fixture, list, &format!("limit=2&newer_than={prev}")).await;
        assert_eq!(last.keys, [items[5].clone()], "{list:?}");
        let prev = cursor(&last.body, "prev_cursor");
        let caught_up = read(&app, &fixture, list, &format!("newer_than={prev}")).await;
        assert!(caught_up.keys.is_empty(), "{list:?}");

        // From the oldest item's position: everything after it, newest first; the item at the
        // position is older, so there is a next page until that item is gone.
        let oldest_page = read(
            &app,
            &fixture,
            list,
            &format!("limit=1&cursor={}", cursor(&back.body, "next_cursor")),
        )
        .await;
        assert_eq!(oldest_page.keys, [items[0].clone()], "{list:?}");
        assert_eq!(oldest_page.body["next_cursor"], Value::Null, "{list:?}");
        let oldest = cursor(&oldest_page.body, "prev_cursor");
        let expected: Vec<String> = items[1..].iter().rev().cloned().collect();
        let all = read(&app, &fixture, list, &format!("newer_than={oldest}")).await;
        assert_eq!(all.keys, expected, "{list:?}");
        assert!(all.body["next_cursor"].is_string(), "{list:?}");
        list.remove(&app, &fixture, &items[0]).await;
        let all = read(&app, &fixture, list, &format!("newer_than={oldest}")).await;
        assert_eq!(all.keys, expected, "{list:?}");
        assert_eq!(all.body["next_cursor"], Value::Null, "{list:?}");

        // Both directions at once, and a cursor of another list.
        app.get(
            &format!("{path}?cursor={older}&newer_than={prev}"),
            Some(&fixture.owner.token),
        )
        .await
        .assert_problem(400, "invalid_parameter");
        let other = if matches!(list, List::Followers) {
            "/users/owner/following"
        } else {
            "/users/owner/followers"
        };
        let foreign = app
            .get(&format!("{other}?limit=1"), Some(&fixture.owner.token))
            .await
            .expect(200);
        if let Some(foreign) = foreign["prev_cursor"].as_str() {
            app.get(
                &format!("{path}?newer_than={foreign}"),
                Some(&fixture.owner.token),
            )
            .await
            .assert_problem(400, "invalid_cursor");
        }
    }
}

/// The promise of API.md "Pagination": a client that polls `newer_than=<prev_cursor>` while others
/// write at the same time receives every new item, once. Writers of many authors post at once
/// (and followers follow at once), while one poller follows the reader's timeline and another the
/// followers list; in the end each poller has seen exactly what was written.
///
/// Commits are made slow and uneven, as a busy disk or a synchronous standby makes them: on
/// PostgreSQL and MariaDB a trigger sleeps up to 30 ms after each post's insert, inside its
/// transaction. With positions taken from the host's clock instead of in commit order
/// (`services::clock`), posts then commit out of order and the timeline's poller misses some (seen
/// on both); SQLite writes one transaction at a time, so there it holds either way.
#[tokio::test]
async fn pollers_of_newer_items_miss_nothing_while_many_write() {
    const WRITERS: usize = 8;
    const POSTS_EACH: usize = 15;
    const LIMIT: usize = 3;
    // Connections for every writer and both pollers, so that the pollers never wait for one.
    let mut settings = test_settings().await;
    settings.database_pool_size = 16;
    let app = spawn_app_with(settings).await;
    let slow_commits: &[&str] = match backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION linger() RETURNS trigger AS $$ \
             BEGIN PERFORM pg_sleep(random() * 0.03); RETURN NULL; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER linger AFTER INSERT ON posts FOR EACH ROW EXECUTE FUNCTION linger()",
        ],
        DbBackend::MySql => &["CREATE TRIGGER linger AFTER INSERT ON posts FOR EACH ROW \
             SET @lingered = SLEEP(RAND() * 0.03)"],
        _ => &[],
    };
    for statement in slow_commits {
        app.db.execute_unprepared(statement).await.unwrap();
    }
    let reader = app.register("reader").await;
    let mut authors = Vec::new();
    for i in 0..WRITERS {
        let name = format!("author{i}");
        authors.push(app.register(&name).await);
        app.follow(&reader, &name).await.expect(201);
    }
    let mut fans = Vec::new();
    for i in 0..WRITERS * 2 {
        fans.push(app.register(&format!("fan{i}")).await);
    }
    // A starting point for each poller: the newest item before the writers start.
    app.post_as(&reader, "start").await;
    let first_fan = app.register("first_fan").await;
    app.follow(&first_fan, "reader").await.expect(201);
    let timeline_start = app.get("/timeline", Some(&reader.token)).await.expect(200);
    let followers_start = app.get("/users/reader/followers", None).await.expect(200);

    let app = &app;
    let done = AtomicBool::new(false);
    let write = async {
        let posts = futures_util::future::join_all(authors.iter().enumerate().map(
            |(i, author)| async move {
                let mut ids = Vec::new();
                for n in 0..POSTS_EACH {
                    ids.push(app.post_as(author, &format!("{i}/{n}")).await.to_string());
                }
                ids
            },
        ));
        let follows =
            futures_util::future::join_all(fans.iter().enumerate().map(|(i, fan)| async move {
                app.follow(fan, "reader").await.expect(201);
                format!("fan{i}")
            }));
        let (posts, follows) = tokio::join!(posts, follows);
        done.store(true, Ordering::SeqCst);
        (posts.concat(), follows)
    };
    let poll = |path: &'static str, token: Option<String>, start: &Value| {
        let done = &done;
        let mut prev = cursor(start, "prev_cursor");
        async move {
            let mut seen = Vec::new();
            loop {
                // Whether the writers had finished before this read: then a short page means
                // the poller has everything.
                let finished = done.load(Ordering::SeqCst);
                let query = format!("{path}?limit={LIMIT}&newer_than={prev}");
                let page = app.get(&query, token.as_deref()).await.expect(200);
                let items = page["items"].as_array().unwrap();
                seen.extend(items.iter().map(key));
                prev = cursor(&page, "prev_cursor");
                if finished && items.len() < LIMIT {
                    return seen;
                }
            }
        }
    };
    let ((posts, follows), timeline_seen, followers_seen) = tokio::join!(
        write,
        poll("/timeline", Some(reader.token.clone()), &timeline_start),
        poll("/users/reader/followers", None, &followers_start),
    );
    for (what, written, seen) in [
        ("timeline", posts, timeline_seen),
        ("followers", follows, followers_seen),
    ] {
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{what}: an item came twice: {seen:?}"
        );
        let written: HashSet<&String> = written.iter().collect();
        let missed: Vec<&&String> = written.difference(&unique).collect();
        assert!(missed.is_empty(), "{what}: missed {missed:?}");
        assert_eq!(unique, written, "{what}");
    }
}

/// The posts' clock is in shards (`services::clock`): a post written while an earlier one is still
/// in flight on another shard does not show until that one has committed, so a poller that saw
/// the later post never passes over the earlier one. Here the write in flight is held open by the
/// test itself: a transaction that took a position on the first author's shard and inserted that
/// author's post, as `posts::create` does, and waits. (SQLite runs one write transaction at a time,
/// so nothing can commit while one is in flight there.)
#[tokio::test]
async fn a_post_in_flight_holds_back_the_newer_ones_until_it_commits() {
    use sea_orm::TransactionTrait;
    if backend() == DbBackend::Sqlite {
        return;
    }
    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let _slow = app.register("slow").await;
    let fast = app.register("fast").await;
    for name in ["slow", "fast"] {
        app.follow(&reader, name).await.expect(201);
    }
    app.post_as(&reader, "start").await;
    let start = app.get("/timeline", Some(&reader.token)).await.expect(200);
    let id_of = async |name: &str| {
        api::services::users::find_by_username(&app.db, name)
            .await
            .unwrap()
            .id
    };
    let slow_id = id_of("slow").await;
    assert_ne!(
        slow_id % POST_CLOCK_SHARDS,
        id_of("fast").await % POST_CLOCK_SHARDS,
        "the authors share a shard"
    );

    // The write in flight: the slow author's shard locked and moved, its post inserted.
    let in_flight = app.db.begin().await.unwrap();
    let shard = slow_id % POST_CLOCK_SHARDS;
    in_flight
        .execute_unprepared(&format!(
            "SELECT at FROM post_clocks WHERE shard = {shard} FOR UPDATE"
        ))
        .await
        .unwrap();
    let slow_at = api::time::now_millis();
    in_flight
        .execute_unprepared(&format!(
            "UPDATE post_clocks SET at = {slow_at} WHERE shard = {shard}"
        ))
        .await
        .unwrap();
    in_flight
        .execute_unprepared(&format!(
            "INSERT INTO posts (author_id, body, created_at, replies_count, likes_count, \
             reposts_count) VALUES ({slow_id}, 'slow', {slow_at}, 0, 0, 0)"
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;

    let app = &app;
    let write = app.post_as(&fast, "fast");
    let watch = async {
        // The fast post has committed (its request waits for the horizon to pass it) but lies
        // beyond the horizon: neither the first page nor a poller shows it yet.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        assert_eq!(app.timeline_bodies(&reader).await, ["start"]);
        let since = format!("/timeline?newer_than={}", cursor(&start, "prev_cursor"));
        let page = app.get(&since, Some(&reader.token)).await.expect(200);
        assert_eq!(page["items"].as_array().unwrap().len(), 0, "{page}");
        in_flight.commit().await.unwrap();
    };
    tokio::join!(write, watch);
    // Both show now, in their positions' order, and a poller from the start gets both.
    assert_eq!(
        app.timeline_bodies(&reader).await,
        ["fast", "slow", "start"]
    );
    let since = format!("/timeline?newer_than={}", cursor(&start, "prev_cursor"));
    let page = app.get(&since, Some(&reader.token)).await.expect(200);
    let bodies: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["fast", "slow"]);
}

/// A post whose process stopped between its commit and its sweep (`services::clock::Horizon`)
/// lies beyond the horizon, with no writer left to move the other shards up to it: every process
/// looks each second for a shard ahead of the others, and the post shows. Here the post is
/// written as such a process leaves it: its author's shard moved and the post inserted,
/// committed, and no sweep.
#[tokio::test]
async fn a_post_left_unswept_by_its_process_shows_within_seconds() {
    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let _author = app.register("author").await;
    app.follow(&reader, "author").await.expect(201);
    app.post_as(&reader, "start").await;
    let author_id = api::services::users::find_by_username(&app.db, "author")
        .await
        .unwrap()
        .id;
    let at = api::time::now_millis() + 1_000;
    let shard = author_id % POST_CLOCK_SHARDS;
    app.db
        .execute_unprepared(&format!(
            "UPDATE post_clocks SET at = {at} WHERE shard = {shard}"
        ))
        .await
        .unwrap();
    app.db
        .execute_unprepared(&format!(
            "INSERT INTO posts (author_id, body, created_at, replies_count, likes_count, \
             reposts_count) VALUES ({author_id}, 'unswept', {at}, 0, 0, 0)"
        ))
        .await
        .unwrap();
    let mut shown = Vec::new();
    for _ in 0..40 {
        shown = app.timeline_bodies(&reader).await;
        if shown.len() > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(shown, ["unswept", "start"]);
}
