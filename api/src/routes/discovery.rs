//! Finding people: known followers and follow suggestions.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::page::{self, Owner, PageQuery};
use crate::services::discovery::{self, MAX_SUGGESTIONS};
use crate::services::{relationships, users};
use crate::state::AppState;
use crate::views::{FollowItem, FollowItemPage, UserCard};

/// The followers of a user whom the caller follows ("followed by people you follow"), most
/// recent follow of that user first.
#[utoipa::path(get, path = "/users/{username}/known_followers", tag = "follows", operation_id = "listKnownFollowers",
    params(("username" = String, Path, description = "Whose followers, in any letter case; `me` is the caller", example = "susan"), PageQuery),
    responses(
        (status = 200, description = "A page of the followers the caller follows", body = FollowItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 403, description = "`blocked`: that user blocks the caller; `private_account`: that user is locked and the caller does not follow them"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn list_known_followers(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let viewer = me.0.id;
    let caller = &me.0;
    page::list(
        &req,
        &state,
        &query,
        Owner::InPath {
            username: &username,
            viewer: Some(&me.0),
        },
        |target| discovery::known_followers_list_name(target, viewer),
        async |db, target, page| discovery::known_followers(db, target, caller, page).await,
        FollowItem::new,
    )
    .await
}

/// The query of `GET /suggestions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestionsQuery {
    /// How many suggestions, 1 to {MAX_SUGGESTIONS} (default {DEFAULT_SUGGESTIONS}).
    // Its maximum and default come from `MAX_SUGGESTIONS` and `DEFAULT_SUGGESTIONS`
    // (`openapi::Numbers`).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<String>,
}

/// The default `limit` of `GET /suggestions`.
pub const DEFAULT_SUGGESTIONS: u64 = 20;

/// An account the caller may want to follow.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestion {
    pub user: UserCard,
    /// How many of the accounts the caller follows (of those followed most recently: at most
    /// {SUGGESTION_SAMPLE}, and no more than the first whose own follows add up to
    /// {SUGGESTION_SAMPLE_FOLLOWS}) follow it; 0 for a caller who follows nobody (then the most-followed accounts
    /// are suggested).
    #[schema(example = 3)]
    pub followed_by_count: i64,
    /// Up to {FOLLOWED_BY_SHOWN} of them, most recent follow first.
    pub followed_by: Vec<UserCard>,
}

/// Follow suggestions.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suggestions {
    pub items: Vec<Suggestion>,
}

/// Accounts the caller may want to follow: those followed by the accounts the caller follows,
/// ranked by how many of them follow each, then by follower count, then by username.
///
/// Never the caller, an account the caller follows, has asked to follow, blocks, is blocked by,
/// mutes or dismissed, nor a suspended one. A caller who follows nobody gets the most-followed
/// accounts under the same exclusions. Not paged.
#[utoipa::path(get, path = "/suggestions", tag = "follows", operation_id = "getSuggestions",
    params(SuggestionsQuery),
    responses(
        (status = 200, description = "The suggestions, best first", body = Suggestions),
        (status = 400, description = "`invalid_parameter`: `limit` is not 1 to {MAX_SUGGESTIONS}"),
    ),
    security(("bearer" = [])))]
pub async fn get_suggestions(
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<SuggestionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_SUGGESTIONS,
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if (1..=MAX_SUGGESTIONS).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidParameter(format!(
                    "limit must be a whole number from 1 to {MAX_SUGGESTIONS}"
                )));
            }
        },
    };
    let items = state
        .read(Some(&me.0), async |db| {
            let found =
                discovery::suggestions(db, &state.popular, state.suggestion_sample, me.0.id, limit)
                    .await?;
            let shown = found
                .iter()
                .flat_map(|s| std::iter::once(s.user.id).chain(s.followed_by.iter().map(|u| u.id)));
            let states = relationships::viewer_states(db, Some(me.0.id), shown).await?;
            Ok(found
                .iter()
                .map(|s| Suggestion {
                    user: UserCard::new(&s.user, &states),
                    followed_by_count: s.followed_by_count,
                    followed_by: s
                        .followed_by
                        .iter()
                        .map(|u| UserCard::new(u, &states))
                        .collect(),
                })
                .collect())
        })
        .await?;
    Ok(HttpResponse::Ok().json(Suggestions { items }))
}

/// Never suggest an account to the caller again.
#[utoipa::path(delete, path = "/suggestions/{username}", tag = "follows", operation_id = "dismissSuggestion",
    params(("username" = String, Path, description = "The account, in any letter case", example = "susan")),
    responses(
        (status = 204, description = "It will not be suggested again (idempotent)"),
        (status = 404, description = "`user_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn dismiss_suggestion(
    state: web::Data<AppState>,
    me: AuthUser,
    username: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let other = users::find_in_path(&state.db, &username, Some(&me.0)).await?;
    discovery::dismiss(&state.db, me.0.id, other.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
