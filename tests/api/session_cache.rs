//! The view of live sessions each process keeps in memory (`events::live_sessions`): a session it
//! holds is refused from the answer of its ending on, whichever process ended it, however it
//! ended, and while requests race the ending.
//!
//! These tests run on a runtime of two threads: the servers' LISTEN tasks run on the test's
//! runtime, and on one thread they would wait behind the test's own clients, which no server
//! process does.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, spawn_app, spawn_app_with, test_settings};

/// Two servers on one database, or one where the backend is served by one process (SQLite),
/// each with its view of live sessions in use where the backend allows one.
async fn servers() -> Vec<TestApp> {
    let first = spawn_app().await;
    let apps = if crate::helpers::backend() == sea_orm::DbBackend::Sqlite {
        vec![first]
    } else {
        let mut settings = test_settings().await;
        settings.database_url = first.database_url.clone().into();
        let second = spawn_app_with(settings).await;
        vec![first, second]
    };
    for app in &apps {
        assert!(view_in_use_within(app, Duration::from_secs(10)).await);
    }
    apps
}

/// Whether the backend keeps a view of live sessions at all (not MySQL/MariaDB).
fn has_view() -> bool {
    crate::helpers::backend() != sea_orm::DbBackend::MySql
}

/// `name`'s value in the server's `/metrics`.
async fn metric(app: &TestApp, name: &str) -> i64 {
    let text = app.get("/metrics", None).await.text;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Whether the server's view of live sessions is in use within `wait` (at once where the backend
/// has none: nothing to wait for).
async fn view_in_use_within(app: &TestApp, wait: Duration) -> bool {
    if !has_view() {
        return metric(app, "sessions_in_memory_trusted").await == 0;
    }
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if metric(app, "sessions_in_memory_trusted").await == 1 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Reads `name`'s profile (the caller checked without its row) and `/users/me` (with it) on every
/// server, twice, so that each holds the session; each must answer `status`.
async fn use_everywhere(apps: &[TestApp], user: &TestUser, name: &str, status: u16) {
    for _ in 0..2 {
        for (i, app) in apps.iter().enumerate() {
            for path in [format!("/users/{name}"), "/users/me".to_owned()] {
                let answer = app.get(&path, Some(&user.token)).await;
                assert_eq!(answer.status, status, "server {i}, {path}: {}", answer.text);
                if status == 401 {
                    answer.assert_problem(401, "unauthorized");
                }
            }
        }
    }
}

/// After `user`'s session ended through `apps[through]`: that server refuses it at once; every
/// other one within [`BUS_GRACE`] (as fast as the bus brings the ending: a request that reaches
/// it before it has read the notification may still pass, as if it had come just before); and
/// from then on every server refuses it, on both kinds of route.
async fn refused_everywhere(apps: &[TestApp], through: usize, user: &TestUser, name: &str) {
    use_everywhere(&apps[through..=through], user, name, 401).await;
    let paths = [format!("/users/{name}"), "/users/me".to_owned()];
    for (i, app) in apps.iter().enumerate().filter(|(i, _)| *i != through) {
        for path in &paths {
            let since = Instant::now();
            loop {
                let answer = app.get(path, Some(&user.token)).await;
                if answer.status == 401 {
                    break;
                }
                // 404: the profile of a removed or suspended account.
                assert!(matches!(answer.status, 200 | 404), "{}", answer.text);
                assert!(
                    since.elapsed() < BUS_GRACE,
                    "server {i} still lets {path} through {:?} after server {through} ended it",
                    since.elapsed()
                );
                eprintln!(
                    "server {i} let {path} through {:?} after the ending",
                    since.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    }
    use_everywhere(apps, user, name, 401).await;
}

/// The ways a session ends.
#[derive(Clone, Copy, Debug)]
enum Ending {
    Logout,
    SessionDeleted,
    PasswordChange,
    Removal,
    Suspension,
}

const ENDINGS: [Ending; 5] = [
    Ending::Logout,
    Ending::SessionDeleted,
    Ending::PasswordChange,
    Ending::Removal,
    Ending::Suspension,
];

/// Ends `phone`'s session through `app`, the way `ending` says (`laptop` is another session of
/// the same account, `admin` an operator).
async fn end(
    app: &TestApp,
    ending: Ending,
    name: &str,
    phone: &TestUser,
    laptop: &TestUser,
    admin: &TestUser,
) {
    match ending {
        Ending::Logout => {
            app.post("/auth/logout", Some(&phone.token), &json!({}))
                .await
                .expect(204);
        }
        Ending::SessionDeleted => {
            let list = app
                .get("/users/me/sessions", Some(&laptop.token))
                .await
                .expect(200);
            let phones: Vec<&Value> = list
                .as_array()
                .unwrap()
                .iter()
                .filter(|session| session["current"] == false)
                .collect();
            assert_eq!(phones.len(), 1, "{list}");
            let id = phones[0]["id"].as_str().unwrap();
            app.delete(&format!("/users/me/sessions/{id}"), Some(&laptop.token))
                .await
                .expect(204);
        }
        Ending::PasswordChange => {
            app.request(
                reqwest::Method::PUT,
                "/users/me/password",
                Some(&laptop.token),
                Some(&json!({
                    "current_password": format!("password-of-{name}"),
                    "new_password": "a brand new password",
                })),
            )
            .await
            .expect(204);
        }
        Ending::Removal => {
            // The phone's token comes from the registration: a fresh proof of the password.
            app.delete("/users/me", Some(&phone.token))
                .await
                .expect(204);
        }
        Ending::Suspension => {
            app.post(
                &format!("/admin/users/{name}/suspension"),
                Some(&admin.token),
                &json!({}),
            )
            .await
            .expect(204);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_held_in_memory_is_refused_however_it_ends_and_on_every_server() {
    let apps = servers().await;
    let admin = apps[0].register_operator("admin").await;
    for (round, ending) in ENDINGS.into_iter().enumerate() {
        let name = format!("user{round}");
        let phone = apps[0].register(&name).await;
        let laptop = apps[apps.len() - 1].login(&name).await;
        use_everywhere(&apps, &phone, &name, 200).await;
        use_everywhere(&apps, &laptop, &name, 200).await;
        for app in &apps {
            let kept = metric(app, "sessions_in_memory").await;
            assert_eq!(kept >= 2, has_view(), "{kept} sessions kept");
        }
        // Each server in turn ends it; every server refuses it from then on.
        let through = round % apps.len();
        end(&apps[through], ending, &name, &phone, &laptop, &admin).await;
        refused_everywhere(&apps, through, &phone, &name).await;
        // The account's other session lives on, unless the account itself ended.
        match ending {
            Ending::Logout | Ending::SessionDeleted | Ending::PasswordChange => {
                use_everywhere(&apps, &laptop, &name, 200).await;
            }
            Ending::Removal | Ending::Suspension => {
                refused_everywhere(&apps, through, &laptop, &name).await;
            }
        }
    }
}

/// One request of a racing client: when it was sent, what it was answered.
struct Sent {
    at: Instant,
    /// When its answer came.
    done: Instant,
    server: usize,
    path: String,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_racing_an_ending_are_refused_from_its_answer_on() {
    let apps = servers().await;
    let admin = apps[0].register_operator("admin").await;
    for round in 0..6 {
        let name = format!("racer{round}");
        let phone = apps[0].register(&name).await;
        use_everywhere(&apps, &phone, &name, 200).await;
        let stop_at = std::sync::Arc::new(std::sync::OnceLock::<Instant>::new());
        let mut clients = Vec::new();
        for client in 0..4 {
            let (http, token, stop_at) =
                (apps[0].client.clone(), phone.token.clone(), stop_at.clone());
            let addresses: Vec<String> = apps.iter().map(|app| app.address.clone()).collect();
            let name = name.clone();
            clients.push(tokio::spawn(async move {
                let mut sent = Vec::new();
                for i in 0.. {
                    if stop_at.get().is_some_and(|at| Instant::now() > *at) {
                        break;
                    }
                    let server = (client + i) % addresses.len();
                    let path = if (client + i) % 2 == 0 {
                        format!("/users/{name}")
                    } else {
                        "/users/me".to_owned()
                    };
                    let at = Instant::now();
                    let answer = http
                        .get(format!("{}{path}", addresses[server]))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    sent.push(Sent {
                        at,
                        done: Instant::now(),
                        server,
                        path,
                        status: answer.status().as_u16(),
                    });
                }
                sent
            }));
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        let ending = if round % 2 == 0 {
            Ending::Logout
        } else {
            Ending::Suspension
        };
        end(
            &apps[round % apps.len()],
            ending,
            &name,
            &phone,
            &phone,
            &admin,
        )
        .await;
        let ended = Instant::now();
        stop_at.set(ended + Duration::from_millis(150)).unwrap();
        let through = round % apps.len();
        let mut sent: Vec<Sent> = Vec::new();
        for client in clients {
            sent.extend(client.await.unwrap());
        }
        let mut before = 0;
        let mut after = 0;
        for request in &sent {
            // 404: the profile of an account whose suspension committed while the request ran
            // (its session was still live when it was checked).
            assert!(
                matches!(request.status, 200 | 401 | 404),
                "round {round}: {} on server {} answered {}",
                request.path,
                request.server,
                request.status
            );
            if request.at <= ended {
                before += 1;
                continue;
            }
            after += 1;
            // The server that ended it refuses it from the answer on. Another learns of it on
            // the bus, as fast as PostgreSQL delivers a notification: a request that reaches it
            // in that instant may pass (in this test its listener shares a thread with the
            // racing clients), but never long after.
            let since = request.at - ended;
            if request.server == through || since > BUS_GRACE {
                assert_eq!(
                    request.status, 401,
                    "round {round} ({ending:?}): {} on server {} (the ending's: {through}) sent {since:?} after the ending's answer",
                    request.path, request.server,
                );
            } else if request.status != 401 {
                eprintln!(
                    "round {round}: server {} let {} through {since:?} after the ending's answer on server {through}",
                    request.server, request.path
                );
            }
        }
        // No server takes a session back: once it refused it, it refuses every later request.
        for refused in sent.iter().filter(|request| request.status == 401) {
            for later in &sent {
                assert!(
                    later.server != refused.server
                        || later.at < refused.done
                        || later.status == 401,
                    "round {round}: server {} refused {} and then answered {} {} sent {:?} later",
                    refused.server,
                    refused.path,
                    later.path,
                    later.status,
                    later.at - refused.done
                );
            }
        }
        assert!(
            before > 0 && after > 0,
            "round {round}: {before} before, {after} after"
        );
    }
}

/// How long after an ending's answer another server may still let a request through: how long
/// the bus may take to bring it (see `requests_racing_an_ending_are_refused_from_its_answer_on`).
const BUS_GRACE: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_lost_the_bus_reads_sessions_from_the_database_until_it_hears_it_again() {
    if crate::helpers::backend() != sea_orm::DbBackend::Postgres {
        // Only PostgreSQL's views depend on a connection of their own.
        return;
    }
    use sea_orm::ConnectionTrait;
    let apps = servers().await;
    for round in 0..3 {
        let name = format!("john{round}");
        let john = apps[0].register(&name).await;
        use_everywhere(&apps, &john, &name, 200).await;
        // Both servers' LISTEN connections are cut; the logout's event reaches neither, or only
        // a listener that is back.
        apps[0]
            .db
            .execute_unprepared(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND query LIKE 'LISTEN%' \
                 AND pid <> pg_backend_pid()",
            )
            .await
            .unwrap();
        let through = round % apps.len();
        apps[through]
            .post("/auth/logout", Some(&john.token), &json!({}))
            .await
            .expect(204);
        refused_everywhere(&apps, through, &john, &name).await;
        // The bus comes back, and with it the views: a new session works everywhere.
        let again = apps[1].login(&name).await;
        use_everywhere(&apps, &again, &name, 200).await;
        for app in &apps {
            assert!(view_in_use_within(app, Duration::from_secs(10)).await);
        }
        use_everywhere(&apps, &again, &name, 200).await;
    }
}
