//! Who is calling: the extractors that turn a request's `Authorization` header into the calling
//! user, over the access tokens of `tokens` and the password hashing of `passwords`.

mod passwords;
mod tokens;

use std::future::Future;
use std::pin::Pin;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use entity::user;

pub use passwords::Passwords;
pub use tokens::{MIN_SECRET_BYTES, Proof, TICKET_TTL_SECONDS, Tokens, Verified, generate_secret};

use crate::error::ApiError;
use crate::services;
use crate::state::AppState;

/// The authenticated caller of an endpoint marked **auth**: 401 without a valid token.
#[derive(Clone, Debug)]
pub struct AuthUser(pub user::Model);

/// The authenticated caller of an `/admin/...` endpoint: an operator
/// ([`crate::services::operators`]); 401 without a valid token, 403 `forbidden` for anyone else.
#[derive(Clone, Debug)]
pub struct AdminUser(pub user::Model);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let AuthUser(user) = caller.await?;
            if user.is_operator {
                Ok(AdminUser(user))
            } else {
                Err(ApiError::Forbidden("only the operators may do this"))
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

/// Gives every 401 its `WWW-Authenticate` challenge (RFC 6750): `Bearer error="invalid_token"`
/// when the request carried a token (an `Authorization` header, or a stream `ticket`), plain
/// `Bearer` when it carried none. One place for every 401, whichever layer answered it.
pub async fn challenge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let sent_token = req.headers().contains_key(header::AUTHORIZATION)
        || req
            .query_string()
            .split('&')
            .any(|pair| pair.starts_with("ticket="));
    let mut response = next.call(req).await?;
    if response.status() == actix_web::http::StatusCode::UNAUTHORIZED {
        let challenge = if sent_token {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(challenge),
        );
    }
    Ok(response)
}

/// The session of the request's access token (or stream ticket), once it is authenticated.
#[derive(Clone, Debug)]
pub struct CurrentSession(pub String);

impl CurrentSession {
    /// The session of an authenticated request; a 500 if it was not authenticated (a handler that
    /// asks must take `AuthUser` first).
    pub fn of(req: &HttpRequest) -> Result<String, ApiError> {
        req.extensions()
            .get::<CurrentSession>()
            .map(|session| session.0.clone())
            .ok_or_else(|| ApiError::internal(std::io::Error::other("no session on the request")))
    }
}

/// How long after a login its access tokens count as a fresh proof of the password
/// (`DELETE /users/me` asks for one), in seconds.
pub const FRESH_LOGIN_SECONDS: u64 = 600;

/// When the caller of an authenticated request last gave their password, when its access token
/// came from a login (not a refresh): seconds since the epoch.
#[derive(Clone, Copy, Debug)]
struct LoggedInAt(u64);

/// Whether the request's access token comes from a login (or registration) within the last
/// [`FRESH_LOGIN_SECONDS`]. (A token of a refresh never does: a stolen refresh token must not
/// be enough to delete the account.)
pub fn fresh_login(req: &HttpRequest) -> bool {
    let now = crate::time::now_millis() / 1_000;
    req.extensions()
        .get::<LoggedInAt>()
        .and_then(|at| i64::try_from(at.0).ok())
        .is_some_and(|at| now.saturating_sub(at) <= FRESH_LOGIN_SECONDS as i64)
}

/// `None` without an `Authorization` header; the token's user with a valid one; 401 otherwise.
async fn authenticate(req: &HttpRequest) -> Result<Option<user::Model>, ApiError> {
    let Some(token) = bearer_token(req.headers())? else {
        return Ok(None);
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("application state missing")))?;
    user_of(req, state, state.tokens.verify(token)?)
        .await
        .map(Some)
}

/// The caller of `GET /stream`: the user of its `ticket` query parameter when it has one, else of
/// its bearer token (401 without either). A ticket opens a stream within
/// [`TICKET_TTL_SECONDS`] of its issue, and after that again while its session lives if it did
/// open one then: a browser's `EventSource` reconnects by itself, with the same URL, after any
/// drop.
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
    let verified = state.tokens.verify_ticket(ticket)?;
    let fresh = tokens::unix_seconds() < verified.issued_at.saturating_add(TICKET_TTL_SECONDS);
    let session = verified.session.clone();
    let user = user_of(req, state, verified).await?;
    if fresh {
        services::sessions::note_ticket_use(&state.db, ticket, &session).await?;
    } else if !services::sessions::ticket_opened(&state.db, ticket, &session).await? {
        return Err(ApiError::Unauthorized(
            "the stream ticket has expired (a ticket must open its stream within 60 seconds): \
             ask POST /stream/ticket for a new one",
        ));
    }
    Ok(user)
}

/// The account of a verified token, while its session lives, or 401: its row as read with the
/// session ([`live_caller`]), or by primary key when the session was checked in memory.
async fn user_of(
    req: &HttpRequest,
    state: &AppState,
    verified: tokens::Verified,
) -> Result<user::Model, ApiError> {
    live_caller(req, state, &verified).await?.row(state).await
}

/// The caller of a request, known by the id of its account: its session is live (checked in
/// this process's view of live sessions, [`crate::events::LiveSessions`], else in the database),
/// and its account's row is read only if a handler asks ([`Caller::row`]).
#[derive(Clone, Debug)]
pub struct Caller {
    /// The caller's account.
    pub id: i64,
    /// The account's row, when checking the session read it.
    row: Option<user::Model>,
}

impl Caller {
    /// The caller's account's row: the one read with the session, else read now by primary key
    /// (401 when the account is gone or suspended meanwhile).
    pub async fn row(self, state: &AppState) -> Result<user::Model, ApiError> {
        if let Some(row) = self.row {
            return Ok(row);
        }
        match services::users::find_by_id(&state.db, self.id).await? {
            Some(user) if user.suspended_at.is_none() => Ok(user),
            Some(_) => Err(ApiError::Unauthorized(
                "the account of this access token is suspended",
            )),
            None => Err(ApiError::Unauthorized(
                "the session of this access token has ended: log in again, or refresh",
            )),
        }
    }
}

/// The caller of an endpoint marked **optional auth** that needs only the caller's id: `None`
/// when anonymous, 401 for a token that is sent but not valid (as [`MaybeAuthUser`]). With its
/// session in this process's view of live sessions it costs no database round trip.
#[derive(Clone, Debug)]
pub struct MaybeCaller(pub Option<Caller>);

impl MaybeCaller {
    pub fn id(&self) -> Option<i64> {
        self.0.as_ref().map(|caller| caller.id)
    }
}

impl FromRequest for MaybeCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(token) = bearer_token(req.headers())? else {
                return Ok(MaybeCaller(None));
            };
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(|| {
                ApiError::internal(std::io::Error::other("application state missing"))
            })?;
            let verified = state.tokens.verify(token)?;
            live_caller(&req, state, &verified)
                .await
                .map(Some)
                .map(MaybeCaller)
        })
    }
}

/// Checks that the session of a verified token lives, or 401: in this process's view of live
/// sessions when it holds it (no database round trip), else with one query that reads the session
/// and its account (a suspended account is refused), whose answer the view then keeps. Notes the
/// session on the request and, at most once a minute, when it was last used.
async fn live_caller(
    req: &HttpRequest,
    state: &AppState,
    verified: &tokens::Verified,
) -> Result<Caller, ApiError> {
    let view = state.hub.sessions();
    let now = crate::time::now_millis();
    let (caller, last_used_at) = match view.get(&verified.session, verified.user_id, now) {
        Some(seen) => (
            Caller {
                id: seen.user_id,
                row: None,
            },
            seen.last_used_at,
        ),
        None => {
            // Taken before the read: an ending that commits after it is not kept over.
            let ticket = view.ticket();
            let (session, user) =
                services::sessions::live_with_user(&state.db, &verified.session, verified.user_id)
                    .await?
                    .ok_or(ApiError::Unauthorized(
                        "the session of this access token has ended: log in again, or refresh",
                    ))?;
            if user.suspended_at.is_some() {
                return Err(ApiError::Unauthorized(
                    "the account of this access token is suspended",
                ));
            }
            if let Some(ticket) = ticket {
                view.fill(
                    ticket,
                    &session.id,
                    crate::events::live_sessions::Seen {
                        user_id: user.id,
                        expires_at: session.expires_at,
                        last_used_at: session.last_used_at,
                        read_at: now,
                    },
                );
            }
            (
                Caller {
                    id: user.id,
                    row: Some(user),
                },
                session.last_used_at,
            )
        }
    };
    req.extensions_mut()
        .insert(CurrentSession(verified.session.clone()));
    if let Some(at) = verified.auth_time {
        req.extensions_mut().insert(LoggedInAt(at));
    }
    if services::sessions::due_for_touch(last_used_at, now) {
        view.touched(&verified.session, now);
        let db = state.db.clone();
        let (session, user_id) = (verified.session.clone(), caller.id);
        // Not on the request's path: a failure costs an imprecise "last used" and nothing else.
        actix_web::rt::spawn(async move {
            if let Err(err) = services::sessions::touch(&db, &session, user_id).await {
                tracing::warn!(error = %err, "could not note a session's use");
            }
        });
    }
    Ok(caller)
}
