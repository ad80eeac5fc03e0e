//! What every handler can reach: the state that [`crate::startup`] builds once and hands to
//! every worker, below the routes that read it.

use sea_orm::DatabaseConnection;

use crate::auth::Tokens;
use crate::error::ApiError;
use crate::page::CursorCodec;

/// What every handler can reach.
pub struct AppState {
    pub db: DatabaseConnection,
    pub tokens: Tokens,
    pub cursors: CursorCodec,
    /// An Argon2id hash of a random password, verified when a login names an unknown user.
    pub dummy_password_hash: String,
    /// The password hashing pool.
    pub passwords: crate::auth::Passwords,
    /// The abuse limits.
    pub limits: std::sync::Arc<crate::rate_limit::Limits>,
    /// Longest a request may take once routed.
    pub request_timeout: std::time::Duration,
    /// How timelines are read: the per-author query, the newest-first walk, and the feeds.
    pub timeline: crate::services::timeline::Strategy,
    /// The open event streams of this process.
    pub hub: std::sync::Arc<crate::events::Hub>,
    /// Who may read `GET /metrics`.
    pub metrics_allowed_from: Vec<ipnet::IpNet>,
    /// Lifetime of a refresh token.
    pub refresh_ttl: std::time::Duration,
    /// How long a used refresh token sent again gets the same answer.
    pub refresh_reuse_grace: std::time::Duration,
    /// How a refresh token's successor is made.
    pub rotation: crate::services::sessions::Rotation,
    /// How long an event stream waits for a client that does not read.
    pub stream_slow_client_timeout: std::time::Duration,
    /// Which of a caller's most recent followees suggestions are drawn from.
    pub suggestion_sample: crate::services::discovery::Sample,
    /// How many rows of a list one read of an archive takes.
    pub archive_batch: u64,
    /// The most-followed accounts, for the suggestions of callers who follow nobody.
    pub popular: crate::services::discovery::Popular,
    /// The `Idempotency-Key`s whose first request runs in this process.
    pub in_flight: crate::services::idempotency::InFlight,
    /// The read standby (`DATABASE_READ_URL`), when there is one.
    pub standby: Option<std::sync::Arc<crate::replica::Standby>>,
    /// Whether mail is on, and how mailed tokens are made.
    pub mailing: crate::services::email::Mailing,
    /// Sweeps the posts' clock, so that the horizon passes this process's new posts.
    pub post_horizon: std::sync::Arc<crate::services::clock::Horizon>,
    /// Wakes the outbox worker after a commit that wrote to the outbox.
    pub outbox: crate::mail::Outbox,
    /// Decodes uploaded images off the executor, a few at a time.
    pub processor: crate::media::Processor,
    /// Where the bytes of images live.
    pub media_store: crate::media::Store,
    /// The server's VAPID public key (`GET /push/server_key`).
    pub vapid_public_key: String,
    /// Whether push endpoints may be `http://` or private (`PUSH_ALLOW_PRIVATE_ENDPOINTS`).
    pub push_allow_private_endpoints: bool,
}

impl AppState {
    /// Lifetime of a refresh token, in milliseconds.
    pub fn refresh_ttl_ms(&self) -> i64 {
        i64::try_from(self.refresh_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// Runs a request's reads, `op`, on the standby when it may take `viewer`'s reads
    /// ([`crate::replica`]: in the rotation, and the viewer did not write just now), else on the
    /// primary. A read that fails on the standby runs again on the primary (and the standby leaves
    /// the rotation), so a standby going away costs a client no error. `op` only reads: it may run
    /// twice.
    pub async fn read<T>(
        &self,
        viewer: Option<&entity::user::Model>,
        op: impl AsyncFn(&DatabaseConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        if let Some(standby) = &self.standby
            && let Some(db) = standby.for_reads(viewer)
        {
            match op(db).await {
                Err(err @ (ApiError::Internal(_) | ApiError::Contention(_))) => {
                    standby.failed(&err)
                }
                answer => return answer,
            }
        }
        op(&self.db).await
    }
}

/// How many event streams one user may have open.
pub const STREAMS_PER_USER: usize = 5;
