//! How things look on the wire: the objects of `API.md` that more than one route shows (users and
//! the caller's relationships to them, posts, notifications, the entries of the lists) and the
//! page that carries a list. Routes map to these; they never import one another to share them.
//! No queries here beyond the one a `render` function makes for a page's viewer state
//! ([`crate::services::relationships::viewer_states`]).

mod follows;
mod likes;
pub mod markers;
mod marks;
mod media;
pub mod notifications;
pub mod posts;
mod reposts;
mod users;

use serde::Serialize;

pub use follows::{FollowItem, FollowItemPage};
pub use likes::{LikeItem, LikeItemPage};
pub use marks::{
    BlockItem, BlockItemPage, FollowRequestItem, FollowRequestItemPage, MuteItem, MuteItemPage,
};
pub use media::Media;
pub use notifications::{Notification, NotificationPage};
pub use posts::{InReplyTo, Post, PostPage, PostViewer};
pub use reposts::{RepostItem, RepostItemPage};
pub use users::{Profile, Relationship, UserCard, Viewer};

/// A page of a list: the items and the cursors of its neighbours. The document names each kind of
/// page after its items ([`page_schema!`]).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    /// The items of this page, newest first.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// Pass as `newer_than` to get what is newer than this page.
    pub prev_cursor: Option<String>,
}

/// Declares `$name`, the document's schema of a `Page<$item>`: the fields of [`Page`], with items
/// that refer to `$item` by name. (utoipa would call a generic page `Page_Post` and inline the
/// items; generated clients would then have a `PagePostItemsItem` class that is not `Post`.)
#[macro_export]
macro_rules! page_schema {
    ($name:ident, $item:ty, $doc:literal) => {
        #[doc = $doc]
        #[derive(utoipa::ToSchema)]
        pub struct $name {
            /// The items of this page, newest first.
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the older items after this page; `null` when nothing
            /// older exists.
            pub next_cursor: Option<String>,
            /// Pass as `newer_than` to get the items newer than this page (its newest item's
            /// position; on an empty page the `newer_than` it was asked with, else `null`).
            pub prev_cursor: Option<String>,
        }
    };
}
