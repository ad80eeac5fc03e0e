//! Who is calling: the extractors that turn a request's `Authorization` header into the calling
//! user, over the access tokens of `tokens` and the password hashing of `passwords`.

mod passwords;
mod tokens;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use entity::user;

pub use passwords::Passwords;
pub use tokens::{MIN_SECRET_BYTES, TICKET_TTL_SECONDS, Tokens, generate_secret};

use crate::error::ApiError;
use crate::services;
use crate::startup::AppState;

/// The authenticated caller of an endpoint marked **auth**: 401 without a valid token.
#[derive(Clone, Debug)]
pub struct AuthUser(pub user::Model);

/// The authenticated caller of an `/admin/...` endpoint: one of `ADMIN_USERNAMES`; 401 without a
/// valid token, 403 `forbidden` for anyone else.
#[derive(Clone, Debug)]
pub struct AdminUser(pub user::Model);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = AuthUser::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let AuthUser(user) = caller.await?;
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
                ApiError::internal(std::io::Error::other("application state missing"))
            })?;
            if state.admin_keys.contains(&user.username_key) {
                Ok(AdminUser(user))
            } else {
                Err(ApiError::Forbidden(
                    "only the operators (ADMIN_USERNAMES) may do this",
                ))
            }
        })
    }
}

/// The caller of an endpoint marked **optional auth**: `None` when anonymous. A token that is sent
/// but not valid is still a 401, never silently ignored.
#[derive(Clone, Debug)]
pub struct MaybeAuthUser(pub Option<user::Model>);

impl MaybeAuthUser {
    pub fn id(&self) -> Option<i64> {
        self.0.as_ref().map(|u| u.id)
    }
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            match authenticate(&req).await? {
                Some(user) => Ok(AuthUser(user)),
                None => Err(ApiError::Unauthorized(
                    "this endpoint needs 'Authorization: Bearer <token>'",
                )),
            }
        })
    }
}

impl FromRequest for MaybeAuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await.map(MaybeAuthUser) })
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme in any letter case): `None`
/// without the header, 401 when it is there but not of that form.
pub fn bearer_token(headers: &header::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::Unauthorized("the Authorization header must be 'Bearer <token>'");
    let (scheme, token) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// `None` without an `Authorization` header; the token's user with a valid one; 401 otherwise.
async fn authenticate(req: &HttpRequest) -> Result<Option<user::Model>, ApiError> {
    let Some(token) = bearer_token(req.headers())? else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("application state missing")))?;
    user_of(state, state.tokens.verify(token)?).await.map(Some)
}

/// The caller of `GET /stream`: the user of its `ticket` query parameter when it has one, else of
/// its bearer token (401 without either).
pub async fn stream_caller(
    req: &HttpRequest,
    ticket: Option<&str>,
) -> Result<user::Model, ApiError> {
    let Some(ticket) = ticket else {
        return AuthUser::extract(req).await.map(|AuthUser(user)| user);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("application state missing")))?;
    user_of(state, state.tokens.verify_ticket(ticket)?).await
}

/// The live account of a verified token's user id and issue time, or 401.
async fn user_of(
    state: &AppState,
    (user_id, issued_at): (i64, u64),
) -> Result<user::Model, ApiError> {
    let user = services::users::find_by_id(&state.db, user_id)
        .await?
        // A token outlives neither its account nor a newer account that reuses the id.
        .filter(|u| issued_at >= u64::try_from(u.created_at / 1000).unwrap_or(u64::MAX))
        .ok_or(ApiError::Unauthorized(
            "the account of this access token no longer exists",
        ))?;
    if user.suspended_at.is_some() {
        return Err(ApiError::Unauthorized(
            "the account of this access token is suspended",
        ));
    }
    Ok(user)
}
