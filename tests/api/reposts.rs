//! Reposts (API.md v3, "Replies, likes and reposts", "What the timeline holds, v3"): the endpoints,
//! the timeline as entries on both timeline queries (a post once, at its newest entry the reader
//! qualifies for, falling back when that entry goes), mutes, blocks and locks, exact counts under
//! concurrency, notifications, `newer_than` and the stream.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, TestUser, spawn_app, spawn_app_with, test_settings};

/// Both timeline queries: per-author (threshold 30) and the newest-first walk (threshold 0).
const BOTH_QUERIES: [i64; 2] = [30, 0];

async fn app_with_threshold(threshold: i64) -> TestApp {
    let mut settings = test_settings().await;
    settings.timeline_per_author_max_followees = threshold;
    spawn_app_with(settings).await
}

async fn repost(app: &TestApp, user: &TestUser, post: i64) -> TestResponse {
    app.post(
        &format!("/posts/{post}/repost"),
        Some(&user.token),
        &json!({}),
    )
    .await
}

async fn unrepost(app: &TestApp, user: &TestUser, post: i64) {
    app.delete(&format!("/posts/{post}/repost"), Some(&user.token))
        .await
        .expect(204);
}

/// `(body, reposted_by username)` of every item of `user`'s whole timeline, pages of `limit`.
async fn timeline(app: &TestApp, user: &TestUser, limit: u32) -> Vec<(String, Option<String>)> {
    let mut items = Vec::new();
    let mut path = format!("/timeline?limit={limit}");
    loop {
        let page = app.get(&path, Some(&user.token)).await.expect(200);
        for item in page["items"].as_array().unwrap() {
            items.push(entry(item));
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/timeline?limit={limit}&cursor={cursor}"),
            None => return items,
        }
    }
}

fn entry(item: &Value) -> (String, Option<String>) {
    (
        item["body"].as_str().unwrap().to_owned(),
        item["reposted_by"]["username"].as_str().map(str::to_owned),
    )
}

fn plain(body: &str) -> (String, Option<String>) {
    (body.to_owned(), None)
}

fn by(body: &str, reposter: &str) -> (String, Option<String>) {
    (body.to_owned(), Some(reposter.to_owned()))
}

async fn notifications(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.get("/notifications?limit=100", Some(&user.token))
        .await
        .expect(200)["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_repost_moves_the_post_up_its_readers_timelines_and_falls_back_when_it_goes() {
    for threshold in BOTH_QUERIES {
        let app = app_with_threshold(threshold).await;
        let reader = app.register("reader").await;
        let friend = app.register("friend").await;
        let author = app.register("author").await;
        let stranger = app.register("stranger").await;
        app.follow(&reader, "friend").await.expect(201);
        app.follow(&reader, "author").await.expect(201);
        let old = app.post_as(&author, "old").await;
        let strangers = app.post_as(&stranger, "stranger's").await;
        app.post_as(&friend, "friend's").await;
        assert_eq!(
            timeline(&app, &reader, 20).await,
            [plain("friend's"), plain("old")]
        );

        let reposted = repost(&app, &friend, old).await.expect(201);
        assert_eq!(reposted["reposts_count"], 1);
        assert_eq!(
            reposted["viewer"],
            json!({"liked": false, "reposted": true})
        );
        // Outside timelines a post carries no reposter.
        assert_eq!(reposted["reposted_by"], Value::Null);
        repost(&app, &friend, strangers).await.expect(201);
        // The stranger's post comes in by the repost; the old post moves up, once.
        assert_eq!(
            timeline(&app, &reader, 20).await,
            [
                by("stranger's", "friend"),
                by("old", "friend"),
                plain("friend's")
            ],
            "threshold {threshold}"
        );
        let page = app.get("/timeline", Some(&reader.token)).await.expect(200);
        let item = &page["items"][1];
        assert_eq!(item["reposted_by"]["username"], "friend");
        assert!(
            item["reposted_by"]["viewer"]["following"]
                .as_bool()
                .unwrap()
        );
        assert!(item["reposted_at"].as_str().unwrap() > item["created_at"].as_str().unwrap());
        assert_eq!(item["author"]["username"], "author");

        // Unreposting lets the post fall back to its writing, or leave the timeline.
        unrepost(&app, &friend, old).await;
        unrepost(&app, &friend, strangers).await;
        assert_eq!(
            timeline(&app, &reader, 20).await,
            [plain("friend's"), plain("old")],
            "threshold {threshold}"
        );
        // Unfollowing the reposter does the same.
        repost(&app, &friend, strangers).await.expect(201);
        app.unfollow(&reader, "friend").await;
        assert_eq!(timeline(&app, &reader, 20).await, [plain("old")]);
        app.assert_counts_match_rows().await;
    }
}

#[tokio::test]
async fn a_post_shows_once_at_its_newest_entry_on_every_page() {
    for threshold in BOTH_QUERIES {
        let app = app_with_threshold(threshold).await;
        let reader = app.register("reader").await;
        let names = ["ann", "ben", "cat"];
        let mut users = Vec::new();
        for name in names {
            users.push(app.register(name).await);
            app.follow(&reader, name).await.expect(201);
        }
        let [ann, ben, cat] = <[TestUser; 3]>::try_from(users).ok().unwrap();
        let first = app.post_as(&ann, "first").await;
        let second = app.post_as(&ben, "second").await;
        app.post_as(&cat, "third").await;
        repost(&app, &ben, first).await.expect(201);
        repost(&app, &cat, first).await.expect(201);
        repost(&app, &ann, second).await.expect(201);
        // The reader's own repost counts as an entry too.
        repost(&app, &reader, second).await.expect(201);
        let expected = [by("second", "reader"), by("first", "cat"), plain("third")];
        for limit in [1, 2, 20] {
            assert_eq!(
                timeline(&app, &reader, limit).await,
                expected,
                "threshold {threshold}, limit {limit}"
            );
        }
        // The newest entry goes: the next newest one takes over.
        unrepost(&app, &cat, first).await;
        unrepost(&app, &reader, second).await;
        assert_eq!(
            timeline(&app, &reader, 1).await,
            [by("second", "ann"), by("first", "ben"), plain("third")],
            "threshold {threshold}"
        );
        app.assert_counts_match_rows().await;
    }
}

#[tokio::test]
async fn muting_hides_an_accounts_reposts_and_the_reposts_of_its_posts() {
    for threshold in BOTH_QUERIES {
        let app = app_with_threshold(threshold).await;
        let reader = app.register("reader").await;
        let friend = app.register("friend").await;
        let loud = app.register("loud").await;
        let noisy = app.register("noisy").await;
        app.follow(&reader, "friend").await.expect(201);
        app.follow(&reader, "loud").await.expect(201);
        let noisys = app.post_as(&noisy, "noisy's").await;
        let friends = app.post_as(&friend, "friend's").await;
        repost(&app, &friend, noisys).await.expect(201);
        repost(&app, &loud, friends).await.expect(201);
        assert_eq!(
            timeline(&app, &reader, 20).await,
            [by("friend's", "loud"), by("noisy's", "friend")]
        );
        for muted in ["loud", "noisy"] {
            app.post(
                &format!("/users/{muted}/mute"),
                Some(&reader.token),
                &json!({}),
            )
            .await
            .expect(201);
        }
        // Loud's repost goes (friend's post falls back to its writing); noisy's post goes.
        assert_eq!(
            timeline(&app, &reader, 20).await,
            [plain("friend's")],
            "threshold {threshold}"
        );
    }
}

#[tokio::test]
async fn a_repost_never_shows_a_post_the_reader_may_not_read() {
    for threshold in BOTH_QUERIES {
        let app = app_with_threshold(threshold).await;
        let reader = app.register("reader").await;
        let friend = app.register("friend").await;
        let blocker = app.register("blocker").await;
        let blocked = app.register("blocked").await;
        let shy = app.register("shy").await;
        app.follow(&reader, "friend").await.expect(201);
        let blockers = app.post_as(&blocker, "blocker's").await;
        let blockeds = app.post_as(&blocked, "blocked's").await;
        let shys = app.post_as(&shy, "shy's").await;
        for post in [blockers, blockeds, shys] {
            repost(&app, &friend, post).await.expect(201);
        }
        assert_eq!(timeline(&app, &reader, 20).await.len(), 3);
        app.post("/users/reader/block", Some(&blocker.token), &json!({}))
            .await
            .expect(201);
        app.post("/users/blocked/block", Some(&reader.token), &json!({}))
            .await
            .expect(201);
        app.patch("/users/me", Some(&shy.token), &json!({"locked": true}))
            .await
            .expect(200);
        assert_eq!(
            timeline(&app, &reader, 20).await,
            Vec::<(String, Option<String>)>::new(),
            "threshold {threshold}"
        );
        // Following the locked author (accepted) brings its post back, by the repost.
        app.follow(&reader, "shy").await.expect(202);
        app.post(
            "/users/me/follow_requests/reader/accept",
            Some(&shy.token),
            &json!({}),
        )
        .await
        .expect(200);
        let items = timeline(&app, &reader, 20).await;
        assert_eq!(items, [by("shy's", "friend")], "threshold {threshold}");
    }
}

#[tokio::test]
async fn reposting_is_idempotent_and_concurrent_identical_reposts_make_exactly_one() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    for round in 0..3 {
        let post = app.post_as(&susan, &format!("round {round}")).await;
        let answers = join_all((0..12).map(|_| repost(&app, &john, post))).await;
        let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        statuses.sort_unstable();
        let mut expected = vec![200; 11];
        expected.push(201);
        assert_eq!(statuses, expected, "round {round}");
        for answer in &answers {
            assert_eq!(answer.json()["reposts_count"], 1, "{}", answer.text);
        }
        let path = format!("/posts/{post}/repost");
        let unreposts = join_all((0..6).map(|_| app.delete(&path, Some(&john.token)))).await;
        assert!(unreposts.iter().all(|a| a.status == 204));
        let after = app
            .get(&format!("/posts/{post}"), Some(&john.token))
            .await
            .expect(200);
        assert_eq!(after["reposts_count"], 0);
        assert_eq!(after["viewer"]["reposted"], false);
    }
    // One notification per post, kept after the unrepost.
    let notes = notifications(&app, &susan).await;
    assert_eq!(notes.len(), 3);
    assert!(notes.iter().all(|n| n["type"] == "repost"));
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn a_locked_accounts_posts_cannot_be_reposted_even_by_the_author() {
    let app = spawn_app().await;
    let shy = app.register("shy").await;
    let follower = app.register("follower").await;
    let stranger = app.register("stranger").await;
    app.follow(&follower, "shy").await.expect(201);
    let post = app.post_as(&shy, "mine").await;
    // The author may repost its own post while unlocked.
    repost(&app, &shy, post).await.expect(201);
    unrepost(&app, &shy, post).await;
    app.patch("/users/me", Some(&shy.token), &json!({"locked": true}))
        .await
        .expect(200);
    for user in [&shy, &follower] {
        let refused = repost(&app, user, post).await;
        let body = refused.assert_problem(422, "cannot_repost_private");
        assert!(body["detail"].as_str().unwrap().contains("shy"), "{body}");
    }
    // A stranger may not read it at all: the reading rule answers first.
    repost(&app, &stranger, post)
        .await
        .assert_problem(403, "private_account");
    repost(&app, &stranger, 999_999)
        .await
        .assert_problem(404, "post_not_found");
    app.delete("/posts/999999/repost", Some(&stranger.token))
        .await
        .assert_problem(404, "post_not_found");
    let after = app
        .get(&format!("/posts/{post}"), Some(&shy.token))
        .await
        .expect(200);
    assert_eq!(after["reposts_count"], 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn a_block_ends_reposts_both_ways_and_forbids_new_ones() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let susans = app.post_as(&susan, "susan's").await;
    let johns = app.post_as(&john, "john's").await;
    repost(&app, &john, susans).await.expect(201);
    repost(&app, &susan, johns).await.expect(201);
    app.post("/users/john/block", Some(&susan.token), &json!({}))
        .await
        .expect(201);
    for post in [susans, johns] {
        let seen = app.get(&format!("/posts/{post}"), None).await.expect(200);
        assert_eq!(seen["reposts_count"], 0, "{seen}");
    }
    repost(&app, &john, susans)
        .await
        .assert_problem(403, "blocked");
    repost(&app, &susan, johns)
        .await
        .assert_problem(403, "blocked");
    // And the reposts leave both timelines.
    assert!(
        timeline(&app, &susan, 20)
            .await
            .iter()
            .all(|(_, by)| by.is_none())
    );
    assert!(
        timeline(&app, &john, 20)
            .await
            .iter()
            .all(|(_, by)| by.is_none())
    );
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn deleting_a_post_ends_its_reposts_and_their_notifications() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let reader = app.register("reader").await;
    app.follow(&reader, "john").await.expect(201);
    let post = app.post_as(&susan, "going").await;
    repost(&app, &john, post).await.expect(201);
    assert_eq!(timeline(&app, &reader, 20).await, [by("going", "john")]);
    let unread = app
        .get("/notifications/unread_count", Some(&susan.token))
        .await
        .expect(200)["count"]
        .as_i64()
        .unwrap();
    assert_eq!(unread, 1);
    app.delete(&format!("/posts/{post}"), Some(&susan.token))
        .await
        .expect(204);
    assert!(timeline(&app, &reader, 20).await.is_empty());
    assert!(notifications(&app, &susan).await.is_empty());
    let unread = app
        .get("/notifications/unread_count", Some(&susan.token))
        .await
        .expect(200)["count"]
        .as_i64()
        .unwrap();
    assert_eq!(unread, 0);
    app.get(&format!("/posts/{post}/reposts"), None)
        .await
        .assert_problem(404, "post_not_found");
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn reposts_notify_the_author_once_per_account_and_post_and_never_from_muted_or_self() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let mary = app.register("mary").await;
    let post = app.post_as(&susan, "popular").await;
    repost(&app, &susan, post).await.expect(201);
    repost(&app, &john, post).await.expect(201);
    unrepost(&app, &john, post).await;
    repost(&app, &john, post).await.expect(201);
    app.post("/users/mary/mute", Some(&susan.token), &json!({}))
        .await
        .expect(201);
    repost(&app, &mary, post).await.expect(201);
    let notes = notifications(&app, &susan).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["type"], "repost");
    assert_eq!(notes[0]["account"]["username"], "john");
    assert_eq!(notes[0]["post"]["id"], post);
    assert_eq!(notes[0]["post"]["reposts_count"], 3);
}

#[tokio::test]
async fn a_posts_reposts_come_newest_first_and_follow_the_reading_rules() {
    let app = spawn_app().await;
    let susan = app.register("susan").await;
    let post = app.post_as(&susan, "shared").await;
    let mut names = Vec::new();
    for i in 0..5 {
        let name = format!("user{i}");
        let user = app.register(&name).await;
        repost(&app, &user, post).await.expect(201);
        names.push(name);
    }
    names.reverse();
    let mut seen = Vec::new();
    let mut path = format!("/posts/{post}/reposts?limit=2");
    loop {
        let page = app.get(&path, None).await.expect(200);
        for item in page["items"].as_array().unwrap() {
            assert!(item["reposted_at"].is_string(), "{item}");
            seen.push(item["user"]["username"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/posts/{post}/reposts?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, names);
    app.patch("/users/me", Some(&susan.token), &json!({"locked": true}))
        .await
        .expect(200);
    app.get(&format!("/posts/{post}/reposts"), None)
        .await
        .assert_problem(403, "private_account");
}

#[tokio::test]
async fn polling_newer_than_receives_a_repost_as_a_new_item_once() {
    for threshold in BOTH_QUERIES {
        let app = app_with_threshold(threshold).await;
        let reader = app.register("reader").await;
        let friend = app.register("friend").await;
        app.follow(&reader, "friend").await.expect(201);
        let post = app.post_as(&friend, "again").await;
        let first = app.get("/timeline", Some(&reader.token)).await.expect(200);
        assert_eq!(first["items"].as_array().unwrap().len(), 1);
        let prev = first["prev_cursor"].as_str().unwrap().to_owned();
        repost(&app, &friend, post).await.expect(201);
        let newer = app
            .get(&format!("/timeline?newer_than={prev}"), Some(&reader.token))
            .await
            .expect(200);
        let items: Vec<_> = newer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(entry)
            .collect();
        assert_eq!(items, [by("again", "friend")], "threshold {threshold}");
        let prev = newer["prev_cursor"].as_str().unwrap().to_owned();
        let none = app
            .get(&format!("/timeline?newer_than={prev}"), Some(&reader.token))
            .await
            .expect(200);
        assert_eq!(none["items"], json!([]), "threshold {threshold}");
    }
}

#[tokio::test]
async fn the_stream_sends_a_repost_as_a_post_event_and_replays_it() {
    use crate::stream::EventStream;
    use std::time::Duration;

    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let friend = app.register("friend").await;
    let stranger = app.register("stranger").await;
    app.follow(&reader, "friend").await.expect(201);
    let strangers = app.post_as(&stranger, "from afar").await;
    let mut stream = EventStream::open(&app, &reader, None).await;
    repost(&app, &friend, strangers).await.expect(201);
    let event = stream.next().await;
    assert_eq!(event.event, "post");
    assert_eq!(event.data["body"], "from afar");
    assert_eq!(event.data["reposted_by"]["username"], "friend");
    assert!(event.data["reposted_at"].is_string());
    assert_eq!(event.data["reposts_count"], 1);
    // Its id is the entry's timeline cursor: the same as the timeline's.
    let page = app.get("/timeline", Some(&reader.token)).await.expect(200);
    assert_eq!(event.id.as_deref(), page["prev_cursor"].as_str());
    let next = stream.next_within(Duration::from_millis(300)).await;
    assert!(next.is_none(), "{next:?}");
    drop(stream);

    // A replay from before the repost sends it again, once.
    let before = app.post_as(&friend, "before").await;
    let mut stream = EventStream::open(&app, &reader, None).await;
    let friends = app.post_as(&friend, "friend's").await;
    let written = stream.next().await;
    assert_eq!(written.data["id"], friends);
    drop(stream);
    repost(&app, &friend, before).await.expect(201);
    let mut replay = EventStream::open(&app, &reader, written.id.as_deref()).await;
    let replayed = replay.next().await;
    assert_eq!(replayed.data["id"], before);
    assert_eq!(replayed.data["reposted_by"]["username"], "friend");
    let next = replay.next_within(Duration::from_millis(300)).await;
    assert!(next.is_none(), "{next:?}");
}

#[tokio::test]
async fn suspension_and_removal_end_an_accounts_reposts_and_the_counts_drop() {
    let app = spawn_app().await;
    let operator = app.register_operator("operator").await;
    let susan = app.register("susan").await;
    let john = app.register("john").await;
    let mary = app.register("mary").await;
    let post = app.post_as(&susan, "shared").await;
    repost(&app, &john, post).await.expect(201);
    repost(&app, &mary, post).await.expect(201);
    app.post(
        "/admin/users/john/suspension",
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
    let seen = app.get(&format!("/posts/{post}"), None).await.expect(200);
    assert_eq!(seen["reposts_count"], 1);
    app.request(
        reqwest::Method::DELETE,
        "/users/me",
        Some(&mary.token),
        Some(&json!({"password": "password-of-mary"})),
    )
    .await
    .expect(204);
    let seen = app.get(&format!("/posts/{post}"), None).await.expect(200);
    assert_eq!(seen["reposts_count"], 0);
    app.assert_counts_match_rows().await;
}

/// Readers whose pages are mostly reposts, and readers who muted most of the reposters, on both
/// sides of the query threshold: the whole timeline, page after page, equals the one computed
/// here from the rules.
#[tokio::test]
async fn timelines_made_mostly_of_reposts_match_the_rules_on_both_queries() {
    for threshold in [4, 0] {
        let app = app_with_threshold(threshold).await;
        let reader = app.register("reader").await;
        let muter = app.register("muter").await;
        let mut accounts = Vec::new();
        for i in 0..6 {
            accounts.push(app.register(&format!("acct{i}")).await);
        }
        let outsider = app.register("outsider").await;
        // Both follow acct0..acct4 (over the threshold of 4 for the first run); the muter mutes
        // acct1..acct4, so only acct0's entries reach it.
        for i in 0..5 {
            app.follow(&reader, &format!("acct{i}")).await.expect(201);
            app.follow(&muter, &format!("acct{i}")).await.expect(201);
        }
        for i in 1..5 {
            app.post(
                &format!("/users/acct{i}/mute"),
                Some(&muter.token),
                &json!({}),
            )
            .await
            .expect(201);
        }
        // Everyone writes a little; the followees repost a lot, in an interleaved order.
        let mut posts: Vec<(i64, String, usize)> = Vec::new();
        for (i, user) in accounts.iter().chain([&outsider]).enumerate() {
            for n in 0..3 {
                let body = format!("{i}-{n}");
                posts.push((app.post_as(user, &body).await, body, i));
            }
        }
        // (reposter, post index), in time order.
        let mut entries: Vec<(Option<usize>, usize)> =
            (0..posts.len()).map(|p| (None, p)).collect();
        for step in 0..30 {
            let reposter = step % 5;
            let post = (step * 5) % posts.len();
            let answer = repost(&app, &accounts[reposter], posts[post].0).await;
            if answer.status == 201 {
                entries.push((Some(reposter), post));
            } else {
                assert_eq!(answer.status, 200, "{}", answer.text);
            }
        }
        // acct0 unreposts its first repost.
        if let Some(at) = entries.iter().position(|(r, _)| *r == Some(0)) {
            let (_, post) = entries.remove(at);
            unrepost(&app, &accounts[0], posts[post].0).await;
        }
        let expect = |visible: &dyn Fn(usize) -> bool| {
            let mut shown = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (reposter, post) in entries.iter().rev() {
                let author = posts[*post].2;
                let qualifies = match reposter {
                    None => visible(author),
                    // Nobody here blocks, locks or is muted by the reader: every post is readable.
                    Some(r) => visible(*r),
                };
                if qualifies && seen.insert(*post) {
                    shown.push((posts[*post].1.clone(), reposter.map(|r| format!("acct{r}"))));
                }
            }
            shown
        };
        // The reader sees acct0..acct4; authors it does not follow (acct5, the outsider) show
        // by reposts only.
        let reader_expected = expect(&|a| a < 5);
        // The muter sees acct0 only, and no repost of a muted account's post.
        let muter_expected = {
            let mut shown = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (reposter, post) in entries.iter().rev() {
                let author = posts[*post].2;
                let muted = (1..5).contains(&author);
                let qualifies = match reposter {
                    None => author == 0,
                    Some(r) => *r == 0 && !muted,
                };
                if qualifies && seen.insert(*post) {
                    shown.push((posts[*post].1.clone(), reposter.map(|r| format!("acct{r}"))));
                }
            }
            shown
        };
        assert!(
            reader_expected.iter().filter(|(_, r)| r.is_some()).count() * 2 > reader_expected.len(),
            "the reader's page is mostly reposts: {reader_expected:?}"
        );
        for limit in [3, 50] {
            assert_eq!(
                timeline(&app, &reader, limit).await,
                reader_expected,
                "reader, threshold {threshold}, limit {limit}"
            );
            assert_eq!(
                timeline(&app, &muter, limit).await,
                muter_expected,
                "muter, threshold {threshold}, limit {limit}"
            );
        }
        app.assert_counts_match_rows().await;
    }
}
