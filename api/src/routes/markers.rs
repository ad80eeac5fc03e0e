//! Markers: the reading position that follows the user from device to device.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{AuthUser, CurrentSession};
use crate::error::{ApiError, FieldErrors};
use crate::extract::JsonBody;
use crate::services::{markers, timeline};
use crate::state::AppState;
use crate::views::markers::Markers;

/// The caller's markers.
#[utoipa::path(get, path = "/markers", tag = "markers", operation_id = "getMarkers",
    responses(
        (status = 200, description = "The caller's markers (`null` for one never set)", body = Markers),
    ),
    security(("bearer" = [])))]
pub async fn get_markers(
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let stored = markers::get(&state.db, me.0.id).await?;
    Ok(HttpResponse::Ok().json(Markers::new(&stored, me.0.id, &state.cursors)))
}

/// Where to move the timeline marker.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TimelinePosition {
    /// A cursor of the caller's timeline (a stream `post` event's `id`, or a timeline page's
    /// `prev_cursor` or `next_cursor`); one the server did not issue to the caller for the
    /// timeline is a 400 `invalid_cursor`.
    #[schema(value_type = String, required = true, min_length = 3, pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub position: Option<String>,
}

/// Where to move the notifications marker.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NotificationsPosition {
    /// Every notification with an id up to this one is read (as `POST /notifications/read`).
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    #[schema(value_type = i64, required = true, example = 12)]
    pub last_read_id: Option<i64>,
}

/// The markers to move; a marker left out stays where it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MoveMarkersRequest {
    pub timeline: Option<TimelinePosition>,
    pub notifications: Option<NotificationsPosition>,
}

/// Moves the caller's markers forward.
///
/// Each marker named moves only forward: an older position, or a lower id, than the one it has
/// changes nothing. A change counts one in the marker's `version` and reaches the caller's other
/// open streams as `event: marker`.
#[utoipa::path(post, path = "/markers", tag = "markers", operation_id = "moveMarkers",
    request_body = MoveMarkersRequest,
    responses(
        (status = 200, description = "The markers as they stand now", body = Markers),
        (status = 400, description = "`invalid_cursor`: `timeline.position` is not a cursor of the caller's timeline that this server issued"),
        (status = 422, description = "`validation_failed`: a named marker lacks its position"),
    ),
    security(("bearer" = [])))]
pub async fn move_markers(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    body: JsonBody<MoveMarkersRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let mut errors = FieldErrors::new();
    let position = match body.timeline {
        Some(TimelinePosition { position: None }) => {
            errors.insert("timeline.position".into(), vec!["is required".into()]);
            None
        }
        Some(TimelinePosition {
            position: Some(cursor),
        }) => Some(cursor),
        None => None,
    };
    let last_read_id = match body.notifications {
        Some(NotificationsPosition { last_read_id: None }) => {
            errors.insert(
                "notifications.last_read_id".into(),
                vec!["is required".into()],
            );
            None
        }
        Some(NotificationsPosition { last_read_id }) => last_read_id,
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let position = position
        .map(|cursor| {
            state
                .cursors
                .decode(&timeline::list_name(me.0.id), cursor.trim())
        })
        .transpose()?;
    let session = CurrentSession::of(&req)?;
    let stored = markers::set(&state.db, &me.0, &session, position, last_read_id).await?;
    Ok(HttpResponse::Ok().json(Markers::new(&stored, me.0.id, &state.cursors)))
}
