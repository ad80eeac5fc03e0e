//! The entries of the caller's blocks, mutes and pending follow requests.

use serde::Serialize;
use utoipa::ToSchema;

use super::UserCard;
use crate::services::marks::MarkEntry;
use crate::services::relationships::ViewerStates;
use crate::time::Timestamp;

/// An entry of the caller's blocks.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockItem {
    /// The blocked user.
    pub user: UserCard,
    /// When the block began.
    pub blocked_at: Timestamp,
}

/// A pending request to follow the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct FollowRequestItem {
    /// Who asks to follow the caller.
    pub user: UserCard,
    /// When they asked.
    pub requested_at: Timestamp,
}

/// An entry of the caller's mutes.
#[derive(Debug, Serialize, ToSchema)]
pub struct MuteItem {
    /// The muted user.
    pub user: UserCard,
    /// When the mute began.
    pub muted_at: Timestamp,
}

crate::page_schema!(
    BlockItemPage,
    BlockItem,
    "A page of the caller's blocks, newest first."
);
crate::page_schema!(
    FollowRequestItemPage,
    FollowRequestItem,
    "A page of pending requests to follow the caller, newest first."
);
crate::page_schema!(
    MuteItemPage,
    MuteItem,
    "A page of the caller's mutes, newest first."
);

impl BlockItem {
    /// An entry as the caller (`states`) sees it.
    pub fn new(e: &MarkEntry, states: &ViewerStates) -> Self {
        BlockItem {
            user: UserCard::new(&e.user, states),
            blocked_at: Timestamp(e.at),
        }
    }
}

impl MuteItem {
    /// An entry as the caller (`states`) sees it.
    pub fn new(e: &MarkEntry, states: &ViewerStates) -> Self {
        MuteItem {
            user: UserCard::new(&e.user, states),
            muted_at: Timestamp(e.at),
        }
    }
}

impl FollowRequestItem {
    /// An entry as the caller (`states`) sees it.
    pub fn new(e: &MarkEntry, states: &ViewerStates) -> Self {
        FollowRequestItem {
            user: UserCard::new(&e.user, states),
            requested_at: Timestamp(e.at),
        }
    }
}
