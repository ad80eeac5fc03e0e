//! The follow graph: follow, unfollow, followers, following and relationships.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::error::ApiError;
use crate::page::{self, Owner, PageQuery};
use crate::services::follows::{self, Direction, FollowOutcome};
use crate::services::marks::{self, Mark};
use crate::services::relationships;
use crate::services::users;
use crate::state::AppState;
use crate::views::{
    FollowItem, FollowItemPage, FollowRequestItem, FollowRequestItemPage, Relationship,
};

/// Query of `GET /relationships`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RelationshipsQuery {
    /// 1 to {MAX_RELATIONSHIPS} comma-separated usernames, none of them blank; answered in the order asked.
    #[param(required = true, value_type = String, pattern = r"^[^,]+(,[^,]+){0,99}$", example = "susan,mary")]
    pub users: Option<String>,
}

/// Most usernames one `GET /relationships` may ask about.
pub const MAX_RELATIONSHIPS: usize = 100;

/// Follows a user. 201 when the follow is new, 200 (with the original `followed_at`) when it
/// already existed, 202 (`requested: true`) when the user is locked: a request waits for their
/// answer (a repeat changes nothing).
#[utoipa::path(post, path = "/users/{username}/follow", tag = "follows", operation_id = "followUser",
    params(("username" = String, Path, description = "Whom to follow, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 201, description = "The follow is new", body = Relationship),
        (status = 200, description = "The follow already existed; nothing changed", body = Relationship),
        (status = 202, description = "The user is locked: the request waits for their answer (`requested: true`); a repeat changes nothing", body = Relationship),
        (status = 403, description = "`blocked`: one of the two blocks the other"),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_follow_self`"),
    ),
    security(("bearer" = [])))]
pub async fn follow_user(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    let (outcome, relation) = follows::follow(&state.db, &me.0, &target).await?;
    let body = Relationship::new(&target, relation);
    Ok(match outcome {
        FollowOutcome::Created => HttpResponse::Created().json(body),
        FollowOutcome::AlreadyFollowing => HttpResponse::Ok().json(body),
        FollowOutcome::Requested => HttpResponse::Accepted().json(body),
    })
}

/// Stops following a user, or withdraws a pending request. 204 also when there was neither.
#[utoipa::path(delete, path = "/users/{username}/follow", tag = "follows", operation_id = "unfollowUser",
    params(("username" = String, Path, description = "Whom to unfollow, in any letter case (`me`, the caller, is a 422)", example = "susan")),
    responses(
        (status = 204, description = "The caller does not follow the user (any more)"),
        (status = 404, description = "`user_not_found`"),
        (status = 422, description = "`cannot_follow_self`"),
    ),
    security(("bearer" = [])))]
pub async fn unfollow_user(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let target = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    follows::unfollow(&state.db, &me.0, &target).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who follows a user, most recent follow first.
#[utoipa::path(get, path = "/users/{username}/followers", tag = "follows", operation_id = "listFollowers",
    params(("username" = String, Path, description = "Whose followers, in any letter case; `me` is the caller (401 without a token)", example = "susan"), PageQuery),
    responses(
        (status = 200, description = "A page of followers", body = FollowItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 403, description = "`blocked`: that user blocks the caller; `private_account`: that user is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`user_not_found`"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_followers(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    list(req, state, viewer, &username, &query, Direction::Followers).await
}

/// Whom a user follows, most recent follow first.
#[utoipa::path(get, path = "/users/{username}/following", tag = "follows", operation_id = "listFollowing",
    params(("username" = String, Path, description = "Whose followees, in any letter case; `me` is the caller (401 without a token)", example = "susan"), PageQuery),
    responses(
        (status = 200, description = "A page of followed users", body = FollowItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 403, description = "`blocked`: that user blocks the caller; `private_account`: that user is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`user_not_found`"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_following(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    list(req, state, viewer, &username, &query, Direction::Following).await
}

/// A followers or following list.
async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: &str,
    query: &PageQuery,
    direction: Direction,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::InPath {
        username,
        viewer: viewer.0.as_ref(),
    };
    page::list(
        &req,
        &state,
        query,
        owner,
        |user| direction.list_name(user),
        async |db, user, page| follows::list(db, user.id, direction, page).await,
        FollowItem::new,
    )
    .await
}

/// The caller's relationship to each of up to {MAX_RELATIONSHIPS} users, in the order asked.
#[utoipa::path(get, path = "/relationships", tag = "follows", operation_id = "getRelationships",
    params(RelationshipsQuery),
    responses(
        (status = 200, description = "One relationship per username asked, in that order", body = Vec<Relationship>),
        (status = 400, description = "`invalid_parameter`: no usernames, or more than {MAX_RELATIONSHIPS}"),
        (status = 404, description = "`user_not_found`, naming the first unknown username"),
    ),
    security(("bearer" = [])))]
pub async fn get_relationships(
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<RelationshipsQuery>,
) -> Result<HttpResponse, ApiError> {
    let names: Vec<&str> = query.users.as_deref().unwrap_or("").split(',').collect();
    if names.iter().any(|name| name.is_empty()) || names.len() > MAX_RELATIONSHIPS {
        return Err(ApiError::InvalidParameter(format!(
            "users must list 1 to {MAX_RELATIONSHIPS} comma-separated usernames, none blank"
        )));
    }
    let (found, relations) = state
        .read(Some(&me.0), async |db| {
            let found = users::find_by_usernames(db, &names).await?;
            let ids: Vec<i64> = found.iter().map(|u| u.id).collect();
            let relations = relationships::relations(db, me.0.id, &ids).await?;
            Ok((found, relations))
        })
        .await?;
    let answer: Vec<Relationship> = found
        .iter()
        .map(|user| Relationship::new(user, relations.get(&user.id).copied().unwrap_or_default()))
        .collect();
    Ok(HttpResponse::Ok().json(answer))
}

/// Pending requests to follow the caller, newest first.
#[utoipa::path(get, path = "/users/me/follow_requests", tag = "follows", operation_id = "listFollowRequests",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of pending requests", body = FollowRequestItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
    ),
    security(("bearer" = [])))]
pub async fn list_follow_requests(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let mark = Mark::FollowRequest;
    page::list(
        &req,
        &state,
        &query,
        Owner::Caller(&me.0),
        |me| mark.list_name(me),
        async |db, me, page| marks::list(db, mark, me.id, page).await,
        FollowRequestItem::new,
    )
    .await
}

/// Accepts a request: the follow begins now, and the counts change now.
#[utoipa::path(post, path = "/users/me/follow_requests/{username}/accept", tag = "follows", operation_id = "acceptFollowRequest",
    params(("username" = String, Path, description = "Whose request, in any letter case", example = "susan")),
    responses(
        (status = 200, description = "The follow began (`followed_by: true`, `followed_by_at` the acceptance time)", body = Relationship),
        (status = 404, description = "`follow_request_not_found`: that user has no pending request; `user_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn accept_follow_request(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let requester = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    let relation = follows::accept_request(&state.db, &me.0, &requester).await?;
    Ok(HttpResponse::Ok().json(Relationship::new(&requester, relation)))
}

/// Rejects a request: it is gone, and no follow begins.
#[utoipa::path(post, path = "/users/me/follow_requests/{username}/reject", tag = "follows", operation_id = "rejectFollowRequest",
    params(("username" = String, Path, description = "Whose request, in any letter case", example = "susan")),
    responses(
        (status = 204, description = "The request is gone"),
        (status = 404, description = "`follow_request_not_found`: that user has no pending request; `user_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn reject_follow_request(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let requester = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    follows::reject_request(&state.db, &me.0, &requester).await?;
    Ok(HttpResponse::NoContent().finish())
}
