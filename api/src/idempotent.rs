//! The answers of the writes that take an `Idempotency-Key` ([`crate::services::idempotency`]):
//! a repeat gets the first answer again, marked `Idempotent-Replayed: true`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;

use crate::error::ApiError;
use crate::services::idempotency::{self, Answer, Claim};

/// The first request's answer again: its status, `Location` and `body` (JSON), with
/// `Idempotent-Replayed: true`.
pub fn replay(answer: &Answer, body: String) -> HttpResponse {
    let mut response =
        HttpResponse::build(StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK));
    if let Some(location) = &answer.location {
        response.insert_header((header::LOCATION, location.clone()));
    }
    response
        .insert_header(("idempotent-replayed", "true"))
        .content_type("application/json")
        .body(body)
}

/// An answer of `status` whose JSON `body` is already written out (so that it can be kept for
/// repeats as sent), with its `Location` if any.
fn answer(status: StatusCode, location: Option<&str>, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if let Some(location) = location {
        response.insert_header((header::LOCATION, location.to_owned()));
    }
    response.content_type("application/json").body(body)
}

/// The answer of a write that took a key (or none): `value` written out once, kept for the key's
/// repeats when there is a key, and sent with `status` and `Location`.
pub async fn done(
    db: &sea_orm::DatabaseConnection,
    claim: Option<&Claim>,
    status: StatusCode,
    location: Option<&str>,
    value: &impl serde::Serialize,
) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    if let Some(claim) = claim {
        idempotency::store_response(db, claim, &body).await;
    }
    Ok(answer(status, location, body))
}
