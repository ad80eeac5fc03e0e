//! Registration and login.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthUser, CurrentSession, Proof};
use crate::domain::{Email, Password, Username, parse_bio, parse_display_name};
use crate::error::{ApiError, FieldErrors};
use crate::extract::JsonBody;
use crate::services::relationships;
use crate::services::sessions::{self, Grant, Refreshed};
use crate::services::users::{self, NewAccount};
use crate::state::AppState;
use crate::views::Profile;

/// A new account. Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// {USERNAME_MIN_CHARS} to {USERNAME_MAX_CHARS} characters of `A-Z a-z 0-9 _`; unique in any letter case.
    #[schema(value_type = String, required = true, example = "susan")]
    pub username: Option<String>,
    /// A plausible email address (one `@`, a dotted domain, no spaces or control characters) of at
    /// most {EMAIL_MAX_CHARS} characters; unique in any letter case.
    #[schema(value_type = String, required = true, example = "susan@example.com")]
    pub email: Option<String>,
    /// {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters.
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    pub password: Option<String>,
    /// At most {DISPLAY_NAME_MAX_CHARS} characters on one line (no control characters, no bidirectional overrides or
    /// isolates).
    #[schema(example = "Susan Smith")]
    pub display_name: Option<String>,
    /// At most {BIO_MAX_CHARS} characters; no NUL, no bidirectional overrides or isolates.
    #[schema(example = "Writes about birds.")]
    pub bio: Option<String>,
}

/// Credentials. `username` may also be the email address.
#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    /// The username or the email address, in any letter case.
    #[schema(value_type = String, required = true, example = "susan")]
    pub username: Option<String>,
    /// The password.
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    pub password: Option<String>,
}

/// A session's tokens and the profile of its user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Exchange at `POST /auth/refresh` for new tokens (once: the answer carries the next one).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    #[schema(example = 2_592_000)]
    pub refresh_expires_in: u64,
    /// The token's user.
    pub user: Profile,
}

/// The body of `POST /auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The `refresh_token` of the last Token answer.
    #[schema(value_type = String, required = true)]
    pub refresh_token: Option<String>,
}

fn required<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let result = match value {
        None => Err("is required".to_owned()),
        Some(raw) => parse(&raw),
    };
    result
        .map_err(|message| errors.entry(field.to_owned()).or_default().push(message))
        .ok()
}

/// A field that may be absent or `null`; when present it must parse.
fn optional<T>(
    errors: &mut FieldErrors,
    field: &str,
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let raw = value?;
    parse(&raw)
        .map_err(|message| errors.entry(field.to_owned()).or_default().push(message))
        .ok()
}

/// The answer that carries `token`: never stored by any cache (`Cache-Control: no-store`).
fn carrying(mut response: actix_web::HttpResponseBuilder, token: Token) -> HttpResponse {
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(token)
}

/// The Token answer of a session `grant` of `user`, its access token issued at `issued_at`.
async fn token_for(
    state: &AppState,
    user: &entity::user::Model,
    grant: Grant,
    issued_at: i64,
    proof: Proof,
) -> Result<Token, ApiError> {
    let states = relationships::viewer_states(&state.db, Some(user.id), [user.id]).await?;
    Ok(Token {
        access_token: state
            .tokens
            .issue_at(user.id, &grant.session_id, issued_at, proof)?,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_seconds(),
        refresh_token: grant.refresh_token,
        refresh_expires_in: state.refresh_ttl.as_secs(),
        user: Profile::own(user, &states),
    })
}

/// A new session of `user` for the client of `req`.
async fn new_session(
    state: &AppState,
    req: &HttpRequest,
    user: &entity::user::Model,
) -> Result<Token, ApiError> {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|agent| agent.to_str().ok());
    let grant =
        sessions::start_verified(&state.db, user, user_agent, state.refresh_ttl_ms()).await?;
    token_for(
        state,
        user,
        grant,
        crate::time::now_millis(),
        Proof::Password,
    )
    .await
}

/// Creates an account and returns a token for it; a verification token is mailed to its address.
#[utoipa::path(post, path = "/auth/register", tag = "accounts", operation_id = "register",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "The account was created", body = Token,
            headers(("Location" = String, description = "The new user's profile, `/users/{username}`"))),
        (status = 409, description = "`username_taken` or `email_taken`"),
        (status = 422, description = "`validation_failed`: a field breaks its rules"),
    ))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let mut errors = FieldErrors::new();
    let username = required(&mut errors, "username", body.username, Username::parse);
    let email = required(&mut errors, "email", body.email, Email::parse);
    let password = required(&mut errors, "password", body.password, Password::parse);
    let display_name = optional(
        &mut errors,
        "display_name",
        body.display_name,
        parse_display_name,
    );
    let bio = optional(&mut errors, "bio", body.bio, parse_bio);
    let (Some(username), Some(email), Some(password), true) =
        (username, email, password, errors.is_empty())
    else {
        return Err(ApiError::Validation(errors));
    };

    let password_hash = state.passwords.hash(password.expose().to_owned()).await?;
    let user = users::register(
        &state.db,
        NewAccount {
            username,
            email,
            password_hash,
            display_name,
            bio,
        },
        &state.mailing,
    )
    .await?;
    state.outbox.wake();
    let token = new_session(&state, &req, &user).await?;
    let mut created = HttpResponse::Created();
    created.insert_header((header::LOCATION, format!("/users/{}", user.username)));
    Ok(carrying(created, token))
}

/// Exchanges a username (or email) and password for a token.
#[utoipa::path(post, path = "/auth/login", tag = "accounts", operation_id = "login",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = Token),
        (status = 401, description = "`invalid_credentials`: wrong username or password"),
        (status = 422, description = "`validation_failed`: a field is missing"),
    ))]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: JsonBody<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let mut errors = FieldErrors::new();
    let login = required(&mut errors, "username", body.username, |v| {
        Ok(v.trim().to_owned())
    });
    let password = required(&mut errors, "password", body.password, |v| Ok(v.to_owned()));
    let (Some(login), Some(password)) = (login, password) else {
        return Err(ApiError::Validation(errors));
    };

    let user = users::find_for_login(&state.db, &login).await?;
    // An unknown user costs the same hash verification as a wrong password.
    let hash = user.as_ref().map_or_else(
        || state.dummy_password_hash.clone(),
        |u| u.password_hash.clone(),
    );
    let matches = state.passwords.verify(password, hash).await?;
    match user {
        // Said only to whoever knows the password.
        Some(user) if matches && user.suspended_at.is_some() => Err(ApiError::AccountSuspended),
        Some(user) if matches => Ok(carrying(
            HttpResponse::Ok(),
            new_session(&state, &req, &user).await?,
        )),
        _ => Err(ApiError::InvalidCredentials),
    }
}

/// Exchanges a refresh token for new tokens of the same session.
#[utoipa::path(post, path = "/auth/refresh", tag = "accounts", operation_id = "refresh",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "The session goes on: a new access token and a new refresh token (the one sent stops working). The same token sent again within `REFRESH_REUSE_GRACE_SECONDS` ({REFRESH_REUSE_GRACE_SECONDS_DEFAULT} by default) of its first use gets this same answer again (the same pair), and ends nothing", body = Token),
        (status = 401, description = "`invalid_refresh_token`: unknown, expired, ended, or used before and sent again past the grace window (which ends its session)"),
        (status = 403, description = "`account_suspended`: the session's account is suspended"),
        (status = 422, description = "`validation_failed`: `refresh_token` is missing"),
    ))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: JsonBody<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let token = body
        .refresh_token
        .ok_or_else(|| ApiError::field("refresh_token", "is required"))?;
    // The session's own quota: an unknown token has none to spend, and is refused below.
    let quota = match sessions::of_refresh_token(&state.db, &token).await? {
        Some(session) => state.limits.take_refresh(&session).await?,
        None => Vec::new(),
    };
    let refreshed = sessions::refresh(
        &state.db,
        &token,
        state.refresh_ttl_ms(),
        i64::try_from(state.refresh_reuse_grace.as_millis()).unwrap_or(i64::MAX),
        &state.rotation,
    );
    match refreshed.await? {
        Refreshed::Granted {
            user,
            grant,
            issued_at,
        } => {
            let mut ok = HttpResponse::Ok();
            for header in quota {
                ok.insert_header(header);
            }
            Ok(carrying(
                ok,
                token_for(&state, &user, grant, issued_at, Proof::Refresh).await?,
            ))
        }
        Refreshed::Invalid => Err(ApiError::InvalidRefreshToken(
            "the refresh token is unknown, expired, or its session has ended: log in again",
        )),
        Refreshed::Reused => Err(ApiError::InvalidRefreshToken(
            "the refresh token was already used, past its grace window, so its session has ended (a used token sent \
             again may have been stolen): log in again",
        )),
        Refreshed::Suspended => Err(ApiError::AccountSuspended),
    }
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/auth/logout", tag = "accounts", operation_id = "logout",
    responses(
        (status = 204, description = "The session has ended: its refresh token and access tokens answer 401 from now on"),
    ),
    security(("bearer" = [])))]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let session = CurrentSession::of(&req)?;
    sessions::end(&state.db, me.0.id, &session).await?;
    Ok(HttpResponse::NoContent().finish())
}
