//! Email verification and password reset.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::domain::{Email, Password};
use crate::error::{ApiError, FieldErrors};
use crate::extract::JsonBody;
use crate::services::email;
use crate::state::AppState;

/// The body of `POST /auth/email/verify`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VerifyEmailRequest {
    /// The token of the verification mail.
    #[schema(value_type = String, required = true)]
    pub token: Option<String>,
}

/// The body of `POST /auth/password/forgot`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ForgotPasswordRequest {
    /// The account's email address, in any letter case.
    #[schema(value_type = String, required = true, example = "susan@example.com")]
    pub email: Option<String>,
}

/// The body of `POST /auth/password/reset`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPasswordRequest {
    /// The token of the reset mail.
    #[schema(value_type = String, required = true)]
    pub token: Option<String>,
    /// {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters.
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    pub new_password: Option<String>,
}

/// A token as sent: 400 `invalid_token` when it is missing or could be no token of ours (which
/// spares the database a lookup of a 60 KiB string).
fn token(raw: Option<String>) -> Result<String, ApiError> {
    raw.filter(|t| {
        (1..=128).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
    .ok_or(ApiError::InvalidToken)
}

/// Confirms the address a verification mail was sent to.
#[utoipa::path(post, path = "/auth/email/verify", tag = "accounts", operation_id = "verifyEmail",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The address is confirmed: the account's `email_verified` is `true`"),
        (status = 400, description = "`invalid_token`: the token is unknown, used or expired (a verification token lives {VERIFY_TTL_HOURS} hours and works once), or missing; `invalid_json`: the body is not JSON of the expected shape"),
    ))]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: JsonBody<VerifyEmailRequest>,
) -> Result<HttpResponse, ApiError> {
    let token = token(body.0.token)?;
    email::verify(&state.db, &token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mails the caller a new verification token.
#[utoipa::path(post, path = "/auth/email/verification", tag = "accounts", operation_id = "requestEmailVerification",
    responses(
        (status = 202, description = "A new verification mail is on its way (the earlier tokens keep working until they expire). An address already confirmed is not mailed again; without a mail server (`SMTP_URL`) nothing is sent"),
        (status = 429, description = "`rate_limited`: a verification mail was made less than a minute ago (registration's included); retry after `Retry-After` seconds"),
    ),
    security(("bearer" = [])))]
pub async fn request_verification(
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    if email::request_verification(&state.db, &state.mailing, &me.0).await? {
        state.outbox.wake();
    }
    Ok(HttpResponse::Accepted().finish())
}

/// Mails a password reset token to an address, when an account has it.
#[utoipa::path(post, path = "/auth/password/forgot", tag = "accounts", operation_id = "forgotPassword",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Accepted, whether or not an account has the address: the same answer, after the same work (nobody learns which addresses have accounts). When one has, a reset token that lives {RESET_TTL_MINUTES} minutes is mailed to it, and replaces the earlier ones"),
        (status = 422, description = "`validation_failed`: `email` is missing or is no plausible address"),
    ))]
pub async fn forgot_password(
    state: web::Data<AppState>,
    body: JsonBody<ForgotPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = match body.0.email.as_deref().map(Email::parse) {
        None => return Err(ApiError::field("email", "is required")),
        Some(Err(message)) => return Err(ApiError::field("email", message)),
        Some(Ok(email)) => email,
    };
    email::request_reset(&state.db, &state.mailing, email.as_str()).await?;
    state.outbox.wake();
    Ok(HttpResponse::Accepted().finish())
}

/// Sets a new password with the token of a reset mail; every session of the account ends.
#[utoipa::path(post, path = "/auth/password/reset", tag = "accounts", operation_id = "resetPassword",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "The password is set; every session of the account has ended (its refresh and access tokens answer 401): log in with the new password"),
        (status = 400, description = "`invalid_token`: the token is unknown, used, expired, replaced by a newer one, or missing; `invalid_json`: the body is not JSON of the expected shape"),
        (status = 422, description = "`validation_failed`: `new_password` breaks the rule"),
    ))]
pub async fn reset_password(
    state: web::Data<AppState>,
    body: JsonBody<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let password = match body.new_password.as_deref().map(Password::parse) {
        None => Err("is required".to_owned()),
        Some(parsed) => parsed,
    };
    let password = password.map_err(|message| {
        let mut errors = FieldErrors::new();
        errors.insert("new_password".to_owned(), vec![message]);
        ApiError::Validation(errors)
    })?;
    let token = token(body.token)?;
    let hash = state.passwords.hash(password.expose().to_owned()).await?;
    email::reset_password(&state.db, &token, hash).await?;
    Ok(HttpResponse::NoContent().finish())
}
