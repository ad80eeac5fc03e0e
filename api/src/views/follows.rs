//! The entries of the followers and following lists.

use serde::Serialize;
use utoipa::ToSchema;

use super::UserCard;
use crate::services::follows::FollowEntry;
use crate::services::relationships::ViewerStates;
use crate::time::Timestamp;

/// An entry of a followers or following list.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowItem {
    /// The other user.
    pub user: UserCard,
    /// When the follow began.
    pub followed_at: Timestamp,
}

crate::page_schema!(
    FollowItemPage,
    FollowItem,
    "A page of a followers or following list, most recent follow first."
);

impl FollowItem {
    /// An entry as the viewer of `states` sees it.
    pub fn new(entry: &FollowEntry, states: &ViewerStates) -> Self {
        FollowItem {
            user: UserCard::new(&entry.user, states),
            followed_at: Timestamp(entry.followed_at),
        }
    }
}
