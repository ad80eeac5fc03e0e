//! The request-path benchmark (`bench load`): many clients at once against a few read endpoints,
//! for the server's CPU per request and its throughput (issue 30, goal 1).
//!
//! Scenarios: `celebrity1`'s profile anonymous and as `reader100` signed in, and `reader100`'s
//! and `reader1000`'s first timeline page. Each answer is checked against the database once
//! before anything is timed ([`crate::run::check_profile`], [`crate::run::check_timeline`]),
//! and every timed answer must be a 200 of the same length as the checked one (a profile or a
//! page that changed under the run fails it). The scenarios are measured in rounds, each
//! scenario once per round for `seconds`, so that their ratios share the machine's drift; the
//! figures are summed over the rounds. CPU per request is the server process's CPU time
//! (`/proc/<pid>/stat`, user + system) over a scenario's phases divided by its requests; the
//! clients run in this process, on the same cores.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::services::keyset::PageRequest;
use sea_orm::DatabaseConnection;

use crate::run::{
    BoxError, Server, check_profile, check_timeline, login, ms, percentile, remove_benchmark_posts,
    user_by_name,
};

pub struct LoadOptions {
    pub database_url: String,
    pub server_bin: String,
    /// Seconds of measuring per scenario and round.
    pub seconds: f64,
    /// Concurrent clients (each its own keep-alive connection).
    pub clients: usize,
    pub rounds: usize,
    pub output: Option<String>,
    pub command_line: String,
}

/// One endpoint under load: a GET with or without a token.
struct Scenario {
    name: String,
    url: String,
    token: Option<String>,
    /// The length of the checked answer: every timed answer has it.
    length: usize,
    requests: u64,
    cpu_seconds: f64,
    wall_seconds: f64,
    latencies: Vec<Duration>,
}

pub async fn run(options: LoadOptions) -> Result<(), BoxError> {
    let mut settings = api::Settings::for_database(options.database_url.clone());
    settings.database_pool_size = 2;
    let db = api::db::connect_and_migrate(&settings).await?;
    remove_benchmark_posts(&db).await?;
    let server = Server::start(&options.server_bin, &options.database_url, &[]).await?;
    let base = server.base.clone();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(options.clients)
        .build()?;

    let celebrity = user_by_name(&db, "celebrity1").await?;
    let profile_url = format!("{base}/users/{}", celebrity.username);
    let viewer_token = login(&client, &base, "reader100").await?;
    let mut scenarios = Vec::new();
    check_profile(&db, client.get(&profile_url), &celebrity).await?;
    scenarios.push(
        scenario(
            &client,
            "GET /users/celebrity1, anonymous".to_owned(),
            profile_url.clone(),
            None,
        )
        .await?,
    );
    check_profile(
        &db,
        client.get(&profile_url).bearer_auth(&viewer_token),
        &celebrity,
    )
    .await?;
    scenarios.push(
        scenario(
            &client,
            "GET /users/celebrity1, signed in as reader100".to_owned(),
            profile_url.clone(),
            Some(viewer_token.clone()),
        )
        .await?,
    );
    for name in ["reader100", "reader1000"] {
        let reader = user_by_name(&db, name).await?;
        let token = login(&client, &base, name).await?;
        let url = format!("{base}/timeline");
        check_timeline(
            &db,
            client.get(&url).bearer_auth(&token),
            &reader,
            PageRequest::older(20, None),
        )
        .await?;
        // With feeds on (the server's default, `TIMELINE_FEEDS`), that read asked for the
        // reader's feed: once the server's worker has built it, the page is checked again, as
        // the feed serves it.
        if std::env::var("TIMELINE_FEEDS").as_deref() != Ok("false") {
            let mut built = None;
            for _ in 0..100 {
                let row = user_by_name(&db, name).await?;
                if row.feed_floor_at.is_some() {
                    built = Some(row);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let reader = built.ok_or_else(|| format!("{name}'s feed was not built in 10 s"))?;
            check_timeline(
                &db,
                client.get(&url).bearer_auth(&token),
                &reader,
                PageRequest::older(20, None),
            )
            .await?;
        }
        scenarios.push(
            scenario(
                &client,
                format!(
                    "GET /timeline, {name} ({} followees), first page",
                    reader.following_count
                ),
                url,
                Some(token),
            )
            .await?,
        );
    }

    for _ in 0..options.rounds {
        for scenario in &mut scenarios {
            load(&client, &server, scenario, options.clients, options.seconds).await?;
        }
    }
    let report = report(&db, &options, &scenarios, &server).await?;
    print!("{report}");
    if let Some(path) = &options.output {
        std::fs::write(path, &report)?;
    }
    Ok(())
}

/// A scenario with the length of its answer now.
async fn scenario(
    client: &reqwest::Client,
    name: String,
    url: String,
    token: Option<String>,
) -> Result<Scenario, BoxError> {
    let length = get(client, &url, token.as_deref(), None).await?;
    Ok(Scenario {
        name,
        url,
        token,
        length,
        requests: 0,
        cpu_seconds: 0.0,
        wall_seconds: 0.0,
        latencies: Vec::new(),
    })
}

/// Sends one GET; fails unless it is a 200 (of `length` bytes, when given). Returns its length.
async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    length: Option<usize>,
) -> Result<usize, BoxError> {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.bytes().await?;
    if status != 200 {
        return Err(format!(
            "GET {url}: expected 200, got {status}: {}",
            String::from_utf8_lossy(&body)
        )
        .into());
    }
    if let Some(length) = length
        && body.len() != length
    {
        return Err(format!(
            "GET {url}: the answer changed during the run ({} bytes, checked {length})",
            body.len()
        )
        .into());
    }
    Ok(body.len())
}

/// `clients` clients send `scenario`'s request back to back for `seconds` after a warm-up of a
/// fifth of that (at most a second); adds the requests, latencies and server CPU to it.
async fn load(
    client: &reqwest::Client,
    server: &Server,
    scenario: &mut Scenario,
    clients: usize,
    seconds: f64,
) -> Result<(), BoxError> {
    let warmup = Duration::from_secs_f64((seconds / 5.0).min(1.0));
    let measured = Duration::from_secs_f64(seconds);
    let target = Arc::new((
        scenario.url.clone(),
        scenario.token.clone(),
        scenario.length,
    ));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let client = client.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let (url, token, length) = &*target;
            let mut latencies = Vec::new();
            while started.elapsed() < warmup {
                get(&client, url, token.as_deref(), Some(*length))
                    .await
                    .map_err(|err| err.to_string())?;
            }
            while started.elapsed() < warmup + measured {
                let t = Instant::now();
                get(&client, url, token.as_deref(), Some(*length))
                    .await
                    .map_err(|err| err.to_string())?;
                latencies.push(t.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    // The measured phase's CPU: read at the warm-up's end and when the clients stop.
    tokio::time::sleep_until((started + warmup).into()).await;
    let cpu_before = server
        .cpu_seconds()
        .ok_or("cannot read the server's CPU time")?;
    let measuring = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await?.map_err(|err| -> BoxError { err.into() })?);
    }
    let wall = measuring.elapsed().as_secs_f64();
    let cpu_after = server
        .cpu_seconds()
        .ok_or("cannot read the server's CPU time")?;
    scenario.requests += latencies.len() as u64;
    scenario.cpu_seconds += cpu_after - cpu_before;
    scenario.wall_seconds += wall;
    scenario.latencies.extend(latencies);
    Ok(())
}

async fn report(
    db: &DatabaseConnection,
    options: &LoadOptions,
    scenarios: &[Scenario],
    server: &Server,
) -> Result<String, BoxError> {
    let backend = format!("{:?}", db.get_database_backend());
    let mut out = String::new();
    writeln!(
        out,
        "### {backend}: {} clients at once, {} rounds of {} s per scenario\n",
        options.clients, options.rounds, options.seconds
    )?;
    writeln!(out, "Command: `{}`.\n", options.command_line)?;
    writeln!(
        out,
        "| scenario | requests | requests/s | p50 ms | p99 ms | server CPU ms per request |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for scenario in scenarios {
        let rate = scenario.requests as f64 / scenario.wall_seconds.max(1e-9);
        let cpu = scenario.cpu_seconds * 1000.0 / (scenario.requests.max(1) as f64);
        writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {:.3} |",
            scenario.name,
            scenario.requests,
            rate,
            ms(percentile(&scenario.latencies, 0.5)),
            ms(percentile(&scenario.latencies, 0.99)),
            cpu
        )?;
    }
    writeln!(
        out,
        "\nServer peak memory (VmHWM): {:.1} MB. CPU from `/proc/<pid>/stat` in ticks of 10 ms: \
         a phase's CPU is exact to 20 ms, so phases shorter than a few seconds are rough.",
        server.peak_memory_kib().unwrap_or(0) as f64 / 1024.0
    )?;
    Ok(out)
}
