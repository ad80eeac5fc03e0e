//! The one integration-test binary: every test starts the real application on 127.0.0.1:0 over a
//! fresh database. `TEST_DATABASE_URL` picks the backend (unset: a fresh SQLite file per test;
//! `postgres://…` or `mysql://…`: a fresh database per test on that server).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed unwrap is a failed test, with its message"
)]

mod accounts;
mod archive;
mod conventions;
mod discovery;
mod email;
mod errors;
mod feeds;
mod follow_lists;
mod follows;
mod hardening;
mod helpers;
mod idempotency;
mod interactions;
mod locked;
mod markers;
mod media;
mod metrics;
mod model;
mod notifications;
mod openapi;
mod operators;
mod pagination;
mod posts;
mod push;
mod query_plans;
mod races;
mod reposts;
mod safety;
mod schema;
mod search;
mod session_cache;
mod sessions;
mod standby;
mod stream;
mod tokens;
