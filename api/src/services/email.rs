//! Email verification and password reset: the tokens, and the mail that carries them.
//!
//! A token is random (an HMAC-SHA256 of a 256-bit random nonce, 256 bits), stored only as its
//! SHA-256 (`email_tokens`), single-use, and lives [`VERIFY_TTL_MS`] or [`RESET_TTL_MS`]. The mail
//! is an outbox row ([`outbox::enqueue`]) written in the transaction that stores the token; it
//! holds the nonce, not the token, which the worker derives again with the server's key
//! ([`Mailing::token`]): whoever reads the database alone (a backup, a replica) finds no usable
//! token in it.
//!
//! `POST /auth/password/forgot` does the same work whatever the address: it writes one outbox row
//! of kind [`PASSWORD_FORGOT`] naming the address, and answers. The worker then looks the address
//! up ([`process_forgot`]) and, when an account has it, stores a reset token and writes its mail,
//! in one transaction. So neither the answer nor its time says whether the address has an account.

use entity::{email_token, session, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::db;
use crate::domain::email_lookup_key;
use crate::error::ApiError;
use crate::services::sessions::{hash, mac, random_token};
use crate::services::{outbox, sessions, users};
use crate::time::now_millis;

/// How long a verification token lives.
pub const VERIFY_TTL_MS: i64 = 24 * 3_600_000;
/// How long a reset token lives.
pub const RESET_TTL_MS: i64 = 30 * 60_000;
/// At most one verification mail per user in this long.
pub const VERIFICATION_EVERY_MS: i64 = 60_000;

/// The outbox kind of a mail to send ([`MailPayload`]).
pub const MAIL: &str = "mail";
/// The outbox kind of a reset asked for an address ([`ForgotPayload`]), looked up by the worker.
pub const PASSWORD_FORGOT: &str = "password_forgot";

/// What a token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Confirms the address it was mailed to.
    Verify,
    /// Sets a new password.
    Reset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Verify => "verify",
            Purpose::Reset => "reset",
        }
    }

    fn ttl_ms(self) -> i64 {
        match self {
            Purpose::Verify => VERIFY_TTL_MS,
            Purpose::Reset => RESET_TTL_MS,
        }
    }
}

/// The payload of a [`MAIL`] row: whom to write, which mail, and the nonce its token is derived
/// from.
#[derive(Debug, Serialize, Deserialize)]
pub struct MailPayload {
    pub to: String,
    pub username: String,
    pub purpose: Purpose,
    pub nonce: String,
}

/// The payload of a [`PASSWORD_FORGOT`] row: the address as it was sent.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForgotPayload {
    pub email: String,
}

/// Whether mail is on (`SMTP_URL`), and the key that mailed tokens are derived with.
#[derive(Clone)]
pub struct Mailing {
    key: Vec<u8>,
    /// Mail is on: tokens are made and mailed. Off, nothing is written (there is nobody to send
    /// it), and the endpoints answer as they would.
    pub enabled: bool,
}

impl Mailing {
    /// The mailing of a server whose secret is `secret` (a key that no other token shares).
    pub fn new(secret: &[u8], enabled: bool) -> Self {
        Mailing {
            key: mac(secret, b"social-api mailed tokens v1"),
            enabled,
        }
    }

    /// The token that `nonce` stands for.
    pub fn token(&self, nonce: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac(&self.key, nonce.as_bytes()))
    }
}

/// Step: makes a token of `purpose` for `user` and writes its mail to the outbox, in the caller's
/// transaction. A reset token replaces the user's earlier ones.
async fn issue(
    txn: &DatabaseTransaction,
    mailing: &Mailing,
    user: &user::Model,
    purpose: Purpose,
) -> Result<(), ApiError> {
    let now = now_millis();
    if purpose == Purpose::Reset {
        email_token::Entity::delete_many()
            .filter(email_token::Column::UserId.eq(user.id))
            .filter(email_token::Column::Purpose.eq(Purpose::Reset.as_str()))
            .exec(txn)
            .await?;
    }
    let nonce = random_token(32)?;
    email_token::ActiveModel {
        hash: Set(hash(&mailing.token(&nonce))),
        user_id: Set(user.id),
        purpose: Set(purpose.as_str().to_owned()),
        email: Set(user.email.clone()),
        created_at: Set(now),
        expires_at: Set(now + purpose.ttl_ms()),
        used_at: Set(None),
    }
    .insert(txn)
    .await?;
    let payload = MailPayload {
        to: user.email.clone(),
        username: user.username.clone(),
        purpose,
        nonce,
    };
    outbox::enqueue(
        txn,
        MAIL,
        serde_json::to_string(&payload).map_err(ApiError::internal)?,
    )
    .await
}

/// Step: the verification mail of a new account, in its registration's transaction.
pub async fn issue_verification(
    txn: &DatabaseTransaction,
    mailing: &Mailing,
    user: &user::Model,
) -> Result<(), ApiError> {
    if !mailing.enabled {
        return Ok(());
    }
    issue(txn, mailing, user, Purpose::Verify).await
}

/// Mails `caller` a new verification token: 429 `rate_limited` (with the seconds to wait) when one
/// was made less than [`VERIFICATION_EVERY_MS`] ago, registration's included. An address already
/// verified is not mailed again. Returns whether a mail was written.
#[tracing::instrument(name = "email::request_verification", skip_all, fields(user = caller.id))]
pub async fn request_verification(
    db: &DatabaseConnection,
    mailing: &Mailing,
    caller: &user::Model,
) -> Result<bool, ApiError> {
    if !mailing.enabled {
        return Ok(false);
    }
    db::write(db, async |txn| {
        // Under the caller's lock, so two requests at once cannot both pass the check.
        users::lock(txn, caller, &[]).await?;
        let Some(user) = users::find_by_id(txn, caller.id).await? else {
            return Err(ApiError::Unauthorized(
                "the account of this access token no longer exists",
            ));
        };
        if user.email_verified_at.is_some() {
            return Ok(false);
        }
        let last: Option<i64> = email_token::Entity::find()
            .select_only()
            .column(email_token::Column::CreatedAt)
            .filter(email_token::Column::UserId.eq(user.id))
            .filter(email_token::Column::Purpose.eq(Purpose::Verify.as_str()))
            .order_by_desc(email_token::Column::CreatedAt)
            .limit(1)
            .into_tuple()
            .one(txn)
            .await?;
        let now = now_millis();
        if let Some(last) = last
            && now - last < VERIFICATION_EVERY_MS
        {
            let wait_ms = VERIFICATION_EVERY_MS - (now - last);
            return Err(ApiError::RateLimited {
                retry_after: u64::try_from(wait_ms).unwrap_or(1).div_ceil(1_000).max(1),
            });
        }
        issue(txn, mailing, &user, Purpose::Verify).await?;
        Ok(true)
    })
    .await
}

/// The live token of `purpose` whose hash is that of `token`, locked for its use: its user's row
/// is locked, then the token is taken by the one `UPDATE` that may take it (unused, unexpired).
/// 400 `invalid_token` otherwise.
async fn take(
    txn: &DatabaseTransaction,
    token: &str,
    purpose: Purpose,
) -> Result<email_token::Model, ApiError> {
    let hashed = hash(token);
    let row = email_token::Entity::find_by_id(hashed.clone())
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .one(txn)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    db::lock_users(txn, user::Column::Id.eq(row.user_id)).await?;
    let now = now_millis();
    let taken = email_token::Entity::update_many()
        .col_expr(email_token::Column::UsedAt, Expr::val(now))
        .filter(email_token::Column::Hash.eq(hashed))
        .filter(email_token::Column::UsedAt.is_null())
        .filter(email_token::Column::ExpiresAt.gt(now))
        .exec(txn)
        .await?
        .rows_affected;
    if taken == 1 {
        Ok(row)
    } else {
        Err(ApiError::InvalidToken)
    }
}

/// Step: marks `user_id`'s address verified if it is still `email`, the one a token was mailed
/// to; whether it is.
async fn mark_verified(
    txn: &DatabaseTransaction,
    user_id: i64,
    email: &str,
) -> Result<bool, ApiError> {
    let Some(user) = users::find_by_id(txn, user_id).await? else {
        return Ok(false);
    };
    if user.email != email {
        return Ok(false);
    }
    if user.email_verified_at.is_none() {
        user::Entity::update_many()
            .col_expr(user::Column::EmailVerifiedAt, Expr::val(now_millis()))
            .filter(user::Column::Id.eq(user_id))
            .exec(txn)
            .await?;
    }
    users::stamp(txn, user_id).await?;
    Ok(true)
}

/// Confirms the address a verification token was mailed to: 400 `invalid_token` for a token that
/// is unknown, used or expired (or mailed to an address the account no longer has).
#[tracing::instrument(name = "email::verify", skip_all)]
pub async fn verify(db: &DatabaseConnection, token: &str) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        let row = take(txn, token, Purpose::Verify).await?;
        if mark_verified(txn, row.user_id, &row.email).await? {
            Ok(())
        } else {
            Err(ApiError::InvalidToken)
        }
    })
    .await
}

/// Asks for a reset token for `email`: one outbox row, whatever the address (see the module).
#[tracing::instrument(name = "email::request_reset", skip_all)]
pub async fn request_reset(
    db: &DatabaseConnection,
    mailing: &Mailing,
    email: &str,
) -> Result<(), ApiError> {
    if !mailing.enabled {
        return Ok(());
    }
    let payload = serde_json::to_string(&ForgotPayload {
        email: email.to_owned(),
    })
    .map_err(ApiError::internal)?;
    db::write(db, async |txn| {
        outbox::enqueue(txn, PASSWORD_FORGOT, payload.clone()).await
    })
    .await
}

/// The worker's side of [`request_reset`]: when an account that is not suspended has the address,
/// its new reset token (which replaces the older ones) and the mail, in one transaction; nothing
/// otherwise.
#[tracing::instrument(name = "email::process_forgot", skip_all)]
pub async fn process_forgot(
    db: &DatabaseConnection,
    mailing: &Mailing,
    payload: &str,
) -> Result<(), ApiError> {
    let ForgotPayload { email } = serde_json::from_str(payload).map_err(ApiError::internal)?;
    let Some(key) = email_lookup_key(&email) else {
        return Ok(());
    };
    let Some(found) = user::Entity::find()
        .filter(user::Column::EmailKey.eq(key))
        .one(db)
        .await?
    else {
        return Ok(());
    };
    // A transaction of its own rather than `db::write`: the worker's task must be `Send`. One
    // that loses a conflict fails, and the worker tries the row again.
    let txn = db::begin_write(db).await?;
    let live = db::lock_live_users(&txn, user::Column::Id.eq(found.id)).await?;
    if let (true, Some(user)) = (
        live.contains(&found.id),
        users::find_by_id(&txn, found.id).await?,
    ) {
        issue(&txn, mailing, &user, Purpose::Reset).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Sets the password of the account a reset token was mailed for, to `password_hash`, and ends
/// every session of it (their tokens answer 401 from then on). Receiving the mail proves the
/// address too: an unverified one that is still the account's is verified. 400 `invalid_token`
/// for a token that is unknown, used or expired.
#[tracing::instrument(name = "email::reset_password", skip_all)]
pub async fn reset_password(
    db: &DatabaseConnection,
    token: &str,
    password_hash: String,
) -> Result<(), ApiError> {
    db::write(db, async |txn| {
        let row = take(txn, token, Purpose::Reset).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::val(password_hash.clone()))
            .filter(user::Column::Id.eq(row.user_id))
            .exec(txn)
            .await?;
        mark_verified(txn, row.user_id, &row.email).await?;
        sessions::end_where(txn, session::Column::UserId.eq(row.user_id)).await
    })
    .await
}

/// Removes the tokens past their expiry: the sweep, once an hour.
pub async fn sweep(db: &impl ConnectionTrait) -> Result<u64, ApiError> {
    Ok(email_token::Entity::delete_many()
        .filter(email_token::Column::ExpiresAt.lte(now_millis()))
        .exec(db)
        .await?
        .rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailed_token_is_derived_from_its_nonce_under_the_servers_key_only() {
        let one = Mailing::new(b"one secret of at least thirty-two bytes", true);
        let other = Mailing::new(b"another secret of at least thirty-two bytes", true);
        assert_eq!(one.token("nonce"), one.token("nonce"));
        assert_ne!(one.token("nonce"), one.token("other nonce"));
        assert_ne!(one.token("nonce"), other.token("nonce"));
        // 256 bits, base64url without padding.
        assert_eq!(one.token("nonce").len(), 43);
    }
}
