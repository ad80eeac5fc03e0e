//! Posts and the timeline.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthUser, MaybeAuthUser};
use crate::domain::PostBody;
use crate::error::{ApiError, Problem};
use crate::pagination::PageQuery;
use crate::routes::JsonBody;
use crate::services::posts::{self, PostWithAuthor};
use crate::services::relationships::{self, ViewerStates};
use crate::services::{timeline, users};
use crate::startup::AppState;
use crate::time::Timestamp;
use crate::views::UserCard;
use sea_orm::DatabaseConnection;

/// A post.
#[derive(Debug, Serialize, ToSchema)]
pub struct Post {
    /// The post's id.
    #[schema(example = 42)]
    pub id: i64,
    /// Who wrote it, with `viewer` when the request is authenticated.
    pub author: UserCard,
    /// The text, trimmed, 1 to 280 characters.
    pub body: String,
    /// When it was written.
    pub created_at: Timestamp,
}

crate::page_schema!(PostPage, Post, "A page of posts, newest first.");

/// A new post. The author is always the token's user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePostRequest {
    /// 1 to 280 characters after trimming white space (which is not stored); no NUL.
    #[schema(value_type = String, required = true, example = "Hello, world")]
    pub body: Option<String>,
}

/// Turns posts into wire posts whose author cards carry the viewer's state, in a fixed number of
/// queries whatever their number.
pub(crate) async fn render(
    db: &DatabaseConnection,
    viewer: Option<i64>,
    posts: Vec<PostWithAuthor>,
) -> Result<Vec<Post>, ApiError> {
    let states =
        relationships::viewer_states(db, viewer, posts.iter().map(|p| p.author.id)).await?;
    Ok(posts.iter().map(|p| Post::new(p, &states)).collect())
}

impl Post {
    /// A post as the viewer of `states` sees it.
    pub(crate) fn new(p: &PostWithAuthor, states: &ViewerStates) -> Post {
        Post {
            id: p.post.id,
            author: UserCard::new(&p.author, states),
            body: p.post.body.clone(),
            created_at: Timestamp(p.post.created_at),
        }
    }
}

/// One post as [`render`] shows it.
async fn render_one(
    db: &DatabaseConnection,
    viewer: Option<i64>,
    post: PostWithAuthor,
) -> Result<Post, ApiError> {
    render(db, viewer, vec![post])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("a post did not render")))
}

/// Writes a post as the caller.
#[utoipa::path(post, path = "/posts", tag = "posts", operation_id = "createPost",
    request_body = CreatePostRequest,
    responses(
        (status = 201, description = "The post was written", body = Post,
            headers(("Location" = String, description = "`/posts/{id}`"))),
        (status = 400, description = "`invalid_json`: the body is not JSON of the expected shape", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: the body breaks its rules", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_post(
    state: web::Data<AppState>,
    me: AuthUser,
    body: JsonBody<CreatePostRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let text = body
        .body
        .ok_or_else(|| ApiError::field("body", "is required"))?;
    let text = PostBody::parse(&text).map_err(|message| ApiError::field("body", message))?;
    let post = posts::create(&state.db, &me.0, text).await?;
    let id = post.id;
    let post = render_one(
        &state.db,
        Some(me.0.id),
        PostWithAuthor { post, author: me.0 },
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/posts/{id}")))
        .json(post))
}

/// One post.
#[utoipa::path(get, path = "/posts/{id}", tag = "posts", operation_id = "getPost",
    params(("id" = i64, Path, description = "The post's id")),
    responses(
        (status = 200, description = "The post", body = Post),
        (status = 400, description = "`invalid_parameter`: the id is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`blocked`: the author blocks the caller; `private_account`: the author is locked and the caller (perhaps anonymous) does not follow them", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`post_not_found` (also while its author is suspended)", body = Problem, content_type = "application/problem+json"),
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
        (status = 400, description = "`invalid_parameter`: the id is not an integer", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: another user's post", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`post_not_found`", body = Problem, content_type = "application/problem+json"),
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
        (status = 403, description = "`blocked`: that user blocks the caller; `private_account`: that user is locked and the caller (perhaps anonymous) does not follow them", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("bearer" = [])))]
pub async fn list_user_posts(
    req: HttpRequest,
    state: web::Data<AppState>,
    viewer: MaybeAuthUser,
    username: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    state
        .read(viewer.0.as_ref(), async |db| {
            let author = users::find_in_path(db, &username, viewer.0.as_ref()).await?;
            relationships::check_access(db, &author, viewer.id()).await?;
            let list_name = posts::list_name(author.id);
            let page = state.cursors.page_request(&list_name, &query)?;
            let (rows, neighbours) = posts::list_by_author(db, &author, page).await?;
            let items = render(db, viewer.id(), rows).await?;
            Ok(state
                .cursors
                .page_response(&req, &list_name, page, items, neighbours))
        })
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
    let list_name = timeline::list_name(me.0.id);
    let page = state.cursors.page_request(&list_name, &query)?;
    state
        .read(Some(&me.0), async |db| {
            let (rows, neighbours) =
                timeline::page(db, &me.0, page, state.timeline_per_author_max_followees).await?;
            let items = render(db, Some(me.0.id), rows).await?;
            Ok(state
                .cursors
                .page_response(&req, &list_name, page, items, neighbours))
        })
        .await
}
