//! Accounts as the API shows them (`UserCard`, `Profile`, `Viewer`) and the `/users/me` and
//! `/users/{username}` endpoints.

use std::collections::HashMap;

use actix_web::{HttpResponse, web};
use entity::user;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::domain::{parse_bio, parse_display_name};
use crate::error::{ApiError, FieldErrors, Problem};
use crate::routes::JsonBody;
use crate::services::relationships::{self, Relation};
use crate::services::users::{self, ProfileChanges};
use crate::startup::AppState;
use crate::time::Timestamp;

/// The authenticated caller's relationship to a user; `null` on anonymous requests.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Viewer {
    /// The caller follows this user.
    pub following: bool,
    /// This user follows the caller (the "follows you" label).
    pub followed_by: bool,
    /// When the caller started following this user.
    pub followed_at: Option<Timestamp>,
    /// When this user started following the caller.
    pub followed_by_at: Option<Timestamp>,
}

impl From<Relation> for Viewer {
    fn from(relation: Relation) -> Self {
        Viewer {
            following: relation.following_since.is_some(),
            followed_by: relation.followed_by_since.is_some(),
            followed_at: relation.following_since.map(Timestamp),
            followed_by_at: relation.followed_by_since.map(Timestamp),
        }
    }
}

/// A user as it appears inside lists and posts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserCard {
    /// The username as it was registered.
    #[schema(example = "susan")]
    pub username: String,
    /// Name to display, if the user set one.
    pub display_name: Option<String>,
    /// Short self-description, if the user wrote one.
    pub bio: Option<String>,
    /// The caller's relationship to this user; `null` when the request is anonymous.
    pub viewer: Option<Viewer>,
}

impl UserCard {
    pub fn new(user: &user::Model, viewer: Option<Viewer>) -> Self {
        UserCard {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            bio: user.bio.clone(),
            viewer,
        }
    }
}

/// A user's profile: the card plus when the account was created and its counts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Profile {
    /// The username as it was registered.
    #[schema(example = "susan")]
    pub username: String,
    /// Name to display, if the user set one.
    pub display_name: Option<String>,
    /// Short self-description, if the user wrote one.
    pub bio: Option<String>,
    /// The caller's relationship to this user; `null` when the request is anonymous.
    pub viewer: Option<Viewer>,
    /// When the account was registered.
    pub created_at: Timestamp,
    /// How many users follow this user.
    pub followers_count: i64,
    /// How many users this user follows.
    pub following_count: i64,
    /// How many posts this user has written.
    pub posts_count: i64,
}

impl Profile {
    pub fn new(user: &user::Model, viewer: Option<Viewer>) -> Self {
        Profile {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            bio: user.bio.clone(),
            viewer,
            created_at: Timestamp(user.created_at),
            followers_count: user.followers_count,
            following_count: user.following_count,
            posts_count: user.posts_count,
        }
    }
}

/// The profile of `user` as `viewer` sees it.
pub async fn profile_for(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    user: &user::Model,
) -> Result<Profile, ApiError> {
    let viewer = match viewer {
        Some(viewer) => Some(relationships::relation(db, viewer, user.id).await?.into()),
        None => None,
    };
    Ok(Profile::new(user, viewer))
}

/// Cards for `users` as `viewer` sees them, in a fixed number of queries whatever their number.
pub async fn cards_for<'a>(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    users: impl IntoIterator<Item = &'a user::Model>,
) -> Result<HashMap<i64, UserCard>, ApiError> {
    let users: Vec<&user::Model> = users.into_iter().collect();
    let relations = match viewer {
        Some(viewer) => {
            let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
            Some(relationships::relations(db, viewer, &ids).await?)
        }
        None => None,
    };
    Ok(users
        .into_iter()
        .map(|u| {
            let viewer = relations
                .as_ref()
                .map(|r| Viewer::from(r.get(&u.id).copied().unwrap_or_default()));
            (u.id, UserCard::new(u, viewer))
        })
        .collect())
}

/// Fields of `PATCH /users/me`: an absent field stays as it is, `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// At most 50 characters on one line (no control characters); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 50, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub display_name: Option<Option<String>>,
    /// At most 500 characters, no NUL; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\x00]*$")]
    pub bio: Option<Option<String>>,
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

/// Changes the caller's display name and bio.
#[utoipa::path(patch, path = "/users/me", tag = "accounts", operation_id = "updateMe",
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 422, description = "A field breaks its rules", body = Problem, content_type = "application/problem+json"),
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
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let user = users::update_profile(&state.db, me.0, changes).await?;
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
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = [])))]
pub async fn get_user(
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = users::find_by_username(&state.db, &username).await?;
    let profile = profile_for(&state.db, viewer.id(), &user).await?;
    Ok(HttpResponse::Ok().json(profile))
}
