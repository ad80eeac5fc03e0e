//! Model-based test: random sequences of register, follow, unfollow, post, delete post and delete
//! account (with concurrent bursts) go through the HTTP API, and after every step the server must
//! agree with a plain in-memory model of the graph: lists, counts, `viewer` flags and whole
//! timelines, in order. Each sequence draws where the server switches timeline queries (0 to 3
//! followees here, 30 by default), so the five accounts reach both queries.
//! proptest shrinks a failing sequence to a minimal one. The seed is fixed unless
//! `PROPTEST_RNG_SEED` says otherwise; `PROPTEST_CASES` sets the number of sequences.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app_with, test_settings};

const NAMES: usize = 5;

fn name(i: usize) -> String {
    format!("model{i}")
}

#[derive(Clone, Debug)]
enum Op {
    Register(usize),
    Follow(usize, usize),
    Unfollow(usize, usize),
    Post(usize),
    /// Deletes the `n`-th (modulo) live post, as its author or, to check 403, as `by`.
    DeletePost(usize, usize),
    DeleteAccount(usize),
    /// Follows, unfollows and posts sent all at once. Each pair appears with one kind of request
    /// only, so the outcome does not depend on the order the server happens to run them in.
    Burst(Vec<Op>),
}

fn user() -> impl Strategy<Value = usize> {
    0..NAMES
}

fn burst_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (user(), user()).prop_map(|(a, b)| Op::Follow(a, b)),
        (user(), user()).prop_map(|(a, b)| Op::Unfollow(a, b)),
        user().prop_map(Op::Post),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => user().prop_map(Op::Register),
        4 => (user(), user()).prop_map(|(a, b)| Op::Follow(a, b)),
        2 => (user(), user()).prop_map(|(a, b)| Op::Unfollow(a, b)),
        3 => user().prop_map(Op::Post),
        1 => (0..8usize, user()).prop_map(|(n, by)| Op::DeletePost(n, by)),
        1 => user().prop_map(Op::DeleteAccount),
        2 => prop::collection::vec(burst_op(), 2..12).prop_map(|ops| {
            // Keep the first kind of request seen for each pair.
            let mut kinds: BTreeMap<(usize, usize), bool> = BTreeMap::new();
            Op::Burst(
                ops.into_iter()
                    .filter(|op| match op {
                        Op::Follow(a, b) => *kinds.entry((*a, *b)).or_insert(true),
                        Op::Unfollow(a, b) => !*kinds.entry((*a, *b)).or_insert(false),
                        _ => true,
                    })
                    .collect(),
            )
        }),
    ]
}

/// The model: who exists, who follows whom, which posts are live.
#[derive(Default)]
struct Model {
    users: BTreeMap<usize, TestUser>,
    follows: BTreeSet<(usize, usize)>,
    /// Live posts: id -> (author, `created_at` as the API reported it).
    posts: BTreeMap<i64, (usize, String)>,
}

impl Model {
    /// The reader's own posts and its followees', newest first (ties broken by id).
    fn expected_timeline(&self, reader: usize) -> Vec<i64> {
        let mut posts: Vec<(&String, i64)> = self
            .posts
            .iter()
            .filter(|(_, (author, _))| {
                *author == reader || self.follows.contains(&(reader, *author))
            })
            .map(|(id, (_, at))| (at, *id))
            .collect();
        posts.sort_by(|a, b| b.cmp(a));
        posts.into_iter().map(|(_, id)| id).collect()
    }

    fn record_post(&mut self, author: usize, post: &Value) {
        self.posts.insert(
            post["id"].as_i64().unwrap_or_default(),
            (
                author,
                post["created_at"].as_str().unwrap_or_default().to_owned(),
            ),
        );
    }
}

/// Where a sequence's server switches from the per-author timeline query to the newest-first
/// walk (readers following more accounts get the walk).
fn timeline_switch() -> impl Strategy<Value = i64> {
    0..4i64
}

async fn run_op(app: &TestApp, model: &mut Model, op: &Op) -> Result<(), String> {
    let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
    match op {
        Op::Register(i) => {
            let response = app.try_register(&name(*i)).await;
            if model.users.contains_key(i) {
                check(
                    response.status == 409,
                    format!("register {} again: {}", name(*i), response.text),
                )?;
            } else {
                check(
                    response.status == 201,
                    format!("register {}: {}", name(*i), response.text),
                )?;
                let token = response.json()["access_token"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                model.users.insert(*i, TestUser { token });
            }
        }
        Op::Follow(a, b) | Op::Unfollow(a, b) => {
            let Some(user) = model.users.get(a).cloned() else {
                return Ok(());
            };
            let follow = matches!(op, Op::Follow(..));
            let response = if follow {
                app.follow(&user, &name(*b)).await
            } else {
                app.unfollow(&user, &name(*b)).await
            };
            let expected = if a == b {
                422
            } else if !model.users.contains_key(b) {
                404
            } else if !follow {
                204
            } else if model.follows.contains(&(*a, *b)) {
                200
            } else {
                201
            };
            check(
                response.status == expected,
                format!(
                    "{op:?}: expected {expected}, got {} {}",
                    response.status, response.text
                ),
            )?;
            if expected == 201 {
                model.follows.insert((*a, *b));
            } else if expected == 204 {
                model.follows.remove(&(*a, *b));
            }
        }
        Op::Post(a) => {
            let Some(user) = model.users.get(a).cloned() else {
                return Ok(());
            };
            let response = app
                .post(
                    "/posts",
                    Some(&user.token),
                    &json!({"body": format!("by {}", name(*a))}),
                )
                .await;
            check(response.status == 201, format!("post: {}", response.text))?;
            model.record_post(*a, &response.json());
        }
        Op::DeletePost(n, by) => {
            if model.posts.is_empty() {
                return Ok(());
            }
            let (id, author) = model
                .posts
                .iter()
                .nth(n % model.posts.len())
                .map(|(id, (a, _))| (*id, *a))
                .unwrap_or_default();
            let Some(user) = model.users.get(by).cloned() else {
                return Ok(());
            };
            let response = app.delete(&format!("/posts/{id}"), Some(&user.token)).await;
            let expected = if *by == author { 204 } else { 403 };
            check(
                response.status == expected,
                format!(
                    "{op:?}: expected {expected}, got {} {}",
                    response.status, response.text
                ),
            )?;
            if expected == 204 {
                model.posts.remove(&id);
            }
        }
        Op::DeleteAccount(a) => {
            let Some(user) = model.users.remove(a) else {
                return Ok(());
            };
            let response = app.delete("/users/me", Some(&user.token)).await;
            check(
                response.status == 204,
                format!("delete account: {}", response.text),
            )?;
            model.follows.retain(|(x, y)| x != a && y != a);
            model.posts.retain(|_, (author, _)| author != a);
        }
        Op::Burst(ops) => {
            let mut requests = Vec::new();
            for op in ops {
                let (a, kind, b) = match op {
                    Op::Follow(a, b) => (*a, 0, *b),
                    Op::Unfollow(a, b) => (*a, 1, *b),
                    Op::Post(a) => (*a, 2, 0),
                    _ => continue,
                };
                let Some(user) = model.users.get(&a).cloned() else {
                    continue;
                };
                requests.push(async move {
                    let response = match kind {
                        0 => app.follow(&user, &name(b)).await,
                        1 => app.unfollow(&user, &name(b)).await,
                        _ => {
                            app.post(
                                "/posts",
                                Some(&user.token),
                                &json!({"body": format!("burst by {}", name(a))}),
                            )
                            .await
                        }
                    };
                    (a, kind, b, response)
                });
            }
            for (a, kind, b, response) in futures_util::future::join_all(requests).await {
                let exists = model.users.contains_key(&b);
                match kind {
                    0 | 1 if a == b => check(
                        response.status == 422,
                        format!("burst self {kind}: {}", response.text),
                    )?,
                    0 | 1 if !exists => check(
                        response.status == 404,
                        format!("burst unknown: {}", response.text),
                    )?,
                    0 => {
                        check(
                            [200, 201].contains(&response.status),
                            format!("burst follow: {}", response.text),
                        )?;
                        model.follows.insert((a, b));
                    }
                    1 => {
                        check(
                            response.status == 204,
                            format!("burst unfollow: {}", response.text),
                        )?;
                        model.follows.remove(&(a, b));
                    }
                    _ => {
                        check(
                            response.status == 201,
                            format!("burst post: {}", response.text),
                        )?;
                        model.record_post(a, &response.json());
                    }
                }
            }
        }
    }
    Ok(())
}

fn names_of(page: &Value) -> Result<BTreeSet<String>, String> {
    let items = page["items"]
        .as_array()
        .ok_or_else(|| format!("not a page: {page}"))?;
    let mut previous: Option<String> = None;
    let mut names = BTreeSet::new();
    for item in items {
        let at = item["followed_at"].as_str().unwrap_or_default().to_owned();
        if let Some(previous) = &previous
            && previous < &at
        {
            return Err(format!("list not newest first: {page}"));
        }
        previous = Some(at);
        names.insert(
            item["user"]["username"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    Ok(names)
}

/// Compares everything the API shows with the model.
async fn compare(app: &TestApp, model: &Model) -> Result<(), String> {
    let everyone: Vec<String> = model.users.keys().map(|i| name(*i)).collect();
    for (i, user) in &model.users {
        let me = name(*i);
        let profile = app.get(&format!("/users/{me}"), None).await.json();
        let followers: BTreeSet<String> = model
            .follows
            .iter()
            .filter(|(_, b)| b == i)
            .map(|(a, _)| name(*a))
            .collect();
        let following: BTreeSet<String> = model
            .follows
            .iter()
            .filter(|(a, _)| a == i)
            .map(|(_, b)| name(*b))
            .collect();
        let posts = model.posts.values().filter(|(a, _)| a == i).count();
        let counts = (
            profile["followers_count"].as_u64(),
            profile["following_count"].as_u64(),
            profile["posts_count"].as_u64(),
        );
        let expected = (
            Some(followers.len() as u64),
            Some(following.len() as u64),
            Some(posts as u64),
        );
        if counts != expected {
            return Err(format!("{me}: counts {counts:?}, model {expected:?}"));
        }
        let listed = names_of(
            &app.get(&format!("/users/{me}/followers?limit=100"), None)
                .await
                .json(),
        )?;
        if listed != followers {
            return Err(format!("{me}: followers {listed:?}, model {followers:?}"));
        }
        let listed = names_of(
            &app.get(&format!("/users/{me}/following?limit=100"), None)
                .await
                .json(),
        )?;
        if listed != following {
            return Err(format!("{me}: following {listed:?}, model {following:?}"));
        }
        let ids = app.whole_timeline(&user.token, 5).await?;
        let expected = model.expected_timeline(*i);
        if ids != expected {
            let followees = following.len();
            return Err(format!(
                "{me} ({followees} followees): timeline {ids:?}, model {expected:?}"
            ));
        }
        let relationships = app
            .get(
                &format!("/relationships?users={}", everyone.join(",")),
                Some(&user.token),
            )
            .await
            .json();
        for (j, other) in model.users.keys().enumerate() {
            let r = &relationships[j];
            let expected = (
                model.follows.contains(&(*i, *other)),
                model.follows.contains(&(*other, *i)),
            );
            if (r["following"].as_bool(), r["followed_by"].as_bool())
                != (Some(expected.0), Some(expected.1))
            {
                return Err(format!("{me} -> {}: {r}, model {expected:?}", name(*other)));
            }
        }
    }
    for i in (0..NAMES).filter(|i| !model.users.contains_key(i)) {
        let response = app.get(&format!("/users/{}", name(i)), None).await;
        if response.status != 404 {
            return Err(format!("{} should not exist: {}", name(i), response.text));
        }
    }
    Ok(())
}

#[test]
fn the_api_agrees_with_a_model_of_the_graph_after_every_step() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261121);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sequences = (timeline_switch(), prop::collection::vec(op(), 5..30));
    let result = runner.run(&sequences, |(switch, ops)| {
        let outcome: Result<(), String> = runtime.block_on(async {
            let mut settings = test_settings().await;
            settings.timeline_per_author_max_followees = switch;
            let app = spawn_app_with(settings).await;
            let mut model = Model::default();
            for (step, op) in ops.iter().enumerate() {
                run_op(&app, &mut model, op)
                    .await
                    .map_err(|e| format!("step {step} {op:?}: {e}"))?;
                compare(&app, &model)
                    .await
                    .map_err(|e| format!("after step {step} {op:?}: {e}"))?;
            }
            Ok(())
        });
        outcome.map_err(TestCaseError::fail)
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
