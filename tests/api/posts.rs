//! Posts and the timeline over HTTP.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app};

/// Sleeps past the millisecond so that consecutive posts have distinct timestamps where a test
/// is about order by time (ties are broken by id anyway).
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
}

#[tokio::test]
async fn timelines_follow_the_worked_example_of_the_contract() {
    // The seed's timeline test, over HTTP.
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mary = app.register("mary").await;
    let david = app.register("david").await;
    for (user, body) in [
        (&john, "john's"),
        (&david, "david's"),
        (&mary, "mary's"),
        (&susan, "susan's"),
    ] {
        app.post_as(user, body).await;
        tick().await;
    }
    app.follow(&john, "susan").await.expect(201);
    app.follow(&john, "david").await.expect(201);
    app.follow(&susan, "mary").await.expect(201);
    app.follow(&mary, "david").await.expect(201);

    assert_eq!(
        app.timeline_bodies(&john).await,
        ["susan's", "david's", "john's"]
    );
    assert_eq!(app.timeline_bodies(&susan).await, ["susan's", "mary's"]);
    assert_eq!(app.timeline_bodies(&mary).await, ["mary's", "david's"]);
    assert_eq!(app.timeline_bodies(&david).await, ["david's"]);
}

#[tokio::test]
async fn writing_a_post_returns_201_with_location_and_the_post() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let response = app
        .post(
            "/posts",
            Some(&john.token),
            &json!({"body": "  Hello, world \n"}),
        )
        .await;
    let body = response.expect(201);
    let id = body["id"].as_i64().expect("ids are JSON integers");
    assert_eq!(response.header("location"), Some(format!("/posts/{id}")));
    assert_eq!(body["body"], "Hello, world", "stored trimmed");
    assert_eq!(body["author"]["username"], "john");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get(&format!("/posts/{id}"), None).await.expect(200)["body"],
        "Hello, world"
    );
    assert_eq!(app.profile("john", None).await["posts_count"], 1);
}

/// The answer to a new post is built from what the write knows (no query for the author's own
/// viewer state): it must be the post as its author reads it right after, field for field, for a
/// post and for a reply to an account with relationships both ways, a like and a repost of the
/// parent included.
#[tokio::test]
async fn the_answer_to_a_new_post_is_the_post_as_its_author_reads_it() {
    let app = spawn_app().await;
    let ann = app.register("ann").await;
    let bob = app.register("bob").await;
    app.follow(&ann, "bob").await.expect(201);
    app.follow(&bob, "ann").await.expect(201);
    let parent = app.post_as(&bob, "bob's").await;
    app.post(
        &format!("/posts/{parent}/like"),
        Some(&ann.token),
        &json!({}),
    )
    .await
    .expect(201);
    for request in [
        json!({"body": "a post"}),
        json!({"body": "a reply", "in_reply_to_id": parent}),
    ] {
        let written = app
            .post("/posts", Some(&ann.token), &request)
            .await
            .expect(201);
        let id = written["id"].as_i64().unwrap();
        let read = app
            .get(&format!("/posts/{id}"), Some(&ann.token))
            .await
            .expect(200);
        assert_eq!(written, read, "{request}");
        assert_eq!(
            written["viewer"],
            json!({"liked": false, "reposted": false})
        );
    }
}

#[tokio::test]
async fn the_author_is_always_the_tokens_user() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    app.register("susan").await;
    let body = app
        .post(
            "/posts",
            Some(&john.token),
            &json!({"body": "mine", "author": "susan", "author_id": 2, "id": 999, "created_at": "2000-01-01T00:00:00.000Z"}),
        )
        .await
        .expect(201);
    assert_eq!(body["author"]["username"], "john");
    assert_ne!(body["id"], 999);
    assert_ne!(body["created_at"], "2000-01-01T00:00:00.000Z");
    assert_eq!(app.profile("susan", None).await["posts_count"], 0);
}

#[tokio::test]
async fn post_bodies_are_1_to_280_characters_after_trimming() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let token = Some(john.token.as_str());
    app.post("/posts", token, &json!({"body": "😀".repeat(280)}))
        .await
        .expect(201);
    app.post(
        "/posts",
        token,
        &json!({"body": format!("  {}  ", "a".repeat(280))}),
    )
    .await
    .expect(201);
    for (case, body) in [
        ("281 characters", json!({"body": "a".repeat(281)})),
        ("281 emoji", json!({"body": "😀".repeat(281)})),
        ("empty", json!({"body": ""})),
        ("only white space", json!({"body": " \n\t "})),
        ("missing", json!({})),
        ("null", json!({"body": null})),
        ("a NUL byte", json!({"body": "nul\u{0}"})),
    ] {
        let problem = app
            .post("/posts", token, &body)
            .await
            .assert_problem(422, "validation_failed");
        assert!(problem["errors"]["body"].is_array(), "{case}: {problem}");
    }
    app.post("/posts", token, &json!({"body": 5}))
        .await
        .assert_problem(400, "invalid_json");
    assert_eq!(
        app.profile("john", None).await["posts_count"],
        2,
        "no failed post was written"
    );
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn only_the_author_can_delete_a_post() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let id = app.post_as(&john, "john's").await;
    app.delete(&format!("/posts/{id}"), Some(&susan.token))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&format!("/posts/{id}"), None)
        .await
        .assert_problem(401, "unauthorized");
    app.get(&format!("/posts/{id}"), None).await.expect(200);

    assert_eq!(
        app.delete(&format!("/posts/{id}"), Some(&john.token))
            .await
            .status,
        204
    );
    app.get(&format!("/posts/{id}"), None)
        .await
        .assert_problem(404, "post_not_found");
    app.delete(&format!("/posts/{id}"), Some(&john.token))
        .await
        .assert_problem(404, "post_not_found");
    assert_eq!(app.profile("john", None).await["posts_count"], 0);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn post_ids_that_are_not_integers_are_400_and_unknown_ones_404() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    for id in ["abc", "1.5", "99999999999999999999", "%00"] {
        app.get(&format!("/posts/{id}"), None)
            .await
            .assert_problem(400, "invalid_parameter");
        app.delete(&format!("/posts/{id}"), Some(&john.token))
            .await
            .assert_problem(400, "invalid_parameter");
    }
    for id in ["0", "-1", "123456"] {
        let problem = app
            .get(&format!("/posts/{id}"), None)
            .await
            .assert_problem(404, "post_not_found");
        assert_eq!(problem["detail"], format!("post {id} does not exist"));
    }
}

#[tokio::test]
async fn a_users_posts_are_listed_newest_first_with_viewer_state() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    for i in 0..3 {
        app.post_as(&susan, &format!("post {i}")).await;
        tick().await;
    }
    app.follow(&john, "susan").await.expect(201);
    let body = app
        .get("/users/SUSAN/posts", Some(&john.token))
        .await
        .expect(200);
    let bodies: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["post 2", "post 1", "post 0"]);
    assert_eq!(body["items"][0]["author"]["viewer"]["following"], true);
    let anonymous = app.get("/users/susan/posts", None).await.expect(200);
    assert_eq!(anonymous["items"][0]["author"]["viewer"], Value::Null);
    app.get("/users/nobody/posts", None)
        .await
        .assert_problem(404, "user_not_found");
}

#[tokio::test]
async fn every_timeline_post_carries_its_authors_viewer_state() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.post_as(&susan, "susan's").await;
    app.post_as(&john, "john's").await;
    app.follow(&john, "susan").await.expect(201);
    app.follow(&susan, "john").await.expect(201);
    let body = app.get("/timeline", Some(&john.token)).await.expect(200);
    for post in body["items"].as_array().unwrap() {
        let viewer = &post["author"]["viewer"];
        assert!(viewer.is_object(), "{post}");
        if post["author"]["username"] == "susan" {
            assert_eq!(viewer["following"], true);
            assert_eq!(viewer["followed_by"], true);
        }
    }
    app.get("/timeline", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn paging_30_posts_by_7_while_new_posts_arrive_skips_and_repeats_nothing() {
    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let writers = [app.register("alice").await, app.register("bob").await];
    app.follow(&reader, "alice").await.expect(201);
    app.follow(&reader, "bob").await.expect(201);
    let mut expected = Vec::new();
    for i in 0..30 {
        let author: &TestUser = if i % 3 == 0 { &reader } else { &writers[i % 2] };
        let id = app.post_as(author, &format!("post {i}")).await;
        expected.push(id);
    }
    expected.reverse();

    let mut seen = Vec::new();
    let mut path = "/timeline?limit=7".to_owned();
    let mut pages = 0;
    loop {
        let response = app.get(&path, Some(&reader.token)).await;
        let body = response.expect(200);
        pages += 1;
        seen.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        // New posts arrive between pages, from a followee and from the reader.
        app.post_as(&writers[pages % 2], "late").await;
        app.post_as(&reader, "late, mine").await;
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                let next = format!("/timeline?limit=7&cursor={cursor}");
                let link = response.header("link").unwrap();
                assert!(
                    link.starts_with(&format!("<{next}>; rel=\"next\", ")),
                    "{link}"
                );
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected, "no duplicate, no skip, newest first");
}

#[tokio::test]
async fn a_post_reachable_two_ways_appears_once() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let mary = app.register("mary").await;
    app.follow(&john, "susan").await.expect(201);
    app.follow(&john, "mary").await.expect(201);
    app.follow(&susan, "john").await.expect(201);
    app.post_as(&susan, "hello").await;
    app.post_as(&john, "mine").await;
    app.post_as(&mary, "mary").await;
    let body = app
        .get("/timeline?limit=100", Some(&john.token))
        .await
        .expect(200);
    let ids: Vec<i64> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(unique.len(), 3);
}

#[tokio::test]
async fn unfollowing_removes_posts_from_the_timeline_on_the_next_read() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.post_as(&susan, "susan's").await;
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(app.timeline_bodies(&john).await, ["susan's"]);
    assert_eq!(app.unfollow(&john, "susan").await.status, 204);
    assert!(app.timeline_bodies(&john).await.is_empty());
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(
        app.timeline_bodies(&john).await,
        ["susan's"],
        "following again brings them back"
    );
}

#[tokio::test]
async fn removing_an_account_removes_its_posts_everywhere_at_once() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let id = app.post_as(&susan, "susan's").await;
    app.post_as(&john, "john's").await;
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(app.timeline_bodies(&john).await, ["john's", "susan's"]);

    assert_eq!(
        app.delete("/users/me", Some(&susan.token)).await.status,
        204
    );
    assert_eq!(app.timeline_bodies(&john).await, ["john's"]);
    app.get(&format!("/posts/{id}"), None)
        .await
        .assert_problem(404, "post_not_found");
    assert_eq!(app.profile("john", None).await["following_count"], 0);

    use sea_orm::{EntityTrait, PaginatorTrait};
    assert_eq!(
        entity::post::Entity::find().count(&app.db).await.unwrap(),
        1,
        "the posts cascaded"
    );
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn deleting_a_post_removes_it_from_followers_timelines() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    let id = app.post_as(&susan, "soon gone").await;
    app.follow(&john, "susan").await.expect(201);
    assert_eq!(app.timeline_bodies(&john).await, ["soon gone"]);
    assert_eq!(
        app.delete(&format!("/posts/{id}"), Some(&susan.token))
            .await
            .status,
        204
    );
    assert!(app.timeline_bodies(&john).await.is_empty());
}

#[tokio::test]
async fn timeline_cursors_are_bound_to_their_reader() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let susan = app.register("susan").await;
    app.post_as(&john, "one").await;
    app.post_as(&john, "two").await;
    app.follow(&susan, "john").await.expect(201);
    let page = app
        .get("/timeline?limit=1", Some(&john.token))
        .await
        .expect(200);
    let cursor = page["next_cursor"].as_str().unwrap();
    app.get(&format!("/timeline?cursor={cursor}"), Some(&susan.token))
        .await
        .assert_problem(400, "invalid_cursor");
    app.get(&format!("/users/john/posts?cursor={cursor}"), None)
        .await
        .assert_problem(400, "invalid_cursor");
    app.get(&format!("/timeline?cursor={cursor}"), Some(&john.token))
        .await
        .expect(200);
}

#[tokio::test]
async fn concurrent_posts_and_deletions_keep_posts_count_exact() {
    let app = spawn_app().await;
    let john = app.register("john").await;
    let bodies: Vec<String> = (0..10).map(|i| format!("first {i}")).collect();
    let ids: Vec<i64> =
        futures_util::future::join_all(bodies.iter().map(|body| app.post_as(&john, body))).await;
    let app: &TestApp = &app;
    let token = john.token.as_str();
    let mut requests = Vec::new();
    for i in 0..20 {
        let body = json!({"body": format!("second {i}")});
        requests.push(
            Box::pin(async move { app.post("/posts", Some(token), &body).await })
                as std::pin::Pin<Box<dyn std::future::Future<Output = _>>>,
        );
    }
    for id in &ids {
        // Each post deleted twice at once: one 204, one 404.
        for _ in 0..2 {
            let path = format!("/posts/{id}");
            requests.push(Box::pin(
                async move { app.delete(&path, Some(token)).await },
            ));
        }
    }
    let responses = futures_util::future::join_all(requests).await;
    let deleted = responses.iter().filter(|r| r.status == 204).count();
    assert_eq!(deleted, 10, "each post is deleted exactly once");
    assert!(
        responses
            .iter()
            .all(|r| [201, 204, 404].contains(&r.status))
    );
    assert_eq!(app.profile("john", None).await["posts_count"], 20);
    app.assert_counts_match_rows().await;
}

#[tokio::test]
async fn both_timeline_queries_page_through_the_same_posts_in_the_same_order() {
    use api::services::keyset::PageRequest;
    use api::services::timeline::{by_authors_query, newest_first_query};
    use sea_orm::FromQueryResult;

    // Readers get one query or the other by how many accounts they follow; the answers must be
    // the same, page for page, including ties on the timestamp.
    let app = spawn_app().await;
    let reader = app.register("reader").await;
    let names = ["alice", "bob", "carol"];
    for name in names {
        let user = app.register(name).await;
        app.follow(&reader, name).await.expect(201);
        for i in 0..6 {
            app.post_as(&user, &format!("{name} {i}")).await;
        }
    }
    app.register("stranger").await;
    for i in 0..4 {
        app.post_as(&reader, &format!("mine {i}")).await;
    }
    let reader_id = app.user_id("reader").await;
    let mut authors = vec![reader_id];
    for name in names {
        authors.push(app.user_id(name).await);
    }
    let backend = app.db.get_database_backend();
    for limit in [1, 5, 7, 100] {
        let mut after = None;
        let mut pages = 0;
        loop {
            let page = PageRequest::older(limit, after);
            let run =
                |query| entity::post::Model::find_by_statement(backend.build(&query)).all(&app.db);
            let by_authors = run(by_authors_query(backend, reader_id, &authors, page, None))
                .await
                .unwrap();
            let newest_first = run(newest_first_query(backend, reader_id, page))
                .await
                .unwrap();
            assert_eq!(by_authors, newest_first, "limit {limit}, page {pages}");
            pages += 1;
            if by_authors.len() as u64 <= limit {
                break;
            }
            let last = &by_authors[limit as usize - 1];
            after = Some(api::services::keyset::Position {
                at: last.created_at,
                id: last.id,
            });
        }
        assert_eq!(
            pages,
            22usize.div_ceil(limit as usize).max(1),
            "limit {limit}"
        );
        // And toward newer posts, from a position older than all of them: the same posts, oldest
        // first, `limit` at a time.
        let mut newer_than = api::services::keyset::Position { at: 0, id: 0 };
        let mut seen = 0;
        loop {
            let page = PageRequest::newer(limit, newer_than);
            let run =
                |query| entity::post::Model::find_by_statement(backend.build(&query)).all(&app.db);
            let by_authors = run(by_authors_query(backend, reader_id, &authors, page, None))
                .await
                .unwrap();
            let newest_first = run(newest_first_query(backend, reader_id, page))
                .await
                .unwrap();
            assert_eq!(
                by_authors, newest_first,
                "limit {limit}, newer than {newer_than:?}"
            );
            assert!(by_authors.len() as u64 <= limit);
            assert!(
                by_authors
                    .windows(2)
                    .all(|w| (w[0].created_at, w[0].id) < (w[1].created_at, w[1].id)),
                "read oldest first"
            );
            seen += by_authors.len();
            match by_authors.last() {
                Some(newest) if by_authors.len() as u64 == limit => {
                    newer_than = api::services::keyset::Position {
                        at: newest.created_at,
                        id: newest.id,
                    };
                }
                _ => break,
            }
        }
        assert_eq!(seen, 22, "limit {limit}");
    }
}

/// A post's place in every newest-first list: its timestamp (RFC 3339 with milliseconds, so it
/// sorts as text) and its id.
fn newest_first(posts: &mut [(String, i64)]) -> Vec<i64> {
    posts.sort_by(|a, b| b.cmp(a));
    posts.iter().map(|(_, id)| *id).collect()
}

/// Writes a post as `user` and returns its place, as the API reported it.
async fn post_placed(app: &TestApp, user: &TestUser, body: &str) -> (String, i64) {
    let post = app
        .post("/posts", Some(&user.token), &json!({"body": body}))
        .await
        .expect(201);
    (
        post["created_at"].as_str().unwrap().to_owned(),
        post["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn timelines_hold_exactly_own_and_followees_posts_on_both_sides_of_the_query_switch() {
    // The timeline query is chosen by the number of followees (30 and fewer: per author; more:
    // the newest-first walk, with a SQLite-only planner hint and a MySQL-only keyset form). Each
    // reader here sits on one side of the switch while strangers post, and pages through its whole
    // timeline (so every keyset form is used too).
    use api::services::timeline::PER_AUTHOR_MAX_FOLLOWEES;
    assert_eq!(
        PER_AUTHOR_MAX_FOLLOWEES, 30,
        "the readers below straddle 30"
    );
    let app = spawn_app().await;
    let followees = [0usize, 1, 30, 31, 64, 120];
    let authors: Vec<TestUser> = futures_util::future::join_all((0..120).map(|i| {
        let app = &app;
        async move { app.register(&format!("author{i}")).await }
    }))
    .await;
    let strangers: Vec<TestUser> = futures_util::future::join_all((0..3).map(|i| {
        let app = &app;
        async move { app.register(&format!("stranger{i}")).await }
    }))
    .await;
    let mut readers = Vec::new();
    for n in followees {
        let reader = app.register(&format!("reader{n}")).await;
        for author in 0..n {
            app.follow(&reader, &format!("author{author}"))
                .await
                .expect(201);
        }
        readers.push((n, reader));
    }
    // Authors, strangers and readers post in an interleaved order, strangers most of all.
    let mut by_author: Vec<Vec<(String, i64)>> = vec![Vec::new(); authors.len()];
    let mut own: Vec<Vec<(String, i64)>> = vec![Vec::new(); readers.len()];
    for round in 0..2 {
        for (i, author) in authors.iter().enumerate() {
            by_author[i].push(post_placed(&app, author, &format!("author{i} {round}")).await);
            if i % 10 == 0 {
                for stranger in &strangers {
                    post_placed(&app, stranger, "from a stranger").await;
                }
            }
        }
        for (r, (_, reader)) in readers.iter().enumerate() {
            own[r].push(post_placed(&app, reader, "my own").await);
        }
    }
    for (r, (n, reader)) in readers.iter().enumerate() {
        let profile = app.profile(&format!("reader{n}"), None).await;
        assert_eq!(profile["following_count"], *n as u64);
        let mut expected = own[r].clone();
        for posts in &by_author[..*n] {
            expected.extend(posts.iter().cloned());
        }
        let expected = newest_first(&mut expected);
        for limit in [7, 100] {
            let served = app.whole_timeline(&reader.token, limit).await.unwrap();
            assert_eq!(
                served, expected,
                "reader following {n} accounts, pages of {limit}"
            );
        }
    }
}

#[tokio::test]
async fn deleting_a_suspended_authors_post_answers_what_an_unknown_id_answers() {
    let app = crate::helpers::spawn_app().await;
    let operator = app.register_operator("operator").await;
    let bob = app.register("bob").await;
    let alice = app.register("alice").await;
    let hidden = app.post_as(&bob, "soon hidden").await;
    let visible = app.post_as(&bob, "visible for a while").await;
    app.delete(&format!("/posts/{visible}"), Some(&alice.token))
        .await
        .assert_problem(403, "forbidden");
    app.post(
        "/admin/users/bob/suspension",
        Some(&operator.token),
        &json!({}),
    )
    .await
    .expect(204);
    let unknown = app
        .delete(&format!("/posts/{}", hidden + 1_000), Some(&alice.token))
        .await
        .assert_problem(404, "post_not_found");
    let suspended = app
        .delete(&format!("/posts/{hidden}"), Some(&alice.token))
        .await
        .assert_problem(404, "post_not_found");
    assert_eq!(suspended["title"], unknown["title"]);
    // Lifted: the post is there again, and still not alice's to delete.
    app.delete("/admin/users/bob/suspension", Some(&operator.token))
        .await
        .expect(204);
    app.delete(&format!("/posts/{hidden}"), Some(&alice.token))
        .await
        .assert_problem(403, "forbidden");
}
