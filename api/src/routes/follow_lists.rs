//! The caller's follow list in CSV, out and in.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::limits::BODY_TIMEOUT;
use crate::services::follow_lists::{self, MAX_BYTES};
use crate::state::AppState;
use crate::time::Timestamp;

/// The media type of the lists.
const CSV: &str = "text/csv";

/// What `POST /users/me/following.csv` did.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"followed": 2, "requested": 1, "already": 0,
    "not_found": ["nobody"], "refused": ["susan"]}))]
pub struct ImportResult {
    /// How many follows began.
    pub followed: u64,
    /// How many locked accounts were asked (or had been asked already) to accept a follow.
    pub requested: u64,
    /// How many listed accounts the caller followed already.
    pub already: u64,
    /// Listed names that are no account's, as the list wrote them.
    pub not_found: Vec<String>,
    /// Listed accounts that cannot be followed: the caller itself, and accounts with a block
    /// between them and the caller, either way.
    pub refused: Vec<String>,
}

/// The accounts the caller follows, as CSV: `username,followed_at`, most recent follow first.
#[utoipa::path(get, path = "/users/me/following.csv", tag = "follows", operation_id = "exportFollowing",
    responses(
        (status = 200, description = "A header row `username,followed_at`, then one row per account the caller follows, most recent follow first (`followed_at` as RFC 3339 UTC with milliseconds)",
            content_type = "text/csv", body = String,
            example = "username,followed_at\nsusan,2026-11-20T10:00:00.123Z\n"),
    ),
    security(("bearer" = [])))]
pub async fn export_following(
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let rows = state
        .read(Some(&me.0), async |db| {
            follow_lists::following(db, me.0.id).await
        })
        .await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write = |writer: &mut csv::Writer<Vec<u8>>, row: [&str; 2]| {
        writer.write_record(row).map_err(ApiError::internal)
    };
    write(&mut writer, ["username", "followed_at"])?;
    for (username, followed_at) in &rows {
        write(
            &mut writer,
            [username, &Timestamp(*followed_at).to_rfc3339()],
        )?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| ApiError::internal(e.into_error()))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"following.csv\"",
        ))
        .body(body))
}

/// Follows every account a CSV list names, as `POST /users/{username}/follow` would.
#[utoipa::path(post, path = "/users/me/following.csv", tag = "follows", operation_id = "importFollowing",
    request_body(content = String, content_type = "text/csv",
        description = "One username per row, in the first column (a leading `@` is dropped); other columns are ignored, and so is a first row `username` (a header). Quotes, a UTF-8 byte order mark and CRLF line ends are read as CSV has them. At most {MAX_CSV_ROWS} rows and {MAX_CSV_MIB} MiB",
        example = "username,followed_at\nsusan,2026-11-20T10:00:00.123Z\njohn\n"),
    responses(
        (status = 200, description = "Each listed account was followed as `POST /users/{username}/follow` would (notifications, counts, requests to locked accounts); a name listed twice counts once. What the list did", body = ImportResult),
        (status = 400, description = "`invalid_parameter`: the body could not be read"),
        (status = 408, description = "`request_timeout`: the body did not arrive in time"),
        (status = 413, description = "`payload_too_large`: the list has more than {MAX_CSV_ROWS} rows or {MAX_CSV_MIB} MiB; nothing was followed"),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `text/csv`; nothing was followed"),
    ),
    security(("bearer" = [])))]
pub async fn import_following(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_csv = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(CSV));
    if !is_csv {
        return Err(ApiError::NotCsv);
    }
    let body = read_body(&req, payload).await?;
    let names = follow_lists::parse_usernames(&body)?;
    // Its own task, whose events reach the streams when it ends: a list that takes longer than
    // a request may (`REQUEST_TIMEOUT_SECONDS`) is still followed whole.
    let db = state.db.clone();
    let hub = state.hub.clone();
    let caller = me.0.clone();
    let import = async move {
        crate::events::collect(&hub, follow_lists::import(&db, &caller, names)).await
    };
    let report = actix_web::rt::spawn(import)
        .await
        .map_err(ApiError::internal)??;
    Ok(HttpResponse::Ok().json(ImportResult {
        followed: report.followed,
        requested: report.requested,
        already: report.already,
        not_found: report.not_found,
        refused: report.refused,
    }))
}

/// The body, at most [`MAX_BYTES`] (413 past it, before more is read), within [`BODY_TIMEOUT`].
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit: MAX_BYTES };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_BYTES) {
        return Err(too_large);
    }
    let read = async {
        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::InvalidParameter(format!("the body could not be read: {e}"))
            })?;
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(ApiError::PayloadTooLarge { limit: MAX_BYTES });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            seconds: BODY_TIMEOUT.as_secs(),
        })?
}
