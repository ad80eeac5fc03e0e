//! Follow lists in CSV: the caller's followees written out (`GET /users/me/following.csv`), and a
//! list read in and followed (`POST /users/me/following.csv`) through the very step that
//! `POST /users/{username}/follow` takes ([`follows::follow_in`]): notifications, counts, requests
//! to locked accounts and blocks behave as they do there.
//!
//! The list is bounded before any work ([`MAX_ROWS`] rows, [`MAX_BYTES`] bytes), and imported in
//! bounded batches: names are looked up [`LOOKUP_BATCH`] at a time, and followed
//! [`FOLLOW_BATCH`] to a transaction, whose users' rows are all locked first, in id order (the one
//! order of every writer, [`db::lock_users`]), so a batch never waits on a lock it could deadlock
//! on.

use std::collections::{HashMap, HashSet};

use entity::{follow, user};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::db;
use crate::domain::username_lookup_key;
use crate::error::ApiError;
use crate::services::follows::{self, Direction, FollowOutcome};
use crate::services::keyset::{PageRequest, Position};
use crate::services::users;

/// Most rows a list may have (a header row aside).
pub const MAX_ROWS: usize = 10_000;
/// Largest list, in bytes.
pub const MAX_BYTES: usize = 1024 * 1024;
/// Names looked up in one query.
const LOOKUP_BATCH: usize = 500;
/// Follows written in one transaction.
const FOLLOW_BATCH: usize = 100;
/// Rows of the export read in one query.
const EXPORT_PAGE: u64 = 1_000;

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Follows that began.
    pub followed: u64,
    /// Requests made to (or already waiting at) locked accounts.
    pub requested: u64,
    /// Accounts the caller followed already.
    pub already: u64,
    /// Names of no account (or of a suspended one), as the list wrote them.
    pub not_found: Vec<String>,
    /// The caller itself, and accounts with a block between them and the caller (either way).
    pub refused: Vec<String>,
}

/// The usernames of a CSV list, in its order: the first field of each row, trimmed (a leading `@`
/// dropped); empty rows skipped; a first row `username` (any letter case) is a header; other
/// columns are ignored. A UTF-8 byte order mark, quotes and CRLF line ends are CSV's own. 413
/// `payload_too_large` past [`MAX_ROWS`] rows.
pub fn parse_usernames(body: &[u8]) -> Result<Vec<String>, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut names = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            // Only an I/O error of the reader is an error here: a slice has none.
            Err(err) => return Err(ApiError::internal(err)),
        }
        let Some(field) = record.get(0) else {
            continue;
        };
        let name = String::from_utf8_lossy(field);
        let name = name.trim();
        let name = name.strip_prefix('@').unwrap_or(name);
        let header = first && name.eq_ignore_ascii_case("username");
        first = false;
        if name.is_empty() || header {
            continue;
        }
        if names.len() == MAX_ROWS {
            return Err(ApiError::TooManyRows { limit: MAX_ROWS });
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// `caller` follows each of `names` as `POST /users/{username}/follow` would (see the module).
/// Each name counts once, at its first row.
#[tracing::instrument(name = "follow_lists::import", skip_all, fields(caller = caller.id, names = names.len()))]
pub async fn import(
    db: &DatabaseConnection,
    caller: &user::Model,
    names: Vec<String>,
) -> Result<ImportReport, ApiError> {
    let mut report = ImportReport::default();
    let mut seen = HashSet::new();
    // (the name as written, its lookup key), each key once.
    let mut wanted = Vec::new();
    for name in names {
        match username_lookup_key(&name) {
            Some(key) if seen.insert(key.clone()) => wanted.push((name, key)),
            Some(_) => {}
            None => {
                if seen.insert(name.clone()) {
                    report.not_found.push(name);
                }
            }
        }
    }
    let mut targets = Vec::new();
    for chunk in wanted.chunks(LOOKUP_BATCH) {
        let keys: Vec<String> = chunk.iter().map(|(_, key)| key.clone()).collect();
        let found: HashMap<String, user::Model> = user::Entity::find()
            .filter(user::Column::UsernameKey.is_in(keys))
            .filter(user::Column::SuspendedAt.is_null())
            .all(db)
            .await?
            .into_iter()
            .map(|u| (u.username_key.clone(), u))
            .collect();
        for (name, key) in chunk {
            match found.get(key) {
                Some(target) if target.id == caller.id => report.refused.push(name.clone()),
                Some(target) => targets.push((name.clone(), target.clone())),
                None => report.not_found.push(name.clone()),
            }
        }
    }
    for batch in targets.chunks(FOLLOW_BATCH) {
        let done = db::write(db, async |txn| {
            let ids = std::iter::once(caller.id).chain(batch.iter().map(|(_, t)| t.id));
            db::lock_users(txn, user::Column::Id.is_in(ids)).await?;
            let mut done = ImportReport::default();
            for (name, target) in batch {
                match follows::follow_in(txn, caller, target).await {
                    Ok((FollowOutcome::Created, _)) => done.followed += 1,
                    Ok((FollowOutcome::Requested, _)) => done.requested += 1,
                    Ok((FollowOutcome::AlreadyFollowing, _)) => done.already += 1,
                    Err(ApiError::Blocked(_) | ApiError::CannotFollowSelf) => {
                        done.refused.push(name.clone());
                    }
                    // Suspended or removed since it was looked up.
                    Err(ApiError::UserNotFound(_)) => done.not_found.push(name.clone()),
                    Err(other) => return Err(other),
                }
            }
            Ok(done)
        })
        .await?;
        report.followed += done.followed;
        report.requested += done.requested;
        report.already += done.already;
        report.not_found.extend(done.not_found);
        report.refused.extend(done.refused);
    }
    Ok(report)
}

/// Every account `user_id` follows, with when the follow began, most recent first (the order of
/// the following list), read a page at a time along its index.
#[tracing::instrument(name = "follow_lists::following", skip_all, fields(user = user_id))]
pub async fn following(
    db: &impl ConnectionTrait,
    user_id: i64,
) -> Result<Vec<(String, i64)>, ApiError> {
    let backend = db.get_database_backend();
    let mut out = Vec::new();
    let mut after: Option<Position> = None;
    loop {
        let page = PageRequest::older(EXPORT_PAGE, after);
        let mut rows: Vec<follow::Model> =
            follows::list_query(backend, user_id, Direction::Following, page)
                .all(db)
                .await?;
        let more = rows.len() as u64 > EXPORT_PAGE;
        rows.truncate(EXPORT_PAGE as usize);
        let mut names = users::any_by_ids(db, rows.iter().map(|r| r.followed_id)).await?;
        for row in &rows {
            if let Some(user) = names.remove(&row.followed_id) {
                out.push((user.username, row.created_at));
            }
        }
        match rows.last() {
            Some(last) if more => {
                after = Some(Position {
                    at: last.created_at,
                    id: last.followed_id,
                });
            }
            _ => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_read_with_its_bom_quotes_crlf_header_and_extra_columns() {
        let body = b"\xEF\xBB\xBFusername,followed_at\r\n\"susan\",2026-01-01\r\n@john,x,y\r\n\r\n\"ma\"\"ry\"\r\n  bob  \n";
        assert_eq!(
            parse_usernames(body).unwrap(),
            ["susan", "john", "ma\"ry", "bob"]
        );
        assert_eq!(parse_usernames(b"susan\njohn").unwrap(), ["susan", "john"]);
        assert!(parse_usernames(b"").unwrap().is_empty());
    }

    #[test]
    fn a_list_of_more_than_the_most_rows_is_refused_and_the_most_is_taken() {
        let most = "a\n".repeat(MAX_ROWS);
        assert_eq!(parse_usernames(most.as_bytes()).unwrap().len(), MAX_ROWS);
        let with_header = format!("username\n{most}");
        assert_eq!(
            parse_usernames(with_header.as_bytes()).unwrap().len(),
            MAX_ROWS
        );
        let over = format!("{most}a\n");
        assert!(matches!(
            parse_usernames(over.as_bytes()),
            Err(ApiError::TooManyRows { .. })
        ));
    }
}
