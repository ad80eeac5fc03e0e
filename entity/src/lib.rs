//! SeaORM entities of the schema that `migration` creates. They stay inside the service: the wire
//! types live beside the handlers in `api`, so a column can never leak into a response by accident.

pub mod block;
pub mod clock;
pub mod display_name_prefix;
pub mod email_token;
pub mod feed;
pub mod feed_entry;
pub mod feed_fanout;
pub mod follow;
pub mod follow_request;
pub mod idempotency_key;
pub mod like;
pub mod marker;
pub mod media;
pub mod media_blob;
pub mod mute;
pub mod notification;
pub mod outbox;
pub mod post;
pub mod post_clock;
pub mod post_deletion;
pub mod push_subscription;
pub mod refresh_token;
pub mod report;
pub mod repost;
pub mod session;
pub mod stream_ticket;
pub mod suggestion_dismissal;
pub mod user;
