//! All queries live here. Every function takes `&impl ConnectionTrait` (or the pool, when it opens
//! its own transaction), so it runs on a pooled connection or inside a transaction alike.
//!
//! # Writing
//!
//! Every write is one [`crate::db::write`] call: it runs an async closure in a write transaction,
//! commits it, and runs the whole of it again when it lost a conflict with a concurrent one. Inside,
//! a write first locks the rows of every user it changes, in ascending id order, then composes
//! steps that take the transaction:
//!
//! - [`users::lock`]: the caller and the other users, 401 / 404 when one is gone
//!   (over [`crate::db::lock_users`], which locks any set of users in id order);
//! - [`follows::insert_follow`], [`follows::delete_follow`]: a follow and both counts (a new
//!   follow fills in the follower's precomputed timeline, [`feeds::backfill`]);
//! - [`marks::insert_mark`], [`marks::delete_mark`]: a block, a mute or a follow request;
//! - [`notifications::notify`], [`notifications::forget`]: notifications and unread counters;
//! - [`clock::next_list_at`], [`clock::next_at`]: a new item's position, in commit order;
//! - [`users::add_to_count`]: one count of one user, or of every user a condition selects;
//!   [`posts::add_to_post_count`] the same for posts (`replies_count`, `likes_count`,
//!   `reposts_count`), under the locks of their authors;
//! - [`likes::end_between`], [`likes::end_all_by`], [`reposts::end_between`],
//!   [`reposts::end_all_by`], [`posts::count_replies_of`]: the likes, reposts and reply counts a
//!   block, a suspension or a removal ends.
//!
//! "A blocks B" ([`marks::mark`]) reads:
//!
//! ```ignore
//! db::write(db, async |txn| {
//!     users::lock(txn, a, &[b]).await?;
//!     follows::delete_follow(txn, a.id, b.id).await?;
//!     follows::delete_follow(txn, b.id, a.id).await?;
//!     marks::delete_mark(txn, Mark::FollowRequest, a.id, b.id).await?;
//!     marks::delete_mark(txn, Mark::FollowRequest, b.id, a.id).await?;
//!     likes::end_between(txn, a.id, b.id).await?;
//!     reposts::end_between(txn, a.id, b.id).await?;
//!     notifications::forget(txn, /* b's to a */, /* a */).await?;
//!     marks::insert_mark(txn, Mark::Block, a.id, b.id).await
//! })
//! .await
//! ```
//!
//! # Reading
//!
//! A page's viewer state (what the caller is to each user shown) comes from one function,
//! [`relationships::viewer_states`], in one query; which of the page's posts the caller likes or
//! reposted from [`reposts::interactions_among`], in one more (both called by
//! `crate::views::posts::states`).

pub mod archive;
pub mod clock;
pub mod discovery;
pub mod email;
pub mod feeds;
pub mod follow_lists;
pub mod follows;
pub mod idempotency;
pub mod keyset;
pub mod likes;
pub mod markers;
pub mod marks;
pub mod media;
pub mod notifications;
pub mod operators;
pub mod outbox;
pub mod posts;
pub mod push;
pub mod relationships;
pub mod reports;
pub mod reposts;
pub mod sessions;
pub mod stream_sources;
pub mod timeline;
pub mod users;
