//! The operator role: which accounts may use `/admin/...`. It belongs to an account
//! (`users.is_operator`), not to a name, so it dies with the account and a name registered later
//! is never an operator. It is granted and revoked by the server's own command
//! (`social operator grant NAME`, [`crate::cli`]), and at start-up to the accounts that
//! `ADMIN_USERNAMES` names and that exist then ([`grant_at_start`]).

use entity::user;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::domain::username_lookup_key;
use crate::error::ApiError;

/// Makes the account called `username` (any letter case) an operator, or 404 `user_not_found`.
/// Idempotent.
pub async fn grant(db: &impl ConnectionTrait, username: &str) -> Result<(), ApiError> {
    set(db, username, true).await
}

/// Takes the role from the account called `username`, or 404 `user_not_found`. Idempotent.
pub async fn revoke(db: &impl ConnectionTrait, username: &str) -> Result<(), ApiError> {
    set(db, username, false).await
}

async fn set(db: &impl ConnectionTrait, username: &str, operator: bool) -> Result<(), ApiError> {
    let key = username_lookup_key(username).ok_or_else(|| not_found(username))?;
    let matched = user::Entity::update_many()
        .col_expr(user::Column::IsOperator, Expr::val(operator))
        .filter(user::Column::UsernameKey.eq(key))
        .exec(db)
        .await?
        .rows_affected;
    // The rows matched, on every backend (sqlx asks MySQL for found rows, not changed ones:
    // `schema::an_update_that_changes_nothing_still_counts_the_row_it_matched`), so a repeat
    // counts the account it finds.
    if matched == 0 {
        return Err(not_found(username));
    }
    Ok(())
}

fn not_found(username: &str) -> ApiError {
    ApiError::UserNotFound(username.to_owned())
}

/// The operators' usernames, in username order.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<String>, ApiError> {
    Ok(user::Entity::find()
        .select_only()
        .column(user::Column::Username)
        .filter(user::Column::IsOperator.eq(true))
        .order_by_asc(user::Column::UsernameKey)
        .into_tuple()
        .all(db)
        .await?)
}

/// Grants the role to each account that `names` (`ADMIN_USERNAMES`) names and that exists now,
/// logging each grant and each name that no account has (never granted later to whoever
/// registers it).
pub async fn grant_at_start(db: &impl ConnectionTrait, names: &[String]) -> Result<(), ApiError> {
    for name in names {
        match grant(db, name).await {
            Ok(()) => tracing::info!(username = %name, "ADMIN_USERNAMES: operator role granted"),
            Err(ApiError::UserNotFound(_)) => tracing::warn!(
                username = %name,
                "ADMIN_USERNAMES names an account that does not exist: no role granted (a later \
                 registration of that name is no operator; grant it with `social operator grant`)"
            ),
            Err(err) => return Err(err),
        }
    }
    Ok(())
}
