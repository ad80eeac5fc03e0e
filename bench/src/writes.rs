//! The write benchmark (`bench writes`): posts written through the API by many accounts at once,
//! against the same database's bare-insert ceiling, with the lists' no-skip promise checked while
//! they are written.
//!
//! For each concurrency: that many followees of `reader5000` (none it mutes) each write posts one
//! after another for the phase's seconds, while a poller follows `reader5000`'s timeline with
//! `newer_than` (100 a page, as fast as it can). Reported: posts per second, the writers' p50 and
//! p99, the server's CPU per post; then the same number of connections inserting rows into
//! `posts` directly (one autocommitted `INSERT` each, nothing else: the ceiling of this database
//! on this machine). The run fails if the poller missed a post or got one twice. Last, 20 posts by
//! `celebrity1` and 20 by an account with few followers, one at a time: a post costs the same
//! whatever its author's audience, since timelines are merged when read.
//!
//! Everything it writes is removed before and after (bodies start with [`PREFIX`]).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

use crate::run::{BoxError, Server, login, ms, percentile, user_by_name};

pub struct WritesOptions {
    pub database_url: String,
    pub server_bin: String,
    pub seconds: f64,
    pub concurrency: Vec<usize>,
    pub pool_size: u32,
    pub output: Option<String>,
    pub command_line: String,
}

/// The start of every body this benchmark writes.
const PREFIX: &str = "bench writes";

/// The poller's page size.
const POLL_LIMIT: usize = 100;

/// How long the poller waits after a page that caught up (a page shorter than [`POLL_LIMIT`]):
/// a client polls now and then, and a poller reading back to back would take the database's
/// time from the writers it watches.
const POLL_PAUSE: Duration = Duration::from_millis(100);

pub async fn run(options: WritesOptions) -> Result<(), BoxError> {
    let mut connect = ConnectOptions::new(options.database_url.clone());
    let most = options.concurrency.iter().copied().max().unwrap_or(1);
    connect
        .max_connections(u32::try_from(most).unwrap_or(64) + 4)
        .sqlx_logging(false);
    let db = Database::connect(connect).await?;
    let backend = db.get_database_backend();
    remove_written(&db).await?;

    let reader = user_by_name(&db, "reader5000").await?;
    let writers: Vec<(i64, String)> = {
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                format!(
                    "SELECT users.id, users.username FROM follows \
                     JOIN users ON users.id = follows.followed_id \
                     WHERE follows.follower_id = {reader} AND users.locked = {no} \
                     AND users.suspended_at IS NULL \
                     AND follows.followed_id NOT IN \
                     (SELECT muted_id FROM mutes WHERE muter_id = {reader}) \
                     ORDER BY users.id LIMIT {most}",
                    reader = reader.id,
                    no = if backend == sea_orm::DbBackend::Postgres {
                        "false"
                    } else {
                        "0"
                    },
                ),
            ))
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("", "id")?, row.try_get("", "username")?)))
            .collect::<Result<_, sea_orm::DbErr>>()?
    };
    if writers.len() < most {
        return Err(format!("reader5000 follows only {} writers", writers.len()).into());
    }

    let server = Server::start(
        &options.server_bin,
        &options.database_url,
        &[("DATABASE_POOL_SIZE", options.pool_size.to_string())],
    )
    .await?;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(most + 2)
        .build()?;
    let reader_token = login(&client, &base, "reader5000").await?;
    let mut tokens = Vec::new();
    for (_, name) in &writers {
        tokens.push(login(&client, &base, name).await?);
    }

    let mut report = String::new();
    writeln!(report, "`{}`\n", options.command_line)?;
    writeln!(
        report,
        "Server pool: {} connections. Every post checked: the poller of reader5000's timeline \
         (`newer_than`, {POLL_LIMIT} a page, pausing {} ms whenever it had caught up) received \
         each post written, once.\n",
        options.pool_size,
        POLL_PAUSE.as_millis()
    )?;
    writeln!(
        report,
        "| writers | posts/s | p50 ms | p99 ms | server CPU ms/post (poller's reads included) | bare inserts/s | API / bare |"
    )?;
    writeln!(report, "|---:|---:|---:|---:|---:|---:|---:|")?;
    let seconds = Duration::from_secs_f64(options.seconds);
    for &writers_now in &options.concurrency {
        let phase = write_phase(
            &client,
            &base,
            &server,
            &reader_token,
            &tokens[..writers_now],
            seconds,
        )
        .await?;
        let bare = bare_inserts(&db, &writers[..writers_now], seconds).await?;
        let line = format!(
            "| {writers_now} | {:.0} | {} | {} | {} | {bare:.0} | {:.2} |",
            phase.rate,
            ms(percentile(&phase.latencies, 0.5)),
            ms(percentile(&phase.latencies, 0.99)),
            phase
                .cpu_per_post
                .map_or("?".to_owned(), |cpu| format!("{:.2}", cpu * 1000.0)),
            phase.rate / bare.max(1e-9),
        );
        println!("{line}");
        writeln!(report, "{line}")?;
        remove_written(&db).await?;
    }

    // A post's cost by its author's audience.
    writeln!(report)?;
    writeln!(
        report,
        "| author (followers) | posts, one at a time | p50 ms | p99 ms |"
    )?;
    writeln!(report, "|---|---:|---:|---:|")?;
    let celebrity = user_by_name(&db, "celebrity1").await?;
    let mut ordinary = None::<entity::user::Model>;
    for (_, name) in &writers {
        let writer = user_by_name(&db, name).await?;
        if ordinary
            .as_ref()
            .is_none_or(|o| writer.followers_count < o.followers_count)
        {
            ordinary = Some(writer);
        }
    }
    let ordinary = ordinary.ok_or("no writer")?;
    for author in [&celebrity, &ordinary] {
        let token = login(&client, &base, &author.username).await?;
        let mut latencies = Vec::new();
        for n in 0..20 {
            let started = Instant::now();
            post(&client, &base, &token, &format!("{PREFIX} audience {n}")).await?;
            latencies.push(started.elapsed());
        }
        let line = format!(
            "| {} ({}) | 20 | {} | {} |",
            author.username,
            author.followers_count,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
        );
        println!("{line}");
        writeln!(report, "{line}")?;
    }
    remove_written(&db).await?;
    drop(server);

    if let Some(path) = &options.output {
        std::fs::write(path, &report)?;
    }
    println!("\n{report}");
    Ok(())
}

struct Phase {
    rate: f64,
    latencies: Vec<Duration>,
    cpu_per_post: Option<f64>,
}

/// `tokens.len()` writers post for `seconds` while a poller follows the reader's timeline; fails
/// unless the poller received every post once.
async fn write_phase(
    client: &reqwest::Client,
    base: &str,
    server: &Server,
    reader_token: &str,
    tokens: &[String],
    seconds: Duration,
) -> Result<Phase, BoxError> {
    let first = get(client, &format!("{base}/timeline?limit=1"), reader_token).await?;
    let start = first["prev_cursor"]
        .as_str()
        .ok_or("reader5000's timeline is empty")?
        .to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let client = client.clone();
        let base = base.to_owned();
        let token = reader_token.to_owned();
        let done = done.clone();
        tokio::spawn(async move {
            let mut prev = start;
            let mut seen: Vec<i64> = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let page = get(
                    &client,
                    &format!("{base}/timeline?limit={POLL_LIMIT}&newer_than={prev}"),
                    &token,
                )
                .await?;
                let items = page["items"].as_array().ok_or("no items")?;
                seen.extend(
                    items
                        .iter()
                        .filter(|item| item["body"].as_str().is_some_and(|b| b.starts_with(PREFIX)))
                        .filter_map(|item| item["id"].as_i64()),
                );
                if let Some(cursor) = page["prev_cursor"].as_str() {
                    prev = cursor.to_owned();
                }
                if finished && items.len() < POLL_LIMIT {
                    return Ok::<_, String>(seen);
                }
                if items.len() < POLL_LIMIT {
                    tokio::time::sleep(POLL_PAUSE).await;
                }
            }
        })
    };
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let deadline = started + seconds;
    let writers = tokens.iter().enumerate().map(|(w, token)| {
        let client = client.clone();
        let base = base.to_owned();
        let token = token.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut latencies = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                let id = post(&client, &base, &token, &format!("{PREFIX} {w}/{n}"))
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(sent.elapsed());
                ids.push(id);
                n += 1;
            }
            Ok::<_, String>((ids, latencies))
        })
    });
    let writers: Vec<_> = writers.collect();
    let mut results = Vec::new();
    for writer in writers {
        results.push(writer.await);
    }
    let elapsed = started.elapsed();
    let cpu_after = server.cpu_seconds();
    done.store(true, Ordering::SeqCst);
    let mut written = Vec::new();
    let mut latencies = Vec::new();
    for result in results {
        let (ids, times) = result??;
        written.extend(ids);
        latencies.extend(times);
    }
    let seen = poller.await??;
    let unique: HashSet<i64> = seen.iter().copied().collect();
    if unique.len() != seen.len() {
        return Err("the timeline's poller received a post twice".into());
    }
    let written_set: HashSet<i64> = written.iter().copied().collect();
    let missed = written_set.difference(&unique).count();
    if missed > 0 || unique.len() != written_set.len() {
        return Err(format!(
            "the timeline's poller missed {missed} of {} posts (and saw {} others)",
            written_set.len(),
            unique.difference(&written_set).count()
        )
        .into());
    }
    let rate = written.len() as f64 / elapsed.as_secs_f64();
    let cpu_per_post = cpu_before
        .zip(cpu_after)
        .map(|(before, after)| (after - before) / written.len().max(1) as f64);
    Ok(Phase {
        rate,
        latencies,
        cpu_per_post,
    })
}

/// Rows inserted per second into `posts` by `writers.len()` connections at once, one autocommitted
/// `INSERT` each, for `seconds`: the database's own ceiling for a post's row.
async fn bare_inserts(
    db: &DatabaseConnection,
    writers: &[(i64, String)],
    seconds: Duration,
) -> Result<f64, BoxError> {
    let backend = db.get_database_backend();
    let started = Instant::now();
    let deadline = started + seconds;
    let tasks: Vec<_> = writers.iter().map(|(author, _)| {
        let db = db.clone();
        let author = *author;
        tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                db.execute_raw(Statement::from_string(
                    backend,
                    format!(
                        "INSERT INTO posts (author_id, body, created_at, replies_count, \
                         likes_count, reposts_count) VALUES ({author}, '{PREFIX} bare {n}', 1, 0, 0, 0)"
                    ),
                ))
                .await?;
                n += 1;
            }
            Ok::<_, sea_orm::DbErr>(n)
        })
    }).collect();
    let mut total = 0;
    for task in tasks {
        total += task.await??;
    }
    let elapsed = started.elapsed();
    Ok(total as f64 / elapsed.as_secs_f64())
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: &str,
) -> Result<i64, BoxError> {
    let response = client
        .post(format!("{base}/posts"))
        .bearer_auth(token)
        .json(&json!({ "body": body }))
        .send()
        .await?;
    let status = response.status();
    let answer: Value = response.json().await?;
    if status != 201 {
        return Err(format!("POST /posts answered {status}: {answer}").into());
    }
    answer["id"]
        .as_i64()
        .ok_or_else(|| format!("no id in {answer}").into())
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Result<Value, String> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let body: Value = response.json().await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("GET {url} answered {status}: {body}"));
    }
    Ok(body)
}

/// Removes what this benchmark wrote and sets its authors' post counts back.
async fn remove_written(db: &DatabaseConnection) -> Result<(), BoxError> {
    let backend = db.get_database_backend();
    let authors: Vec<i64> = db
        .query_all_raw(Statement::from_string(
            backend,
            format!("SELECT DISTINCT author_id FROM posts WHERE body LIKE '{PREFIX}%'"),
        ))
        .await?
        .iter()
        .map(|row| row.try_get("", "author_id"))
        .collect::<Result<_, _>>()?;
    if authors.is_empty() {
        return Ok(());
    }
    db.execute_unprepared(&format!("DELETE FROM posts WHERE body LIKE '{PREFIX}%'"))
        .await?;
    let ids = authors
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    db.execute_unprepared(&format!(
        "UPDATE users SET posts_count = (SELECT COUNT(*) FROM posts WHERE posts.author_id = users.id) \
         WHERE id IN ({ids})"
    ))
    .await?;
    Ok(())
}
