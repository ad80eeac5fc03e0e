//! Precomputed timelines (issue 30; `api::services::feeds`): a reader past the per-author query
//! gets a feed, built and kept by a worker that these tests step themselves, and every page it
//! serves agrees with the newest-first walk (the reference: the same rules, read from every post),
//! before and after the worker catches up, across the feed's floor, and after each change the
//! timeline's rules react to.

use api::services::feeds;
use api::services::keyset::{PageRequest, Position};
use api::services::timeline::{self, Strategy};
use entity::{feed, feed_entry, user};
use futures_util::future::join_all;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use crate::helpers::{TestApp, TestUser, spawn_app_with, test_settings};

/// An app whose readers past `per_author_max` followees get feeds, with no worker of its own.
async fn app_with_feeds(per_author_max: i64) -> TestApp {
    let mut settings = test_settings().await;
    settings.timeline_per_author_max_followees = per_author_max;
    settings.timeline_feeds = true;
    settings.timeline_feeds_worker = false;
    spawn_app_with(settings).await
}

/// Steps the worker until nothing waits, building feeds of `length` entries.
async fn settle(app: &TestApp, length: usize) {
    while feeds::step(&app.db, length).await.unwrap() {}
}

async fn row(app: &TestApp, username: &str) -> user::Model {
    user::Entity::find()
        .filter(user::Column::UsernameKey.eq(username.to_lowercase()))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap()
}

/// Reads `user`'s timeline, waits for the feed it asks for to be recorded, and builds it.
async fn build_feed(app: &TestApp, user: &TestUser, name: &str, length: usize) -> Position {
    let id = app.user_id(name).await;
    app.get("/timeline", Some(&user.token)).await.expect(200);
    for _ in 0..200 {
        if feed::Entity::find_by_id(id)
            .one(&app.db)
            .await
            .unwrap()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    settle(app, length).await;
    feeds::floor_of(&row(app, name).await).expect("the feed is built")
}

/// `user`'s whole timeline as the walk reads it (no feed), pages of 3.
async fn walk(app: &TestApp, username: &str) -> Vec<(i64, Option<String>)> {
    let reader = row(app, username).await;
    let strategy = Strategy::without_feeds(0);
    let mut items = Vec::new();
    let mut page = PageRequest::older(3, None);
    loop {
        let (entries, neighbours) = timeline::page(&app.db, &reader, page, &strategy)
            .await
            .unwrap();
        items.extend(entries.iter().map(|entry| {
            (
                entry.post.post.id,
                entry.reposted_by.as_ref().map(|u| u.username.clone()),
            )
        }));
        match neighbours.next {
            Some(next) => page = PageRequest::older(3, Some(next)),
            None => return items,
        }
    }
}

/// Checks that `user`'s timeline served over HTTP (from the feed) agrees with the walk, whole,
/// in pages of 2 and of 50; returns it.
async fn agrees(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    context: &str,
) -> Vec<(i64, Option<String>)> {
    let expected = walk(app, name).await;
    for limit in [2, 50] {
        let served = app
            .whole_timeline_entries(&user.token, limit)
            .await
            .unwrap();
        assert_eq!(served, expected, "{context}, pages of {limit}");
    }
    expected
}

async fn repost(app: &TestApp, user: &TestUser, post: i64) {
    app.post(
        &format!("/posts/{post}/repost"),
        Some(&user.token),
        &json!({}),
    )
    .await
    .expect(201);
}

#[tokio::test]
async fn a_feed_serves_what_the_walk_does_above_and_below_its_floor() {
    let app = app_with_feeds(0).await;
    let reader = app.register("reader").await;
    let names = ["ann", "bob", "cyd"];
    let authors = [
        app.register("ann").await,
        app.register("bob").await,
        app.register("cyd").await,
    ];
    let stranger = app.register("stranger").await;
    for name in names {
        app.follow(&reader, name).await.expect(201);
    }
    let mut ids = Vec::new();
    for round in 0..4 {
        for (author, name) in authors.iter().zip(names).chain([(&reader, "reader")]) {
            ids.push(app.post_as(author, &format!("{name} {round}")).await);
        }
    }
    let strangers = app.post_as(&stranger, "stranger's").await;
    // A reply by a followee to a stranger stays out; a repost of an old post moves it up.
    app.post(
        "/posts",
        Some(&authors[0].token),
        &json!({"body": "to a stranger", "in_reply_to_id": strangers}),
    )
    .await
    .expect(201);
    repost(&app, &authors[1], ids[0]).await;
    let before = agrees(&app, &reader, "reader", "before the feed").await;
    assert_eq!(before.len(), 16, "{before:?}");
    assert_eq!(before[0], (ids[0], Some("bob".to_owned())));

    // A feed of 5 entries: a first page of 3 comes from it (4 rows read: the page and one more),
    // and the pages below its floor from the walk.
    let floor = build_feed(&app, &reader, "reader", 5).await;
    assert_ne!(floor, feeds::WHOLE);
    let reader_id = app.user_id("reader").await;
    let kept = feed_entry::Entity::find()
        .filter(feed_entry::Column::ReaderId.eq(reader_id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(kept.len(), 5, "{kept:?}");
    assert!(kept.iter().all(|e| Position {
        at: e.at,
        id: e.post_id
    } > floor));
    let backend = app.db.get_database_backend();
    let (fanned, horizon) = feeds::positions(&app.db).await.unwrap();
    let first = timeline::feed_query(
        backend,
        reader_id,
        PageRequest::older(3, None),
        floor,
        fanned,
        horizon,
    );
    let rows = sea_orm::ConnectionTrait::query_all(&app.db, &first)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "the feed alone fills a first page of 3");
    assert_eq!(
        agrees(&app, &reader, "reader", "the feed built").await,
        before
    );

    // New entries show before the worker fans them out (the walk above its position), and the
    // same once it has.
    let newest = app.post_as(&authors[2], "newest").await;
    repost(&app, &authors[0], ids[5]).await;
    let live = agrees(&app, &reader, "reader", "not fanned out yet").await;
    assert_eq!(live[0], (ids[5], Some("ann".to_owned())));
    assert_eq!(live[1], (newest, None));
    settle(&app, 5).await;
    assert_eq!(agrees(&app, &reader, "reader", "fanned out").await, live);
    let fanned = feed_entry::Entity::find()
        .filter(feed_entry::Column::ReaderId.eq(reader_id))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(fanned.len(), 7, "{fanned:?}");
}

#[tokio::test]
async fn every_rule_of_the_timeline_holds_on_a_feed_at_the_next_read() {
    let app = app_with_feeds(0).await;
    let reader = app.register("reader").await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    let cy = app.register("cyd").await;
    let dee = app.register("dee").await;
    for name in ["ann", "bob", "cyd"] {
        app.follow(&reader, name).await.expect(201);
    }
    let anns = app.post_as(&ann, "ann's").await;
    let bobs = app.post_as(&bob, "bob's").await;
    let cys = app.post_as(&cy, "cy's").await;
    let dees = app.post_as(&dee, "dee's, before the follow").await;
    repost(&app, &cy, anns).await;
    build_feed(&app, &reader, "reader", 100).await;
    let ids =
        |items: Vec<(i64, Option<String>)>| items.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "built").await),
        [anns, cys, bobs]
    );

    // A mute, and its end.
    app.post("/users/bob/mute", Some(&reader.token), &json!({}))
        .await
        .expect(201);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "bob muted").await),
        [anns, cys]
    );
    app.delete("/users/bob/mute", Some(&reader.token))
        .await
        .expect(204);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "bob unmuted").await),
        [anns, cys, bobs]
    );
    // An unrepost: ann's post falls back to its writing.
    app.delete(&format!("/posts/{anns}/repost"), Some(&cy.token))
        .await
        .expect(204);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "unreposted").await),
        [cys, bobs, anns]
    );
    // An unfollow, and a follow whose followee's older posts show at once, with no step.
    app.unfollow(&reader, "cyd").await.expect(204);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "cy unfollowed").await),
        [bobs, anns]
    );
    app.follow(&reader, "dee").await.expect(201);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "dee followed").await),
        [dees, bobs, anns]
    );
    // A block by the author ends the follow; a suspension hides the author.
    app.post("/users/reader/block", Some(&bob.token), &json!({}))
        .await
        .expect(201);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "blocked by bob").await),
        [dees, anns]
    );
    let operator = app.register_operator("operator").await;
    app.post(
        "/admin/users/ann/suspension",
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
    assert_eq!(
        ids(agrees(&app, &reader, "reader", "ann suspended").await),
        [dees]
    );
    // A deletion.
    app.delete(&format!("/posts/{dees}"), Some(&dee.token))
        .await
        .expect(204);
    assert!(
        agrees(&app, &reader, "reader", "dee's post deleted")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_follow_past_the_feeds_length_raises_its_floor_and_the_walk_serves_below_it() {
    let app = app_with_feeds(0).await;
    let reader = app.register("reader").await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.follow(&reader, "ann").await.expect(201);
    for i in 0..3 {
        app.post_as(&ann, &format!("ann {i}")).await;
        app.post_as(&bob, &format!("bob {i}")).await;
    }
    let floor = build_feed(&app, &reader, "reader", 100).await;
    assert_eq!(floor, feeds::WHOLE);
    let reader_id = app.user_id("reader").await;
    let bob_id = app.user_id("bob").await;
    // The follow as the API makes it, but copying at most 2 of bob's 3 posts.
    let txn = app.db.begin().await.unwrap();
    api::services::follows::insert_follow(&txn, reader_id, bob_id)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let txn = app.db.begin().await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &txn,
        &format!("DELETE FROM feed_entries WHERE reader_id = {reader_id} AND source_id = {bob_id}"),
    )
    .await
    .unwrap();
    feeds::backfill_at_most(&txn, reader_id, bob_id, 2)
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let raised = feeds::floor_of(&row(&app, "reader").await).unwrap();
    assert!(raised > floor, "{raised:?}");
    let kept = feed_entry::Entity::find()
        .filter(feed_entry::Column::ReaderId.eq(reader_id))
        .all(&app.db)
        .await
        .unwrap();
    assert!(
        kept.iter().all(|e| Position {
            at: e.at,
            id: e.post_id
        } > raised),
        "{kept:?}"
    );
    assert_eq!(kept.iter().filter(|e| e.source_id == bob_id).count(), 2);
    assert_eq!(
        agrees(&app, &reader, "reader", "floor raised").await.len(),
        6
    );
}

#[tokio::test]
async fn only_readers_past_the_per_author_query_ask_for_a_feed() {
    let app = app_with_feeds(1).await;
    let one = app.register("one").await;
    let two = app.register("two").await;
    let ann = app.register("ann").await;
    app.register("bob").await;
    app.post_as(&ann, "ann's").await;
    app.follow(&one, "ann").await.expect(201);
    app.follow(&two, "ann").await.expect(201);
    app.follow(&two, "bob").await.expect(201);
    for user in [&one, &two] {
        app.get("/timeline", Some(&user.token)).await.expect(200);
    }
    let two_id = app.user_id("two").await;
    let mut asked = Vec::new();
    for _ in 0..200 {
        asked = feed::Entity::find().all(&app.db).await.unwrap();
        if !asked.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Following 1 (the per-author query's limit): no feed; following 2: one, built by a step.
    assert_eq!(
        asked.iter().map(|f| f.reader_id).collect::<Vec<_>>(),
        [two_id]
    );
    settle(&app, 10).await;
    assert!(feeds::floor_of(&row(&app, "two").await).is_some());
    assert!(feeds::floor_of(&row(&app, "one").await).is_none());
    agrees(&app, &two, "two", "two's feed").await;
    agrees(&app, &one, "one", "one's per-author query").await;
}

/// Follows racing the followees' posts and the worker, several rounds: whatever the order, the
/// feed ends up agreeing with the walk (a follow copies what committed before it; the worker
/// fans out what commits after).
#[tokio::test]
async fn follows_racing_posts_and_the_worker_leave_the_feed_whole() {
    let app = app_with_feeds(0).await;
    let reader = app.register("reader").await;
    let seed = app.register("seed").await;
    app.follow(&reader, "seed").await.expect(201);
    app.post_as(&seed, "seed's").await;
    build_feed(&app, &reader, "reader", 1_000).await;
    let mut authors = Vec::new();
    for i in 0..6 {
        let name = format!("author{i}");
        authors.push((app.register(&name).await, name));
    }
    for round in 0..3 {
        let posting = authors.iter().map(|(author, name)| {
            let app = &app;
            async move {
                for i in 0..3 {
                    app.post_as(author, &format!("{name} {round} {i}")).await;
                }
            }
        });
        let following = authors.iter().map(|(_, name)| {
            let (app, reader) = (&app, &reader);
            async move {
                if round % 2 == 0 {
                    app.follow(reader, name).await.expect(201);
                } else {
                    app.unfollow(reader, name).await.expect(204);
                }
            }
        });
        let stepping = async {
            for _ in 0..10 {
                feeds::step(&app.db, 1_000).await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        tokio::join!(join_all(posting), join_all(following), stepping);
        let seen = agrees(
            &app,
            &reader,
            "reader",
            &format!("round {round}, before the worker"),
        )
        .await;
        settle(&app, 1_000).await;
        assert_eq!(
            agrees(&app, &reader, "reader", &format!("round {round}")).await,
            seen
        );
        let expected = if round % 2 == 0 {
            1 + 6 * 3 * (round + 1)
        } else {
            1
        };
        assert_eq!(seen.len(), expected as usize, "round {round}");
    }
}

#[tokio::test]
async fn a_trimmed_feed_keeps_its_newest_entries_and_the_walk_serves_the_rest() {
    let app = app_with_feeds(0).await;
    let reader = app.register("reader").await;
    let ann = app.register("ann").await;
    app.follow(&reader, "ann").await.expect(201);
    build_feed(&app, &reader, "reader", 100).await;
    for i in 0..7 {
        app.post_as(&ann, &format!("ann {i}")).await;
    }
    settle(&app, 100).await;
    let reader_id = app.user_id("reader").await;
    let entries = async || {
        feed_entry::Entity::find()
            .filter(feed_entry::Column::ReaderId.eq(reader_id))
            .all(&app.db)
            .await
            .unwrap()
    };
    assert_eq!(entries().await.len(), 7);
    // Keeping 4: 7 is not more than twice 4, nothing changes.
    assert_eq!(
        feeds::trim(&app.db, 0, 10, 4).await.unwrap(),
        Some(reader_id)
    );
    assert_eq!(entries().await.len(), 7);
    assert_eq!(
        feeds::floor_of(&row(&app, "reader").await),
        Some(feeds::WHOLE)
    );
    // Keeping 3: 7 is more than 6, the newest 3 stay and the floor rises below them.
    feeds::trim(&app.db, 0, 10, 3).await.unwrap();
    let kept = entries().await;
    let floor = feeds::floor_of(&row(&app, "reader").await).unwrap();
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert!(kept.iter().all(|e| Position {
        at: e.at,
        id: e.post_id
    } > floor));
    assert_eq!(agrees(&app, &reader, "reader", "trimmed").await.len(), 7);
    // A look past the last feed finds none.
    assert_eq!(feeds::trim(&app.db, reader_id, 10, 3).await.unwrap(), None);
}
