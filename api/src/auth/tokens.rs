//! Access tokens: HS256 JWTs naming the user, their session and their issue time, signed with the
//! server secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The smallest accepted HMAC key.
pub const MIN_SECRET_BYTES: usize = 32;

/// Issues and verifies access tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// As `validation`, but a ticket past its 60 seconds still says what it is: whether it may
    /// open a stream again depends on its first use ([`crate::services::sessions::ticket_opened`]).
    ticket_validation: Validation,
    ttl: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string as RFC 7519 asks.
    sub: String,
    /// Issued at, seconds since the epoch.
    iat: u64,
    /// Expiry, seconds since the epoch.
    exp: u64,
    /// The session the token belongs to: it works only while that session lives.
    sid: String,
    /// What the token may be used for: absent on access tokens, `stream` on a stream ticket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    /// When the user last proved their password (OpenID Connect's claim name), in seconds since
    /// the epoch: set on the access tokens of a login or a registration, absent on those of a
    /// refresh. What a fresh login means for `DELETE /users/me`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth_time: Option<u64>,
}

/// The scope of a stream ticket.
const STREAM_SCOPE: &str = "stream";

/// How long a stream ticket is valid, in seconds.
pub const TICKET_TTL_SECONDS: u64 = 60;

impl Tokens {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // The library forgives 60 seconds past `exp` by default; an expired token is expired.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.validate_aud = false;
        let mut ticket_validation = validation.clone();
        ticket_validation.validate_exp = false;
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ticket_validation,
            ttl,
        }
    }

    /// Lifetime of a new token, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// A signed token for `user_id` in session `session`, valid for the configured lifetime.
    pub fn issue(&self, user_id: i64, session: &str) -> Result<String, ApiError> {
        let now = unix_seconds();
        self.sign(user_id, session, now, self.ttl.as_secs(), None, None)
    }

    /// The token [`Tokens::issue`] gave, or would give, at `issued_at` (milliseconds since the
    /// epoch): the same bytes for the same inputs, so that a retried refresh gets the same token.
    /// `proof` is how it was earned: a token of a login carries its time as `auth_time`.
    pub fn issue_at(
        &self,
        user_id: i64,
        session: &str,
        issued_at: i64,
        proof: Proof,
    ) -> Result<String, ApiError> {
        let at = u64::try_from(issued_at / 1_000).unwrap_or(0);
        let auth_time = (proof == Proof::Password).then_some(at);
        self.sign(user_id, session, at, self.ttl.as_secs(), None, auth_time)
    }

    /// A stream ticket for `user_id`: valid for [`TICKET_TTL_SECONDS`], and only as
    /// `GET /stream?ticket=...` (an access token is refused there, and a ticket everywhere else).
    pub fn issue_ticket(&self, user_id: i64, session: &str) -> Result<String, ApiError> {
        self.sign(
            user_id,
            session,
            unix_seconds(),
            TICKET_TTL_SECONDS,
            Some(STREAM_SCOPE),
            None,
        )
    }

    fn sign(
        &self,
        user_id: i64,
        session: &str,
        now: u64,
        ttl: u64,
        scope: Option<&str>,
        auth_time: Option<u64>,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + ttl,
            sid: session.to_owned(),
            scope: scope.map(str::to_owned),
            auth_time,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The user id of a valid token (signature, algorithm and expiry checked; not whether the
    /// account or the session still exists).
    pub fn user_id(&self, token: &str) -> Option<i64> {
        self.verify(token).ok().map(|verified| verified.user_id)
    }

    /// What a valid access token says. Any other algorithm, a wrong signature, an expired token
    /// or a missing claim is refused.
    pub(super) fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        self.verify_scoped(token, None)
    }

    /// What a stream ticket of this server says, whatever its age (signature, algorithm and
    /// scope checked): the caller decides from [`Verified::issued_at`] whether it is still fresh.
    pub(super) fn verify_ticket(&self, token: &str) -> Result<Verified, ApiError> {
        self.verify_scoped(token, Some(STREAM_SCOPE))
    }

    fn verify_scoped(&self, token: &str, scope: Option<&str>) -> Result<Verified, ApiError> {
        let expired = "the access token has expired: refresh it (POST /auth/refresh)";
        let invalid = match scope {
            None => "the access token is not valid",
            Some(_) => "the stream ticket is not valid",
        };
        let validation = match scope {
            None => &self.validation,
            Some(_) => &self.ticket_validation,
        };
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, validation).map_err(
            |e| match e.kind() {
                // An access token that was good and has run out: the client refreshes. (A
                // ticket's age is judged by its caller.)
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::TokenExpired(expired)
                }
                _ => ApiError::Unauthorized(invalid),
            },
        )?;
        if data.claims.scope.as_deref() != scope {
            return Err(ApiError::Unauthorized(invalid));
        }
        let user_id = data
            .claims
            .sub
            .parse::<i64>()
            .map_err(|_| ApiError::Unauthorized(invalid))?;
        Ok(Verified {
            user_id,
            session: data.claims.sid,
            auth_time: data.claims.auth_time,
            issued_at: data.claims.iat,
        })
    }
}

/// How the access token being issued was earned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// A login or a registration: the user gave their password just now.
    Password,
    /// A refresh token was exchanged.
    Refresh,
}

/// What a valid token says: whose it is, of which session, and (for a ticket) when it was issued.
pub struct Verified {
    pub user_id: i64,
    pub session: String,
    /// When the password was last given, on the access tokens of a login.
    pub auth_time: Option<u64>,
    /// When the token was issued, seconds since the epoch.
    pub issued_at: u64,
}

pub(super) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Generates a fresh random secret for signing tokens, hex-encoded (64 bytes of text).
pub fn generate_secret() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
