//! The Web Push benchmark (`bench push`): a burst of notifications to `celebrity1`'s followers,
//! each subscribed to a push service that this benchmark runs on loopback (it answers 201 at
//! once and notes when each push arrives). The celebrity follows each of them, 16 at a time; each
//! follow's notification is pushed by the server's outbox worker after the commit.
//!
//! Measured: from each follow's answer (its commit is just before) to its push's arrival, and the
//! writer's wait (the follow's own latency) with and without subscriptions, which must not grow
//! with them: the notification's transaction only writes one outbox row per subscription of its
//! one recipient. Every push must arrive once, or the run fails.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::auth::Tokens;
use entity::{block, follow, mute};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::run::{BoxError, SECRET, Server, user_by_name};

pub struct PushOptions {
    pub database_url: String,
    pub server_bin: String,
    /// Followers of the celebrity that subscribe.
    pub subscribers: usize,
    pub output: Option<String>,
    pub command_line: String,
}

/// The user agent of the benchmark's sessions (their subscriptions go with them).
const BENCH_AGENT: &str = "bench push";

/// Follows in flight at once.
const CONCURRENCY: usize = 16;

/// A subscription's 16-byte auth secret (bytes 0 to 15, base64url): the benchmark's push service
/// does not decrypt, so any secret will do.
const AUTH: &str = "AAECAwQFBgcICQoLDA0ODw";

/// When each push arrived, by the path of its endpoint, and how many arrived.
#[derive(Default)]
struct Arrivals {
    first: HashMap<String, Instant>,
    total: usize,
}

/// The push service: reads each request (head and `Content-Length` body), notes it, answers 201.
async fn serve(listener: tokio::net::TcpListener, arrivals: Arc<Mutex<Arrivals>>) {
    while let Ok((socket, _)) = listener.accept().await {
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    return;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let now = Instant::now();
                if let Ok(mut arrivals) = arrivals.lock() {
                    arrivals.total += 1;
                    arrivals.first.entry(path).or_insert(now);
                }
                if write
                    .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
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

async fn remove_benchmark_sessions(db: &DatabaseConnection) -> Result<(), BoxError> {
    entity::session::Entity::delete_many()
        .filter(entity::session::Column::UserAgent.eq(BENCH_AGENT))
        .exec(db)
        .await?;
    Ok(())
}

async fn token_of(db: &DatabaseConnection, tokens: &Tokens, user: i64) -> Result<String, BoxError> {
    let user = entity::user::Entity::find_by_id(user)
        .one(db)
        .await?
        .ok_or("a benchmark user is missing")?;
    let grant =
        api::services::sessions::start_verified(db, &user, Some(BENCH_AGENT), 3_600_000).await?;
    Ok(tokens.issue(user.id, &grant.session_id)?)
}

/// The celebrity follows (or, `undo`, unfollows) each of `names`, `CONCURRENCY` at a time: when
/// each answer came, by name, and each wait. Any answer but 2xx fails the run.
async fn follow_all(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    names: &[String],
    undo: bool,
) -> Result<(HashMap<String, Instant>, Vec<Duration>), BoxError> {
    let mut answered = HashMap::new();
    let mut waits = Vec::new();
    for chunk in names.chunks(CONCURRENCY) {
        let mut tasks = Vec::new();
        for name in chunk {
            let url = format!("{base}/users/{name}/follow");
            let request = if undo {
                client.delete(url)
            } else {
                client.post(url)
            };
            let request = request.bearer_auth(token).send();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let response = request.await;
                (name, started, Instant::now(), response)
            }));
        }
        for task in tasks {
            let (name, started, done, response) = task.await?;
            let status = response?.status();
            if !status.is_success() {
                return Err(format!("following {name} answered {status}").into());
            }
            waits.push(done - started);
            answered.insert(name, done);
        }
    }
    Ok((answered, waits))
}

pub async fn run(options: PushOptions) -> Result<(), BoxError> {
    let mut settings = api::Settings::for_database(options.database_url.clone());
    settings.database_pool_size = 2;
    let db = api::db::connect_and_migrate(&settings).await?;
    remove_benchmark_sessions(&db).await?;
    let tokens = Tokens::new(SECRET.as_bytes(), Duration::from_secs(3_600));
    let celebrity = user_by_name(&db, "celebrity1").await?;

    // Followers of the celebrity with no block either way (the follow back is allowed) and who do
    // not mute it (its follow then makes no notification).
    let muters: Vec<i64> = mute::Entity::find()
        .select_only()
        .column(mute::Column::MuterId)
        .filter(mute::Column::MutedId.eq(celebrity.id))
        .into_tuple()
        .all(&db)
        .await?;
    let blocked: Vec<(i64, i64)> = block::Entity::find()
        .select_only()
        .column(block::Column::BlockerId)
        .column(block::Column::BlockedId)
        .filter(
            Condition::any()
                .add(block::Column::BlockerId.eq(celebrity.id))
                .add(block::Column::BlockedId.eq(celebrity.id)),
        )
        .into_tuple()
        .all(&db)
        .await?;
    let followers: Vec<i64> = follow::Entity::find()
        .select_only()
        .column(follow::Column::FollowerId)
        .filter(follow::Column::FollowedId.eq(celebrity.id))
        .order_by_asc(follow::Column::FollowerId)
        .limit((options.subscribers + blocked.len() + muters.len()) as u64)
        .into_tuple()
        .all(&db)
        .await?;
    let followers: Vec<i64> = followers
        .into_iter()
        .filter(|id| !blocked.iter().any(|(a, b)| a == id || b == id) && !muters.contains(id))
        .take(options.subscribers)
        .collect();
    if followers.len() < options.subscribers {
        return Err(format!(
            "celebrity1 has {} followers to subscribe, {} wanted",
            followers.len(),
            options.subscribers
        )
        .into());
    }
    let names: Vec<String> = entity::user::Entity::find()
        .select_only()
        .column(entity::user::Column::Username)
        .filter(entity::user::Column::Id.is_in(followers.clone()))
        .order_by_asc(entity::user::Column::Id)
        .into_tuple()
        .all(&db)
        .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let push_port = listener.local_addr()?.port();
    let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
    tokio::spawn(serve(listener, arrivals.clone()));
    let server = Server::start(
        &options.server_bin,
        &options.database_url,
        &[("PUSH_ALLOW_PRIVATE_ENDPOINTS", "true".to_owned())],
    )
    .await?;
    let client = reqwest::Client::new();
    let celebrity_token = token_of(&db, &tokens, celebrity.id).await?;

    // The celebrity follows none of them to begin with.
    follow_all(&client, &server.base, &celebrity_token, &names, true).await?;
    // Without subscriptions: the writer's wait alone.
    let (_, plain_waits) =
        follow_all(&client, &server.base, &celebrity_token, &names, false).await?;
    follow_all(&client, &server.base, &celebrity_token, &names, true).await?;

    // Each follower subscribes one session.
    let key = api::push::VapidKey::generate()?;
    for (id, name) in followers.iter().zip(&names) {
        let response = client
            .put(format!("{}/push/subscription", server.base))
            .bearer_auth(token_of(&db, &tokens, *id).await?)
            .json(&serde_json::json!({
                "endpoint": format!("http://127.0.0.1:{push_port}/push/{name}"),
                "keys": {"p256dh": key.public_key(), "auth": AUTH},
            }))
            .send()
            .await?;
        if response.status() != 200 {
            return Err(format!("PUT /push/subscription answered {}", response.status()).into());
        }
    }

    // The burst.
    let began = Instant::now();
    let (answered, waits) =
        follow_all(&client, &server.base, &celebrity_token, &names, false).await?;
    let writes_done = began.elapsed();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let total = arrivals.lock().map(|a| a.total).unwrap_or(0);
        if total >= names.len() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all_pushed = began.elapsed();
    // A moment more, to see a push sent twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (latencies, total) = {
        let arrivals = arrivals.lock().map_err(|_| "the push service's lock")?;
        let mut latencies = Vec::new();
        for name in &names {
            let path = format!("/push/{name}");
            let arrived = arrivals.first.get(&path).ok_or(format!(
                "no push reached {name} within two minutes ({} arrived)",
                arrivals.total
            ))?;
            latencies.push(arrived.saturating_duration_since(answered[name]));
        }
        (latencies, arrivals.total)
    };
    if total != names.len() {
        return Err(format!("{total} pushes arrived for {} notifications", names.len()).into());
    }

    follow_all(&client, &server.base, &celebrity_token, &names, true).await?;
    remove_benchmark_sessions(&db).await?;
    drop(server);

    let mut report = String::new();
    writeln!(report, "## Web Push\n")?;
    writeln!(report, "`{}`\n", options.command_line)?;
    writeln!(
        report,
        "celebrity1 follows {} of its followers, {CONCURRENCY} at a time; each has one session \
         subscribed to a push service on loopback that answers 201 at once. Every push arrived \
         once ({total}).\n",
        names.len()
    )?;
    writeln!(report, "| measure | p50 ms | p99 ms | max ms |")?;
    writeln!(report, "|---|---|---|---|")?;
    for (what, values) in [
        ("follow's answer → push received", &latencies),
        ("writer's wait, subscribed recipients", &waits),
        ("writer's wait, no subscriptions", &plain_waits),
    ] {
        writeln!(
            report,
            "| {what} | {} | {} | {} |",
            ms(percentile(values, 0.5)),
            ms(percentile(values, 0.99)),
            ms(percentile(values, 1.0)),
        )?;
    }
    writeln!(
        report,
        "\nAll follows answered in {} ms; the last push arrived {} ms after the first follow \
         was sent.",
        ms(writes_done),
        ms(all_pushed)
    )?;
    print!("{report}");
    if let Some(path) = &options.output {
        std::fs::write(path, &report)?;
    }
    Ok(())
}
