//! Sessions: one per login, registration or nothing else. A session holds a refresh token (stored
//! only as its SHA-256) and is named by its access tokens (claim `sid`), so ending it (logout,
//! `DELETE /users/me/sessions/{id}`, a password change, suspension, account removal, a reused
//! refresh token) makes them answer 401 at once.
//!
//! Refreshing rotates the token: the one sent is marked used and its successor issued, in one
//! transaction under the account's lock, then the token's. A used token presented again within
//! the grace window gets the same answer (the successor is derived, [`Rotation`]); later it is
//! treated as theft (RFC 9700, section 4.14.2): the whole session ends, and the answer is 401
//! `invalid_refresh_token`.
//!
//! A stream ticket that opened a stream is noted (`stream_tickets`, by its SHA-256), so that it
//! may open the stream again, as a browser's `EventSource` does after a drop, while the session
//! lives.

use entity::{refresh_token, session, stream_ticket, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use sha2::{Digest, Sha256};

use crate::db;
use crate::error::ApiError;
use crate::events::{self, Event};
use crate::time::now_millis;

/// The most live sessions a user has, all of which `GET /users/me/sessions` lists: a new one
/// past it ends the oldest.
pub const MAX_LIVE: u64 = 100;

/// How often `last_used_at` may move, in milliseconds.
const TOUCH_EVERY_MS: i64 = 60_000;

/// Longest user agent kept.
const MAX_USER_AGENT_CHARS: usize = 200;

/// A session's new credentials: its id (for the access token) and a fresh refresh token.
#[derive(Debug)]
pub struct Grant {
    pub session_id: String,
    pub refresh_token: String,
}

/// 32 random bytes, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> Result<String, ApiError> {
    use base64::Engine;
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw)
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
}

/// The stored form of a refresh token: its SHA-256 in lower-case hex. Enough for 32 random bytes,
/// which no one guesses, so no slow hash is needed.
pub(crate) fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `id` has the form of the session ids [`start`] makes (base64url, at most 64
/// characters; today's are 22).
fn is_session_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Makes the refresh token that replaces another at its rotation: an HMAC-SHA256 of the old
/// token under a key of its own, derived from the server secret. So a retry of one refresh
/// computes the same successor (only hashes are stored, so it could not be read back), and nobody
/// without both the old token and the key can.
#[derive(Clone)]
pub struct Rotation {
    key: Vec<u8>,
}

type HmacSha256 = hmac::Hmac<Sha256>;

impl Rotation {
    /// The rotation of a server whose secret is `secret` (a key that tokens and cursors do not
    /// share).
    pub fn new(secret: &[u8]) -> Self {
        Rotation {
            key: mac(secret, b"social-api refresh rotation v1"),
        }
    }

    /// The refresh token that replaces `token`.
    fn successor(&self, token: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac(&self.key, token.as_bytes()))
    }
}

pub(crate) fn mac(key: &[u8], message: &[u8]) -> Vec<u8> {
    use hmac::Mac;
    match <HmacSha256 as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes a key of any length.
        Err(_) => Vec::new(),
    }
}

/// Step: stores `token` as a refresh token of `session_id`, issued `now`.
async fn issue(
    txn: &DatabaseTransaction,
    session_id: &str,
    now: i64,
    token: String,
) -> Result<String, ApiError> {
    refresh_token::ActiveModel {
        hash: Set(hash(&token)),
        session_id: Set(session_id.to_owned()),
        created_at: Set(now),
        used_at: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(token)
}

/// Step: starts a session of `user_id`, from a client that says it is `user_agent`. A user has
/// at most [`MAX_LIVE`] live sessions: the oldest beyond it end here, so that every live session
/// is one that `GET /users/me/sessions` lists and the user can end.
async fn start(
    txn: &DatabaseTransaction,
    user_id: i64,
    user_agent: Option<&str>,
    ttl_ms: i64,
) -> Result<Grant, ApiError> {
    let now = now_millis();
    // 16 random bytes: 22 characters.
    let session_id = random_token(16)?;
    session::ActiveModel {
        id: Set(session_id.clone()),
        user_id: Set(user_id),
        user_agent: Set(user_agent
            .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect())
            .filter(|agent: &String| !agent.is_empty())),
        created_at: Set(now),
        last_used_at: Set(now),
        expires_at: Set(now.saturating_add(ttl_ms)),
    }
    .insert(txn)
    .await?;
    // The others, newest first; every start keeps them at the cap, so this reads at most that
    // many (and once more than it for an account that had more before the cap existed).
    let others: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::Id.ne(session_id.clone()))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;
    let kept = usize::try_from(MAX_LIVE - 1).unwrap_or(usize::MAX);
    let beyond_the_cap: Vec<String> = others.into_iter().skip(kept).collect();
    if !beyond_the_cap.is_empty() {
        end_where(txn, session::Column::Id.is_in(beyond_the_cap)).await?;
    }
    let refresh_token = issue(txn, &session_id, now, random_token(32)?).await?;
    Ok(Grant {
        session_id,
        refresh_token,
    })
}

/// Starts a session of `user`, whose password a login or registration has just verified against
/// `user.password_hash`, in a transaction of its own. Under the account's row lock, which a
/// removal, a suspension and a password change take too, it checks that the account still
/// exists (else 401 `invalid_credentials`), is not suspended (403 `account_suspended`) and still
/// has that password (401 `invalid_credentials`): a session never outlives one of those that
/// committed before it.
#[tracing::instrument(name = "sessions::start_verified", skip_all, fields(user = user.id))]
pub async fn start_verified(
    db: &DatabaseConnection,
    user: &user::Model,
    user_agent: Option<&str>,
    ttl_ms: i64,
) -> Result<Grant, ApiError> {
    db::write(db, async |txn| {
        let current = user::Entity::find_by_id(user.id)
            .lock_exclusive()
            .one(txn)
            .await?
            .ok_or(ApiError::InvalidCredentials)?;
        if current.password_hash != user.password_hash {
            return Err(ApiError::InvalidCredentials);
        }
        if current.suspended_at.is_some() {
            return Err(ApiError::AccountSuspended);
        }
        start(txn, user.id, user_agent, ttl_ms).await
    })
    .await
}

/// What presenting a refresh token came to.
pub enum Refreshed {
    /// The session goes on with a new refresh token; its access token is issued as of
    /// `issued_at` (milliseconds since the epoch), the time of the token's first use, so that a
    /// retry within the grace window gets the same one.
    Granted {
        user: Box<user::Model>,
        grant: Grant,
        issued_at: i64,
    },
    /// The token is unknown, expired, or its session is over.
    Invalid,
    /// The token was used before: its session has been ended.
    Reused,
    /// The session's account is suspended.
    Suspended,
}

/// Notes that the stream ticket `ticket` of session `session_id` opened a stream within its first
/// seconds, so that it may open one again while the session lives ([`ticket_opened`]).
/// Idempotent; a session that ended meanwhile is a 401.
#[tracing::instrument(name = "sessions::note_ticket_use", skip_all)]
pub async fn note_ticket_use(
    db: &impl ConnectionTrait,
    ticket: &str,
    session_id: &str,
) -> Result<(), ApiError> {
    let hashed = hash(ticket);
    if stream_ticket::Entity::find_by_id(hashed.clone())
        .one(db)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let inserted = stream_ticket::ActiveModel {
        hash: Set(hashed),
        session_id: Set(session_id.to_owned()),
        first_used_at: Set(now_millis()),
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        // The same ticket's reconnect raced this one: it is noted.
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(()),
        // The session ended between its check and here.
        Err(err)
            if matches!(
                err.sql_err(),
                Some(SqlErr::ForeignKeyConstraintViolation(_))
            ) =>
        {
            Err(ApiError::Unauthorized(
                "the session of this stream ticket has ended: log in again",
            ))
        }
        Err(err) => Err(err.into()),
    }
}

/// Whether the stream ticket `ticket` of session `session_id` opened a stream within its first
/// seconds (so it may open one again while that session lives).
#[tracing::instrument(name = "sessions::ticket_opened", skip_all)]
pub async fn ticket_opened(
    db: &impl ConnectionTrait,
    ticket: &str,
    session_id: &str,
) -> Result<bool, ApiError> {
    Ok(stream_ticket::Entity::find_by_id(hash(ticket))
        .filter(stream_ticket::Column::SessionId.eq(session_id))
        .one(db)
        .await?
        .is_some())
}

/// The session that the refresh token `token` belongs to, if it is one the server issued (used or
/// not): what the per-session refresh quota is kept by. One primary-key read.
#[tracing::instrument(name = "sessions::of_refresh_token", skip_all)]
pub async fn of_refresh_token(
    db: &impl ConnectionTrait,
    token: &str,
) -> Result<Option<String>, ApiError> {
    Ok(refresh_token::Entity::find_by_id(hash(token))
        .select_only()
        .column(refresh_token::Column::SessionId)
        .into_tuple::<String>()
        .one(db)
        .await?)
}

/// Exchanges `token` for a new one, in one transaction under the account's row lock and then the
/// token's (the order of a password change, which deletes tokens under the account's lock), so
/// a suspension, removal or password change that commits first is seen here, and the session it
/// ended is not brought back. A token sent again less than `grace_ms` after its first use gets
/// that first answer again, while its session lives; later, reuse is taken for theft and ends
/// the session.
#[tracing::instrument(name = "sessions::refresh", skip_all)]
pub async fn refresh(
    db: &DatabaseConnection,
    token: &str,
    ttl_ms: i64,
    grace_ms: i64,
    rotation: &Rotation,
) -> Result<Refreshed, ApiError> {
    let hashed = hash(token);
    db::write(db, async |txn| {
        let now = now_millis();
        // Whose token it is, read without a lock, to take that account's lock first.
        let Some(session_id) = refresh_token::Entity::find_by_id(hashed.clone())
            .select_only()
            .column(refresh_token::Column::SessionId)
            .into_tuple::<String>()
            .one(txn)
            .await?
        else {
            return Ok(Refreshed::Invalid);
        };
        let Some(user_id) = session::Entity::find_by_id(session_id)
            .select_only()
            .column(session::Column::UserId)
            .into_tuple::<i64>()
            .one(txn)
            .await?
        else {
            return Ok(Refreshed::Invalid);
        };
        let Some(user) = user::Entity::find_by_id(user_id)
            .lock_exclusive()
            .one(txn)
            .await?
        else {
            return Ok(Refreshed::Invalid);
        };
        let Some(stored) = refresh_token::Entity::find_by_id(hashed.clone())
            .lock_exclusive()
            .one(txn)
            .await?
        else {
            return Ok(Refreshed::Invalid);
        };
        if let Some(used_at) = stored.used_at {
            if now.saturating_sub(used_at) < grace_ms {
                // A retry: the first answer again, if the session still lives.
                let live = session::Entity::find_by_id(stored.session_id.clone())
                    .filter(session::Column::UserId.eq(user.id))
                    .filter(session::Column::ExpiresAt.gt(now))
                    .one(txn)
                    .await?;
                return Ok(match live {
                    _ if user.suspended_at.is_some() => Refreshed::Suspended,
                    Some(session) => Refreshed::Granted {
                        user: Box::new(user),
                        grant: Grant {
                            session_id: session.id,
                            refresh_token: rotation.successor(token),
                        },
                        issued_at: used_at,
                    },
                    None => Refreshed::Invalid,
                });
            }
            end_where(txn, session::Column::Id.eq(stored.session_id.clone())).await?;
            return Ok(Refreshed::Reused);
        }
        let Some(session) = session::Entity::find_by_id(stored.session_id.clone())
            .filter(session::Column::UserId.eq(user.id))
            .one(txn)
            .await?
        else {
            return Ok(Refreshed::Invalid);
        };
        if user.suspended_at.is_some() {
            return Ok(Refreshed::Suspended);
        }
        if session.expires_at <= now || stored.created_at.saturating_add(ttl_ms) <= now {
            return Ok(Refreshed::Invalid);
        }
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::val(now))
            .filter(refresh_token::Column::Hash.eq(hashed.clone()))
            .exec(txn)
            .await?;
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::val(now))
            .col_expr(
                session::Column::ExpiresAt,
                Expr::val(now.saturating_add(ttl_ms)),
            )
            .filter(session::Column::Id.eq(session.id.clone()))
            .exec(txn)
            .await?;
        let refresh_token = issue(txn, &session.id, now, rotation.successor(token)).await?;
        Ok(Refreshed::Granted {
            user: Box::new(user),
            grant: Grant {
                session_id: session.id,
                refresh_token,
            },
            issued_at: now,
        })
    })
    .await
}

/// The live session `session_id` of the token's user, with the user, in one query; `None` when the
/// session is over (ended or expired) or is not that user's.
#[tracing::instrument(name = "sessions::live_with_user", skip_all, fields(user = user_id))]
pub async fn live_with_user(
    db: &impl ConnectionTrait,
    session_id: &str,
    user_id: i64,
) -> Result<Option<(session::Model, user::Model)>, ApiError> {
    let found = session::Entity::find_by_id(session_id.to_owned())
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now_millis()))
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(session, user)| user.map(|user| (session, user))))
}

/// When the live session `session_id` expires (milliseconds since the epoch), or `None` when it
/// has ended: what an open stream checks when its session's expiry comes (a refresh moves it).
pub async fn expires_at(
    db: &impl ConnectionTrait,
    session_id: &str,
) -> Result<Option<i64>, ApiError> {
    Ok(session::Entity::find_by_id(session_id.to_owned())
        .select_only()
        .column(session::Column::ExpiresAt)
        .filter(session::Column::ExpiresAt.gt(now_millis()))
        .into_tuple()
        .one(db)
        .await?)
}

/// Whether a session last used at `last_used_at` was so more than a minute before `now`, and
/// [`touch`] would move it.
pub fn due_for_touch(last_used_at: i64, now: i64) -> bool {
    now - last_used_at >= TOUCH_EVERY_MS
}

/// Moves `last_used_at` of `user_id`'s session `session_id` when it is more than a minute old: at
/// most one write a minute per session.
#[tracing::instrument(name = "sessions::touch", skip_all, fields(user = user_id))]
pub async fn touch(
    db: &DatabaseConnection,
    session_id: &str,
    user_id: i64,
) -> Result<(), ApiError> {
    let now = now_millis();
    session::Entity::update_many()
        .col_expr(session::Column::LastUsedAt, Expr::val(now))
        .filter(session::Column::Id.eq(session_id.to_owned()))
        .filter(session::Column::LastUsedAt.lt(now - TOUCH_EVERY_MS))
        .exec(db)
        .await?;
    Ok(())
}

/// `user_id`'s live sessions, newest first, at most [`MAX_LIVE`].
#[tracing::instrument(name = "sessions::list", skip_all, fields(user = user_id))]
pub async fn list(db: &DatabaseConnection, user_id: i64) -> Result<Vec<session::Model>, ApiError> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now_millis()))
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .limit(MAX_LIVE)
        .all(db)
        .await?)
}

/// Step: ends the sessions `which` selects (their refresh tokens go with them), and the event
/// streams they hold.
pub async fn end_where(
    txn: &DatabaseTransaction,
    which: impl sea_orm::sea_query::IntoCondition,
) -> Result<(), ApiError> {
    let ids: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(which)
        .into_tuple()
        .all(txn)
        .await?;
    if ids.is_empty() {
        return Ok(());
    }
    session::Entity::delete_many()
        .filter(session::Column::Id.is_in(ids.clone()))
        .exec(txn)
        .await?;
    for session in ids {
        events::emit(txn, Event::SessionEnded { session }).await?;
    }
    Ok(())
}

/// Step: ends every session of `user_id` by expiring it, keeping the rows (a suspension: a refresh
/// then still finds its account, and says it is suspended), and their push subscriptions. The account's streams end with the
/// suspension's own event.
pub async fn expire_all(txn: &DatabaseTransaction, user_id: i64) -> Result<(), ApiError> {
    session::Entity::update_many()
        .col_expr(session::Column::ExpiresAt, Expr::val(0_i64))
        .filter(session::Column::UserId.eq(user_id))
        .exec(txn)
        .await?;
    // The rows stay, so their push subscriptions do not go with them: they go here.
    crate::services::push::unsubscribe_user(txn, user_id).await
}

/// Ends `user_id`'s session `session_id`: 404 `session_not_found` when the user has no such live
/// session.
#[tracing::instrument(name = "sessions::end", skip_all, fields(user = user_id))]
pub async fn end(db: &DatabaseConnection, user_id: i64, session_id: &str) -> Result<(), ApiError> {
    // Ids are base64url: anything else names no session, and is not sent to the database (a NUL
    // is an error there on PostgreSQL, not a miss).
    if !is_session_id(session_id) {
        return Err(ApiError::SessionNotFound);
    }
    db::write(db, async |txn| {
        // One statement: the user's own session or nothing (its refresh tokens cascade).
        let removed = session::Entity::delete_many()
            .filter(session::Column::Id.eq(session_id.to_owned()))
            .filter(session::Column::UserId.eq(user_id))
            .exec(txn)
            .await?
            .rows_affected;
        if removed == 0 {
            return Err(ApiError::SessionNotFound);
        }
        events::emit(
            txn,
            Event::SessionEnded {
                session: session_id.to_owned(),
            },
        )
        .await
    })
    .await
}
