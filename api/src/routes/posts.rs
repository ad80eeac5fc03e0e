//! Posts and the timeline.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::domain::PostBody;
use crate::error::ApiError;
use crate::extract::{CanonicalJson, IdempotencyKey};
use crate::idempotent;
use crate::page::{self, Owner, PageQuery};
use crate::services::idempotency::{Claim, Outcome};
use crate::services::likes::{self, LikeOutcome};
use crate::services::media::MAX_PER_POST;
use crate::services::posts;
use crate::services::reposts::{self, RepostOutcome};
use crate::services::{relationships, timeline};
use crate::state::AppState;
use crate::views::posts::{render_one, render_written};
use crate::views::{LikeItem, LikeItemPage, Post, PostPage, RepostItem, RepostItemPage};

/// A new post. The author is always the token's user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePostRequest {
    /// 1 to {POST_BODY_MAX_CHARS} characters after trimming white space (which is not stored); no NUL.
    #[schema(value_type = String, required = true, example = "Hello, world")]
    pub body: Option<String>,
    /// The post this one answers, for a reply.
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    #[schema(example = 41)]
    pub in_reply_to_id: Option<i64>,
    /// Up to {MAX_MEDIA_PER_POST} ids of the caller's own media (`POST /media`) that no post
    /// shows yet, in the order the post shows them.
    #[serde(default)]
    #[schema(max_items = 4, example = json!(["q3T5n0m8QeKbV1x2y3z4Aw"]))]
    pub media_ids: Option<Vec<String>>,
}

/// Writes a post as the caller, or a reply.
#[utoipa::path(post, path = "/posts", tag = "posts", operation_id = "createPost",
    request_body = CreatePostRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters, the caller's own, kept {IDEMPOTENCY_KEPT_HOURS} hours: a repeat with the same key and body answers the first answer again (with `Idempotent-Replayed: true`) and writes nothing", min_length = 1, max_length = 255, pattern = r"^[!-~]+$")),
    responses(
        (status = 201, description = "The post was written (or, for a repeat of an `Idempotency-Key`, the first request's answer again)", body = Post,
            headers(
                ("Location" = String, description = "`/posts/{id}`"),
                ("Idempotent-Replayed" = String, description = "`true` on a repeat's answer: the first request's answer, again"),
            )),
        (status = 400, description = "`invalid_parameter`: the `Idempotency-Key` is not 1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters; `invalid_json`"),
        (status = 403, description = "`blocked`: the author of the post answered blocks the caller, or the caller blocks them; `private_account`: that author is locked and the caller does not follow them"),
        (status = 404, description = "`post_not_found`: `in_reply_to_id` names no post (or one whose author is suspended)"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this key is still running; retry after `Retry-After` seconds"),
        (status = 422, description = "`validation_failed`: the body breaks its rules, or `media_ids` names more than {MAX_MEDIA_PER_POST} media, one twice, or one that is not the caller's or that a post shows already; `idempotency_key_reused`: the key was used with another body"),
    ),
    security(("bearer" = [])))]
pub async fn create_post(
    state: web::Data<AppState>,
    me: AuthUser,
    key: IdempotencyKey,
    body: CanonicalJson<CreatePostRequest>,
) -> Result<HttpResponse, ApiError> {
    let CanonicalJson { body, canonical } = body;
    let text = body
        .body
        .ok_or_else(|| ApiError::field("body", "is required"))?;
    let text = PostBody::parse(&text).map_err(|message| ApiError::field("body", message))?;
    let claim = key
        .0
        .map(|key| Claim::new(me.0.id, key, "POST /posts", &canonical));
    let _held = claim
        .as_ref()
        .map(|claim| state.in_flight.hold(claim))
        .transpose()?;
    let media_ids = body.media_ids.unwrap_or_default();
    if media_ids.len() > MAX_PER_POST {
        return Err(ApiError::field(
            "media_ids",
            format!("at most {MAX_PER_POST} media per post"),
        ));
    }
    match posts::create(
        &state.db,
        &me.0,
        text,
        body.in_reply_to_id,
        &media_ids,
        claim.as_ref(),
    )
    .await?
    {
        Outcome::Replay(answer) => {
            let body = match &answer.response {
                Some(body) => body.clone(),
                // The first answer's body was not kept (a crash after the commit): the post as
                // it is now.
                None => {
                    let post =
                        posts::find(&state.db, answer.resource_id.unwrap_or_default()).await?;
                    let post = render_one(&state.db, Some(me.0.id), post).await?;
                    serde_json::to_string(&post).map_err(ApiError::internal)?
                }
            };
            Ok(idempotent::replay(&answer, body))
        }
        Outcome::Done(post) => {
            // The author's next read shows the post.
            state.post_horizon.reach(post.post.created_at).await;
            let location = format!("/posts/{}", post.post.id);
            let post = render_written(&state.db, &post, !media_ids.is_empty()).await?;
            idempotent::done(
                &state.db,
                claim.as_ref(),
                StatusCode::CREATED,
                Some(&location),
                &post,
            )
            .await
        }
    }
}

/// One post.
#[utoipa::path(get, path = "/posts/{id}", tag = "posts", operation_id = "getPost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post", body = Post),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`blocked`: the author blocks the caller; `private_account`: the author is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security((), ("bearer" = [])))]
pub async fn get_post(
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let post = state
        .read(viewer.0.as_ref(), async |db| {
            let post = posts::find(db, id).await?;
            relationships::check_access(db, &post.author, viewer.id()).await?;
            render_one(db, viewer.id(), post).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(post))
}

/// Deletes one of the caller's posts.
#[utoipa::path(delete, path = "/posts/{id}", tag = "posts", operation_id = "deletePost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 204, description = "The post is gone"),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`forbidden`: another user's post"),
        (status = 404, description = "`post_not_found`"),
    ),
    security(("bearer" = [])))]
pub async fn delete_post(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    posts::delete(&state.db, &me.0, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's posts, newest first.
#[utoipa::path(get, path = "/users/{username}/posts", tag = "posts", operation_id = "listUserPosts",
    params(("username" = String, Path, description = "Whose posts, in any letter case; `me` is the caller (401 without a token)", example = "susan"), PageQuery),
    responses(
        (status = 200, description = "A page of posts", body = PostPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 403, description = "`blocked`: that user blocks the caller; `private_account`: that user is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`user_not_found`"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_user_posts(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let owner = Owner::InPath {
        username: &username,
        viewer: viewer.0.as_ref(),
    };
    page::list(
        &req,
        &state,
        &query,
        owner,
        posts::list_name,
        async |db, author, page| posts::list_by_author(db, author, page).await,
        Post::new,
    )
    .await
}

/// The caller's own posts and the posts of everyone the caller follows, newest first.
#[utoipa::path(get, path = "/timeline", tag = "posts", operation_id = "getTimeline",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of the timeline", body = PostPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
    ),
    security(("bearer" = [])))]
pub async fn get_timeline(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    page::list(
        &req,
        &state,
        &query,
        Owner::Caller(&me.0),
        timeline::list_name,
        async |db, me, page| timeline::page(db, me, page, &state.timeline).await,
        Post::entry,
    )
    .await
}

/// The direct replies to a post, newest first.
#[utoipa::path(get, path = "/posts/{id}/replies", tag = "posts", operation_id = "listReplies",
    params(("id" = i64, Path, description = "The post's id"), PageQuery),
    responses(
        (status = 200, description = "A page of replies; those the caller may not read (by an account that blocks the caller or that the caller blocks or mutes, by a locked account the caller does not follow, by a suspended account) are left out", body = PostPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`blocked`: the author blocks the caller; `private_account`: the author is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_replies(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    let viewer_id = viewer.id();
    page::list(
        &req,
        &state,
        &query,
        Owner::OfPost {
            id,
            viewer: viewer.0.as_ref(),
        },
        |_| posts::replies_list_name(id),
        async |db, _, page| posts::list_replies(db, id, viewer_id, page).await,
        Post::new,
    )
    .await
}

/// Likes a post.
#[utoipa::path(post, path = "/posts/{id}/like", tag = "posts", operation_id = "likePost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 201, description = "The like is new; the post as it is now", body = Post),
        (status = 200, description = "The caller liked the post already; nothing changed", body = Post),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`blocked`: the author blocks the caller, or the caller blocks them; `private_account`: the author is locked and the caller does not follow them"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security(("bearer" = [])))]
pub async fn like_post(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (outcome, post) = likes::like(&state.db, &me.0, id.into_inner()).await?;
    let post = render_one(&state.db, Some(me.0.id), post).await?;
    Ok(match outcome {
        LikeOutcome::Created => HttpResponse::Created().json(post),
        LikeOutcome::AlreadyLiked => HttpResponse::Ok().json(post),
    })
}

/// Takes back a like.
#[utoipa::path(delete, path = "/posts/{id}/like", tag = "posts", operation_id = "unlikePost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 204, description = "The caller does not like the post (any more); idempotent"),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security(("bearer" = [])))]
pub async fn unlike_post(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    likes::unlike(&state.db, &me.0, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who likes a post, most recent like first.
#[utoipa::path(get, path = "/posts/{id}/likes", tag = "posts", operation_id = "listLikes",
    params(("id" = i64, Path, description = "The post's id"), PageQuery),
    responses(
        (status = 200, description = "A page of likes", body = LikeItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`blocked`: the author blocks the caller; `private_account`: the author is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_likes(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    page::list(
        &req,
        &state,
        &query,
        Owner::OfPost {
            id,
            viewer: viewer.0.as_ref(),
        },
        |_| likes::list_name(id),
        async |db, _, page| likes::list(db, id, page).await,
        LikeItem::new,
    )
    .await
}

/// Reposts a post: it shows in the timelines of the caller's followers (and the caller's own), at
/// the time of the repost. Idempotent.
#[utoipa::path(post, path = "/posts/{id}/repost", tag = "posts", operation_id = "repostPost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 201, description = "The repost is new; the post as it is now", body = Post),
        (status = 200, description = "The caller reposted the post already; nothing changed", body = Post),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`blocked`: the author blocks the caller, or the caller blocks them; `private_account`: the author is locked and the caller does not follow them"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
        (status = 422, description = "`cannot_repost_private`: the post's author is a locked account (the author's own reposts too)"),
    ),
    security(("bearer" = [])))]
pub async fn repost_post(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (outcome, post) = reposts::repost(&state.db, &me.0, id.into_inner()).await?;
    if let RepostOutcome::Created { at } = outcome {
        // The caller's next read shows the repost.
        state.post_horizon.reach(at).await;
    }
    let post = render_one(&state.db, Some(me.0.id), post).await?;
    Ok(match outcome {
        RepostOutcome::Created { .. } => HttpResponse::Created().json(post),
        RepostOutcome::AlreadyReposted => HttpResponse::Ok().json(post),
    })
}

/// Takes back a repost: the post falls back to its next entry in every timeline.
#[utoipa::path(delete, path = "/posts/{id}/repost", tag = "posts", operation_id = "unrepostPost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 204, description = "The caller has not reposted the post (any more); idempotent"),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security(("bearer" = [])))]
pub async fn unrepost_post(
    state: web::Data<AppState>,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    reposts::unrepost(&state.db, &me.0, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who reposted a post, most recent repost first.
#[utoipa::path(get, path = "/posts/{id}/reposts", tag = "posts", operation_id = "listReposts",
    params(("id" = i64, Path, description = "The post's id"), PageQuery),
    responses(
        (status = 200, description = "A page of reposts", body = RepostItemPage,
            headers(("Link" = String, description = "`<...?limit=N&cursor=...>; rel=\"next\"` when there is a next page, `<...?limit=N&newer_than=...>; rel=\"prev\"` whenever `prev_cursor` is not null"))),
        (status = 400, description = "`invalid_parameter`: the id is not an integer"),
        (status = 403, description = "`blocked`: the author blocks the caller; `private_account`: the author is locked and the caller (perhaps anonymous) does not follow them"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_reposts(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    page::list(
        &req,
        &state,
        &query,
        Owner::OfPost {
            id,
            viewer: viewer.0.as_ref(),
        },
        |_| reposts::list_name(id),
        async |db, _, page| reposts::list(db, id, page).await,
        RepostItem::new,
    )
    .await
}
