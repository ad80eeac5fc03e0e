//! The benchmark times right answers only: before a scenario is timed, its HTTP answer and the
//! answer of its SQL alone are compared with the database read by plain SQL, written here apart
//! from the service's query builders. A mismatch stops the run with an error.

use api::services::keyset::PageRequest;
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::Value;

use crate::run::BoxError;

/// The keyset condition "older than the position", spelled out for any backend.
fn older_than(table: &str, id_column: &str, page: PageRequest) -> String {
    match page.after {
        Some(p) => format!(
            "AND ({table}.created_at < {at} OR ({table}.created_at = {at} AND {table}.{id_column} < {id}))",
            at = p.at,
            id = p.id
        ),
        None => String::new(),
    }
}

/// The first two columns of every row of `sql`, both whole numbers.
async fn pairs_of_i64(db: &DatabaseConnection, sql: String) -> Result<Vec<(i64, i64)>, BoxError> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<i64>(0)?,
                row.try_get_by_index::<i64>(1)?,
            ))
        })
        .collect()
}

async fn column_of_i64(db: &DatabaseConnection, sql: String) -> Result<Vec<i64>, BoxError> {
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    rows.iter()
        .map(|row| Ok(row.try_get_by_index::<i64>(0)?))
        .collect()
}

/// A page of `reader_id`'s timeline as `(post id, shown by a repost)`, written apart from the
/// service's query: every entry (a post by the reader or by an account the reader follows and
/// does not mute; a repost by one of those of a post the reader may read and has not muted the
/// author of), grouped by post, each post at its newest entry (`MAX`, where the service asks
/// `NOT EXISTS` a newer one), newest first. (Values are integers, so formatting them into the
/// text is safe.)
pub async fn timeline_entries(
    db: &DatabaseConnection,
    reader_id: i64,
    page: PageRequest,
) -> Result<Vec<(i64, bool)>, BoxError> {
    let sees = |column: &str| {
        format!(
            "({column} = {reader_id} OR (EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = {reader_id} AND f.followed_id = {column}) \
             AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = {reader_id} AND m.muted_id = {column})))"
        )
    };
    let keyset = match page.after {
        Some(p) => format!(
            "HAVING MAX(e.at) < {at} OR (MAX(e.at) = {at} AND e.post_id < {id})",
            at = p.at,
            id = p.id
        ),
        None => String::new(),
    };
    let sql = format!(
        "SELECT e.post_id, MAX(e.at), MAX(e.written) FROM ( \
           SELECT p.id AS post_id, p.created_at AS at, p.created_at AS written FROM posts p WHERE {writer} \
           UNION ALL \
           SELECT r.post_id, r.created_at, 0 FROM reposts r JOIN users a ON a.id = r.post_author_id \
           WHERE {reposter} \
             AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = {reader_id} AND m.muted_id = a.id) \
             AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = {reader_id} AND b.blocked_id = a.id) \
                                                     OR (b.blocker_id = a.id AND b.blocked_id = {reader_id})) \
             AND a.suspended_at IS NULL \
             AND (a.locked = FALSE OR a.id = {reader_id} \
                  OR EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = {reader_id} AND f.followed_id = a.id)) \
         ) e GROUP BY e.post_id {keyset} \
         ORDER BY MAX(e.at) DESC, e.post_id DESC LIMIT {limit}",
        writer = sees("p.author_id"),
        reposter = sees("r.user_id"),
        limit = page.limit
    );
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    rows.iter()
        .map(|row| {
            let id = row.try_get_by_index::<i64>(0)?;
            let at = row.try_get_by_index::<i64>(1)?;
            let written = row.try_get_by_index::<i64>(2)?;
            // The newest entry is the writing only when no repost is newer than it.
            Ok((id, at != written))
        })
        .collect()
}

/// A timeline page's items as `(post id, shown by a repost)`.
pub fn timeline_items(page: &Value) -> Vec<(i64, bool)> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| Some((i["id"].as_i64()?, !i["reposted_by"].is_null())))
                .collect()
        })
        .unwrap_or_default()
}

/// `[likes, reposts]` of post `id`, counted from their rows.
pub async fn post_counts(db: &DatabaseConnection, id: i64) -> Result<[i64; 2], BoxError> {
    let counts = pairs_of_i64(
        db,
        format!(
            "SELECT (SELECT COUNT(*) FROM likes WHERE post_id = {id}), \
                    (SELECT COUNT(*) FROM reposts WHERE post_id = {id})"
        ),
    )
    .await?;
    let (likes, reposts) = counts.first().copied().unwrap_or((-1, -1));
    Ok([likes, reposts])
}

/// The stored `(likes_count, reposts_count)` of each of `ids`, and their rows counted, in id
/// order: `[stored likes, counted likes, stored reposts, counted reposts]` per post.
pub async fn posts_counts(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<[i64; 4]>, BoxError> {
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT p.likes_count, (SELECT COUNT(*) FROM likes l WHERE l.post_id = p.id), \
                        p.reposts_count, (SELECT COUNT(*) FROM reposts r WHERE r.post_id = p.id) \
                 FROM posts p WHERE p.id IN ({list}) ORDER BY p.id"
            ),
        ))
        .await?;
    rows.iter()
        .map(|row| {
            Ok([
                row.try_get_by_index::<i64>(0)?,
                row.try_get_by_index::<i64>(1)?,
                row.try_get_by_index::<i64>(2)?,
                row.try_get_by_index::<i64>(3)?,
            ])
        })
        .collect()
}

/// The follower ids of a page of `user_id`'s followers, most recent follow first.
pub async fn follower_ids(
    db: &DatabaseConnection,
    user_id: i64,
    page: PageRequest,
) -> Result<Vec<i64>, BoxError> {
    column_of_i64(
        db,
        format!(
            "SELECT f.follower_id FROM follows f WHERE f.followed_id = {user_id} {keyset} \
             ORDER BY f.created_at DESC, f.follower_id DESC LIMIT {limit}",
            keyset = older_than("f", "follower_id", page),
            limit = page.limit
        ),
    )
    .await
}

/// How many rows of `follows` have `column` = `user_id`.
pub async fn follow_count(
    db: &DatabaseConnection,
    column: &str,
    user_id: i64,
) -> Result<i64, BoxError> {
    column_of_i64(
        db,
        format!("SELECT COUNT(*) FROM follows WHERE {column} = {user_id}"),
    )
    .await?
    .first()
    .copied()
    .ok_or_else(|| "COUNT(*) returned no row".into())
}

/// The usernames of `ids`, in their order.
pub async fn usernames(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<String>, BoxError> {
    use entity::user;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let found: std::collections::HashMap<i64, String> = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    ids.iter()
        .map(|id| {
            found
                .get(id)
                .cloned()
                .ok_or_else(|| format!("no user {id}").into())
        })
        .collect()
}

/// Fails the run when `served` is not `expected`.
pub fn same<T: PartialEq + std::fmt::Debug>(
    what: &str,
    served: &[T],
    expected: &[T],
) -> Result<(), BoxError> {
    if served == expected {
        Ok(())
    } else {
        Err(format!(
            "wrong answer, not timed: {what}\n  served:   {served:?}\n  expected: {expected:?}"
        )
        .into())
    }
}

/// The JSON body of a GET that must answer 200.
pub async fn get_json(request: reqwest::RequestBuilder) -> Result<Value, BoxError> {
    let response = request.send().await?;
    let status = response.status();
    let body: Value = response.json().await?;
    if status != 200 {
        return Err(format!("expected 200, got {status}: {body}").into());
    }
    Ok(body)
}

/// The usernames of a page's items (followers or following).
pub fn item_usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["user"]["username"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// How many of `user_id`'s notifications lie above its read mark, counted.
pub async fn unread_notifications(db: &DatabaseConnection, user_id: i64) -> Result<i64, BoxError> {
    let counted = column_of_i64(
        db,
        format!(
            "SELECT COUNT(*) FROM notifications n JOIN users u ON u.id = n.recipient_id \
             WHERE n.recipient_id = {user_id} AND n.id > u.notifications_read_id"
        ),
    )
    .await?;
    Ok(counted.first().copied().unwrap_or(-1))
}

/// Every account that search may show (not suspended): its username and display name, read by
/// plain SQL, for [`search_answer`].
pub async fn searchable_users(
    db: &DatabaseConnection,
) -> Result<Vec<(String, Option<String>)>, BoxError> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT username, display_name FROM users WHERE suspended_at IS NULL",
        ))
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect()
}

/// The usernames a search for `prefix` must answer, in order, worked out in Rust from `users`
/// (not from the key columns or the index ranges the server uses): those whose username or
/// display name, lower-cased, starts with the lower-cased prefix; the exact username first, then
/// by lower-cased username.
pub fn search_answer(users: &[(String, Option<String>)], prefix: &str) -> Vec<String> {
    let prefix = prefix.to_lowercase();
    let mut found: Vec<(bool, String, &String)> = users
        .iter()
        .filter(|(username, display_name)| {
            username.to_lowercase().starts_with(&prefix)
                || display_name
                    .as_ref()
                    .is_some_and(|name| name.to_lowercase().starts_with(&prefix))
        })
        .map(|(username, _)| {
            let key = username.to_lowercase();
            (key != prefix, key, username)
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, _, name)| name.clone()).collect()
}

/// The usernames of a page of user cards (search).
pub fn card_usernames(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["username"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The usernames of the first `limit` followers of `target` whom `viewer` follows, most recent
/// follow of `target` first, worked out in Rust from the `follows` rows.
pub async fn known_followers(
    db: &DatabaseConnection,
    target: i64,
    viewer: i64,
    limit: usize,
) -> Result<Vec<String>, BoxError> {
    let followed: std::collections::HashSet<i64> = column_of_i64(
        db,
        format!("SELECT followed_id FROM follows WHERE follower_id = {viewer}"),
    )
    .await?
    .into_iter()
    .collect();
    // (created_at, follower), to sort newest follow first.
    let mut followers = pairs_of_i64(
        db,
        format!("SELECT created_at, follower_id FROM follows WHERE followed_id = {target}"),
    )
    .await?;
    followers.retain(|(_, follower)| followed.contains(follower));
    followers.sort_unstable_by(|a, b| b.cmp(a));
    let ids: Vec<i64> = followers.iter().take(limit).map(|(_, id)| *id).collect();
    usernames_of(db, &ids).await
}

/// The usernames of `ids`, in that order.
async fn usernames_of(db: &DatabaseConnection, ids: &[i64]) -> Result<Vec<String>, BoxError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT id, username FROM users WHERE id IN ({})",
                list.join(",")
            ),
        ))
        .await?;
    let names: std::collections::HashMap<i64, String> = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get_by_index::<i64>(0)?,
                row.try_get_by_index::<String>(1)?,
            ))
        })
        .collect::<Result<_, BoxError>>()?;
    Ok(ids.iter().filter_map(|id| names.get(id).cloned()).collect())
}

/// `me`'s first `limit` suggestions as `(username, followed_by_count)`, worked out in Rust from
/// the rows: the accounts followed by `me`'s `sample` most recent followees, counted, less `me`,
/// the accounts `me` follows, asked to follow, blocks, is blocked by, mutes or dismissed, and the
/// suspended; ranked by the count, then follower count, then username.
pub async fn suggestions(
    db: &DatabaseConnection,
    me: i64,
    sample: api::services::discovery::Sample,
    limit: usize,
) -> Result<Vec<(String, i64)>, BoxError> {
    // (created_at, followed), to sort most recent follow first.
    let mut mine = pairs_of_i64(
        db,
        format!("SELECT created_at, followed_id FROM follows WHERE follower_id = {me}"),
    )
    .await?;
    mine.sort_unstable_by(|a, b| b.cmp(a));
    // The most recent followees, while the follows they make (counted from the rows) add up to
    // at most the sample's follows; the first always.
    let mut sampled: Vec<i64> = Vec::new();
    let mut read = 0i64;
    for (_, id) in mine
        .iter()
        .take(usize::try_from(sample.followees).unwrap_or(usize::MAX))
    {
        let following = column_of_i64(
            db,
            format!("SELECT COUNT(*) FROM follows WHERE follower_id = {id}"),
        )
        .await?;
        read += following.first().copied().unwrap_or(0);
        if !sampled.is_empty() && read > sample.follows {
            break;
        }
        sampled.push(*id);
    }
    let mut excluded: std::collections::HashSet<i64> = mine.iter().map(|(_, id)| *id).collect();
    excluded.insert(me);
    for sql in [
        format!("SELECT target_id FROM follow_requests WHERE requester_id = {me}"),
        format!("SELECT blocked_id FROM blocks WHERE blocker_id = {me}"),
        format!("SELECT blocker_id FROM blocks WHERE blocked_id = {me}"),
        format!("SELECT muted_id FROM mutes WHERE muter_id = {me}"),
        format!("SELECT dismissed_id FROM suggestion_dismissals WHERE user_id = {me}"),
        "SELECT id FROM users WHERE suspended_at IS NOT NULL".to_owned(),
    ] {
        excluded.extend(column_of_i64(db, sql).await?);
    }
    if sampled.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = sampled.iter().map(i64::to_string).collect();
    let mut counts: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
    for followed in column_of_i64(
        db,
        format!(
            "SELECT followed_id FROM follows WHERE follower_id IN ({})",
            list.join(",")
        ),
    )
    .await?
    {
        if !excluded.contains(&followed) {
            *counts.entry(followed).or_default() += 1;
        }
    }
    let ids: Vec<String> = counts.keys().map(i64::to_string).collect();
    let mut ranked: Vec<(i64, i64, String)> = Vec::new();
    for chunk in ids.chunks(5_000) {
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                format!(
                    "SELECT id, followers_count, username FROM users WHERE id IN ({})",
                    chunk.join(",")
                ),
            ))
            .await?;
        for row in rows {
            let id = row.try_get_by_index::<i64>(0)?;
            ranked.push((
                counts.get(&id).copied().unwrap_or(0),
                row.try_get_by_index::<i64>(1)?,
                row.try_get_by_index::<String>(2)?,
            ));
        }
    }
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
    Ok(ranked
        .into_iter()
        .take(limit)
        .map(|(n, _, name)| (name, n))
        .collect())
}
