//! Notifications: the list, the unread count, and marking them read.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthUser, CurrentSession};
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::page::{self, Owner, PageQuery};
use crate::services::markers;
use crate::services::notifications::{self, NotificationEntry};
use crate::state::AppState;
use crate::views::{Notification, NotificationPage};

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/notifications", tag = "notifications", operation_id = "listNotifications",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of notifications", body = NotificationPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
    ),
    security(("bearer" = [])))]
pub async fn list_notifications(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    page::list(
        &req,
        &state,
        &query,
        Owner::Caller(&me.0),
        notifications::list_name,
        async |db, me, page| notifications::list(db, me.id, page).await,
        |entry: &NotificationEntry, states| Notification::new(&me.0, entry, states),
    )
    .await
}

/// How many of the caller's notifications are unread.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadCount {
    #[schema(example = 3)]
    pub count: i64,
}

/// How many notifications are unread. Read from the caller's own row: no counting, however many
/// there are.
#[utoipa::path(get, path = "/notifications/unread_count", tag = "notifications", operation_id = "getUnreadCount",
    responses(
        (status = 200, description = "The unread count", body = UnreadCount),
    ),
    security(("bearer" = [])))]
pub async fn unread_count(me: AuthUser) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(UnreadCount {
        count: me.0.unread_notifications.max(0),
    }))
}

/// The read mark to move.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MarkReadRequest {
    /// Every notification with an id up to this one is read. A lower id than before changes
    /// nothing; an id above the caller's newest notification reads them all (and no later one).
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    #[schema(value_type = i64, required = true, example = 12)]
    pub last_read_id: Option<i64>,
}

/// Marks notifications read, up to an id.
#[utoipa::path(post, path = "/notifications/read", tag = "notifications", operation_id = "markNotificationsRead",
    request_body = MarkReadRequest,
    responses(
        (status = 204, description = "Every notification up to that id is read"),
        (status = 422, description = "`validation_failed`: `last_read_id` is missing"),
    ),
    security(("bearer" = [])))]
pub async fn mark_read(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    body: JsonBody<MarkReadRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let last_read_id = body
        .last_read_id
        .ok_or_else(|| ApiError::field("last_read_id", "is required"))?;
    // The notifications marker's position: moving it here counts in its version, and the
    // caller's other devices hear of it, as through POST /markers.
    let session = CurrentSession::of(&req)?;
    markers::set(&state.db, &me.0, &session, None, Some(last_read_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
