//! The load benchmark: starts the server binary on a seeded database, measures each scenario over
//! HTTP (sequential requests: latency percentiles and requests per second), measures the same
//! endpoint's SQL alone by calling the service functions the handler calls, records the server's
//! peak memory, and writes a Markdown report.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api::Settings;
use api::page::CursorCodec;
use api::services::follows::Direction;
use api::services::keyset::{PageRequest, Position};
use api::services::{follows, relationships, timeline, users};
use entity::{follow, mute, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Value, json};

use crate::seed::{PASSWORD, READER_FOLLOWEES};
use crate::verify;

/// The token secret of the benchmark's server, so the benchmark can encode deep cursors.
pub const SECRET: &str = "benchmark-secret-of-at-least-32-bytes!!";

pub struct RunOptions {
    pub database_url: String,
    /// A hot standby of `database_url`: measure reads from it against the primary instead.
    pub read_url: Option<String>,
    pub server_bin: String,
    pub seconds: f64,
    pub output: Option<String>,
    pub command_line: String,
    /// Give every account an avatar for the run ([`crate::media::give_everyone_an_avatar`]).
    pub avatars: bool,
}

/// Latencies of one scenario.
struct Sample {
    name: String,
    http: Vec<Duration>,
    sql: Vec<Duration>,
}

/// The `q` quantile of `values` (nearest rank), zero when there are none.
pub(crate) fn percentile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl Sample {
    fn p50(&self) -> Duration {
        percentile(&self.http, 0.5)
    }
    fn p99(&self) -> Duration {
        percentile(&self.http, 0.99)
    }
    fn sql_p50(&self) -> Option<Duration> {
        (!self.sql.is_empty()).then(|| percentile(&self.sql, 0.5))
    }
    /// Requests per second of one client sending them one at a time.
    fn rps(&self) -> f64 {
        let busy: Duration = self.http.iter().sum();
        self.http.len() as f64 / busy.as_secs_f64().max(1e-9)
    }
}

/// A server process started by the benchmark; killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `server_bin` on `database_url` with the benchmark's secret and limits, and `env`
    /// besides; returns once it is ready.
    pub async fn start(
        server_bin: &str,
        database_url: &str,
        env: &[(&str, String)],
    ) -> Result<Self, BoxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(server_bin)
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            // Required beside JWT_SECRET on PostgreSQL and MySQL (32 bytes of 0x01, base64url).
            .env(
                "VAPID_PRIVATE_KEY",
                "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",
            )
            .env("RUST_LOG", "warn")
            .env("RATE_LIMIT_AUTH_PER_MINUTE", "100000")
            .env("RATE_LIMIT_WRITES_PER_MINUTE", "1000000")
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(response) = client
                .get(format!("{}/health/ready", server.base))
                .send()
                .await
                && response.status() == 200
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the server did not become ready within a minute".into())
    }

    /// `/proc` says this of the process, in KiB (`VmHWM`: peak resident; `VmRSS`: resident now).
    fn memory_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
    }

    pub fn peak_memory_kib(&self) -> Option<u64> {
        self.memory_kib("VmHWM:")
    }

    /// The process's CPU time so far (user + system, every thread's, exited ones included), in
    /// seconds: `/proc/<pid>/stat` fields 14 and 15, in clock ticks of 1/100 s (Linux's USER_HZ).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: count after it.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / 100.0)
    }

    pub fn resident_kib(&self) -> Option<u64> {
        self.memory_kib("VmRSS:")
    }

    pub fn port(&self) -> u16 {
        self.base
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .unwrap_or(0)
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

pub(crate) async fn login(
    client: &reqwest::Client,
    base: &str,
    name: &str,
) -> Result<String, Box<dyn std::error::Error>> {
    let response: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await?
        .json()
        .await?;
    response["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("cannot log in as {name}: {response}").into())
}

pub type BoxError = Box<dyn std::error::Error>;

/// One timed action: an HTTP request, or the SQL an endpoint runs (the same service functions,
/// in-process).
type Probe<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), BoxError>> + 'a>> + 'a>;

/// A probe that sends the request `request(i)` (`i` counts the calls) and expects `expect`.
pub(crate) fn http_probe<'a>(
    expect: u16,
    mut request: impl FnMut(usize) -> reqwest::RequestBuilder + 'a,
) -> Probe<'a> {
    let mut i = 0;
    Box::new(move || {
        let request = request(i);
        i += 1;
        Box::pin(async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let body = response.bytes().await?;
            if status != expect {
                return Err(format!(
                    "expected {expect}, got {status}: {}",
                    String::from_utf8_lossy(&body)
                )
                .into());
            }
            Ok(())
        })
    })
}

/// A probe that runs `work`, the SQL of an endpoint.
fn sql_probe<'a, F, Fut>(mut work: F) -> Probe<'a>
where
    F: FnMut() -> Fut + 'a,
    Fut: Future<Output = Result<(), api::error::ApiError>> + 'a,
{
    Box::new(move || {
        let work = work();
        Box::pin(async move { Ok(work.await?) })
    })
}

/// Runs `probes` in turn, one at a time, round after round, for about `seconds` per probe after a
/// warm-up, and returns each probe's latencies. Interleaving means that the scenarios compared
/// with each other (first and deep pages, HTTP and its SQL) are measured under the same
/// conditions: measured one after another, their ratios moved with the speed of this shared
/// machine, which drifts by tens of percent over seconds.
pub(crate) async fn measure_together(
    seconds: f64,
    probes: &mut [Probe<'_>],
) -> Result<Vec<Vec<Duration>>, BoxError> {
    let total = seconds * probes.len() as f64;
    let warmup = Instant::now();
    while warmup.elapsed().as_secs_f64() < (total / 5.0).min(2.0) {
        for probe in probes.iter_mut() {
            probe().await?;
        }
    }
    let mut latencies = vec![Vec::new(); probes.len()];
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < total {
        for (probe, latencies) in probes.iter_mut().zip(&mut latencies) {
            let t = Instant::now();
            probe().await?;
            latencies.push(t.elapsed());
        }
    }
    Ok(latencies)
}

/// Measures read scenarios together, each as its HTTP request and its SQL alone.
async fn measure_reads<'a>(
    seconds: f64,
    scenarios: Vec<(String, Probe<'a>, Probe<'a>)>,
) -> Result<Vec<Sample>, BoxError> {
    let mut names = Vec::new();
    let mut probes = Vec::new();
    for (name, http, sql) in scenarios {
        names.push(name);
        probes.push(http);
        probes.push(sql);
    }
    let latencies = measure_together(seconds, &mut probes).await?;
    Ok(names
        .into_iter()
        .zip(latencies.chunks(2))
        .map(|(name, pair)| Sample {
            name,
            http: pair[0].clone(),
            sql: pair[1].clone(),
        })
        .collect())
}

pub async fn user_by_name(
    db: &DatabaseConnection,
    name: &str,
) -> Result<user::Model, Box<dyn std::error::Error>> {
    Ok(users::find_by_username(db, name).await?)
}

/// The position of the `depth`-th entry (0-based) of a followers list, to build a deep cursor.
async fn followers_position(
    db: &DatabaseConnection,
    user_id: i64,
    depth: u64,
) -> Result<Position, Box<dyn std::error::Error>> {
    let row = follow::Entity::find()
        .filter(follow::Column::FollowedId.eq(user_id))
        .order_by_desc(follow::Column::CreatedAt)
        .order_by_desc(follow::Column::FollowerId)
        .offset(depth)
        .limit(1)
        .one(db)
        .await?
        .ok_or("the list is not that long")?;
    Ok(Position {
        at: row.created_at,
        id: row.follower_id,
    })
}

/// The cursor after the first `depth` items of `reader`'s timeline, found by paging.
async fn timeline_position(
    db: &DatabaseConnection,
    reader: &user::Model,
    depth: u64,
) -> Result<Option<Position>, Box<dyn std::error::Error>> {
    let mut after = None;
    let mut seen = 0;
    while seen < depth {
        let limit = (depth - seen).min(100);
        let (posts, next) = timeline::page(
            db,
            reader,
            PageRequest::older(limit, after),
            &timeline::Strategy::without_feeds(timeline::PER_AUTHOR_MAX_FOLLOWEES),
        )
        .await?;
        seen += posts.len() as u64;
        match next.next {
            Some(position) => after = Some(position),
            None => return Ok(None),
        }
    }
    Ok(after)
}

pub async fn run(options: RunOptions) -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = Settings::for_database(options.database_url.clone());
    settings.database_pool_size = 2;
    let db = api::db::connect_and_migrate(&settings).await?;
    // Every run starts from the seeded dataset, whatever earlier runs wrote.
    remove_benchmark_posts(&db).await?;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // What autovacuum does after a few thousand writes (see migration 5), done here because a
        // PostgreSQL may run with autovacuum off, as the one this benchmark was developed on does.
        db.execute_unprepared("VACUUM posts, follows").await?;
    }
    if let Some(read_url) = &options.read_url {
        return crate::standby::run(&options, &db, read_url).await;
    }
    let codec = CursorCodec::new(SECRET.as_bytes());
    let server = Server::start(&options.server_bin, &options.database_url, &[]).await?;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let seconds = options.seconds;
    let mut samples: Vec<Sample> = Vec::new();
    let avatar = if options.avatars {
        Some(crate::media::give_everyone_an_avatar(&db, &client, &base).await?)
    } else {
        None
    };

    let celebrity = user_by_name(&db, "celebrity1").await?;
    let ordinary = user::Entity::find()
        .filter(user::Column::Id.gt(9 + 50))
        .order_by_asc(user::Column::FollowersCount.lt(5))
        .order_by_asc(user::Column::FollowersCount.gt(50))
        .order_by_asc(user::Column::Id)
        .one(&db)
        .await?
        .ok_or("no ordinary user")?;
    let viewer_name = "reader100";
    let viewer = user_by_name(&db, viewer_name).await?;
    let viewer_token = login(&client, &base, viewer_name).await?;

    // The probes below borrow these.
    let (db, client, viewer, viewer_token) = (&db, &client, &viewer, viewer_token.as_str());

    // Timelines: first page and a deep page (200 posts in), per reader, all measured together.
    let mut readers = Vec::new();
    for followees in READER_FOLLOWEES {
        let name = format!("reader{followees}");
        let reader = user_by_name(db, &name).await?;
        let token = login(client, &base, &name).await?;
        let deep = timeline_position(db, &reader, 200).await?;
        readers.push((name, reader, token, deep));
    }
    // What muting costs a page: each reader's first page with its mutes lifted, measured
    // together; then the mutes are put back (whatever the measuring did) for everything else.
    let reader_ids: Vec<i64> = readers.iter().map(|(_, reader, _, _)| reader.id).collect();
    let lifted = mute::Entity::find()
        .filter(mute::Column::MuterId.is_in(reader_ids.clone()))
        .all(db)
        .await?;
    mute::Entity::delete_many()
        .filter(mute::Column::MuterId.is_in(reader_ids))
        .exec(db)
        .await?;
    let unmuted = async {
        let mut scenarios = Vec::new();
        for (name, reader, token, _) in &readers {
            let first = PageRequest::older(20, None);
            let url = format!("{base}/timeline");
            check_timeline(db, client.get(&url).bearer_auth(token), reader, first).await?;
            scenarios.push((
                format!("GET /timeline, {name}, first page, mutes lifted"),
                http_probe(200, move |_| client.get(&url).bearer_auth(token)),
                sql_probe(move || sql_timeline(db, reader.id, first)),
            ));
        }
        measure_reads(seconds, scenarios).await
    }
    .await;
    if !lifted.is_empty() {
        mute::Entity::insert_many(lifted.into_iter().map(mute::ActiveModel::from))
            .exec(db)
            .await?;
    }
    samples.extend(unmuted?);

    let mut scenarios = Vec::new();
    for (name, reader, token, deep) in &readers {
        let first = PageRequest::older(20, None);
        let url = format!("{base}/timeline");
        check_timeline(db, client.get(&url).bearer_auth(token), reader, first).await?;
        scenarios.push((
            format!(
                "GET /timeline, {name} ({} followees), first page",
                reader.following_count
            ),
            http_probe(200, move |_| client.get(&url).bearer_auth(token)),
            sql_probe(move || sql_timeline(db, reader.id, first)),
        ));
        let Some(position) = *deep else {
            continue;
        };
        let cursor = codec.encode(&timeline::list_name(reader.id), position);
        let url = format!("{base}/timeline?cursor={cursor}");
        let deep = PageRequest::older(20, Some(position));
        check_timeline(db, client.get(&url).bearer_auth(token), reader, deep).await?;
        scenarios.push((
            format!("GET /timeline, {name}, deep page (200 posts in)"),
            http_probe(200, move |_| client.get(&url).bearer_auth(token)),
            sql_probe(move || sql_timeline(db, reader.id, deep)),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);

    // Profiles: a celebrity and an ordinary user, as seen by a signed-in reader.
    let mut scenarios = Vec::new();
    for target in [&celebrity, &ordinary] {
        let url = format!("{base}/users/{}", target.username);
        let name = &target.username;
        check_profile(db, client.get(&url).bearer_auth(viewer_token), target).await?;
        scenarios.push((
            format!(
                "GET /users/{} ({} followers)",
                target.username, target.followers_count
            ),
            http_probe(200, move |_| client.get(&url).bearer_auth(viewer_token)),
            sql_probe(move || sql_profile(db, viewer.id, name.clone())),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);

    // User search, first pages as a signed-in reader: a one-letter prefix that every seeded
    // account matches (usernames `user…` and display names `User n`), a two-letter one of a few
    // usernames, a five-letter one of about a ninth of the accounts, and display names only,
    // of accounts whose usernames sort last (`User 99…`: `user99…`).
    let searchable = verify::searchable_users(db).await?;
    let mut scenarios = Vec::new();
    for text in SEARCH_PREFIXES {
        let prefix = api::domain::SearchPrefix::parse(text)?;
        let url =
            reqwest::Url::parse_with_params(&format!("{base}/users"), [("q", text)])?.to_string();
        let matches = check_search(
            db,
            client.get(&url).bearer_auth(viewer_token),
            &searchable,
            &prefix,
        )
        .await?;
        scenarios.push((
            format!("GET /users?q={text} ({matches} matches), first page"),
            http_probe(200, move |_| client.get(&url).bearer_auth(viewer_token)),
            sql_probe(move || sql_search(db, viewer.id, prefix.clone())),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);

    // The celebrity's followers: page 1 and page 500 (or the last full page of a small dataset).
    let list = Direction::Followers.list_name(celebrity.id);
    let deep_page = (celebrity.followers_count as u64 / 20).clamp(2, 500);
    let deep_position = followers_position(db, celebrity.id, (deep_page - 1) * 20 - 1).await?;
    let deep_cursor = codec.encode(&list, deep_position);
    let mut scenarios = Vec::new();
    for (label, cursor, after) in [
        ("page 1".to_owned(), None, None),
        (
            format!("page {deep_page}"),
            Some(deep_cursor),
            Some(deep_position),
        ),
    ] {
        let url = match &cursor {
            Some(cursor) => format!("{base}/users/celebrity1/followers?cursor={cursor}"),
            None => format!("{base}/users/celebrity1/followers"),
        };
        let page = PageRequest::older(20, after);
        check_followers(
            db,
            client.get(&url).bearer_auth(viewer_token),
            &celebrity,
            page,
        )
        .await?;
        scenarios.push((
            format!("GET /users/celebrity1/followers, {label}"),
            http_probe(200, move |_| client.get(&url).bearer_auth(viewer_token)),
            sql_probe(move || sql_followers(db, viewer.id, celebrity.id, page)),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);

    // Finding people: celebrity1's followers whom each reader follows (the celebrity's followers
    // outnumber every reader's followees, so the readers' followees are listed and probed), and
    // each reader's follow suggestions; every answer checked against the rows first.
    let mut scenarios = Vec::new();
    for (name, reader, token, _) in &readers {
        let url = format!("{base}/users/celebrity1/known_followers");
        let served = verify::get_json(client.get(&url).bearer_auth(token)).await?;
        let names: Vec<String> = served["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["user"]["username"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        verify::same(
            &format!("celebrity1's followers whom {name} follows"),
            &names,
            &verify::known_followers(db, celebrity.id, reader.id, 20).await?,
        )?;
        scenarios.push((
            format!(
                "GET /users/celebrity1/known_followers, {name} ({} known), first page",
                names.len()
            ),
            http_probe(200, move |_| client.get(&url).bearer_auth(token)),
            sql_probe(move || sql_known_followers(db, celebrity.id, reader.id)),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);
    let mut scenarios = Vec::new();
    for (name, reader, token, _) in &readers {
        let url = format!("{base}/suggestions");
        let served = verify::get_json(client.get(&url).bearer_auth(token)).await?;
        let got: Vec<(String, i64)> = served["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        Some((
                            i["user"]["username"].as_str()?.to_owned(),
                            i["followed_by_count"].as_i64()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        verify::same(
            &format!("{name}'s suggestions"),
            &got,
            &verify::suggestions(
                db,
                reader.id,
                api::services::discovery::Sample::default(),
                20,
            )
            .await?,
        )?;
        scenarios.push((
            format!("GET /suggestions, {name}"),
            http_probe(200, move |_| client.get(&url).bearer_auth(token)),
            sql_probe(move || sql_suggestions(db, reader.id)),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);

    // The celebrity's unread notifications count (one `follow` notification per follower,
    // seeded unread), beside the celebrity's own profile read.
    let celebrity_token = login(client, &base, "celebrity1").await?;
    let celebrity_token = celebrity_token.as_str();
    let unread_url = format!("{base}/notifications/unread_count");
    let served = verify::get_json(client.get(&unread_url).bearer_auth(celebrity_token)).await?;
    verify::same(
        "celebrity1's unread notifications",
        &[served["count"].as_i64().unwrap_or(-1)],
        &[verify::unread_notifications(db, celebrity.id).await?],
    )?;
    let unread = served["count"].as_i64().unwrap_or(-1);
    let me_url = format!("{base}/users/me");
    let scenarios = vec![
        (
            format!("GET /notifications/unread_count, celebrity1 ({unread} unread)"),
            http_probe(200, move |_| {
                client.get(&unread_url).bearer_auth(celebrity_token)
            }),
            sql_probe(move || sql_unread(db, celebrity.id)),
        ),
        (
            "GET /users/me, celebrity1".to_owned(),
            http_probe(200, move |_| {
                client.get(&me_url).bearer_auth(celebrity_token)
            }),
            sql_probe(move || sql_profile(db, celebrity.id, "celebrity1".to_owned())),
        ),
    ];
    samples.extend(measure_reads(seconds, scenarios).await?);

    // Follow and unfollow, alternately, of accounts the viewer does not follow yet.
    let targets: Vec<String> = user::Entity::find()
        .filter(user::Column::Id.gt(9))
        .filter(
            user::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(follow::Column::FollowedId)
                    .from(follow::Entity)
                    .and_where(follow::Column::FollowerId.eq(viewer.id))
                    .to_owned(),
            ),
        )
        .limit(200)
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    if targets.is_empty() {
        return Err("no account left for reader100 to follow".into());
    }
    // Each follow is undone by the unfollow measured right after it.
    let mut probes = [
        http_probe(201, |i| {
            let target = &targets[i % targets.len()];
            client
                .post(format!("{base}/users/{target}/follow"))
                .bearer_auth(viewer_token)
        }),
        http_probe(204, |i| {
            let target = &targets[i % targets.len()];
            client
                .delete(format!("{base}/users/{target}/follow"))
                .bearer_auth(viewer_token)
        }),
    ];
    let mut latencies = measure_together(seconds, &mut probes).await?.into_iter();
    // Every follow was undone by its unfollow, and the counts say so.
    let following = verify::follow_count(db, "follower_id", viewer.id).await?;
    let viewer_now = users::find_by_id(db, viewer.id)
        .await?
        .ok_or("reader100 is gone")?;
    verify::same(
        "reader100's follows after the follow/unfollow scenarios",
        &[viewer_now.following_count, following],
        &[viewer.following_count, viewer.following_count],
    )?;
    for name in ["POST /users/{name}/follow", "DELETE /users/{name}/follow"] {
        samples.push(Sample {
            name: name.into(),
            http: latencies.next().unwrap_or_default(),
            sql: Vec::new(),
        });
    }

    // Reading a post: celebrity1's post liked by many accounts, and an ordinary account's post
    // that nobody likes, as a signed-in reader (its viewer state included); each answer's
    // counts checked against the rows first.
    let liked_post = entity::post::Entity::find()
        .filter(entity::post::Column::AuthorId.eq(celebrity.id))
        .order_by_desc(entity::post::Column::LikesCount)
        .one(db)
        .await?
        .ok_or("celebrity1 has no post")?;
    let plain_post = entity::post::Entity::find()
        .filter(entity::post::Column::AuthorId.eq(ordinary.id))
        .filter(entity::post::Column::LikesCount.eq(0))
        .one(db)
        .await?
        .ok_or("the ordinary account has no post")?;
    let mut scenarios = Vec::new();
    for post in [&liked_post, &plain_post] {
        let url = format!("{base}/posts/{}", post.id);
        let served = verify::get_json(client.get(&url).bearer_auth(viewer_token)).await?;
        let counted = verify::post_counts(db, post.id).await?;
        verify::same(
            &format!("the counts of post {}", post.id),
            &[
                served["likes_count"].as_i64().unwrap_or(-1),
                served["reposts_count"].as_i64().unwrap_or(-1),
            ],
            &counted,
        )?;
        let id = post.id;
        scenarios.push((
            format!(
                "GET /posts/{{id}}, a post by {} ({} likes)",
                if post.author_id == celebrity.id {
                    "celebrity1"
                } else {
                    "an ordinary account"
                },
                counted[0]
            ),
            http_probe(200, move |_| client.get(&url).bearer_auth(viewer_token)),
            sql_probe(move || sql_post(db, viewer.id, id)),
        ));
    }
    samples.extend(measure_reads(seconds, scenarios).await?);

    // Like and unlike, repost and unrepost, alternately, of ordinary accounts' posts that the
    // viewer has neither liked nor reposted; each undone by the request measured right after it.
    let interacted = sea_orm::sea_query::Query::select()
        .column(entity::repost::Column::PostId)
        .from(entity::repost::Entity)
        .and_where(entity::repost::Column::UserId.eq(viewer.id))
        .to_owned();
    let liked = sea_orm::sea_query::Query::select()
        .column(entity::like::Column::PostId)
        .from(entity::like::Entity)
        .and_where(entity::like::Column::UserId.eq(viewer.id))
        .to_owned();
    let targets: Vec<i64> = entity::post::Entity::find()
        .select_only()
        .column(entity::post::Column::Id)
        .filter(entity::post::Column::AuthorId.gt(59))
        .filter(entity::post::Column::Id.not_in_subquery(interacted))
        .filter(entity::post::Column::Id.not_in_subquery(liked))
        .limit(200)
        .into_tuple()
        .all(db)
        .await?;
    if targets.is_empty() {
        return Err("no post left for reader100 to like".into());
    }
    let before = verify::posts_counts(db, &targets).await?;
    for what in ["like", "repost"] {
        let (targets, base) = (&targets, &base);
        let mut probes = [
            http_probe(201, move |i| {
                let post = targets[i % targets.len()];
                client
                    .post(format!("{base}/posts/{post}/{what}"))
                    .bearer_auth(viewer_token)
            }),
            http_probe(204, move |i| {
                let post = targets[i % targets.len()];
                client
                    .delete(format!("{base}/posts/{post}/{what}"))
                    .bearer_auth(viewer_token)
            }),
        ];
        let mut latencies = measure_together(seconds, &mut probes).await?.into_iter();
        for name in [
            format!("POST /posts/{{id}}/{what}"),
            format!("DELETE /posts/{{id}}/{what}"),
        ] {
            samples.push(Sample {
                name,
                http: latencies.next().unwrap_or_default(),
                sql: Vec::new(),
            });
        }
    }
    // Every like and repost was undone, and the posts' counts say so.
    verify::same(
        "the liked and reposted posts' counts after the like and repost scenarios",
        &verify::posts_counts(db, &targets).await?,
        &before,
    )?;

    // Posting by the account with the most followers, and whether a follower sees it at once.
    let celebrity_token = login(client, &base, "celebrity1").await?;
    let mut probes = [http_probe(201, |i| {
        client
            .post(format!("{base}/posts"))
            .bearer_auth(&celebrity_token)
            .json(&json!({"body": format!("{POST_PREFIX} {i}")}))
    })];
    samples.push(Sample {
        name: format!(
            "POST /posts by celebrity1 ({} followers)",
            celebrity.followers_count
        ),
        http: measure_together(seconds, &mut probes)
            .await?
            .pop()
            .unwrap_or_default(),
        sql: Vec::new(),
    });
    let posted: Value = client
        .post(format!("{base}/posts"))
        .bearer_auth(&celebrity_token)
        .json(&json!({"body": format!("{POST_PREFIX}: visible at once?")}))
        .send()
        .await?
        .json()
        .await?;
    // Every ordinary account follows celebrity1 in a seeded graph.
    let follower_token = login(client, &base, &ordinary.username).await?;
    let seen: Value = client
        .get(format!("{base}/timeline?limit=1"))
        .bearer_auth(&follower_token)
        .send()
        .await?
        .json()
        .await?;
    let visible_at_once = seen["items"][0]["id"] == posted["id"];
    remove_benchmark_posts(db).await?;
    let celebrity_now = users::find_by_id(db, celebrity.id)
        .await?
        .ok_or("celebrity1 is gone")?;
    verify::same(
        "celebrity1's posts_count once the benchmark's posts are removed",
        &[celebrity_now.posts_count],
        &[celebrity.posts_count],
    )?;

    let peak = server.peak_memory_kib();
    drop(server);
    // Archives last, each on a server of its own, so that their memory is theirs alone.
    let archives = vec![
        measure_archive(
            &options,
            db,
            &users::find_by_id(db, ordinary.id)
                .await?
                .ok_or("the ordinary account is gone")?,
        )
        .await?,
        measure_archive(&options, db, &celebrity_now).await?,
    ];
    let mut report = report(&options, db, &samples, peak, visible_at_once).await?;
    report.push_str(&archive_report(&archives)?);
    if let Some(avatar) = &avatar {
        crate::media::take_avatars_back(db, avatar).await?;
        report.push_str(
            "\nEvery account had an avatar during this run (`--avatars`): every card carried an `avatar_url`.\n",
        );
    }
    println!("{report}");
    if let Some(path) = &options.output {
        std::fs::write(path, &report)?;
        println!("written to {path}");
    }
    Ok(())
}

/// One account's archive (`GET /users/me/archive`), downloaded from a server started for it.
struct ArchiveFigures {
    username: String,
    followers: i64,
    bytes: usize,
    took: Duration,
    /// The server's resident memory once ready and logged in, before the archive.
    resident_before_kib: Option<u64>,
    /// The server's peak resident memory once the archive is downloaded.
    peak_after_kib: Option<u64>,
}

/// Downloads `account`'s archive from a fresh server and checks it: every list as long as the
/// account's counts say, newest first.
async fn measure_archive(
    options: &RunOptions,
    db: &DatabaseConnection,
    account: &user::Model,
) -> Result<ArchiveFigures, BoxError> {
    // An earlier run within ten minutes took the account's turn: give it back.
    user::Entity::update_many()
        .col_expr(
            user::Column::ArchiveStartedAt,
            sea_orm::sea_query::Expr::value(Option::<i64>::None),
        )
        .filter(user::Column::Id.eq(account.id))
        .exec(db)
        .await?;
    let server = Server::start(&options.server_bin, &options.database_url, &[]).await?;
    let client = reqwest::Client::new();
    let token = login(&client, &server.base, &account.username).await?;
    let resident_before_kib = server.resident_kib();
    let started = Instant::now();
    let response = client
        .get(format!("{}/users/me/archive", server.base))
        .bearer_auth(&token)
        .send()
        .await?;
    if response.status() != 200 {
        return Err(format!("archive of {}: {}", account.username, response.status()).into());
    }
    let body = response.bytes().await?;
    let took = started.elapsed();
    let peak_after_kib = server.peak_memory_kib();
    drop(server);
    let archive: Value = serde_json::from_slice(&body)?;
    let length = |list: &str| {
        archive[list]
            .as_array()
            .map_or(-1, |items| items.len() as i64)
    };
    verify::same(
        &format!(
            "{}'s archive: posts, following, followers",
            account.username
        ),
        &[length("posts"), length("following"), length("followers")],
        &[
            account.posts_count,
            account.following_count,
            account.followers_count,
        ],
    )?;
    for (list, field) in [
        ("posts", "created_at"),
        ("following", "followed_at"),
        ("followers", "followed_at"),
    ] {
        let times: Vec<&str> = archive[list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item[field].as_str())
            .collect();
        if times.windows(2).any(|pair| pair[0] < pair[1]) {
            return Err(format!("{}'s archive: {list} not newest first", account.username).into());
        }
    }
    Ok(ArchiveFigures {
        username: account.username.clone(),
        followers: account.followers_count,
        bytes: body.len(),
        took,
        resident_before_kib,
        peak_after_kib,
    })
}

fn archive_report(archives: &[ArchiveFigures]) -> Result<String, BoxError> {
    let mb =
        |kib: Option<u64>| kib.map_or("-".to_owned(), |kib| format!("{:.1}", kib as f64 / 1024.0));
    let mut out = String::new();
    writeln!(
        out,
        "\nArchives (`GET /users/me/archive`, each downloaded from a server started for it, checked: every list as long as the account's counts, newest first):\n"
    )?;
    writeln!(
        out,
        "| account | followers | archive MB | seconds | server resident before MB | server peak after MB | growth MB |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|")?;
    for a in archives {
        let growth = match (a.resident_before_kib, a.peak_after_kib) {
            (Some(before), Some(after)) => {
                format!("{:.1}", after.saturating_sub(before) as f64 / 1024.0)
            }
            _ => "-".to_owned(),
        };
        writeln!(
            out,
            "| {} | {} | {:.1} | {:.2} | {} | {} | {growth} |",
            a.username,
            a.followers,
            a.bytes as f64 / 1_048_576.0,
            a.took.as_secs_f64(),
            mb(a.resident_before_kib),
            mb(a.peak_after_kib),
        )?;
    }
    Ok(out)
}

/// The body of every post the benchmark writes starts with this.
pub const POST_PREFIX: &str = "benchmark post";

/// Removes the posts the benchmark wrote and sets their author's count back. Left in place, the
/// thousands of newest posts of one account that a reader does not follow would lengthen that
/// reader's timeline walk a little more with every run.
pub async fn remove_benchmark_posts(db: &DatabaseConnection) -> Result<(), BoxError> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let author = user_by_name(db, "celebrity1").await?;
    let removed = entity::post::Entity::delete_many()
        .filter(entity::post::Column::AuthorId.eq(author.id))
        .filter(entity::post::Column::Body.starts_with(POST_PREFIX))
        .exec(db)
        .await?
        .rows_affected;
    user::Entity::update_many()
        .col_expr(
            user::Column::PostsCount,
            Expr::col(user::Column::PostsCount).sub(removed as i64),
        )
        .filter(user::Column::Id.eq(author.id))
        .exec(db)
        .await?;
    Ok(())
}

/// How the server reads timelines (`TIMELINE_FEEDS` on, its default): a reader's feed, once the
/// server's worker has built it (a read here asks for one as the server's reads do).
fn server_strategy(db: &DatabaseConnection) -> &'static timeline::Strategy {
    static STRATEGY: std::sync::OnceLock<timeline::Strategy> = std::sync::OnceLock::new();
    STRATEGY.get_or_init(|| timeline::Strategy {
        per_author_max_followees: timeline::PER_AUTHOR_MAX_FOLLOWEES,
        feeds: Some(api::services::feeds::Feeds::start(db.clone(), false)),
    })
}

async fn sql_timeline(
    db: &DatabaseConnection,
    reader_id: i64,
    page: PageRequest,
) -> Result<(), api::error::ApiError> {
    // What GET /timeline runs: the token's user, the page, the authors' viewer state.
    let reader = users::find_by_id(db, reader_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let (posts, _) = timeline::page(db, &reader, page, server_strategy(db)).await?;
    let shown = posts.iter().flat_map(|e| {
        std::iter::once(e.post.author.id).chain(e.reposted_by.as_ref().map(|u| u.id))
    });
    relationships::viewer_states(db, Some(reader.id), shown).await?;
    Ok(())
}

/// Checks a timeline page, over HTTP and from the service, against plain SQL.
pub(crate) async fn check_timeline(
    db: &DatabaseConnection,
    http: reqwest::RequestBuilder,
    reader: &user::Model,
    page: PageRequest,
) -> Result<(), BoxError> {
    let what = format!(
        "timeline of {} ({} followees), {}",
        reader.username,
        reader.following_count,
        if page.after.is_some() {
            "deep page"
        } else {
            "first page"
        }
    );
    let expected = verify::timeline_entries(db, reader.id, page).await?;
    if expected.is_empty() {
        return Err(format!("{what}: the dataset gives it no posts to check").into());
    }
    let served = verify::timeline_items(&verify::get_json(http).await?);
    verify::same(&format!("GET {what}"), &served, &expected)?;
    let (posts, _) = timeline::page(
        db,
        reader,
        page,
        &timeline::Strategy::without_feeds(timeline::PER_AUTHOR_MAX_FOLLOWEES),
    )
    .await?;
    let alone: Vec<(i64, bool)> = posts
        .iter()
        .map(|e| (e.post.post.id, e.reposted_by.is_some()))
        .collect();
    verify::same(&format!("SQL alone of the {what}"), &alone, &expected)
}

/// Checks a profile's counts over HTTP against the rows they count.
pub(crate) async fn check_profile(
    db: &DatabaseConnection,
    http: reqwest::RequestBuilder,
    target: &user::Model,
) -> Result<(), BoxError> {
    let served = verify::get_json(http).await?;
    let expected = [
        verify::follow_count(db, "followed_id", target.id).await?,
        verify::follow_count(db, "follower_id", target.id).await?,
    ];
    let counts = [
        served["followers_count"].as_i64().unwrap_or(-1),
        served["following_count"].as_i64().unwrap_or(-1),
    ];
    verify::same(
        &format!("followers and following counts of {}", target.username),
        &counts,
        &expected,
    )?;
    verify::same(
        "the profile's username",
        &[served["username"].as_str().unwrap_or_default()],
        &[target.username.as_str()],
    )
}

/// Checks a followers page, over HTTP and from the service, against the `follows` table.
pub(crate) async fn check_followers(
    db: &DatabaseConnection,
    http: reqwest::RequestBuilder,
    target: &user::Model,
    page: PageRequest,
) -> Result<(), BoxError> {
    let ids = verify::follower_ids(db, target.id, page).await?;
    if ids.is_empty() {
        return Err(format!("followers of {}: nothing to check", target.username).into());
    }
    let expected = verify::usernames(db, &ids).await?;
    let served = verify::item_usernames(&verify::get_json(http).await?);
    verify::same(
        &format!("GET followers of {}", target.username),
        &served,
        &expected,
    )?;
    let (entries, _) = follows::list(db, target.id, Direction::Followers, page).await?;
    let alone: Vec<String> = entries.iter().map(|e| e.user.username.clone()).collect();
    verify::same(
        &format!("SQL alone of the followers of {}", target.username),
        &alone,
        &expected,
    )
}

/// The prefixes the search scenarios look for: one, two and five letters, and the start of the
/// display names of the accounts whose usernames sort last.
const SEARCH_PREFIXES: [&str; 4] = ["u", "ce", "user1", "user 99"];

/// Checks a search's first page, over HTTP and from the service, against the answer worked out
/// from every account's names ([`verify::search_answer`]); returns how many accounts match.
pub(crate) async fn check_search(
    db: &DatabaseConnection,
    http: reqwest::RequestBuilder,
    searchable: &[(String, Option<String>)],
    prefix: &api::domain::SearchPrefix,
) -> Result<usize, BoxError> {
    let what = format!("search for {:?}", prefix.as_str());
    let all = verify::search_answer(searchable, prefix.as_str());
    if all.is_empty() {
        return Err(format!("{what}: the dataset has no match to check").into());
    }
    let expected = &all[..all.len().min(20)];
    let served = verify::get_json(http).await?;
    let lower = prefix.as_str().to_lowercase();
    for card in served["items"].as_array().into_iter().flatten() {
        let starts = |field: &str| {
            card[field]
                .as_str()
                .is_some_and(|name| name.to_lowercase().starts_with(&lower))
        };
        if !starts("username") && !starts("display_name") {
            return Err(format!("GET {what}: {card} does not start with the prefix").into());
        }
    }
    verify::same(
        &format!("GET {what}"),
        &verify::card_usernames(&served),
        expected,
    )?;
    verify::same(
        &format!("GET {what}: whether a next page exists"),
        &[served["next_cursor"].is_string()],
        &[all.len() > 20],
    )?;
    let (users, _) = users::search(db, prefix, None, 20).await?;
    let alone: Vec<String> = users.into_iter().map(|u| u.username).collect();
    verify::same(&format!("SQL alone of the {what}"), &alone, expected)?;
    Ok(all.len())
}

/// What `GET /users?q=` runs: the token's user, the page, its viewer state.
async fn sql_search(
    db: &DatabaseConnection,
    viewer_id: i64,
    prefix: api::domain::SearchPrefix,
) -> Result<(), api::error::ApiError> {
    let viewer = users::find_by_id(db, viewer_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let (found, _) = users::search(db, &prefix, None, 20).await?;
    relationships::viewer_states(db, Some(viewer.id), found.iter().map(|u| u.id)).await?;
    Ok(())
}

async fn sql_profile(
    db: &DatabaseConnection,
    viewer_id: i64,
    name: String,
) -> Result<(), api::error::ApiError> {
    let viewer = users::find_by_id(db, viewer_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let user = users::find_by_username(db, &name).await?;
    relationships::viewer_states(db, Some(viewer.id), [user.id]).await?;
    Ok(())
}

/// What the unread count's handler does: load the caller's row (authentication), nothing else.
async fn sql_post(
    db: &DatabaseConnection,
    viewer_id: i64,
    id: i64,
) -> Result<(), api::error::ApiError> {
    // What GET /posts/{id} runs: the token's user, the post with its author, the access rule,
    // the page's viewer state.
    users::find_by_id(db, viewer_id).await?;
    let post = api::services::posts::find(db, id).await?;
    relationships::check_access(db, &post.author, Some(viewer_id)).await?;
    api::views::posts::states(db, Some(viewer_id), [post.author.id], &[id]).await?;
    Ok(())
}

async fn sql_unread(db: &DatabaseConnection, user_id: i64) -> Result<(), api::error::ApiError> {
    users::find_by_id(db, user_id).await?;
    Ok(())
}

async fn sql_followers(
    db: &DatabaseConnection,
    viewer_id: i64,
    user_id: i64,
    page: PageRequest,
) -> Result<(), api::error::ApiError> {
    let viewer = users::find_by_id(db, viewer_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let user = users::find_by_id(db, user_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let (entries, _) = follows::list(db, user.id, Direction::Followers, page).await?;
    relationships::viewer_states(db, Some(viewer.id), entries.iter().map(|e| e.user.id)).await?;
    Ok(())
}

async fn sql_known_followers(
    db: &DatabaseConnection,
    target_id: i64,
    viewer_id: i64,
) -> Result<(), api::error::ApiError> {
    let viewer = users::find_by_id(db, viewer_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let target = users::find_by_id(db, target_id)
        .await?
        .ok_or(api::error::ApiError::InvalidCursor)?;
    let (entries, _) = api::services::discovery::known_followers(
        db,
        &target,
        &viewer,
        PageRequest::older(20, None),
    )
    .await?;
    relationships::viewer_states(db, Some(viewer.id), entries.iter().map(|e| e.user.id)).await?;
    Ok(())
}

async fn sql_suggestions(
    db: &DatabaseConnection,
    viewer_id: i64,
) -> Result<(), api::error::ApiError> {
    let found = api::services::discovery::suggestions(
        db,
        &api::services::discovery::Popular::default(),
        api::services::discovery::Sample::default(),
        viewer_id,
        20,
    )
    .await?;
    let shown = found
        .iter()
        .flat_map(|s| std::iter::once(s.user.id).chain(s.followed_by.iter().map(|u| u.id)));
    relationships::viewer_states(db, Some(viewer_id), shown).await?;
    Ok(())
}

async fn report(
    options: &RunOptions,
    db: &DatabaseConnection,
    samples: &[Sample],
    peak_kib: Option<u64>,
    visible_at_once: bool,
) -> Result<String, Box<dyn std::error::Error>> {
    use sea_orm::PaginatorTrait;
    let users = user::Entity::find().count(db).await?;
    let follows = follow::Entity::find().count(db).await?;
    let posts = entity::post::Entity::find().count(db).await?;
    let backend = format!("{:?}", sea_orm::ConnectionTrait::get_database_backend(db));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);

    let mut out = String::new();
    writeln!(
        out,
        "### {backend}: {users} users, {follows} follows, {posts} posts\n"
    )?;
    writeln!(
        out,
        "Machine: {cores} cores ({cpu}). Command: `{}`. One client, requests one at a time, about {}s of measuring per request kind after a warm-up, interleaved with the scenarios each is compared with (timelines together, profiles together, followers pages together, each beside its SQL alone); requests/s = that client's rate (1 / mean latency); SQL alone = the same service calls the handler makes, in-process.\n",
        options.command_line, options.seconds
    )?;
    writeln!(
        out,
        "| scenario | requests/s | p50 ms | p99 ms | SQL alone p50 ms | HTTP / SQL |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for s in samples {
        let (sql, ratio) = match s.sql_p50() {
            Some(sql) => (
                ms(sql),
                format!("{:.2}", s.p50().as_secs_f64() / sql.as_secs_f64().max(1e-9)),
            ),
            None => ("-".into(), "-".into()),
        };
        writeln!(
            out,
            "| {} | {:.0} | {} | {} | {sql} | {ratio} |",
            s.name,
            s.rps(),
            ms(s.p50()),
            ms(s.p99())
        )?;
    }
    let find = |prefix: &str| samples.iter().find(|s| s.name.starts_with(prefix));
    let p50 = |s: &Sample| s.p50().as_secs_f64() * 1000.0;
    writeln!(out, "\nTargets:\n")?;
    let firsts: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name.starts_with("GET /timeline") && s.name.ends_with("first page"))
        .collect();
    if !firsts.is_empty() {
        let max = firsts.iter().map(|s| p50(s)).fold(0.0, f64::max);
        let min = firsts.iter().map(|s| p50(s)).fold(f64::MAX, f64::min);
        writeln!(
            out,
            "- timeline first pages: p50 from {min:.2} to {max:.2} ms, spread {:.2}x (target within 3x) {}; each under 5 ms: {}",
            max / min,
            verdict(max / min <= 3.0),
            verdict(max < 5.0)
        )?;
    }
    for followees in READER_FOLLOWEES {
        let name = format!("reader{followees}");
        if let (Some(first), Some(deep)) = (
            samples
                .iter()
                .find(|s| s.name.contains(&format!("{name} (")) && s.name.ends_with("first page")),
            samples
                .iter()
                .find(|s| s.name.contains(&format!("{name}, deep"))),
        ) {
            writeln!(
                out,
                "- {name}: deep page / first page = {:.2} (target at most 1.3) {}",
                p50(deep) / p50(first),
                verdict(p50(deep) / p50(first) <= 1.3)
            )?;
        }
    }
    for followees in READER_FOLLOWEES {
        let name = format!("reader{followees}");
        if let (Some(muted), Some(lifted)) = (
            samples
                .iter()
                .find(|s| s.name.contains(&format!("{name} (")) && s.name.ends_with("first page")),
            samples.iter().find(|s| {
                s.name
                    .contains(&format!("{name}, first page, mutes lifted"))
            }),
        ) {
            writeln!(
                out,
                "- {name}: what muting costs: first page with its mutes / with them lifted = {:.2} (no target; the other timeline targets hold with the mutes)",
                p50(muted) / p50(lifted)
            )?;
        }
    }
    if let (Some(celebrity), Some(ordinary)) = (
        find("GET /users/celebrity1 ("),
        samples
            .iter()
            .find(|s| s.name.starts_with("GET /users/user")),
    ) {
        writeln!(
            out,
            "- celebrity profile / ordinary profile = {:.2} (target at most 1.2) {}",
            p50(celebrity) / p50(ordinary),
            verdict(p50(celebrity) / p50(ordinary) <= 1.2)
        )?;
    }
    if let (Some(first), Some(deep)) = (
        find("GET /users/celebrity1/followers, page 1"),
        samples.iter().find(|s| {
            s.name.starts_with("GET /users/celebrity1/followers, page ")
                && !s.name.ends_with("page 1")
        }),
    ) {
        writeln!(
            out,
            "- followers deep page ({}) / page 1 = {:.2} (target at most 1.3) {}",
            deep.name.rsplit(", ").next().unwrap_or(""),
            p50(deep) / p50(first),
            verdict(p50(deep) / p50(first) <= 1.3)
        )?;
    }
    if let (Some(liked), Some(plain)) = (
        find("GET /posts/{id}, a post by celebrity1"),
        find("GET /posts/{id}, a post by an ordinary account"),
    ) {
        writeln!(
            out,
            "- {} / {} = {:.2} (target at most 1.2) {}",
            liked.name,
            plain.name,
            p50(liked) / p50(plain),
            verdict(p50(liked) / p50(plain) <= 1.2)
        )?;
    }
    for write in ["POST /posts/{id}/like", "POST /posts/{id}/repost"] {
        if let Some(sample) = find(write) {
            writeln!(
                out,
                "- {write}: p50 {:.2} ms (target under 50 ms) {}",
                p50(sample),
                verdict(p50(sample) < 50.0)
            )?;
        }
    }
    if let Some(unread) = find("GET /notifications/unread_count") {
        writeln!(
            out,
            "- {}: p50 {:.2} ms (target under 5 ms) {}",
            unread.name,
            p50(unread),
            verdict(p50(unread) < 5.0)
        )?;
    }
    if let Some(known) = find("GET /users/celebrity1/known_followers, reader5000") {
        writeln!(
            out,
            "- celebrity1's known followers seen by reader5000: p50 {:.2} ms (target: a few milliseconds, under 10 ms) {}",
            p50(known),
            verdict(p50(known) < 10.0)
        )?;
    }
    if let Some(suggested) = find("GET /suggestions, reader5000") {
        writeln!(
            out,
            "- suggestions for reader5000: p50 {:.2} ms (target at most 20 ms) {}",
            p50(suggested),
            verdict(p50(suggested) <= 20.0)
        )?;
    }
    // "POST /posts by": "POST /posts/{id}/like" starts with "POST /posts" too.
    if let Some(post) = find("POST /posts by") {
        writeln!(
            out,
            "- POST /posts by the most-followed account: p50 {:.2} ms (target under 50 ms) {}; the post is on a follower's timeline when the request returns: {}",
            p50(post),
            verdict(p50(post) < 50.0),
            verdict(visible_at_once)
        )?;
    }
    if let Some(peak) = peak_kib {
        writeln!(
            out,
            "- server peak memory (VmHWM): {:.1} MB (target under 150 MB) {}",
            peak as f64 / 1024.0,
            verdict(peak < 150 * 1024)
        )?;
    }
    // The unread count's SQL is one primary-key read (about 0.2 ms): the fixed cost of an HTTP
    // exchange is more than its double, whatever the server does, so it is left out here and
    // judged by its own target above.
    let worst = samples
        .iter()
        .filter(|s| !s.name.starts_with("GET /notifications/unread_count"))
        .filter_map(|s| {
            s.sql_p50()
                .map(|sql| (s, s.p50().as_secs_f64() / sql.as_secs_f64().max(1e-9)))
        })
        .fold(None::<(&Sample, f64)>, |acc, (s, r)| match acc {
            Some((_, best)) if best >= r => acc,
            _ => Some((s, r)),
        });
    if let Some((s, ratio)) = worst {
        writeln!(
            out,
            "- HTTP within 2x of its SQL alone (the unread count aside): worst {ratio:.2} ({}) {}",
            s.name,
            verdict(ratio <= 2.0)
        )?;
    }
    Ok(out)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**not met**" }
}
