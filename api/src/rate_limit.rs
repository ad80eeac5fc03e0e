//! Abuse limits, with the `governor` crate's GCRA limiters: per client IP on login and
//! registration (brute force, sign-up spam), per user on writes (follows, blocks, mutes, posts,
//! reports), per user on the password checks of a signed-in account (changing the password,
//! deleting the account), and per session on refreshes (so that nobody behind the same address
//! can spend a phone's refreshes, and logins cannot spend them either).
//!
//! A limited route answers 429 `rate_limited` with `Retry-After` once its quota is spent, and every
//! answer of a limited route carries `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`
//! (seconds until the quota is whole again). The check runs before the handler, so a login flood
//! is refused before any password is hashed.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

mod shared;

pub use shared::Shared;

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::AppState;

/// Which abuse quota a route's requests take (each row of the route table names one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// No quota.
    None,
    /// Per client IP: login, registration, and the endpoints of mailed tokens (verify, forgot,
    /// reset).
    Auth,
    /// Per user: the writes on the graph (follows, unfollows, blocks, mutes, removed followers),
    /// posts and reports.
    Writes,
    /// Per user, at the login rate: the password checks of a signed-in account (changing the
    /// password; deleting the account with its password, which its handler takes itself).
    Password,
    /// Per session: refreshes. The session is known only from the body's refresh token, so the
    /// handler takes it ([`Limits::take_refresh`]) after one primary-key read.
    Refresh,
}

/// The headers a limited route answers with.
pub type Headers = Vec<(HeaderName, String)>;
/// Allowed, with its headers; or refused, with the 429 and its headers.
type Outcome = Result<Headers, (ApiError, Headers)>;

type KeyedLimiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// The limiters of one server.
pub struct Limits {
    auth: Limiter<IpAddr>,
    writes: Limiter<i64>,
    password: Limiter<i64>,
    refresh: Limiter<String>,
    trust_forwarded_for: bool,
    /// The quotas every replica shares (`REDIS_URL`), when configured; the limiters above decide
    /// while it does not answer.
    shared: Option<Arc<Shared>>,
}

struct Limiter<K: std::hash::Hash + Eq + Clone> {
    limiter: Arc<KeyedLimiter<K>>,
    per_minute: u32,
}

impl<K: std::hash::Hash + Eq + Clone> Limiter<K> {
    fn new(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
        Limiter {
            limiter: Arc::new(
                RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            ),
            per_minute,
        }
    }

    /// Takes one request from `key`'s quota: the headers to send, or the 429 to answer.
    fn check(&self, key: &K) -> Outcome {
        let per_cell = 60.0 / f64::from(self.per_minute);
        match self.limiter.check_key(key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let reset = (f64::from(self.per_minute - remaining) * per_cell).ceil() as u64;
                Ok(self.headers(remaining, reset))
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
                let reset = (f64::from(self.per_minute) * per_cell).ceil() as u64;
                Err((
                    ApiError::RateLimited { retry_after },
                    self.headers(0, reset),
                ))
            }
        }
    }

    /// The headers or the 429 of a decision taken in Redis.
    fn outcome_of(&self, decision: shared::Decision) -> Outcome {
        let seconds = |ms: u64| ms.div_ceil(1_000);
        match decision {
            shared::Decision::Allowed {
                remaining,
                whole_in_ms,
            } => Ok(self.headers(remaining, seconds(whole_in_ms))),
            shared::Decision::Refused {
                retry_in_ms,
                whole_in_ms,
            } => Err((
                ApiError::RateLimited {
                    retry_after: seconds(retry_in_ms).max(1),
                },
                self.headers(0, seconds(whole_in_ms)),
            )),
        }
    }

    fn headers(&self, remaining: u32, reset: u64) -> Headers {
        vec![
            (
                HeaderName::from_static("ratelimit-limit"),
                self.per_minute.to_string(),
            ),
            (
                HeaderName::from_static("ratelimit-remaining"),
                remaining.to_string(),
            ),
            (
                HeaderName::from_static("ratelimit-reset"),
                reset.to_string(),
            ),
        ]
    }
}

impl Limits {
    pub fn new(
        auth_per_minute: u32,
        writes_per_minute: u32,
        refresh_per_minute: u32,
        trust_forwarded_for: bool,
        shared: Option<Arc<Shared>>,
    ) -> Self {
        Limits {
            auth: Limiter::new(auth_per_minute),
            writes: Limiter::new(writes_per_minute),
            password: Limiter::new(auth_per_minute),
            refresh: Limiter::new(refresh_per_minute),
            trust_forwarded_for,
            shared,
        }
    }

    /// Takes one request from `key`'s quota of `limiter`: in Redis when it is configured and
    /// answers, else in this process.
    async fn check<K: std::hash::Hash + Eq + Clone + std::fmt::Display>(
        &self,
        limiter: &Limiter<K>,
        quota: &str,
        key: &K,
    ) -> Outcome {
        if let Some(shared) = &self.shared
            && let Some(decision) = shared
                .take(quota, &key.to_string(), limiter.per_minute)
                .await
        {
            return limiter.outcome_of(decision);
        }
        limiter.check(key)
    }

    /// Takes one refresh from `session`'s quota: the `RateLimit-*` headers to answer with, or the
    /// 429.
    pub async fn take_refresh(&self, session: &str) -> Result<Headers, ApiError> {
        let outcome = self
            .check(&self.refresh, "refresh", &session.to_owned())
            .await;
        outcome.map_err(|(error, _)| {
            crate::metrics::count_rate_limited("refresh");
            error
        })
    }

    /// Takes one password check from `user`'s quota (the one `PUT /users/me/password` takes), or
    /// the 429.
    pub async fn take_password_attempt(&self, user: i64) -> Result<(), ApiError> {
        match self.check(&self.password, "password", &user).await {
            Ok(_) => Ok(()),
            Err((error, _)) => {
                crate::metrics::count_rate_limited("password");
                Err(error)
            }
        }
    }

    /// Forgets keys whose quota is whole again, so the key maps do not grow without bound.
    pub fn spawn_cleanup(self: &Arc<Self>) {
        let limits = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(limits) = limits.upgrade() else {
                    break;
                };
                limits.auth.limiter.retain_recent();
                limits.writes.limiter.retain_recent();
                limits.password.limiter.retain_recent();
                limits.refresh.limiter.retain_recent();
            }
        });
    }
}

fn client_ip(req: &ServiceRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for
        && let Some(ip) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            // The last address is the one the trusted proxy appended; earlier ones are whatever
            // the client claimed.
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse().ok())
    {
        return Some(ip);
    }
    req.peer_addr().map(|addr| addr.ip())
}

/// The middleware of every route: takes one request from the route's quota (see
/// [`crate::routes::ROUTES`]).
pub async fn limit(
    quota: RateLimit,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    match quota {
        RateLimit::None => Ok(next.call(req).await?.map_into_boxed_body()),
        RateLimit::Auth => limit_auth(req, next).await,
        RateLimit::Writes => limit_per_user(req, next, PerUser::Writes).await,
        RateLimit::Password => limit_per_user(req, next, PerUser::Password).await,
        // Taken by the handler, which knows the session.
        RateLimit::Refresh => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

/// The quotas kept per user.
#[derive(Clone, Copy)]
enum PerUser {
    Writes,
    Password,
}

/// Login and registration: per client IP.
async fn limit_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(ip) = client_ip(&req, state.limits.trust_forwarded_for) else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let outcome = state.limits.check(&state.limits.auth, "auth", &ip).await;
    apply(req, next, outcome, "auth").await
}

/// Writes, and password changes: per user (of a valid token; requests without one are refused by
/// the handler anyway).
async fn limit_per_user(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    quota: PerUser,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let user = bearer_token(req.headers())
        .ok()
        .flatten()
        .and_then(|token| state.tokens.user_id(token));
    let Some(user) = user else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let (limiter, name) = match quota {
        PerUser::Writes => (&state.limits.writes, "writes"),
        PerUser::Password => (&state.limits.password, "password"),
    };
    let outcome = state.limits.check(limiter, name, &user).await;
    apply(req, next, outcome, name).await
}

async fn apply(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
    outcome: Outcome,
    quota: &str,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let (mut response, headers) = match outcome {
        Ok(headers) => (next.call(req).await?.map_into_boxed_body(), headers),
        Err((error, headers)) => {
            crate::metrics::count_rate_limited(quota);
            let (request, _) = req.into_parts();
            (
                ServiceResponse::new(request, error.error_response()),
                headers,
            )
        }
    };
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    Ok(response)
}
