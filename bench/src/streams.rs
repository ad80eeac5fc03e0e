//! The event stream's benchmark (`bench streams`): how fast a post by the 100,000-follower account
//! reaches 1,000 of its followers' open streams, split over two API processes on one database,
//! and how much memory 10,000 idle streams hold in one process. Every delivery is checked: each
//! listener must receive each post exactly once, or the run fails.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::auth::Tokens;
use entity::{follow, mute, user};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::run::{BoxError, POST_PREFIX, SECRET, Server, remove_benchmark_posts, user_by_name};

pub struct StreamOptions {
    pub database_url: String,
    pub server_bin: String,
    /// Open streams of the celebrity's followers, half on each of two processes.
    pub listeners: usize,
    /// Posts the celebrity writes while they listen.
    pub posts: usize,
    /// Idle streams held open on one process for the memory measurement.
    pub idle: usize,
    pub output: Option<String>,
    pub command_line: String,
}

/// A server for this benchmark: room for the idle streams.
async fn start(options: &StreamOptions) -> Result<Server, BoxError> {
    Server::start(
        &options.server_bin,
        &options.database_url,
        &[("STREAM_MAX_CONNECTIONS", (options.idle + 100).to_string())],
    )
    .await
}

/// The sessions this benchmark started (as client `bench`), so that runs do not pile them up.
async fn remove_benchmark_sessions(db: &DatabaseConnection) -> Result<(), BoxError> {
    entity::session::Entity::delete_many()
        .filter(entity::session::Column::UserAgent.eq(BENCH_AGENT))
        .exec(db)
        .await?;
    Ok(())
}

/// The user agent of the benchmark's sessions.
const BENCH_AGENT: &str = "bench streams";

/// An access token of a new session of `user` (sessions are rows: a token without one is refused).
async fn token_of(db: &DatabaseConnection, tokens: &Tokens, user: i64) -> Result<String, BoxError> {
    let user = entity::user::Entity::find_by_id(user)
        .one(db)
        .await?
        .ok_or("a benchmark user is missing")?;
    let grant =
        api::services::sessions::start_verified(db, &user, Some(BENCH_AGENT), 3_600_000).await?;
    Ok(tokens.issue(user.id, &grant.session_id)?)
}

fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// When each listener received each benchmark post, by post body.
type Arrivals = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

/// Reads one stream until it ends, noting when each benchmark post arrives.
async fn listen(mut response: reqwest::Response, arrivals: Arrivals) {
    let mut buffer = String::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let Some(data) = block
                .lines()
                .find_map(|line| line.strip_prefix("data: "))
                .filter(|_| block.starts_with("event: post\n"))
            else {
                continue;
            };
            let now = Instant::now();
            if let Ok(post) = serde_json::from_str::<serde_json::Value>(data)
                && let Some(body) = post["body"].as_str()
                && let Ok(mut arrivals) = arrivals.lock()
            {
                arrivals.entry(body.to_owned()).or_default().push(now);
            }
        }
    }
}

pub async fn run(options: StreamOptions) -> Result<(), BoxError> {
    // 10,000 client sockets of our own, besides the server's.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let mut settings = api::Settings::for_database(options.database_url.clone());
    settings.database_pool_size = 2;
    let db = api::db::connect_and_migrate(&settings).await?;
    remove_benchmark_posts(&db).await?;
    remove_benchmark_sessions(&db).await?;
    let tokens = Tokens::new(SECRET.as_bytes(), Duration::from_secs(3_600));
    let mut report = String::new();
    writeln!(report, "## Event streams\n")?;
    writeln!(report, "`{}`\n", options.command_line)?;

    delivery(&options, &db, &tokens, &mut report).await?;
    remove_benchmark_posts(&db).await?;
    idle(&options, &db, &tokens, &mut report).await?;
    remove_benchmark_sessions(&db).await?;

    print!("{report}");
    if let Some(path) = &options.output {
        std::fs::write(path, &report)?;
    }
    Ok(())
}

/// The celebrity posts while `listeners` of its followers hold streams on two processes.
async fn delivery(
    options: &StreamOptions,
    db: &DatabaseConnection,
    tokens: &Tokens,
    report: &mut String,
) -> Result<(), BoxError> {
    let celebrity = user_by_name(db, "celebrity1").await?;
    // Followers that do not mute the celebrity: the post belongs on their timelines.
    let muters = mute::Entity::find()
        .select_only()
        .column(mute::Column::MuterId)
        .filter(mute::Column::MutedId.eq(celebrity.id))
        .into_query();
    let followers: Vec<i64> = follow::Entity::find()
        .select_only()
        .column(follow::Column::FollowerId)
        .filter(follow::Column::FollowedId.eq(celebrity.id))
        .filter(follow::Column::FollowerId.not_in_subquery(muters))
        .order_by_asc(follow::Column::FollowerId)
        .limit(options.listeners as u64)
        .into_tuple()
        .all(db)
        .await?;
    if followers.len() < options.listeners {
        return Err(format!(
            "celebrity1 has {} followers to listen, {} wanted",
            followers.len(),
            options.listeners
        )
        .into());
    }
    // One process serves an SQLite database (its events do not leave the process); two otherwise.
    let processes = if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        1
    } else {
        2
    };
    let mut servers = Vec::new();
    for _ in 0..processes {
        servers.push(start(options).await?);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let arrivals: Arrivals = Arc::default();
    let mut listeners = Vec::new();
    for (i, follower) in followers.iter().enumerate() {
        let server = &servers[i % processes];
        let response = client
            .get(format!("{}/stream", server.base))
            .bearer_auth(token_of(db, tokens, *follower).await?)
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("GET /stream answered {}", response.status()).into());
        }
        listeners.push(tokio::spawn(listen(response, arrivals.clone())));
    }
    let token = token_of(db, tokens, celebrity.id).await?;
    let mut writes = Vec::new();
    let mut deliveries = Vec::new();
    let mut early = 0;
    for n in 0..options.posts {
        let body = format!("{POST_PREFIX} (stream) {n}");
        let started = Instant::now();
        let response = client
            .post(format!("{}/posts", servers[n % processes].base))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "body": body }))
            .send()
            .await?;
        let returned = Instant::now();
        if response.status() != 201 {
            return Err(format!("POST /posts answered {}", response.status()).into());
        }
        writes.push(returned - started);
        // Until every listener has it, or 10 s.
        let deadline = returned + Duration::from_secs(10);
        loop {
            let received = arrivals
                .lock()
                .map_err(|_| "a listener panicked")?
                .get(&body)
                .map_or(0, Vec::len);
            if received >= options.listeners || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let got = arrivals
            .lock()
            .map_err(|_| "a listener panicked")?
            .get(&body)
            .cloned()
            .unwrap_or_default();
        if got.len() != options.listeners {
            return Err(format!(
                "post {n} reached {} of {} streams within 10 s",
                got.len(),
                options.listeners
            )
            .into());
        }
        for at in got {
            // An event may arrive before the POST's answer does: that counts as no wait.
            early += usize::from(at < returned);
            deliveries.push(at.saturating_duration_since(returned));
        }
        // Apart, so that each post's fan-out is measured on its own.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // No post twice: every listener got each post once (counted above), and nothing more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total: usize = arrivals
        .lock()
        .map_err(|_| "a listener panicked")?
        .values()
        .map(Vec::len)
        .sum();
    if total != options.listeners * options.posts {
        return Err(format!(
            "{total} deliveries for {} posts to {} streams",
            options.posts, options.listeners
        )
        .into());
    }
    for listener in &listeners {
        listener.abort();
    }
    let backend = format!("{:?}", db.get_database_backend());
    writeln!(
        report,
        "### A post by celebrity1 ({} followers) reaching {} of their streams, over {processes} \
         process(es), on {backend}\n",
        celebrity.followers_count, options.listeners,
    )?;
    writeln!(report, "| measure | p50 ms | p99 ms | max ms | n |")?;
    writeln!(report, "|---|---|---|---|---|")?;
    writeln!(
        report,
        "| POST /posts (the writer's wait) | {} | {} | {} | {} |",
        ms(percentile(&writes, 0.5)),
        ms(percentile(&writes, 0.99)),
        ms(percentile(&writes, 1.0)),
        writes.len()
    )?;
    writeln!(
        report,
        "| from the POST's answer to each stream's event | {} | {} | {} | {} |",
        ms(percentile(&deliveries, 0.5)),
        ms(percentile(&deliveries, 0.99)),
        ms(percentile(&deliveries, 1.0)),
        deliveries.len()
    )?;
    writeln!(
        report,
        "\nEvery stream received every post exactly once ({} deliveries; {early} arrived before the \
         POST's answer and count as 0 ms). Targets: delivery p99 under 250 ms; the write's p50 \
         under 50 ms.\n",
        deliveries.len()
    )?;
    Ok(())
}

/// Resident memory of one process holding `idle` open streams of as many users.
async fn idle(
    options: &StreamOptions,
    db: &DatabaseConnection,
    tokens: &Tokens,
    report: &mut String,
) -> Result<(), BoxError> {
    let users: Vec<i64> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .order_by_asc(user::Column::Id)
        .limit(options.idle as u64)
        .into_tuple()
        .all(db)
        .await?;
    if users.len() < options.idle {
        return Err(format!(
            "{} users to hold streams, {} wanted",
            users.len(),
            options.idle
        )
        .into());
    }
    let server = start(options).await?;
    let port = server.port();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.resident_kib().ok_or("no resident size")?;
    let started = Instant::now();
    // Raw connections: all a stream needs from the client is to stay open.
    let mut connections = Vec::with_capacity(users.len());
    for batch in users.chunks(64) {
        let mut opening = Vec::new();
        for user in batch {
            let token = token_of(db, tokens, *user).await?;
            opening.push(tokio::spawn(async move {
                let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                socket
                    .write_all(
                        format!(
                            "GET /stream HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await?;
                let mut head = Vec::new();
                let mut byte = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = socket.read(&mut byte).await?;
                    if n == 0 {
                        return Err(std::io::Error::other("closed before the head"));
                    }
                    head.extend_from_slice(&byte[..n]);
                }
                if !head.starts_with(b"HTTP/1.1 200 ") {
                    return Err(std::io::Error::other(
                        String::from_utf8_lossy(&head[..head.len().min(200)]).into_owned(),
                    ));
                }
                Ok::<_, std::io::Error>(socket)
            }));
        }
        for opened in opening {
            connections.push(opened.await??);
        }
    }
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = server.resident_kib().ok_or("no resident size")?;
    let per_stream = (after.saturating_sub(before)) as f64 * 1024.0 / options.idle as f64;
    writeln!(
        report,
        "### {} idle streams of as many users on one process\n",
        options.idle
    )?;
    writeln!(report, "| measure | value |")?;
    writeln!(report, "|---|---|")?;
    writeln!(
        report,
        "| resident memory before | {:.1} MB |",
        before as f64 / 1024.0
    )?;
    writeln!(
        report,
        "| resident memory with the streams open | {:.1} MB |",
        after as f64 / 1024.0
    )?;
    writeln!(report, "| per stream | {:.1} KB |", per_stream / 1024.0)?;
    writeln!(
        report,
        "| time to open them, 64 at a time | {:.1} s |",
        opened_in.as_secs_f64()
    )?;
    writeln!(
        report,
        "\nTarget: under 300 MB in all. Each stream was answered 200 and held open.\n"
    )?;
    drop(connections);
    Ok(())
}
