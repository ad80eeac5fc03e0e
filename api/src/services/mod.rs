//! All queries live here. Every function takes `&impl ConnectionTrait` (or the pool, when it opens
//! its own transaction), so it runs on a pooled connection or inside a transaction alike.

pub mod follows;
pub mod posts;
pub mod relationships;
pub mod timeline;
pub mod users;
