//! Safety: blocks, mutes, removing a follower, reports, and the operators' endpoints.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AdminUser, AuthUser};
use crate::domain::ReportReason;
use crate::error::{ApiError, FieldErrors};
use crate::extract::{CanonicalJson, IdempotencyKey};
use crate::idempotent;
use crate::page::{self, Owner, PageQuery};
use crate::services::idempotency::{Claim, Outcome};
use crate::services::marks::{self, Mark, MarkEntry, MarkOutcome};
use crate::services::relationships::ViewerStates;
use crate::services::reports::{self, ReportOutcome};
use crate::services::{follows, relationships, users};
use crate::state::AppState;
use crate::time::Timestamp;
use crate::views::{BlockItem, BlockItemPage, MuteItem, MuteItemPage, Relationship, UserCard};

async fn mark_user(
    state: &AppState,
    me: &AuthUser,
    username: &str,
    mark: Mark,
) -> Result<HttpResponse, ApiError> {
    let target = users::find_in_path(&state.db, username, Some(&me.0)).await?;
    let (outcome, relation) = marks::mark(&state.db, mark, &me.0, &target).await?;
    let body = Relationship::new(&target, relation);
    Ok(match outcome {
        MarkOutcome::Created => HttpResponse::Created().json(body),
        MarkOutcome::AlreadyThere => HttpResponse::Ok().json(body),
    })
}

async fn unmark_user(
    state: &AppState,
    me: &AuthUser,
    username: &str,
    mark: Mark,
) -> Result<HttpResponse, ApiError> {
    let target = users::find_in_path(&state.db, username, Some(&me.0)).await?;
    marks::unmark(&state.db, mark, &me.0, &target).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Blocks a user: the follows between the two end both ways, and neither can follow the other
/// while the block stands; the blocked user gets 403 `blocked` for the caller's posts and lists.
#[utoipa::path(post, path = "/users/{username}/block", tag = "safety", operation_id = "blockUser",
    params(("username" = String, Path, description = "Whom to block, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 201, description = "The block is new", body = Relationship),
        (status = 200, description = "The caller already blocked the user; nothing changed", body = Relationship),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_block_self`"),
    ),
    security(("bearer" = [])))]
pub async fn block_user(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    mark_user(&state, &me, &username, Mark::Block).await
}

/// Unblocks a user. 204 also when there was no block; no follow comes back.
#[utoipa::path(delete, path = "/users/{username}/block", tag = "safety", operation_id = "unblockUser",
    params(("username" = String, Path, description = "Whom to unblock, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 204, description = "The caller does not block the user (any more)"),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_block_self`"),
    ),
    security(("bearer" = [])))]
pub async fn unblock_user(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    unmark_user(&state, &me, &username, Mark::Block).await
}

/// Mutes a user: their posts leave the caller's timeline; nothing else changes, and they cannot
/// tell.
#[utoipa::path(post, path = "/users/{username}/mute", tag = "safety", operation_id = "muteUser",
    params(("username" = String, Path, description = "Whom to mute, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 201, description = "The mute is new", body = Relationship),
        (status = 200, description = "The caller already muted the user; nothing changed", body = Relationship),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_mute_self`"),
    ),
    security(("bearer" = [])))]
pub async fn mute_user(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    mark_user(&state, &me, &username, Mark::Mute).await
}

/// Unmutes a user. 204 also when there was no mute.
#[utoipa::path(delete, path = "/users/{username}/mute", tag = "safety", operation_id = "unmuteUser",
    params(("username" = String, Path, description = "Whom to unmute, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 204, description = "The caller does not mute the user (any more)"),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_mute_self`"),
    ),
    security(("bearer" = [])))]
pub async fn unmute_user(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    unmark_user(&state, &me, &username, Mark::Mute).await
}

/// One of the caller's lists of marks, its entries shown by `item`.
async fn list_marks<T: serde::Serialize>(
    req: &HttpRequest,
    state: &AppState,
    me: &AuthUser,
    query: &PageQuery,
    mark: Mark,
    item: impl Fn(&MarkEntry, &ViewerStates) -> T,
) -> Result<HttpResponse, ApiError> {
    page::list(
        req,
        state,
        query,
        Owner::Caller(&me.0),
        |me| mark.list_name(me),
        async |db, me, page| marks::list(db, mark, me.id, page).await,
        item,
    )
    .await
}

/// Whom the caller blocks, newest first.
#[utoipa::path(get, path = "/users/me/blocks", tag = "safety", operation_id = "listBlocks",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of blocked users", body = BlockItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
    ),
    security(("bearer" = [])))]
pub async fn list_blocks(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    list_marks(&req, &state, &me, &query, Mark::Block, BlockItem::new).await
}

/// Whom the caller mutes, newest first.
#[utoipa::path(get, path = "/users/me/mutes", tag = "safety", operation_id = "listMutes",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of muted users", body = MuteItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
    ),
    security(("bearer" = [])))]
pub async fn list_mutes(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    list_marks(&req, &state, &me, &query, Mark::Mute, MuteItem::new).await
}

/// Removes a follower: their follow of the caller ends (counts drop). 204 also when they did not
/// follow the caller.
#[utoipa::path(delete, path = "/users/me/followers/{username}", tag = "safety", operation_id = "removeFollower",
    params(("username" = String, Path, description = "The follower to remove, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 204, description = "The user does not follow the caller (any more)"),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_follow_self`"),
    ),
    security(("bearer" = [])))]
pub async fn remove_follower(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let follower = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    follows::remove_follower(&state.db, &me.0, &follower).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A report of an account, and optionally of one of its posts.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateReportRequest {
    /// Whom the report is about, in any letter case.
    #[schema(value_type = String, required = true, example = "susan")]
    pub username: Option<String>,
    /// One of that user's posts, when the report is about a post.
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    #[schema(example = 42)]
    pub post_id: Option<i64>,
    /// What is wrong: 1 to {REPORT_REASON_MAX_CHARS} characters after trimming white space (which is not stored); no
    /// NUL.
    #[schema(value_type = String, required = true, example = "spam")]
    pub reason: Option<String>,
}

/// A filed report, as its reporter sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportReceipt {
    #[schema(example = 7)]
    pub id: i64,
    /// When it was filed.
    pub created_at: Timestamp,
}

/// Reports an account or one of its posts to the operators. At most one open report per reporter
/// and account or post: a repeat answers 200 with the first.
#[utoipa::path(post, path = "/reports", tag = "safety", operation_id = "createReport",
    request_body = CreateReportRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters, the caller's own, kept {IDEMPOTENCY_KEPT_HOURS} hours: a repeat with the same key and body answers the first answer again (with `Idempotent-Replayed: true`) and files nothing", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    responses(
        (status = 201, description = "The report is filed", body = ReportReceipt,
            headers(("Idempotent-Replayed" = String, description = "`true` on a repeat's answer: the first request's answer, again"))),
        (status = 200, description = "An open report of the same account or post by the caller was there; nothing changed", body = ReportReceipt),
        (status = 400, description = "`invalid_parameter`: the `Idempotency-Key` is not 1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters; `invalid_json`"),
        (status = 404, description = "`user_not_found`"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still running; retry after `Retry-After` seconds"),
        (status = 422, description = "`validation_failed` (a field breaks its rules, or `post_id` is not a post by that user); `cannot_report_self`; `idempotency_key_reused`: the key was used with another body"),
    ),
    security(("bearer" = [])))]
pub async fn create_report(
    state: web::Data<AppState>,
    me: AuthUser,
    key: IdempotencyKey,
    body: CanonicalJson<CreateReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let CanonicalJson { body, canonical } = body;
    let mut errors = FieldErrors::new();
    if body.username.is_none() {
        errors.insert("username".into(), vec!["is required".into()]);
    }
    let reason = match body.reason.as_deref().map(ReportReason::parse) {
        None => Err("is required".to_owned()),
        Some(parsed) => parsed,
    };
    let reason = reason
        .map_err(|message| errors.insert("reason".into(), vec![message]))
        .ok();
    let (Some(username), Some(reason)) = (body.username, reason) else {
        return Err(ApiError::Validation(errors));
    };
    let target = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    let claim = key
        .0
        .map(|key| Claim::new(me.0.id, key, "POST /reports", &canonical));
    let _held = claim
        .as_ref()
        .map(|claim| state.in_flight.hold(claim))
        .transpose()?;
    let receipt_of = |report: &entity::report::Model| ReportReceipt {
        id: report.id,
        created_at: Timestamp(report.created_at),
    };
    match reports::create(
        &state.db,
        &me.0,
        &target,
        body.post_id,
        reason,
        claim.as_ref(),
    )
    .await?
    {
        Outcome::Replay(answer) => {
            let body = match &answer.response {
                Some(body) => body.clone(),
                None => {
                    let id = answer.resource_id.unwrap_or_default();
                    let report = reports::find_filed(&state.db, me.0.id, id)
                        .await?
                        .ok_or_else(|| {
                            ApiError::internal(std::io::Error::other("a kept report is gone"))
                        })?;
                    serde_json::to_string(&receipt_of(&report)).map_err(ApiError::internal)?
                }
            };
            Ok(idempotent::replay(&answer, body))
        }
        Outcome::Done((outcome, report)) => {
            let status = match outcome {
                ReportOutcome::Created => StatusCode::CREATED,
                ReportOutcome::AlreadyOpen => StatusCode::OK,
            };
            idempotent::done(
                &state.db,
                claim.as_ref(),
                status,
                None,
                &receipt_of(&report),
            )
            .await
        }
    }
}

/// A report as the operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminReport {
    #[schema(example = 7)]
    pub id: i64,
    /// When it was filed.
    pub created_at: Timestamp,
    /// Who filed it.
    pub reporter: UserCard,
    /// Whom it is about.
    pub target: UserCard,
    /// The reported post, if one was named and still exists.
    pub post_id: Option<i64>,
    /// What the reporter wrote.
    pub reason: String,
    /// Whether an operator resolved it.
    pub resolved: bool,
}

crate::page_schema!(
    AdminReportPage,
    AdminReport,
    "A page of reports, newest first."
);

/// Every report, newest first. Operators only (the role of `social operator grant`).
#[utoipa::path(get, path = "/admin/reports", tag = "admin", operation_id = "listReports",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of reports", body = AdminReportPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 403, description = "`forbidden`: the caller is not an operator"),
    ),
    security(("bearer" = [])))]
pub async fn list_reports(
    req: HttpRequest,
    state: web::Data<AppState>,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state.cursors.page_request(reports::LIST_NAME, &query)?;
    // From the primary: the queue is small, and an operator acting on it from several devices
    // sees it current.
    let (entries, neighbours) = reports::list(&state.db, page).await?;
    let anonymous = relationships::viewer_states(&state.db, None, []).await?;
    let items: Vec<AdminReport> = entries
        .into_iter()
        .map(|e| AdminReport {
            id: e.report.id,
            created_at: Timestamp(e.report.created_at),
            reporter: UserCard::new(&e.reporter, &anonymous),
            target: UserCard::new(&e.target, &anonymous),
            post_id: e.report.post_id,
            reason: e.report.reason,
            resolved: e.report.resolved_at.is_some(),
        })
        .collect();
    Ok(state
        .cursors
        .page_response(&req, reports::LIST_NAME, page, items, neighbours))
}

/// Marks a report resolved. Idempotent. Operators only.
#[utoipa::path(post, path = "/admin/reports/{id}/resolve", tag = "admin", operation_id = "resolveReport",
    params(("id" = i64, Path, description = "The report's id")),
    responses(
        (status = 204, description = "The report is resolved"),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`forbidden`: the caller is not an operator"),
        (status = 404, description = "`not_found`: no such report"),
    ),
    security(("bearer" = [])))]
pub async fn resolve_report(
    state: web::Data<AppState>,
    admin: AdminUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    reports::resolve(&state.db, admin.0.id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Suspends an account: its tokens answer 401 at once, its follows end both ways (counts drop),
/// and it is hidden everywhere (404 `user_not_found`) until unsuspended. Idempotent. Operators
/// only; an operator cannot suspend their own account.
#[utoipa::path(post, path = "/admin/users/{username}/suspension", tag = "admin", operation_id = "suspendUser",
    params(("username" = String, Path, description = "Whom to suspend, in any letter case", example = "spammer")),
    responses(
        (status = 204, description = "The account is suspended"),
        (status = 403, description = "`forbidden`: the caller is not an operator, or names their own account"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn suspend_user(
    state: web::Data<AppState>,
    admin: AdminUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = any_user(&state, &username).await?;
    if target.id == admin.0.id {
        return Err(ApiError::Forbidden(
            "an operator cannot suspend their own account",
        ));
    }
    users::suspend(&state.db, admin.0.id, target.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lifts a suspension: the account and its posts are back, its follows are not. Idempotent.
/// Operators only.
#[utoipa::path(delete, path = "/admin/users/{username}/suspension", tag = "admin", operation_id = "unsuspendUser",
    params(("username" = String, Path, description = "Whose suspension to lift, in any letter case", example = "spammer")),
    responses(
        (status = 204, description = "The account is not suspended (any more)"),
        (status = 403, description = "`forbidden`: the caller is not an operator"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn unsuspend_user(
    state: web::Data<AppState>,
    admin: AdminUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = any_user(&state, &username).await?;
    users::unsuspend(&state.db, admin.0.id, target.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The account called `username`, suspended or not.
async fn any_user(state: &AppState, username: &str) -> Result<entity::user::Model, ApiError> {
    users::find_any_by_username(&state.db, username)
        .await?
        .ok_or_else(|| ApiError::UserNotFound(username.to_owned()))
}
