//! A deterministic, skewed social graph, bulk-loaded through the real migrations.
//!
//! Users 1 to 5 are celebrities followed by 100%, 50%, 25%, 12% and 6% of everyone; users 6 to 9
//! are the benchmark's readers, following exactly 10, 100, 1,000 and 5,000 accounts; 50 heavy
//! followers follow 2,000 to 5,000 accounts each; everybody else follows a log-uniformly drawn
//! number of accounts (tens, some hundreds) chosen with a strong preference for popular ones, so
//! that the total comes to `--follows`. Posts are spread over the last year, written more often by
//! popular accounts. Every stored count is exact. Each reader mutes [`READER_MUTES`] of its
//! followees, or half of them when it follows fewer than twice that many (reader10 mutes 5,
//! reader100 50), chosen at random, so timelines pay for muting. `celebrity1` has an unread
//! `follow` notification from each of its followers. One post in [`REPOSTS_PER_POSTS`] is
//! reposted, by accounts drawn as authors are, within a week of its writing (so every reader's
//! followees repost, and some of their timelines' entries are reposts); `celebrity1`'s newest
//! post is liked by [`CELEBRITY_POST_LIKES`] accounts (at most half of everyone).

use std::collections::HashSet;
use std::time::Instant;

use api::Settings;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait};

/// Everyone's password in a seeded database.
pub const PASSWORD: &str = "bench-password";
/// The celebrities' follower shares, in percent.
const CELEBRITY_SHARES: [u64; 5] = [100, 50, 25, 12, 6];
/// The readers' followee counts; reader `n` is called `reader{n}`.
pub const READER_FOLLOWEES: [usize; 4] = [10, 100, 1_000, 5_000];
const HEAVY_FOLLOWERS: usize = 50;
/// How many of its followees each reader mutes (at most half of them).
pub const READER_MUTES: usize = 100;
const DAY_MS: i64 = 86_400_000;
/// One repost for this many posts.
pub const REPOSTS_PER_POSTS: usize = 20;
/// How many accounts like celebrity1's newest post.
pub const CELEBRITY_POST_LIKES: usize = 10_000;

pub struct SeedOptions {
    pub database_url: String,
    pub users: usize,
    pub follows: usize,
    pub posts: usize,
    pub seed: u64,
    pub batch: usize,
}

/// The username of user `id` in a seeded database.
pub fn username(id: usize) -> String {
    match id {
        1..=5 => format!("celebrity{id}"),
        6..=9 => format!("reader{}", READER_FOLLOWEES[id - 6]),
        _ => format!("user{id}"),
    }
}

/// The display name of user `id` in a seeded database.
pub fn display_name(id: usize) -> String {
    format!("User {id}")
}

pub async fn run(options: SeedOptions) -> Result<(), Box<dyn std::error::Error>> {
    let n = options.users;
    if n < 20 {
        return Err("--users must be at least 20".into());
    }
    let mut settings = Settings::for_database(options.database_url.clone());
    // One connection, so that the session settings below apply to every insert.
    settings.database_pool_size = 1;
    let db = api::db::connect_and_migrate(&settings).await?;
    if entity::user::Entity::find().count(&db).await? > 0 {
        return Err("the database already has users: seed an empty database".into());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        db.execute_unprepared("SET synchronous_commit = off")
            .await?;
    }
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let now = api::time::now_millis();
    let year_ago = now - 365 * DAY_MS;

    // Accounts are created over the two years before the posts start.
    let created: Vec<i64> = (0..=n)
        .map(|_| year_ago - rng.random_range(0..365 * DAY_MS))
        .collect();

    println!("generating the follow graph ...");
    let follows = follow_graph(&mut rng, n, options.follows, &created, now);
    println!("generating {} posts ...", options.posts);
    let mut posts: Vec<(usize, i64)> = (0..options.posts)
        .map(|_| {
            let author = skewed(&mut rng, n, 2.0);
            let at = year_ago.max(created[author]) + rng.random_range(0..DAY_MS * 365);
            (author, at.min(now))
        })
        .collect();
    posts.sort_by_key(|(_, at)| *at);

    let mut followers = vec![0i64; n + 1];
    let mut following = vec![0i64; n + 1];
    for (follower, followed, _) in &follows {
        following[*follower] += 1;
        followers[*followed] += 1;
    }
    let mut post_counts = vec![0i64; n + 1];
    for (author, _) in &posts {
        post_counts[*author] += 1;
    }
    // Reposts: (post index, reposter, at), one per post and account, each at its own
    // millisecond and after its post's, as the posts' clock gives them.
    println!(
        "generating {} reposts ...",
        options.posts / REPOSTS_PER_POSTS
    );
    let mut reposted: HashSet<(usize, usize)> = HashSet::new();
    let mut reposts: Vec<(usize, usize, i64)> = Vec::new();
    while !posts.is_empty() && reposts.len() < options.posts / REPOSTS_PER_POSTS {
        let post = rng.random_range(0..posts.len());
        let reposter = skewed(&mut rng, n, 1.5);
        if reposted.insert((post, reposter)) {
            let at = (posts[post].1 + 1 + rng.random_range(0..DAY_MS * 7)).min(now);
            reposts.push((post, reposter, at));
        }
    }
    reposts.sort_by_key(|(_, _, at)| *at);
    let mut last = i64::MIN;
    for (_, _, at) in &mut reposts {
        *at = (*at).max(last + 1);
        last = *at;
    }
    let mut reposts_count = vec![0i64; posts.len()];
    for (post, _, _) in &reposts {
        reposts_count[*post] += 1;
    }
    // celebrity1's newest post, liked by many.
    let liked_post = posts.iter().rposition(|(author, _)| *author == 1);
    let likers: Vec<usize> = match liked_post {
        Some(_) => (2..=n).take(CELEBRITY_POST_LIKES.min(n / 2)).collect(),
        None => Vec::new(),
    };

    let hash = api::auth::Passwords::new()?
        .hash(PASSWORD.to_owned())
        .await?;
    insert_rows(&db, "users", "id, username, username_key, email, email_key, password_hash, display_name, display_name_key, bio, created_at, followers_count, following_count, posts_count", n, options.batch, |id| {
        let id = id + 1;
        let name = username(id);
        let display = display_name(id);
        format!(
            "({id}, '{name}', '{key}', '{name}@bench.example', '{key}@bench.example', '{hash}', '{display}', '{display_key}', NULL, {}, {}, {}, {})",
            created[id], followers[id], following[id], post_counts[id],
            key = name.to_ascii_lowercase(),
            display_key = api::domain::search_key(&display),
        )
    })
    .await?;
    // User search's rows: every prefix of each display name's key, with the username key
    // (migration 16; the service writes them on register).
    let prefixes: Vec<(String, String, usize)> = (1..=n)
        .flat_map(|id| {
            let key = api::domain::search_key(&display_name(id));
            let username_key = username(id).to_ascii_lowercase();
            api::domain::search_prefixes(&key)
                .map(|prefix| (prefix.to_owned(), username_key.clone(), id))
                .collect::<Vec<_>>()
        })
        .collect();
    insert_rows(
        &db,
        "display_name_prefixes",
        "prefix, username_key, user_id",
        prefixes.len(),
        options.batch,
        |i| {
            let (prefix, username_key, id) = &prefixes[i];
            format!("('{prefix}', '{username_key}', {id})")
        },
    )
    .await?;
    insert_rows(
        &db,
        "follows",
        "follower_id, followed_id, created_at",
        follows.len(),
        options.batch,
        |i| {
            let (follower, followed, at) = follows[i];
            format!("({follower}, {followed}, {at})")
        },
    )
    .await?;
    insert_rows(
        &db,
        "posts",
        "id, author_id, body, created_at, reposts_count, likes_count",
        posts.len(),
        options.batch,
        |i| {
            let (author, at) = posts[i];
            let likes = if Some(i) == liked_post {
                likers.len()
            } else {
                0
            };
            format!(
                "({}, {author}, 'Post number {} by {}, about nothing much.', {at}, {}, {likes})",
                i + 1,
                i + 1,
                username(author),
                reposts_count[i],
            )
        },
    )
    .await?;
    insert_rows(
        &db,
        "reposts",
        "post_id, user_id, post_author_id, created_at",
        reposts.len(),
        options.batch,
        |i| {
            let (post, reposter, at) = reposts[i];
            format!("({}, {reposter}, {}, {at})", post + 1, posts[post].0)
        },
    )
    .await?;
    if let Some(post) = liked_post {
        let at = posts[post].1;
        insert_rows(
            &db,
            "likes",
            "post_id, user_id, created_at",
            likers.len(),
            options.batch,
            |i| format!("({}, {}, {})", post + 1, likers[i], at + 1 + i as i64),
        )
        .await?;
    }
    // The posts' clock starts past every seeded position.
    let newest = posts
        .iter()
        .map(|(_, at)| *at)
        .chain(reposts.iter().map(|(_, _, at)| *at))
        .max()
        .unwrap_or(0);
    db.execute_unprepared(&format!("UPDATE post_clocks SET at = {newest}"))
        .await?;

    // The readers' mutes: the first of their followees in the generated (random) order.
    let mut mutes = Vec::new();
    for (i, count) in READER_FOLLOWEES.iter().enumerate() {
        let reader = 6 + i;
        let muted = READER_MUTES.min(count / 2);
        mutes.extend(
            follows
                .iter()
                .filter(|(follower, _, _)| *follower == reader)
                .take(muted)
                .map(|(_, followed, _)| (reader, *followed)),
        );
    }
    insert_rows(
        &db,
        "mutes",
        "muter_id, muted_id, created_at",
        mutes.len(),
        options.batch,
        |i| {
            let (muter, muted) = mutes[i];
            format!("({muter}, {muted}, {now})")
        },
    )
    .await?;

    // celebrity1 has one unread `follow` notification from each of its followers.
    let told: Vec<(usize, i64)> = follows
        .iter()
        .filter(|(_, followed, _)| *followed == 1)
        .map(|(follower, _, at)| (*follower, *at))
        .collect();
    insert_rows(
        &db,
        "notifications",
        "recipient_id, account_id, kind, created_at",
        told.len(),
        options.batch,
        |i| {
            let (follower, at) = told[i];
            format!("(1, {follower}, 'follow', {at})")
        },
    )
    .await?;
    db.execute_unprepared(&format!(
        "UPDATE users SET unread_notifications = {} WHERE id = 1",
        told.len()
    ))
    .await?;

    if db.get_database_backend() == DbBackend::Postgres {
        for table in ["users", "posts"] {
            db.execute_unprepared(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))"
            ))
            .await?;
        }
    }
    println!("analyzing ...");
    match db.get_database_backend() {
        // Sets the visibility map too, so index-only scans need no heap fetches.
        DbBackend::Postgres => db.execute_unprepared("VACUUM (ANALYZE)").await?,
        // MySQL/MariaDB name the tables.
        DbBackend::MySql => {
            db.execute_unprepared(
                "ANALYZE TABLE users, display_name_prefixes, follows, posts, mutes, notifications, reposts, likes",
            )
            .await?
        }
        _ => db.execute_unprepared("ANALYZE").await?,
    };
    println!(
        "seeded {n} users, {} follows, {} mutes, {} posts, {} reposts and {} likes in {:.1?}",
        follows.len(),
        mutes.len(),
        posts.len(),
        reposts.len(),
        likers.len(),
        started.elapsed()
    );
    Ok(())
}

/// A user id in 1..=n, drawn with a preference for low ids that grows with `power`.
fn skewed(rng: &mut StdRng, n: usize, power: f64) -> usize {
    let u: f64 = rng.random_range(0.0..1.0);
    ((u.powf(power) * n as f64) as usize).clamp(1, n)
}

fn follow_graph(
    rng: &mut StdRng,
    n: usize,
    total: usize,
    created: &[i64],
    now: i64,
) -> Vec<(usize, usize, i64)> {
    let mut follows = Vec::with_capacity(total + n);
    let add_all = |follows: &mut Vec<(usize, usize, i64)>,
                   rng: &mut StdRng,
                   follower: usize,
                   targets: HashSet<usize>| {
        for followed in targets {
            let since = created[follower].max(created[followed]);
            follows.push((
                follower,
                followed,
                since + rng.random_range(0..(now - since).max(1)),
            ));
        }
    };
    let ordinary = |id: usize| id > 9 + HEAVY_FOLLOWERS;

    // Each reader and heavy follower picks uniformly among everyone else.
    for (i, count) in READER_FOLLOWEES.iter().enumerate() {
        let reader = 6 + i;
        let targets = distinct(rng, n, (*count).min(n - 1), reader, |rng| {
            rng.random_range(1..=n)
        });
        add_all(&mut follows, rng, reader, targets);
    }
    for heavy in 10..10 + HEAVY_FOLLOWERS.min(n - 10) {
        let count = rng.random_range(2_000..=5_000).min(n - 1);
        let targets = distinct(rng, n, count, heavy, |rng| rng.random_range(1..=n));
        add_all(&mut follows, rng, heavy, targets);
    }
    // Celebrities are followed by a share of everybody else.
    for follower in (1..=n).filter(|id| ordinary(*id)) {
        for (c, share) in CELEBRITY_SHARES.iter().enumerate() {
            if rng.random_range(0..100) < *share {
                let since = created[follower].max(created[c + 1]);
                follows.push((
                    follower,
                    c + 1,
                    since + rng.random_range(0..(now - since).max(1)),
                ));
            }
        }
    }
    // Everyone else follows a log-uniform number of accounts, preferring popular ones, to reach
    // the requested total.
    let ordinary_count = (1..=n).filter(|id| ordinary(*id)).count().max(1);
    let budget = total.saturating_sub(follows.len());
    let mean = budget as f64 / ordinary_count as f64;
    let (low, high) = ((mean / 5.0).max(1.0), (mean * 5.0).max(2.0));
    let scale = mean / ((high - low) / (high / low).ln());
    for follower in (1..=n).filter(|id| ordinary(*id)) {
        let draw = (rng.random_range(low.ln()..high.ln())).exp() * scale;
        let count = (draw.round() as usize).min(n - 1 - CELEBRITY_SHARES.len());
        let targets = distinct(rng, n, count, follower, |rng| 5 + skewed(rng, n - 5, 3.0));
        add_all(&mut follows, rng, follower, targets);
    }
    // The celebrity edges above may repeat an ordinary pick: keep one of each pair.
    let mut seen = HashSet::with_capacity(follows.len());
    follows.retain(|(a, b, _)| seen.insert((*a, *b)));
    follows
}

/// `count` distinct ids drawn by `draw`, never `exclude`.
fn distinct(
    rng: &mut StdRng,
    n: usize,
    count: usize,
    exclude: usize,
    mut draw: impl FnMut(&mut StdRng) -> usize,
) -> HashSet<usize> {
    let mut picked = HashSet::with_capacity(count);
    let mut attempts = 0;
    while picked.len() < count && attempts < count * 50 + 1_000 {
        let id = draw(rng);
        if id != exclude && (1..=n).contains(&id) {
            picked.insert(id);
        }
        attempts += 1;
    }
    picked
}

/// Inserts `count` rows, `batch` to a statement, each row's SQL values given by `row(i)`. The
/// values are generated here (numbers and fixed ASCII text), so they are written inline.
async fn insert_rows(
    db: &DatabaseConnection,
    table: &str,
    columns: &str,
    count: usize,
    batch: usize,
    row: impl Fn(usize) -> String,
) -> Result<(), sea_orm::DbErr> {
    let bar = ProgressBar::new(count as u64).with_style(
        ProgressStyle::with_template(&format!(
            "{table:>8} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut start = 0;
    while start < count {
        let end = (start + batch).min(count);
        let values: Vec<String> = (start..end).map(&row).collect();
        db.execute_unprepared(&format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values.join(",")
        ))
        .await?;
        bar.set_position(end as u64);
        start = end;
    }
    bar.finish();
    Ok(())
}
