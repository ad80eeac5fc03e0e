//! A post on the wire.

use sea_orm::DatabaseConnection;
use serde::Serialize;
use utoipa::ToSchema;

use super::UserCard;
use crate::error::ApiError;
use crate::services::posts::PostWithAuthor;
use crate::services::relationships::{self, ViewerStates};
use crate::time::Timestamp;

/// A post.
#[derive(Debug, Serialize, ToSchema)]
pub struct Post {
    /// The post's id.
    #[schema(example = 42)]
    pub id: i64,
    /// Who wrote it, with `viewer` when the request is authenticated.
    pub author: UserCard,
    /// The text, trimmed, 1 to {POST_BODY_MAX_CHARS} characters.
    pub body: String,
    /// When it was written.
    pub created_at: Timestamp,
}

crate::page_schema!(PostPage, Post, "A page of posts, newest first.");

impl Post {
    /// A post as the viewer of `states` sees it.
    pub fn new(p: &PostWithAuthor, states: &ViewerStates) -> Post {
        Post {
            id: p.post.id,
            author: UserCard::new(&p.author, states),
            body: p.post.body.clone(),
            created_at: Timestamp(p.post.created_at),
        }
    }
}

/// Turns posts into wire posts whose author cards carry the viewer's state, in a fixed number of
/// queries whatever their number.
pub async fn render(
    db: &DatabaseConnection,
    viewer: Option<i64>,
    posts: Vec<PostWithAuthor>,
) -> Result<Vec<Post>, ApiError> {
    let states =
        relationships::viewer_states(db, viewer, posts.iter().map(|p| p.author.id)).await?;
    Ok(posts.iter().map(|p| Post::new(p, &states)).collect())
}

/// One post as [`render`] shows it.
pub async fn render_one(
    db: &DatabaseConnection,
    viewer: Option<i64>,
    post: PostWithAuthor,
) -> Result<Post, ApiError> {
    render(db, viewer, vec![post])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("a post did not render")))
}
