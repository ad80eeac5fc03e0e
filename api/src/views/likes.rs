//! The entries of a post's likes.

use serde::Serialize;
use utoipa::ToSchema;

use super::UserCard;
use crate::services::likes::LikeEntry;
use crate::services::relationships::ViewerStates;
use crate::time::Timestamp;

/// An entry of a post's likes.
#[derive(Debug, Serialize, ToSchema)]
pub struct LikeItem {
    /// Who likes the post.
    pub user: UserCard,
    /// When they liked it.
    pub liked_at: Timestamp,
}

crate::page_schema!(
    LikeItemPage,
    LikeItem,
    "A page of a post's likes, most recent first."
);

impl LikeItem {
    /// An entry as the viewer of `states` sees it.
    pub fn new(entry: &LikeEntry, states: &ViewerStates) -> Self {
        LikeItem {
            user: UserCard::new(&entry.user, states),
            liked_at: Timestamp(entry.liked_at),
        }
    }
}
