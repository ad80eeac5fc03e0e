//! The account archive (`GET /users/me/archive`): whose turn it is. The archive itself is read
//! list by list, page by page, by the route as it streams ([`crate::routes::archive`]), with the
//! same queries and viewer state as the lists of the API.

use entity::user;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::ApiError;
use crate::services::users;
use crate::time::now_millis;

/// At most one archive per account in this time.
pub const ARCHIVE_EVERY_MS: i64 = 10 * 60_000;

/// How many rows of a list one read of the archive takes.
pub const BATCH: u64 = 500;

/// Takes `user`'s turn to download an archive now: one conditional `UPDATE` of
/// `archive_started_at`, so that two requests at once (on any replica) cannot both take it.
/// 429 `rate_limited` with the seconds to wait when the last began less than
/// [`ARCHIVE_EVERY_MS`] ago.
#[tracing::instrument(name = "archive::take_turn", skip_all, fields(user = user))]
pub async fn take_turn(db: &impl ConnectionTrait, user: i64) -> Result<(), ApiError> {
    let now = now_millis();
    let taken = user::Entity::update_many()
        .col_expr(user::Column::ArchiveStartedAt, Expr::val(now))
        .filter(user::Column::Id.eq(user))
        .filter(
            user::Column::ArchiveStartedAt
                .is_null()
                .or(user::Column::ArchiveStartedAt.lte(now - ARCHIVE_EVERY_MS)),
        )
        .exec(db)
        .await?
        .rows_affected;
    if taken == 1 {
        return Ok(());
    }
    match users::find_by_id(db, user).await? {
        None => Err(ApiError::Unauthorized(
            "the account of this access token no longer exists",
        )),
        Some(found) => {
            // A request that read the clock before the winner did sees its start in the future.
            let since = std::cmp::max(now - found.archive_started_at.unwrap_or(now), 0);
            let wait_ms = std::cmp::max(ARCHIVE_EVERY_MS - since, 1_000);
            Err(ApiError::RateLimited {
                retry_after: u64::try_from(wait_ms).unwrap_or(1).div_ceil(1_000),
            })
        }
    }
}
