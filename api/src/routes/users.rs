//! The `/users/me` and `/users/{username}` endpoints.

use actix_web::{HttpResponse, web};
use entity::user;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::domain::{parse_bio, parse_display_name};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::routes::JsonBody;
use crate::services::relationships;
use crate::services::users::{self, ProfileChanges};
use crate::startup::AppState;
use crate::views::Profile;

/// The profile of `user` as `viewer` sees it.
async fn profile_for(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    user: &user::Model,
) -> Result<Profile, ApiError> {
    let states = relationships::viewer_states(db, viewer, [user.id]).await?;
    Ok(Profile::new(user, &states))
}

/// Fields of `PATCH /users/me`: an absent field stays as it is, `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// At most 50 characters on one line (no control characters, no bidirectional overrides or
    /// isolates); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// At most 500 characters; no NUL, no bidirectional overrides or isolates; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub bio: Option<Option<String>>,
    /// Lock the account (following it then makes a request) or unlock it, which accepts every
    /// pending follow request at once. Not `null`.
    #[serde(default, deserialize_with = "present_bool")]
    #[schema(value_type = bool, required = false)]
    pub locked: Option<Option<bool>>,
}

/// Tells a boolean sent as `null` (`Some(None)`, refused) from an absent one (`None`).
fn present_bool<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(deserializer).map(Some)
}

/// Tells a field sent as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// The caller's own profile.
#[utoipa::path(get, path = "/users/me", tag = "accounts", operation_id = "getMe",
    responses(
        (status = 200, description = "The caller's profile", body = Profile),
    ),
    security(("bearer" = [])))]
pub async fn get_me(state: web::Data<AppState>, me: AuthUser) -> Result<HttpResponse, ApiError> {
    let profile = profile_for(&state.db, Some(me.0.id), &me.0).await?;
    Ok(HttpResponse::Ok().json(profile))
}

/// Changes the caller's display name, bio and whether the account is locked. Unlocking accepts
/// every pending follow request.
#[utoipa::path(patch, path = "/users/me", tag = "accounts", operation_id = "updateMe",
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 422, description = "`validation_failed`: a field breaks its rules", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_me(
    state: web::Data<AppState>,
    me: AuthUser,
    body: JsonBody<UpdateProfileRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let mut errors = FieldErrors::new();
    let mut changes = ProfileChanges::default();
    if let Some(display_name) = body.display_name {
        match display_name.as_deref().map(parse_display_name).transpose() {
            Ok(value) => changes.display_name = Some(value),
            Err(message) => {
                errors.insert("display_name".into(), vec![message]);
            }
        }
    }
    if let Some(bio) = body.bio {
        match bio.as_deref().map(parse_bio).transpose() {
            Ok(value) => changes.bio = Some(value),
            Err(message) => {
                errors.insert("bio".into(), vec![message]);
            }
        }
    }
    match body.locked {
        Some(Some(locked)) => changes.locked = Some(locked),
        Some(None) => {
            errors.insert(
                "locked".into(),
                vec!["must be true or false, not null".into()],
            );
        }
        None => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let user = users::update_profile(&state.db, &me.0, changes).await?;
    let profile = profile_for(&state.db, Some(user.id), &user).await?;
    Ok(HttpResponse::Ok().json(profile))
}

/// Removes the caller's account, its posts and every follow in which it is either side.
#[utoipa::path(delete, path = "/users/me", tag = "accounts", operation_id = "deleteMe",
    responses(
        (status = 204, description = "The account is gone; its tokens answer 401 from now on"),
    ),
    security(("bearer" = [])))]
pub async fn delete_me(state: web::Data<AppState>, me: AuthUser) -> Result<HttpResponse, ApiError> {
    users::delete_account(&state.db, me.0.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's public profile, with `viewer` when a valid token is sent.
#[utoipa::path(get, path = "/users/{username}", tag = "accounts", operation_id = "getUser",
    params(("username" = String, Path, description = "Username, in any letter case", example = "susan")),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "`user_not_found`: no such user", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = [])))]
pub async fn get_user(
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::find_in_path(&state.db, &username, viewer.0.as_ref()).await?;
    let profile = profile_for(&state.db, viewer.id(), &user).await?;
    Ok(HttpResponse::Ok().json(profile))
}
