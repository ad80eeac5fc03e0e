//! The entries of a post's reposts.

use serde::Serialize;
use utoipa::ToSchema;

use super::UserCard;
use crate::services::relationships::ViewerStates;
use crate::services::reposts::RepostEntry;
use crate::time::Timestamp;

/// An entry of a post's reposts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepostItem {
    /// Who reposted the post.
    pub user: UserCard,
    /// When they reposted it.
    pub reposted_at: Timestamp,
}

crate::page_schema!(
    RepostItemPage,
    RepostItem,
    "A page of a post's reposts, most recent first."
);

impl RepostItem {
    /// An entry as the viewer of `states` sees it.
    pub fn new(entry: &RepostEntry, states: &ViewerStates) -> Self {
        RepostItem {
            user: UserCard::new(&entry.user, states),
            reposted_at: Timestamp(entry.reposted_at),
        }
    }
}
