//! How users and the caller's relationships to them look on the wire (`UserCard`, `Profile`,
//! `Viewer`, `Relationship` of `API.md`), shared by every route that shows a user. The viewer state
//! of a page comes from [`relationships::viewer_states`], in one query.
//!
//! [`relationships::viewer_states`]: crate::services::relationships::viewer_states

use entity::user;
use serde::Serialize;
use utoipa::ToSchema;

use crate::services::relationships::{Relation, ViewerStates};
use crate::time::Timestamp;

/// The authenticated caller's relationship to a user; `null` on anonymous requests.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"following": true, "followed_by": false,
    "followed_at": "2026-11-20T10:00:00.123Z", "followed_by_at": null, "requested": false,
    "requested_by": false, "blocking": false, "blocked_by": false, "muting": false}))]
pub struct Viewer {
    /// The caller follows this user.
    pub following: bool,
    /// This user follows the caller (the "follows you" label).
    pub followed_by: bool,
    /// When the caller started following this user.
    pub followed_at: Option<Timestamp>,
    /// When this user started following the caller.
    pub followed_by_at: Option<Timestamp>,
    /// The caller asked to follow this locked user and waits for an answer.
    pub requested: bool,
    /// This user asked to follow the caller and waits for the caller's answer.
    pub requested_by: bool,
    /// The caller blocks this user.
    pub blocking: bool,
    /// This user blocks the caller.
    pub blocked_by: bool,
    /// The caller mutes this user. (Nobody learns that they are muted.)
    pub muting: bool,
}

impl From<Relation> for Viewer {
    fn from(relation: Relation) -> Self {
        Viewer {
            following: relation.following_since.is_some(),
            followed_by: relation.followed_by_since.is_some(),
            followed_at: relation.following_since.map(Timestamp),
            followed_by_at: relation.followed_by_since.map(Timestamp),
            requested: relation.requested,
            requested_by: relation.requested_by,
            blocking: relation.blocking,
            blocked_by: relation.blocked_by,
            muting: relation.muting,
        }
    }
}

/// A user as it appears inside lists and posts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UserCard {
    /// The username as it was registered.
    #[schema(example = "susan")]
    pub username: String,
    /// Name to display, if the user set one.
    pub display_name: Option<String>,
    /// Short self-description, if the user wrote one.
    pub bio: Option<String>,
    /// The account is locked: following it makes a request it accepts or rejects, and only its
    /// followers see its posts and lists.
    pub locked: bool,
    /// The caller's relationship to this user; `null` when the request is anonymous.
    pub viewer: Option<Viewer>,
    /// The avatar: a square image of at most {THUMB_SIDE} by {THUMB_SIDE} pixels, as a path on
    /// this server; `null` when the user has none.
    #[schema(example = "/media/q3T5n0m8QeKbV1x2y3z4Aw/thumbnail")]
    pub avatar_url: Option<String>,
}

impl UserCard {
    /// `user`'s card as the page's viewer sees it.
    pub fn new(user: &user::Model, states: &ViewerStates) -> Self {
        UserCard {
            username: user.username.clone(),
            display_name: user.display_name.clone(),
            bio: user.bio.clone(),
            locked: user.locked,
            viewer: states.of(user.id).map(Viewer::from),
            avatar_url: user
                .avatar_media_id
                .as_deref()
                .map(super::media::thumbnail_url),
        }
    }
}

/// A user's profile: the card plus when the account was created and its counts.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Profile {
    /// The user as in lists (its fields appear at the top level of the profile).
    #[serde(flatten)]
    pub card: UserCard,
    /// When the account was registered.
    pub created_at: Timestamp,
    /// How many users follow this user.
    pub followers_count: i64,
    /// How many users this user follows.
    pub following_count: i64,
    /// How many posts this user has written.
    pub posts_count: i64,
    /// The account's email address is confirmed (a token mailed to it was used). Only in the
    /// caller's own profile (`GET` and `PATCH /users/me`, and the `user` of a Token).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = bool, required = false)]
    pub email_verified: Option<bool>,
}

impl Profile {
    /// `user`'s profile as the viewer sees it.
    pub fn new(user: &user::Model, states: &ViewerStates) -> Self {
        Profile {
            card: UserCard::new(user, states),
            created_at: Timestamp(user.created_at),
            followers_count: user.followers_count,
            following_count: user.following_count,
            posts_count: user.posts_count,
            email_verified: None,
        }
    }

    /// `user`'s own profile, as the user sees it: with `email_verified`.
    pub fn own(user: &user::Model, states: &ViewerStates) -> Self {
        Profile {
            email_verified: Some(user.email_verified_at.is_some()),
            ..Profile::new(user, states)
        }
    }
}

/// The caller's relationship to one user: the username and every field of `Viewer`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"username": "susan", "following": true, "followed_by": true,
    "followed_at": "2026-11-20T10:00:00.123Z", "followed_by_at": "2026-11-21T08:30:00.000Z",
    "requested": false, "requested_by": false, "blocking": false, "blocked_by": false,
    "muting": false}))]
pub struct Relationship {
    /// The other user's username, as registered.
    #[schema(example = "susan")]
    pub username: String,
    #[serde(flatten)]
    pub viewer: Viewer,
}

impl Relationship {
    pub fn new(user: &user::Model, relation: Relation) -> Self {
        Relationship {
            username: user.username.clone(),
            viewer: relation.into(),
        }
    }
}
