//! The one error type of the service and the problem+json body (RFC 9457) it is written as.
//!
//! Every layer funnels into [`ApiError`]: extractor rejections through the handlers installed in
//! [`crate::startup`], unknown routes and wrong methods through default services, handler and
//! database failures through `?`. A client never sees actix's plain-text errors.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use sea_orm::{DbErr, RuntimeErr};
use serde::Serialize;
use utoipa::ToSchema;

/// For `validation_failed`: each invalid field with the messages of the rules it breaks.
// A named type, so that the document and generated clients call it this rather than `BTreeMap`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(example = json!({"username": ["must be 3 to 30 characters"]}))]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
}

impl std::ops::Deref for FieldErrors {
    type Target = BTreeMap<String, Vec<String>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for FieldErrors {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// Everything that can go wrong in a request, one variant per documented `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_json`: the body is not JSON, or not of the expected shape or types.
    #[error("{0}")]
    InvalidJson(String),
    /// 400 `invalid_parameter`: a bad query or path parameter.
    #[error("{0}")]
    InvalidParameter(String),
    /// 400 `invalid_cursor`: a cursor this server did not issue for this list.
    #[error("the cursor is not one this server issued for this list")]
    InvalidCursor,
    /// 401 `unauthorized`: no usable bearer token.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 401 `token_expired`: an access token past its expiry (refresh it); every other bad token is
    /// `Unauthorized`.
    #[error("{0}")]
    TokenExpired(&'static str),
    /// 401 `invalid_refresh_token`: unknown, expired, ended or already used.
    #[error("{0}")]
    InvalidRefreshToken(&'static str),
    /// 401 `invalid_credentials`: wrong username or password (the same answer for both).
    #[error("the username or password is wrong")]
    InvalidCredentials,
    /// 403 `forbidden`: authenticated, but not allowed.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 403 `blocked`: one of the two users blocks the other; the detail says which.
    #[error("{0}")]
    Blocked(String),
    /// 403 `private_account`: a locked account's posts or lists, asked for by someone who is not
    /// an accepted follower. Names the account.
    #[error("'{0}' is a private account: only its accepted followers see its posts and lists")]
    PrivateAccount(String),
    /// 409 `idempotency_key_in_use`: a request with this `Idempotency-Key` is still running;
    /// carries `Retry-After: 1`.
    #[error(
        "a request with this Idempotency-Key is still running: retry in a second to get its answer"
    )]
    IdempotencyKeyInUse,
    /// 422 `idempotency_key_reused`: the `Idempotency-Key` was used before with another request.
    #[error(
        "this Idempotency-Key was used with another request (another body or endpoint): use a new key for a new request"
    )]
    IdempotencyKeyReused,
    /// 403 `reauthentication_required`: deleting the account without its password or an access
    /// token of a login within the last ten minutes.
    #[error("{0}")]
    ReauthenticationRequired(&'static str),
    /// 403 `account_suspended`: login of an account that an operator suspended.
    #[error("this account is suspended")]
    AccountSuspended,
    /// 404 `user_not_found`. The name is repeated only when it could be a username: a 20 KB path
    /// segment does not come back in the answer (nor in the log).
    #[error("{}", user_not_found(.0))]
    UserNotFound(String),
    /// 404 `follow_request_not_found`: no pending request from that user.
    #[error("'{0}' has no pending request to follow you")]
    FollowRequestNotFound(String),
    /// 404 `session_not_found`: the caller has no such live session (the id is not echoed).
    #[error("you have no session with that id")]
    SessionNotFound,
    /// 404 `push_subscription_not_found`: the caller's session has no Web Push subscription.
    #[error("this session has no push subscription")]
    PushSubscriptionNotFound,
    /// 404 `post_not_found`.
    #[error("post {0} does not exist")]
    PostNotFound(i64),
    /// 404 `not_found`: no such route. Long paths are shortened in the answer.
    #[error("no resource at {}", shortened(.0))]
    NotFound(String),
    /// 405 `method_not_allowed`.
    #[error("{method} is not allowed on {}", shortened(path))]
    MethodNotAllowed {
        method: String,
        path: String,
        /// The methods the path serves, for the `Allow` header.
        allow: &'static str,
    },
    /// 409 `username_taken`.
    #[error("the username '{0}' is already taken")]
    UsernameTaken(String),
    /// 409 `email_taken`.
    #[error("the email address is already registered")]
    EmailTaken,
    /// 408 `request_timeout`: the body did not arrive in time (the client sent less than its
    /// `Content-Length`, or sent it too slowly).
    #[error("the request body did not arrive within {seconds} seconds")]
    BodyTimeout { seconds: u64 },
    /// 408 `request_timeout`: the request head did not arrive in time (answered by the HTTP
    /// layer, see [`crate::connection`]).
    #[error("the request head did not arrive within {seconds} seconds")]
    HeadTimeout { seconds: u64 },
    /// 400 `malformed_request`: the request could not be parsed as HTTP/1.1 at all.
    #[error(
        "the request could not be read as HTTP/1.1: its request line or a header is malformed, \
         or its URL is longer than 64 KiB"
    )]
    MalformedRequest,
    /// 431 `headers_too_large`: the request head is over 128 KiB or has more than 96 headers.
    #[error("the request head is larger than 128 KiB or has more than 96 headers")]
    HeadersTooLarge,
    /// 413 `payload_too_large`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 415 `unsupported_media_type`.
    #[error("send the body as JSON with 'Content-Type: application/json'")]
    UnsupportedMediaType,
    /// 422 `validation_failed`, with the broken rules per field.
    #[error("some fields are invalid")]
    Validation(FieldErrors),
    /// 422 `cannot_follow_self`.
    #[error("you cannot follow or unfollow yourself")]
    CannotFollowSelf,
    /// 422 `cannot_block_self`.
    #[error("you cannot block or unblock yourself")]
    CannotBlockSelf,
    /// 422 `cannot_mute_self`.
    #[error("you cannot mute or unmute yourself")]
    CannotMuteSelf,
    /// 422 `cannot_report_self`.
    #[error("you cannot report yourself")]
    CannotReportSelf,
    /// 422 `cannot_repost_private`: the post's author is locked, so its posts stay among its
    /// followers.
    #[error("'{0}' is a locked account: its posts cannot be reposted")]
    CannotRepostPrivate(String),
    /// 429 `rate_limited`, with the seconds after which to retry.
    #[error("too many requests; retry in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    /// 429 `too_many_streams`: the caller has the most event streams open that one user may.
    #[error("you have {limit} event streams open already; close one first")]
    TooManyStreams { limit: usize },
    /// 503 `service_unavailable` with `Retry-After`: this process has its most event streams open.
    #[error("this server has as many event streams open as it may; retry shortly")]
    StreamsFull,
    /// 503 `service_unavailable`: a dependency (the database) does not answer.
    #[error("{0}")]
    Unavailable(&'static str),
    /// 503 `service_unavailable` with `Retry-After`: a transaction kept losing to concurrent ones.
    #[error("the service is busy; retry shortly")]
    Contention(DbErr),
    /// 500 `internal`: anything unexpected. The cause is logged, never sent.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 400 `invalid_token`: an email verification or password reset token that is unknown, used
    /// or expired.
    #[error("the token is unknown, used or expired: ask for a new one")]
    InvalidToken,
    /// 413 `payload_too_large`: a list with more rows than it may have.
    #[error("the list has more than {limit} rows")]
    TooManyRows { limit: usize },
    /// 415 `unsupported_media_type`: a list sent as anything but CSV.
    #[error("send the list as CSV with 'Content-Type: text/csv'")]
    NotCsv,
    /// 415 `unsupported_media_type`: an upload that is not a JPEG, PNG, WebP or GIF image by its
    /// bytes, or one that does not decode.
    #[error("the file is not a JPEG, PNG, WebP or GIF image that can be decoded")]
    NotAnImage,
    /// 413 `payload_too_large`: an image that declares more pixels than the server decodes.
    #[error(
        "the image has more than {} megapixels",
        crate::limits::MAX_IMAGE_MEGAPIXELS
    )]
    ImageTooLarge,
    /// 404 `media_not_found`.
    #[error("no media has that id")]
    MediaNotFound,
    /// 415 `unsupported_media_type`: an upload sent as anything but `multipart/form-data`.
    #[error("send the image as 'Content-Type: multipart/form-data', in a part named 'file'")]
    NotMultipart,
}

impl ApiError {
    /// Wraps an unexpected failure, logging its whole cause chain inside the request's span (which
    /// carries the request id) so the opaque 500 a client sees can be traced.
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        let mut chain = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::error!(error = %chain, "internal error");
        ApiError::Internal(Box::new(err))
    }

    /// A single-field validation failure.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = FieldErrors::new();
        errors.insert(field.to_owned(), vec![message.into()]);
        ApiError::Validation(errors)
    }

    /// The error to answer with when some layer produced a bare `status` with no problem body.
    pub fn for_status(status: StatusCode, method: &str, path: &str) -> Self {
        match status.as_u16() {
            401 => ApiError::Unauthorized("this endpoint needs 'Authorization: Bearer <token>'"),
            404 => ApiError::NotFound(path.to_owned()),
            405 => ApiError::MethodNotAllowed {
                method: method.to_owned(),
                path: path.to_owned(),
                allow: "",
            },
            413 => ApiError::PayloadTooLarge {
                limit: crate::limits::MAX_BODY_BYTES,
            },
            415 => ApiError::UnsupportedMediaType,
            400..=499 => ApiError::InvalidParameter(format!(
                "the request was refused: {}",
                status.canonical_reason().unwrap_or("client error")
            )),
            503 => ApiError::Unavailable("the service is unavailable"),
            _ => ApiError::Internal(Box::new(std::io::Error::other(format!(
                "a layer answered {status} without a problem body"
            )))),
        }
    }

    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::InvalidCursor => "invalid_cursor",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::TokenExpired(_) => "token_expired",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Blocked(_) => "blocked",
            ApiError::AccountSuspended => "account_suspended",
            ApiError::ReauthenticationRequired(_) => "reauthentication_required",
            ApiError::IdempotencyKeyInUse => "idempotency_key_in_use",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::PrivateAccount(_) => "private_account",
            ApiError::FollowRequestNotFound(_) => "follow_request_not_found",
            ApiError::UserNotFound(_) => "user_not_found",
            ApiError::SessionNotFound => "session_not_found",
            ApiError::PushSubscriptionNotFound => "push_subscription_not_found",
            ApiError::InvalidRefreshToken(_) => "invalid_refresh_token",
            ApiError::PostNotFound(_) => "post_not_found",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UsernameTaken(_) => "username_taken",
            ApiError::EmailTaken => "email_taken",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::CannotFollowSelf => "cannot_follow_self",
            ApiError::CannotBlockSelf => "cannot_block_self",
            ApiError::CannotMuteSelf => "cannot_mute_self",
            ApiError::CannotReportSelf => "cannot_report_self",
            ApiError::CannotRepostPrivate(_) => "cannot_repost_private",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyStreams { .. } => "too_many_streams",
            ApiError::Unavailable(_) | ApiError::Contention(_) | ApiError::StreamsFull => {
                "service_unavailable"
            }
            ApiError::BodyTimeout { .. } | ApiError::HeadTimeout { .. } => "request_timeout",
            ApiError::MalformedRequest => "malformed_request",
            ApiError::HeadersTooLarge => "headers_too_large",
            ApiError::Internal(_) => "internal",
            ApiError::InvalidToken => "invalid_token",
            ApiError::TooManyRows { .. } => "payload_too_large",
            ApiError::NotCsv | ApiError::NotAnImage | ApiError::NotMultipart => {
                "unsupported_media_type"
            }
            ApiError::ImageTooLarge => "payload_too_large",
            ApiError::MediaNotFound => "media_not_found",
        }
    }
}

/// The detail of `user_not_found`.
fn user_not_found(name: &str) -> String {
    if crate::domain::username_lookup_key(name).is_some() {
        format!("user '{name}' does not exist")
    } else {
        "no user has that name: a username is 3 to 30 characters of A-Z, a-z, 0-9 and _".to_owned()
    }
}

/// `text` as repeated in an answer: at most 100 characters, then an ellipsis.
fn shortened(text: &str) -> String {
    const MAX: usize = 100;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

impl From<DbErr> for ApiError {
    fn from(err: DbErr) -> Self {
        if is_transient(&err) {
            ApiError::Contention(err)
        } else {
            ApiError::internal(err)
        }
    }
}

/// Whether `err` is a conflict between concurrent transactions that a retry resolves: a deadlock
/// or serialization failure (SQLSTATE 40001, 40P01; MySQL's 1213 is 40001) or SQLite's busy and
/// locked codes.
fn is_transient(err: &DbErr) -> bool {
    if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = err
        && let sea_orm::sqlx::Error::Database(e) = e.as_ref()
    {
        return matches!(
            e.code().as_deref(),
            Some("40001" | "40P01" | "5" | "6" | "261" | "517")
        );
    }
    false
}

/// An error response body: `application/problem+json` as in RFC 9457, plus our `code` and, for
/// validation failures, the broken rules per field.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"type": "about:blank", "title": "Not Found", "status": 404,
    "code": "user_not_found", "detail": "user 'bob' does not exist"}))]
pub struct Problem {
    /// Always `about:blank`: the `code` member says what went wrong.
    #[serde(rename = "type")]
    pub problem_type: &'static str,
    /// The HTTP reason phrase of `status`.
    pub title: &'static str,
    /// The HTTP status code, repeated from the response.
    pub status: u16,
    /// Stable, machine-readable error code; clients switch on it.
    pub code: &'static str,
    /// Human-readable explanation of this occurrence.
    pub detail: String,
    /// For `validation_failed`: each invalid field with the rules it breaks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<FieldErrors>,
}

impl ApiError {
    /// The problem body of this error.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        Problem {
            problem_type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code: self.code(),
            detail: self.to_string(),
            errors: match self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }

    /// The problem body of this error, serialized.
    pub fn problem_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.problem()).unwrap_or_default()
    }
}

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidJson(_)
            | ApiError::InvalidParameter(_)
            | ApiError::InvalidCursor
            | ApiError::MalformedRequest => StatusCode::BAD_REQUEST,
            ApiError::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::Unauthorized(_)
            | ApiError::TokenExpired(_)
            | ApiError::InvalidCredentials
            | ApiError::InvalidRefreshToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::Blocked(_)
            | ApiError::PrivateAccount(_)
            | ApiError::AccountSuspended
            | ApiError::ReauthenticationRequired(_) => StatusCode::FORBIDDEN,
            ApiError::UserNotFound(_)
            | ApiError::PostNotFound(_)
            | ApiError::FollowRequestNotFound(_)
            | ApiError::SessionNotFound
            | ApiError::PushSubscriptionNotFound
            | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UsernameTaken(_) | ApiError::EmailTaken | ApiError::IdempotencyKeyInUse => {
                StatusCode::CONFLICT
            }
            ApiError::BodyTimeout { .. } | ApiError::HeadTimeout { .. } => {
                StatusCode::REQUEST_TIMEOUT
            }
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_)
            | ApiError::IdempotencyKeyReused
            | ApiError::CannotFollowSelf
            | ApiError::CannotBlockSelf
            | ApiError::CannotMuteSelf
            | ApiError::CannotReportSelf
            | ApiError::CannotRepostPrivate(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } | ApiError::TooManyStreams { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) | ApiError::Contention(_) | ApiError::StreamsFull => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::InvalidToken => StatusCode::BAD_REQUEST,
            ApiError::TooManyRows { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotCsv | ApiError::NotAnImage | ApiError::NotMultipart => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::ImageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::MediaNotFound => StatusCode::NOT_FOUND,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let body = self.problem();
        let mut response = HttpResponse::build(status);
        response.content_type(PROBLEM_JSON);
        match self {
            ApiError::RateLimited { retry_after } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            ApiError::Contention(_) | ApiError::IdempotencyKeyInUse => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::StreamsFull | ApiError::TooManyStreams { .. } => {
                response.insert_header((header::RETRY_AFTER, "10"));
            }
            ApiError::MethodNotAllowed { allow, .. } if !allow.is_empty() => {
                response.insert_header((header::ALLOW, *allow));
            }
            _ => {}
        }
        response.json(body)
    }
}
