//! `bench media`: uploads and image reads on a seeded database. A photo-like JPEG of about 8 MiB
//! (`--megapixels`, 24 by default) is uploaded one at a time (p50, p99, the server's CPU time per
//! image), then by 4 clients at once (the server's peak memory) while one reader's timeline is
//! read (its p50 and p99 against the same reads with no upload running); last, `GET /media/{id}`
//! read whole and revalidated with its `ETag` (304). Every answer is checked before it counts:
//! each upload is a 201 whose Media is at most 1,600 pixels on its longer side, in the uploaded
//! image's proportions; each image read is the same bytes, a JPEG that decodes to the Media's size.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use entity::{media, user};
use rand::{RngExt, SeedableRng};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::run::{BoxError, Server, login, ms, user_by_name};

pub struct MediaOptions {
    pub database_url: String,
    pub server_bin: String,
    pub seconds: f64,
    pub megapixels: f64,
    pub output: Option<String>,
    pub command_line: String,
}

/// The account that uploads, and whose timeline is read meanwhile.
const UPLOADER: &str = "reader100";

/// How many clients upload at once in the concurrent phase.
const CONCURRENT: usize = 4;

const BOUNDARY: &str = "bench-media-boundary-7d1f";

/// A photo-like JPEG (smooth gradients and fine noise, so that it compresses as photos do) of
/// about `megapixels`, 3:2, at the highest quality that stays within 8 MiB.
fn photo(megapixels: f64) -> Result<(Vec<u8>, u32, u32), BoxError> {
    let width = ((megapixels * 1_000_000.0 * 1.5).sqrt()) as u32;
    let height = width * 2 / 3;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        let noise = |rng: &mut rand::rngs::StdRng| rng.random_range(0..48u32);
        image::Rgb([
            ((x * 200 / width.max(1)) + noise(&mut rng)).min(255) as u8,
            ((y * 200 / height.max(1)) + noise(&mut rng)).min(255) as u8,
            (((x + y) * 100 / (width + height).max(1)) + noise(&mut rng)).min(255) as u8,
        ])
    });
    for quality in (50..=95).rev().step_by(5) {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, quality)
            .encode_image(&pixels)?;
        if bytes.len() <= 8 * 1024 * 1024 {
            return Ok((bytes, width, height));
        }
    }
    Err("no quality of 50 or more keeps the image within 8 MiB: ask for fewer megapixels".into())
}

fn form(file: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 256);
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Uploads `body` and checks the Media it answers; its id.
async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    body: &[u8],
    (width, height): (u32, u32),
) -> Result<String, BoxError> {
    let response = client
        .post(format!("{base}/media"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body.to_vec())
        .send()
        .await?;
    let status = response.status();
    let media: Value = response.json().await?;
    if status != 201 {
        return Err(
            format!("wrong answer, not timed: POST /media answered {status}: {media}").into(),
        );
    }
    let (w, h) = (
        media["width"].as_u64().unwrap_or(0),
        media["height"].as_u64().unwrap_or(0),
    );
    // The longer side at most 1,600, the proportions kept (to a pixel).
    let (longer, shorter) = (width.max(height), width.min(height));
    let target = longer.min(1_600);
    let target_shorter =
        (f64::from(shorter) * f64::from(target) / f64::from(longer)).round() as u64;
    if w.max(h) != u64::from(target) || w.min(h).abs_diff(target_shorter) > 1 {
        return Err(
            format!("wrong answer, not timed: a {width}x{height} upload became {w}x{h}").into(),
        );
    }
    media["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "a Media without an id".into())
}

async fn timeline(client: &reqwest::Client, base: &str, token: &str) -> Result<Duration, BoxError> {
    let started = Instant::now();
    let response = client
        .get(format!("{base}/timeline"))
        .bearer_auth(token)
        .send()
        .await?;
    let status = response.status();
    let page: Value = response.json().await?;
    if status != 200 || page["items"].as_array().is_none_or(Vec::is_empty) {
        return Err(format!("wrong answer, not timed: GET /timeline answered {status}").into());
    }
    Ok(started.elapsed())
}

/// Reads the timeline for `seconds`, one request at a time.
async fn timelines(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    seconds: f64,
) -> Result<Vec<Duration>, BoxError> {
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds {
        latencies.push(timeline(client, base, token).await?);
    }
    Ok(latencies)
}

fn percentile(values: &mut [Duration], p: f64) -> Duration {
    values.sort_unstable();
    if values.is_empty() {
        return Duration::ZERO;
    }
    values[((values.len() - 1) as f64 * p).round() as usize]
}

async fn remove_uploads(db: &DatabaseConnection, user: i64) -> Result<(), BoxError> {
    media::Entity::delete_many()
        .filter(media::Column::OwnerId.eq(user))
        .filter(media::Column::PostId.is_null())
        .filter(media::Column::Purpose.ne("avatar"))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn run(options: MediaOptions) -> Result<(), BoxError> {
    let settings = api::Settings::for_database(options.database_url.clone());
    let db = api::db::connect_and_migrate(&settings).await?;
    let uploader = user_by_name(&db, UPLOADER).await?;
    remove_uploads(&db, uploader.id).await?;
    let (file, width, height) = photo(options.megapixels)?;
    let body = form(&file);
    let server = Server::start(&options.server_bin, &options.database_url, &[]).await?;
    let base = server.base.clone();
    let client = reqwest::Client::new();
    let token = login(&client, &base, UPLOADER).await?;
    let mut out = String::new();
    writeln!(
        out,
        "### Media: a {width}x{height} JPEG of {:.2} MiB, uploaded as {UPLOADER}\n\nCommand: `{}`.\n",
        file.len() as f64 / 1_048_576.0,
        options.command_line
    )?;

    // One at a time: latency and the server's CPU per image.
    upload(&client, &base, &token, &body, (width, height)).await?;
    let cpu_before = server.cpu_seconds();
    let mut one_at_a_time = Vec::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < options.seconds || one_at_a_time.len() < 3 {
        let t = Instant::now();
        upload(&client, &base, &token, &body, (width, height)).await?;
        one_at_a_time.push(t.elapsed());
    }
    let cpu = match (cpu_before, server.cpu_seconds()) {
        (Some(before), Some(after)) => {
            format!(
                "{:.0}",
                (after - before) * 1000.0 / one_at_a_time.len() as f64
            )
        }
        _ => "-".to_owned(),
    };
    let uploads = one_at_a_time.len();
    writeln!(
        out,
        "| scenario | requests | p50 ms | p99 ms | server CPU ms per request |\n|---|---:|---:|---:|---:|"
    )?;
    writeln!(
        out,
        "| POST /media, one at a time | {uploads} | {} | {} | {cpu} |",
        ms(percentile(&mut one_at_a_time, 0.5)),
        ms(percentile(&mut one_at_a_time, 0.99)),
    )?;

    // The timeline alone, then while CONCURRENT clients upload without pause.
    let mut alone = timelines(&client, &base, &token, options.seconds).await?;
    let resident_before = server.resident_kib();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut uploaders = Vec::new();
    for _ in 0..CONCURRENT {
        let (client, base, token, body, stop) = (
            client.clone(),
            base.clone(),
            token.clone(),
            body.clone(),
            stop.clone(),
        );
        uploaders.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || latencies.is_empty() {
                let t = Instant::now();
                upload(&client, &base, &token, &body, (width, height))
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut during = timelines(&client, &base, &token, options.seconds.max(2.0)).await?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut concurrent = Vec::new();
    for uploader in uploaders {
        concurrent.extend(uploader.await??);
    }
    let peak = server.peak_memory_kib();
    writeln!(
        out,
        "| POST /media, {CONCURRENT} clients at once | {} | {} | {} | - |",
        concurrent.len(),
        ms(percentile(&mut concurrent, 0.5)),
        ms(percentile(&mut concurrent, 0.99)),
    )?;
    writeln!(
        out,
        "| GET /timeline ({UPLOADER}), no upload running | {} | {} | {} | - |",
        alone.len(),
        ms(percentile(&mut alone, 0.5)),
        ms(percentile(&mut alone, 0.99)),
    )?;
    writeln!(
        out,
        "| GET /timeline ({UPLOADER}), while {CONCURRENT} clients upload | {} | {} | {} | - |",
        during.len(),
        ms(percentile(&mut during, 0.5)),
        ms(percentile(&mut during, 0.99)),
    )?;

    // Reading an image: whole, and revalidated.
    let id = upload(&client, &base, &token, &body, (width, height)).await?;
    let url = format!("{base}/media/{id}");
    let first = client.get(&url).send().await?;
    let etag = first
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or("GET /media/{id} without an ETag")?;
    let image_bytes = first.bytes().await?;
    let decoded = image::load_from_memory_with_format(&image_bytes, image::ImageFormat::Jpeg)?;
    if decoded.width().max(decoded.height()) != width.max(height).min(1_600) {
        return Err("wrong answer, not timed: the served image is not the Media's size".into());
    }
    let (mut whole, mut revalidated) = (Vec::new(), Vec::new());
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < options.seconds {
        let t = Instant::now();
        let response = client.get(&url).send().await?;
        if response.status() != 200 || response.bytes().await? != image_bytes {
            return Err("wrong answer, not timed: GET /media/{id} changed".into());
        }
        whole.push(t.elapsed());
        let t = Instant::now();
        let response = client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await?;
        if response.status() != 304 {
            return Err(format!(
                "wrong answer, not timed: a revalidation answered {}",
                response.status()
            )
            .into());
        }
        revalidated.push(t.elapsed());
    }
    writeln!(
        out,
        "| GET /media/{{id}} ({} KiB), whole | {} | {} | {} | - |",
        image_bytes.len() / 1024,
        whole.len(),
        ms(percentile(&mut whole, 0.5)),
        ms(percentile(&mut whole, 0.99)),
    )?;
    writeln!(
        out,
        "| GET /media/{{id}} with If-None-Match (304) | {} | {} | {} | - |",
        revalidated.len(),
        ms(percentile(&mut revalidated, 0.5)),
        ms(percentile(&mut revalidated, 0.99)),
    )?;
    writeln!(
        out,
        "\nServer resident memory before the {CONCURRENT} concurrent uploads: {} MB; peak (VmHWM) after them: {} MB. Server CPU from /proc/<pid>/stat (user + system) over the one-at-a-time uploads, divided by their number.",
        resident_before.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0)),
        peak.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0)),
    )?;
    drop(server);
    remove_uploads(&db, uploader.id).await?;
    println!("{out}");
    if let Some(path) = &options.output {
        std::fs::write(path, &out)?;
    }
    Ok(())
}

/// `bench run --avatars`: celebrity1 sets an avatar through the API (`PUT /users/me/avatar`), and
/// every account is then given that image as its avatar, so that every card of every list carries
/// an `avatar_url`. Its media id, for [`take_avatars_back`].
pub async fn give_everyone_an_avatar(
    db: &DatabaseConnection,
    client: &reqwest::Client,
    base: &str,
) -> Result<String, BoxError> {
    let token = login(client, base, "celebrity1").await?;
    let (file, _, _) = photo(0.25)?;
    let response = client
        .put(format!("{base}/users/me/avatar"))
        .bearer_auth(&token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(&file))
        .send()
        .await?;
    if response.status() != 200 {
        return Err(format!("PUT /users/me/avatar answered {}", response.status()).into());
    }
    let id = user_by_name(db, "celebrity1")
        .await?
        .avatar_media_id
        .ok_or("celebrity1 has no avatar after PUT /users/me/avatar")?;
    user::Entity::update_many()
        .col_expr(user::Column::AvatarMediaId, Expr::value(id.clone()))
        .exec(db)
        .await?;
    // Checked as a client sees it: a card of a list carries it.
    let page: Value = client
        .get(format!("{base}/users/celebrity1/followers?limit=1"))
        .send()
        .await?
        .json()
        .await?;
    let shown = page["items"][0]["user"]["avatar_url"]
        .as_str()
        .unwrap_or("");
    if !shown.contains(&id) {
        return Err(format!("a follower's card shows avatar_url {shown:?}, not {id}").into());
    }
    Ok(id)
}

/// Undoes [`give_everyone_an_avatar`].
pub async fn take_avatars_back(db: &DatabaseConnection, id: &str) -> Result<(), BoxError> {
    user::Entity::update_many()
        .col_expr(
            user::Column::AvatarMediaId,
            Expr::value(Option::<String>::None),
        )
        .filter(user::Column::AvatarMediaId.eq(id))
        .exec(db)
        .await?;
    media::Entity::delete_many()
        .filter(media::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
