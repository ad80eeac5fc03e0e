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
        Tokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// Lifetime of a new token, in seconds.
    pub fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs()
    }

    /// A signed token for `user_id` in session `session`, valid for the configured lifetime.
    pub fn issue(&self, user_id: i64, session: &str) -> Result<String, ApiError> {
        self.sign(user_id, session, unix_seconds(), self.ttl.as_secs(), None)
    }

    /// The token [`Tokens::issue`] gave, or would give, at `issued_at` (milliseconds since the
    /// epoch): the same bytes for the same inputs, so that a retried refresh gets the same token.
    pub fn issue_at(
        &self,
        user_id: i64,
        session: &str,
        issued_at: i64,
    ) -> Result<String, ApiError> {
        let at = u64::try_from(issued_at / 1_000).unwrap_or(0);
        self.sign(user_id, session, at, self.ttl.as_secs(), None)
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
        )
    }

    fn sign(
        &self,
        user_id: i64,
        session: &str,
        now: u64,
        ttl: u64,
        scope: Option<&str>,
    ) -> Result<String, ApiError> {
        let claims = Claims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + ttl,
            sid: session.to_owned(),
            scope: scope.map(str::to_owned),
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

    /// What a valid stream ticket says.
    pub(super) fn verify_ticket(&self, token: &str) -> Result<Verified, ApiError> {
        self.verify_scoped(token, Some(STREAM_SCOPE))
    }

    fn verify_scoped(&self, token: &str, scope: Option<&str>) -> Result<Verified, ApiError> {
        let (expired, invalid) = match scope {
            None => (
                "the access token has expired: refresh it (POST /auth/refresh)",
                "the access token is not valid",
            ),
            Some(_) => (
                "the stream ticket has expired: ask POST /stream/ticket for a new one",
                "the stream ticket is not valid",
            ),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                // An access token that was good and has run out: the client refreshes. (A ticket
                // that ran out is asked for again, and stays `unauthorized`.)
                jsonwebtoken::errors::ErrorKind::ExpiredSignature if scope.is_none() => {
                    ApiError::TokenExpired(expired)
                }
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::Unauthorized(expired)
                }
                _ => ApiError::Unauthorized(invalid),
            })?;
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
        })
    }
}

/// What a valid token says: whose it is, and of which session.
pub struct Verified {
    pub user_id: i64,
    pub session: String,
}

fn unix_seconds() -> u64 {
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
