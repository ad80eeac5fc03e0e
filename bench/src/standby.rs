//! `bench run --read-url`: what a read costs from a PostgreSQL hot standby against the primary.
//!
//! Two servers on the same seeded primary, one reading from it and one with `DATABASE_READ_URL`
//! naming the standby; each read scenario is sent through both, interleaved request by request
//! (so the ratio is of one moment of this machine), and each answer is checked through both
//! against the primary's rows first. The viewers have not written (logging in does not stamp
//! `last_write_at`), so the second server really reads from the standby: the run checks its
//! `db_read_standby_in_rotation` before and after, and that no read fell back to the primary.

use std::fmt::Write as _;
use std::time::Duration;

use api::services::keyset::PageRequest;
use sea_orm::DatabaseConnection;

use crate::run::{
    BoxError, RunOptions, Server, check_followers, check_profile, check_search, check_timeline,
    http_probe, login, measure_together, ms, percentile, user_by_name,
};
use crate::seed::READER_FOLLOWEES;
use crate::verify;

/// The scrape of one series from a server's `/metrics`.
async fn metric(client: &reqwest::Client, base: &str, name: &str) -> Result<f64, BoxError> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| format!("{name} is not in {base}/metrics").into())
}

pub async fn run(
    options: &RunOptions,
    db: &DatabaseConnection,
    read_url: &str,
) -> Result<(), BoxError> {
    let primary = Server::start(&options.server_bin, &options.database_url, &[]).await?;
    let standby = Server::start(
        &options.server_bin,
        &options.database_url,
        &[("DATABASE_READ_URL", read_url.to_owned())],
    )
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let client = &client;
    let bases = [primary.base.clone(), standby.base.clone()];
    // In the rotation, and caught up with what this run did to the primary (its clean-up), so
    // that the standby's answers can be checked against the primary's rows.
    let mut ready = false;
    for _ in 0..600 {
        ready = metric(client, &bases[1], "db_read_standby_in_rotation").await? == 1.0
            && metric(client, &bases[1], "db_read_standby_lag_seconds").await? == 0.0;
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        return Err(
            "the standby did not catch up within a minute: is it a standby of \
                    --database-url, replaying?"
                .into(),
        );
    }

    let viewer_name = "reader100";
    let viewer_token = login(client, &bases[0], viewer_name).await?;
    let viewer_token = viewer_token.as_str();
    let celebrity = user_by_name(db, "celebrity1").await?;
    let celebrity = &celebrity;
    let reader_name = format!("reader{}", READER_FOLLOWEES[READER_FOLLOWEES.len() - 1]);
    let reader = user_by_name(db, &reader_name).await?;
    let reader = &reader;
    let reader_token = login(client, &bases[0], &reader_name).await?;
    let reader_token = reader_token.as_str();
    let searchable = verify::searchable_users(db).await?;
    let prefix = api::domain::SearchPrefix::parse("u")?;
    let first = PageRequest::older(20, None);

    // (name, path, token): each is checked through both servers, then measured through both.
    let scenarios: Vec<(String, String, &str)> = vec![
        (
            format!(
                "GET /timeline, {reader_name} ({} followees), first page",
                reader.following_count
            ),
            "/timeline".to_owned(),
            reader_token,
        ),
        (
            format!(
                "GET /users/celebrity1 ({} followers)",
                celebrity.followers_count
            ),
            "/users/celebrity1".to_owned(),
            viewer_token,
        ),
        (
            "GET /users/celebrity1/followers, page 1".to_owned(),
            "/users/celebrity1/followers".to_owned(),
            viewer_token,
        ),
        (
            "GET /users?q=u, first page".to_owned(),
            "/users?q=u".to_owned(),
            viewer_token,
        ),
    ];
    for base in &bases {
        let get = |path: &str, token: &str| client.get(format!("{base}{path}")).bearer_auth(token);
        check_timeline(db, get("/timeline", reader_token), reader, first).await?;
        check_profile(db, get("/users/celebrity1", viewer_token), celebrity).await?;
        check_followers(
            db,
            get("/users/celebrity1/followers", viewer_token),
            celebrity,
            first,
        )
        .await?;
        check_search(db, get("/users?q=u", viewer_token), &searchable, &prefix).await?;
    }

    let mut probes = Vec::new();
    for (_, path, token) in &scenarios {
        for base in &bases {
            let url = format!("{base}{path}");
            probes.push(http_probe(200, move |_| {
                client.get(&url).bearer_auth(*token)
            }));
        }
    }
    let latencies = measure_together(options.seconds, &mut probes).await?;
    let in_rotation = metric(client, &bases[1], "db_read_standby_in_rotation").await?;
    let fallbacks = metric(client, &bases[1], "db_read_standby_fallbacks_total").await?;
    if in_rotation != 1.0 || fallbacks != 0.0 {
        return Err(format!(
            "the standby left the rotation during the run (in rotation {in_rotation}, \
             {fallbacks} reads fell back): the numbers would be the primary's"
        )
        .into());
    }

    let mut out = String::new();
    writeln!(
        out,
        "### Reads from a hot standby against the primary\n\nCommand: `{}`. Two servers on the same primary, one with `DATABASE_READ_URL` naming the standby; each scenario through both, interleaved request by request, about {}s each after a warm-up; every answer checked through both against the primary's rows first; the standby stayed in the rotation and no read fell back.\n",
        options.command_line, options.seconds
    )?;
    writeln!(
        out,
        "| scenario | primary p50 ms | standby p50 ms | primary p99 ms | standby p99 ms | standby / primary (p50) |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|")?;
    for ((name, _, _), pair) in scenarios.iter().zip(latencies.chunks(2)) {
        let (p50, s50) = (percentile(&pair[0], 0.5), percentile(&pair[1], 0.5));
        writeln!(
            out,
            "| {name} | {} | {} | {} | {} | {:.2} |",
            ms(p50),
            ms(s50),
            ms(percentile(&pair[0], 0.99)),
            ms(percentile(&pair[1], 0.99)),
            s50.as_secs_f64() / p50.as_secs_f64().max(1e-9)
        )?;
    }
    drop(standby);
    drop(primary);
    println!("{out}");
    if let Some(path) = &options.output {
        std::fs::write(path, &out)?;
        println!("written to {path}");
    }
    Ok(())
}
