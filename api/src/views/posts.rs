//! A post on the wire.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Media, UserCard};
use crate::error::ApiError;
use crate::services::posts::PostWithAuthor;
use crate::services::relationships::{self, Interactions, Relation, ViewerStates};
use crate::services::timeline::Entry;
use crate::services::{media, reposts};
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
    /// The post this one answers; `null` when it is not a reply.
    pub in_reply_to: Option<InReplyTo>,
    /// How many replies it has (by accounts that are not suspended).
    #[schema(example = 2)]
    pub replies_count: i64,
    /// How many accounts like it.
    #[schema(example = 5)]
    pub likes_count: i64,
    /// How many accounts reposted it.
    #[schema(example = 1)]
    pub reposts_count: i64,
    /// What the caller did with this post; `null` when the request is anonymous.
    pub viewer: Option<PostViewer>,
    /// On a timeline item or a stream `post` event that is there because of a repost: who
    /// reposted it (the newest repost the caller sees). `null` everywhere else.
    pub reposted_by: Option<UserCard>,
    /// When `reposted_by` reposted it; `null` when `reposted_by` is.
    pub reposted_at: Option<Timestamp>,
    /// The images it shows, in the order they were given; `[]` when none.
    pub media: Vec<Media>,
}

/// The post a reply answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct InReplyTo {
    /// Its id, kept when the post is gone.
    #[schema(example = 41)]
    pub id: i64,
    /// Its author's username; `null` once the post is gone (deleted, or its author removed or
    /// suspended).
    #[schema(example = "susan")]
    pub username: Option<String>,
}

/// The caller's own relation to a post.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostViewer {
    /// The caller likes the post.
    pub liked: bool,
    /// The caller reposted the post.
    pub reposted: bool,
}

crate::page_schema!(PostPage, Post, "A page of posts, newest first.");

impl Post {
    /// A timeline item as the viewer of `states` sees it: the post, with `reposted_by` and
    /// `reposted_at` when its entry is a repost.
    pub fn entry(entry: &Entry, states: &ViewerStates) -> Post {
        Post {
            reposted_by: entry.reposted_by.as_ref().map(|u| UserCard::new(u, states)),
            reposted_at: entry.reposted_at().map(Timestamp),
            ..Post::new(&entry.post, states)
        }
    }

    /// A post as the viewer of `states` sees it (`states` from [`states`], which knows what the
    /// viewer did with the page's posts).
    pub fn new(p: &PostWithAuthor, states: &ViewerStates) -> Post {
        Post {
            id: p.post.id,
            author: UserCard::new(&p.author, states),
            body: p.post.body.clone(),
            created_at: Timestamp(p.post.created_at),
            in_reply_to: p.post.parent_id.map(|id| InReplyTo {
                id,
                username: p.parent_author.as_ref().map(|a| a.username.clone()),
            }),
            replies_count: p.post.replies_count.max(0),
            likes_count: p.post.likes_count.max(0),
            reposts_count: p.post.reposts_count.max(0),
            viewer: states
                .liked(p.post.id)
                .zip(states.reposted(p.post.id))
                .map(|(liked, reposted)| PostViewer { liked, reposted }),
            reposted_by: None,
            reposted_at: None,
            media: states.media(p.post.id).iter().map(Media::from).collect(),
        }
    }
}

/// The viewer state of a page that shows `users` (their cards) and `posts`: the viewer's
/// relationships to the users and which of the posts the viewer likes or reposted, in two queries
/// whatever the page's length (none when the request is anonymous), and the posts' media, in one
/// more (when the page shows posts). The one place that reads a post's
/// viewer state: [`render`] and every list (`crate::page::list`) come here.
pub async fn states(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    users: impl IntoIterator<Item = i64>,
    posts: &[i64],
) -> Result<ViewerStates, ApiError> {
    let states = relationships::viewer_states(db, viewer, users)
        .await?
        .with_media(media::of_posts(db, posts).await?);
    Ok(match viewer {
        Some(viewer) => {
            states.with_interactions(reposts::interactions_among(db, viewer, posts).await?)
        }
        None => states,
    })
}

/// Turns posts into wire posts whose author cards and `viewer` carry the viewer's state, in a
/// fixed number of queries whatever their number ([`states`]).
pub async fn render(
    db: &DatabaseConnection,
    viewer: Option<i64>,
    posts: Vec<PostWithAuthor>,
) -> Result<Vec<Post>, ApiError> {
    let ids: Vec<i64> = posts.iter().map(|p| p.post.id).collect();
    let states = states(db, viewer, posts.iter().map(|p| p.author.id), &ids).await?;
    Ok(posts.iter().map(|p| Post::new(p, &states)).collect())
}

/// Timeline entries for `viewer`, as the timeline shows them ([`Post::entry`]), in the fixed
/// number of queries of [`states`].
pub async fn render_entries(
    db: &DatabaseConnection,
    viewer: i64,
    entries: &[Entry],
) -> Result<Vec<Post>, ApiError> {
    let ids: Vec<i64> = entries.iter().map(|e| e.post.post.id).collect();
    let users = entries.iter().flat_map(|e| {
        std::iter::once(e.post.author.id).chain(e.reposted_by.as_ref().map(|u| u.id))
    });
    let states = states(db, Some(viewer), users, &ids).await?;
    Ok(entries.iter().map(|e| Post::entry(e, &states)).collect())
}

/// Posts for `viewer` whose authors' relationships to the viewer are known already (the event
/// stream's new posts, [`relationships::viewers_of`]): as [`render`] shows them, reading only
/// what the viewer did with them (one query).
pub async fn render_known(
    db: &DatabaseConnection,
    viewer: i64,
    posts: &[(&PostWithAuthor, Relation)],
) -> Result<Vec<Post>, ApiError> {
    let ids: Vec<i64> = posts.iter().map(|(p, _)| p.post.id).collect();
    let done = reposts::interactions_among(db, viewer, &ids).await?;
    let mut media = media::of_posts(db, &ids).await?;
    Ok(posts
        .iter()
        .map(|(p, relation)| {
            let id = p.post.id;
            let mine = Interactions {
                liked: done.liked.get(&id).into_iter().copied().collect(),
                reposted: done.reposted.get(&id).into_iter().copied().collect(),
            };
            let states = ViewerStates::known(p.author.id, *relation)
                .with_interactions(mine)
                .with_media(media.remove_entry(&id).into_iter().collect());
            Post::new(p, &states)
        })
        .collect())
}

/// A post its author `viewer` has just written, as [`render`] shows it to them at its writing:
/// nobody has liked or reposted it yet (its counts are the written row's), the author has no
/// relationship to themselves, and its media are read only when it has some (`with_media`).
pub async fn render_written(
    db: &DatabaseConnection,
    post: &PostWithAuthor,
    with_media: bool,
) -> Result<Post, ApiError> {
    let media = if with_media {
        media::of_posts(db, &[post.post.id]).await?
    } else {
        HashMap::new()
    };
    let states = ViewerStates::known(post.author.id, Relation::default())
        .with_interactions(Interactions::default())
        .with_media(media);
    Ok(Post::new(post, &states))
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
