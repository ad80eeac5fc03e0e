//! The caller's sessions, and changing the password.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthUser, CurrentSession};
use crate::domain::Password;
use crate::error::{ApiError, FieldErrors};
use crate::extract::JsonBody;
use crate::services::{sessions, users};
use crate::state::AppState;
use crate::time::Timestamp;

/// The body of `PUT /users/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    pub current_password: Option<String>,
    /// {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters.
    #[schema(value_type = String, required = true, example = "battery staple horse")]
    pub new_password: Option<String>,
}

/// One login of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Names the session in `DELETE /users/me/sessions/{id}`.
    #[schema(example = "q3Vt0bX8oKp2mQ1r9wYzLg")]
    pub id: String,
    pub created_at: Timestamp,
    /// When one of its tokens was last used, to the minute.
    pub last_used_at: Timestamp,
    /// The `User-Agent` of the client that logged in, if it sent one.
    pub user_agent: Option<String>,
    /// Whether this is the session of the token that asks.
    pub current: bool,
}

/// The caller's live sessions, newest first: every one of them, since an account has at most
/// {MAX_LIVE_SESSIONS} (a login past that ends the oldest).
#[utoipa::path(get, path = "/users/me/sessions", tag = "accounts", operation_id = "listSessions",
    responses(
        (status = 200, description = "Every live session of the caller (at most {MAX_LIVE_SESSIONS})", body = [Session]),
    ),
    security(("bearer" = [])))]
pub async fn list_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let current = CurrentSession::of(&req)?;
    // From the primary, as the authentication step reads sessions: a login does not stamp
    // `last_write_at`, and the new session must be listed at once.
    let items: Vec<Session> = sessions::list(&state.db, me.0.id)
        .await?
        .into_iter()
        .map(|session| Session {
            current: session.id == current,
            id: session.id,
            created_at: Timestamp(session.created_at),
            last_used_at: Timestamp(session.last_used_at),
            user_agent: session.user_agent,
        })
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// Ends one of the caller's sessions (its tokens answer 401 from then on).
#[utoipa::path(delete, path = "/users/me/sessions/{id}", tag = "accounts", operation_id = "deleteSession",
    params(("id" = String, Path, description = "A session id from `GET /users/me/sessions`", max_length = 64)),
    responses(
        (status = 204, description = "The session has ended"),
        (status = 404, description = "`session_not_found`: the caller has no such session"),
    ),
    security(("bearer" = [])))]
pub async fn delete_session(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if id.len() > 64 {
        return Err(ApiError::SessionNotFound);
    }
    sessions::end(&state.db, me.0.id, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes the caller's password; every other session of the caller ends.
#[utoipa::path(put, path = "/users/me/password", tag = "accounts", operation_id = "changePassword",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "The password is changed; this session goes on, every other one has ended"),
        (status = 422, description = "`validation_failed`: `current_password` is incorrect, or `new_password` breaks the rule"),
    ),
    security(("bearer" = [])))]
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    body: JsonBody<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let current_session = CurrentSession::of(&req)?;
    let mut errors = FieldErrors::new();
    let new_password = match body.new_password.as_deref().map(Password::parse) {
        None => Err("is required".to_owned()),
        Some(parsed) => parsed,
    };
    let new_password = new_password
        .map_err(|message| {
            errors
                .entry("new_password".to_owned())
                .or_default()
                .push(message)
        })
        .ok();
    match body.current_password {
        None => errors
            .entry("current_password".to_owned())
            .or_default()
            .push("is required".to_owned()),
        Some(current) => {
            let matches = state
                .passwords
                .verify(current, me.0.password_hash.clone())
                .await?;
            if !matches {
                errors
                    .entry("current_password".to_owned())
                    .or_default()
                    .push("is incorrect".to_owned());
            }
        }
    }
    let (Some(new_password), true) = (new_password, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let hash = state
        .passwords
        .hash(new_password.expose().to_owned())
        .await?;
    users::change_password(&state.db, me.0.id, hash, &current_session).await?;
    Ok(HttpResponse::NoContent().finish())
}
