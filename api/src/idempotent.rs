//! The answers of the writes that take an `Idempotency-Key` ([`crate::services::idempotency`]):
//! a repeat gets the first answer again, marked `Idempotent-Replayed: true`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;

use crate::services::idempotency::Answer;

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
pub fn answer(status: StatusCode, location: Option<&str>, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    if let Some(location) = location {
        response.insert_header((header::LOCATION, location.to_owned()));
    }
    response.content_type("application/json").body(body)
}
