//! The `/users/me` and `/users/{username}` endpoints, and user search (`GET /users?q=`).

use actix_web::{HttpRequest, HttpResponse, web};
use entity::user;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AuthUser, MaybeAuthUser, MaybeCaller};
use crate::domain::{SearchPrefix, parse_bio, parse_display_name};
use crate::error::{ApiError, FieldErrors};
use crate::extract::{JsonBody, OptionalJsonBody};
use crate::page::{page_response, parse_limit};
use crate::services::relationships;
use crate::services::users::{self, ProfileChanges};
use crate::state::AppState;
use crate::views::{Profile, UserCard};

/// The profile of `user` as `viewer` sees it.
async fn profile_for(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    user: &user::Model,
) -> Result<Profile, ApiError> {
    let states = relationships::viewer_states(db, viewer, [user.id]).await?;
    Ok(Profile::new(user, &states))
}

/// The caller's own profile, with what only the caller sees.
pub(crate) async fn own_profile(
    db: &impl ConnectionTrait,
    me: &user::Model,
) -> Result<Profile, ApiError> {
    let states = relationships::viewer_states(db, Some(me.id), [me.id]).await?;
    Ok(Profile::own(me, &states))
}

/// Fields of `PATCH /users/me`: an absent field stays as it is, `null` clears it.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// At most {DISPLAY_NAME_MAX_CHARS} characters on one line (no control characters, no bidirectional overrides or
    /// isolates); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    /// At most {BIO_MAX_CHARS} characters; no NUL, no bidirectional overrides or isolates; `null` clears it.
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
    let profile = state
        .read(Some(&me.0), async |db| own_profile(db, &me.0).await)
        .await?;
    Ok(HttpResponse::Ok().json(profile))
}

/// Changes the caller's display name, bio and whether the account is locked. Unlocking accepts
/// every pending follow request.
#[utoipa::path(patch, path = "/users/me", tag = "accounts", operation_id = "updateMe",
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated profile", body = Profile),
        (status = 422, description = "`validation_failed`: a field breaks its rules"),
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
    let profile = own_profile(&state.db, &user).await?;
    Ok(HttpResponse::Ok().json(profile))
}

/// The body of `DELETE /users/me`, which may be left out after a fresh login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteAccountRequest {
    /// The account's password. Not needed when the access token comes from a login (not a
    /// refresh) within the last {FRESH_LOGIN_MINUTES} minutes.
    #[schema(value_type = Option<String>, example = "correct horse battery")]
    pub password: Option<String>,
}

/// Removes the caller's account, its posts and every follow in which it is either side. Asks for
/// proof that the caller is the account's owner: the password in the body, or an access token of
/// a login within the last {FRESH_LOGIN_MINUTES} minutes.
#[utoipa::path(delete, path = "/users/me", tag = "accounts", operation_id = "deleteMe",
    request_body(content = Option<DeleteAccountRequest>, description = "`{\"password\"}`; may be left out (no body) when the access token comes from a login within the last {FRESH_LOGIN_MINUTES} minutes"),
    responses(
        (status = 204, description = "The account is gone; its tokens answer 401 from now on"),
        (status = 403, description = "`reauthentication_required`: no password was sent (or it is wrong) and the access token does not come from a login within the last {FRESH_LOGIN_MINUTES} minutes"),
        (status = 429, description = "`rate_limited`: too many password checks for this account (the quota of `PUT /users/me/password`); retry after `Retry-After` seconds"),
    ),
    security(("bearer" = [])))]
pub async fn delete_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    body: OptionalJsonBody<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    match body.0.and_then(|body| body.password) {
        Some(password) => {
            state.limits.take_password_attempt(me.0.id).await?;
            if !state
                .passwords
                .verify(password, me.0.password_hash.clone())
                .await?
            {
                return Err(ApiError::ReauthenticationRequired(
                    "the password is incorrect: send the account's password, or log in again and \
                     delete within ten minutes",
                ));
            }
        }
        None if crate::auth::fresh_login(&req) => {}
        None => {
            return Err(ApiError::ReauthenticationRequired(
                "deleting the account needs its password ({\"password\": ...} in the body) or an \
                 access token from a login within the last ten minutes",
            ));
        }
    }
    users::delete_account(&state.db, me.0.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's public profile, with `viewer` when a valid token is sent.
#[utoipa::path(get, path = "/users/{username}", tag = "accounts", operation_id = "getUser",
    params(("username" = String, Path, description = "Username, in any letter case", example = "susan")),
    responses(
        (status = 200, description = "The profile", body = Profile),
        (status = 404, description = "`user_not_found`: no such user"),
    ),
    security((), ("bearer" = [])))]
pub async fn get_user(
    state: web::Data<AppState>,
    viewer: MaybeCaller,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let viewer_id = viewer.id();
    // The caller's row only where it is used: `me` shows it, and a standby is chosen by when the
    // caller last wrote. Otherwise a caller whose session this process holds costs no query.
    let row = match viewer.0 {
        Some(caller) if username.eq_ignore_ascii_case("me") || state.standby.is_some() => {
            Some(caller.row(&state).await?)
        }
        _ => None,
    };
    let profile = state
        .read(row.as_ref(), async |db| {
            let user = users::find_in_path(db, &username, row.as_ref()).await?;
            profile_for(db, viewer_id, &user).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(profile))
}

/// A page of users: a search's results.
#[derive(ToSchema)]
pub struct UserCardPage {
    /// The users of this page: the exact username match first, then by username.
    pub items: Vec<UserCard>,
    /// Pass as `cursor` (with the same `q`) for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
    /// Always `null`: a search pages forward only (`newer_than` is a 400 here).
    pub prev_cursor: Option<String>,
}

/// The query of `GET /users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What the username or the display name starts with, in any letter case: 1 to {SEARCH_MAX_CHARS}
    /// characters after trimming white space, no control characters. Every character is
    /// literal (`%`, `_` and `\` too).
    #[param(value_type = String, required = true, example = "sus")]
    pub q: Option<String>,
    /// Items per page, 1 to {MAX_LIMIT}.
    // Its maximum and default come from `MAX_LIMIT` and `DEFAULT_LIMIT` (`openapi::Numbers`).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<String>,
    /// Opaque cursor from the `next_cursor` of the previous page of the same search (the same
    /// `q` in any letter case); any other is a 400 `invalid_cursor`.
    #[param(min_length = 3, pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Not supported here (results are ordered by username, not by time): a 400.
    #[param(ignore)]
    pub newer_than: Option<String>,
}

/// The payload of a search cursor: the `username_key` of the page's last user, after this mark
/// (alone: the page ended with the exact match, and the rest starts from the top).
const AFTER: char = '>';

/// Searches users by the start of their username or display name.
///
/// Users whose username or display name starts with `q`, in any letter case: the user whose
/// username is `q` first, then the others by username. Suspended accounts never appear; a user
/// who blocks the caller does, with `viewer.blocked_by` (as on their profile). Pages go on with
/// `cursor` only: the order is by name, so there is nothing "newer" to ask for (`newer_than` is
/// a 400), `prev_cursor` is always `null`, and an account registered meanwhile appears on a later
/// page only if its username sorts after the cursor.
#[utoipa::path(get, path = "/users", tag = "accounts", operation_id = "searchUsers",
    params(SearchQuery),
    responses(
        (status = 200, description = "A page of matching users", body = UserCardPage,
            headers(("Link" = String, description = "`<...?q=...&limit=N&cursor=...>; rel=\"next\"` when there is a next page"))),
        (status = 400, description = "`invalid_parameter`: `q` missing, empty or over {SEARCH_MAX_CHARS} characters (after trimming) or holding a control character, a bad `limit`, or `newer_than` (not supported here); `invalid_cursor`: a cursor the server did not issue for this search"),
    ),
    security((), ("bearer" = [])))]
pub async fn search_users(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let prefix = match query.q.as_deref() {
        None => Err("q is required: the start of a username or display name".to_owned()),
        Some(raw) => SearchPrefix::parse(raw),
    }
    .map_err(ApiError::InvalidParameter)?;
    if query.newer_than.is_some() {
        return Err(ApiError::InvalidParameter(
            "newer_than is not supported by search, which is ordered by username: page with \
             cursor"
                .to_owned(),
        ));
    }
    let limit = parse_limit(query.limit.as_deref())?;
    let list_name = users::search_list_name(&prefix);
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => {
            let payload = state.cursors.decode_text(&list_name, cursor)?;
            let after = payload.strip_prefix(AFTER).ok_or(ApiError::InvalidCursor)?;
            Some(after.to_owned())
        }
    };
    let (found, next, states) = state
        .read(viewer.0.as_ref(), async |db| {
            let (found, next) = users::search(db, &prefix, after.as_deref(), limit).await?;
            let states =
                relationships::viewer_states(db, viewer.id(), found.iter().map(|u| u.id)).await?;
            Ok((found, next, states))
        })
        .await?;
    let items: Vec<UserCard> = found
        .iter()
        .map(|user| UserCard::new(user, &states))
        .collect();
    let next_cursor = next.map(|after| {
        state
            .cursors
            .encode_text(&list_name, &format!("{AFTER}{after}"))
    });
    let link_query = format!(
        "q={}&",
        percent_encoding::utf8_percent_encode(prefix.as_str(), percent_encoding::NON_ALPHANUMERIC)
    );
    Ok(page_response(
        &req,
        &link_query,
        limit,
        items,
        next_cursor,
        None,
    ))
}
