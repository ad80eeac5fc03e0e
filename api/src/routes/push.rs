//! Web Push: the server's key, and the caller's session's subscription.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{AuthUser, CurrentSession};
use crate::error::{ApiError, FieldErrors};
use crate::extract::JsonBody;
use crate::push as rules;
use crate::services::push::{self, Alerts, NewSubscription};
use crate::state::AppState;
use crate::time::Timestamp;

/// The server's VAPID public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerKey {
    /// The P-256 public key, uncompressed (65 bytes), base64url without padding: the browser's
    /// `applicationServerKey`.
    #[schema(
        example = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    )]
    pub public_key: String,
}

/// The server's VAPID public key (RFC 8292), which a browser subscribes with.
#[utoipa::path(get, path = "/push/server_key", tag = "push", operation_id = "getPushServerKey",
    responses((status = 200, description = "The server's VAPID public key", body = ServerKey)))]
pub async fn server_key(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(ServerKey {
        public_key: state.vapid_public_key.clone(),
    })
}

/// The browser's keys for the subscription (`PushSubscription.getKey()` in base64url).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubscriptionKeys {
    /// The subscription's P-256 public key: the uncompressed point (65 bytes), base64url.
    #[schema(value_type = String, required = true)]
    pub p256dh: Option<String>,
    /// The subscription's authentication secret: 16 bytes, base64url.
    #[schema(value_type = String, required = true)]
    pub auth: Option<String>,
}

/// Which notification types are pushed; each left out is `true`.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
pub struct AlertsRequest {
    pub follow: Option<bool>,
    pub follow_request: Option<bool>,
    pub follow_accepted: Option<bool>,
    pub like: Option<bool>,
    pub repost: Option<bool>,
    pub reply: Option<bool>,
}

/// A subscription of the caller's session.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PutSubscriptionRequest {
    /// The push service's URL for this browser (`PushSubscription.endpoint`): `https://`, at most
    /// 1,000 characters, not a loopback, private, link-local or unspecified address.
    #[schema(value_type = String, required = true, max_length = 1000, example = "https://fcm.googleapis.com/fcm/send/abc123")]
    pub endpoint: Option<String>,
    #[schema(required = true)]
    pub keys: Option<SubscriptionKeys>,
    pub alerts: Option<AlertsRequest>,
}

/// Which notification types a subscription pushes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushAlerts {
    pub follow: bool,
    pub follow_request: bool,
    pub follow_accepted: bool,
    pub like: bool,
    pub repost: bool,
    pub reply: bool,
}

/// A session's Web Push subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushSubscription {
    /// The push service's URL for this browser.
    pub endpoint: String,
    pub alerts: PushAlerts,
    pub created_at: Timestamp,
}

impl PushSubscription {
    fn of(row: &entity::push_subscription::Model) -> Self {
        let alerts = Alerts::of(row);
        PushSubscription {
            endpoint: row.endpoint.clone(),
            alerts: PushAlerts {
                follow: alerts.follow,
                follow_request: alerts.follow_request,
                follow_accepted: alerts.follow_accepted,
                like: alerts.like,
                repost: alerts.repost,
                reply: alerts.reply,
            },
            created_at: Timestamp(row.created_at),
        }
    }
}

/// Subscribes the caller's session to Web Push, replacing its subscription.
///
/// Each notification that `alerts` selects is pushed to `endpoint`, encrypted for `keys`
/// (RFC 8291 `aes128gcm`), signed with the server's key (`GET /push/server_key`). The
/// subscription ends with the session (logout, a deleted session, a password change, a
/// suspension, the account's removal), or when the push service says it is gone.
#[utoipa::path(put, path = "/push/subscription", tag = "push", operation_id = "putPushSubscription",
    request_body = PutSubscriptionRequest,
    responses(
        (status = 200, description = "The session's subscription", body = PushSubscription),
        (status = 422, description = "`validation_failed`: a field breaks its rule"),
    ),
    security(("bearer" = [])))]
pub async fn put_subscription(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    body: JsonBody<PutSubscriptionRequest>,
) -> Result<HttpResponse, ApiError> {
    let JsonBody(body) = body;
    let mut errors = FieldErrors::new();
    let mut refuse = |field: &str, message: String| {
        errors.entry(field.to_owned()).or_default().push(message);
    };
    let endpoint = match body.endpoint {
        None => {
            refuse("endpoint", "is required".into());
            None
        }
        Some(endpoint) => {
            match rules::check_endpoint(&endpoint, state.push_allow_private_endpoints) {
                Ok(_) => Some(endpoint),
                Err(message) => {
                    refuse("endpoint", message);
                    None
                }
            }
        }
    };
    let keys = body.keys.unwrap_or(SubscriptionKeys {
        p256dh: None,
        auth: None,
    });
    let p256dh = match keys.p256dh {
        None => {
            refuse("keys.p256dh", "is required".into());
            None
        }
        // Stored as base64url without padding, whatever padding was sent: the columns fit that.
        Some(key) => match rules::check_p256dh(&key) {
            Ok(()) => Some(rules::canonical_key(&key)),
            Err(message) => {
                refuse("keys.p256dh", message.into());
                None
            }
        },
    };
    let auth = match keys.auth {
        None => {
            refuse("keys.auth", "is required".into());
            None
        }
        Some(key) => match rules::check_auth(&key) {
            Ok(()) => Some(rules::canonical_key(&key)),
            Err(message) => {
                refuse("keys.auth", message.into());
                None
            }
        },
    };
    let (Some(endpoint), Some(p256dh), Some(auth)) = (endpoint, p256dh, auth) else {
        return Err(ApiError::Validation(errors));
    };
    let sent = body.alerts.unwrap_or_default();
    let all = Alerts::default();
    let alerts = Alerts {
        follow: sent.follow.unwrap_or(all.follow),
        follow_request: sent.follow_request.unwrap_or(all.follow_request),
        follow_accepted: sent.follow_accepted.unwrap_or(all.follow_accepted),
        like: sent.like.unwrap_or(all.like),
        repost: sent.repost.unwrap_or(all.repost),
        reply: sent.reply.unwrap_or(all.reply),
    };
    let session = CurrentSession::of(&req)?;
    let row = push::subscribe(
        &state.db,
        me.0.id,
        &session,
        NewSubscription {
            endpoint,
            p256dh,
            auth,
            alerts,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(PushSubscription::of(&row)))
}

/// The caller's session's Web Push subscription.
#[utoipa::path(get, path = "/push/subscription", tag = "push", operation_id = "getPushSubscription",
    responses(
        (status = 200, description = "The session's subscription", body = PushSubscription),
        (status = 404, description = "`push_subscription_not_found`: the session has none"),
    ),
    security(("bearer" = [])))]
pub async fn get_subscription(
    req: HttpRequest,
    state: web::Data<AppState>,
    _me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let session = CurrentSession::of(&req)?;
    let row = push::find(&state.db, &session)
        .await?
        .ok_or(ApiError::PushSubscriptionNotFound)?;
    Ok(HttpResponse::Ok().json(PushSubscription::of(&row)))
}

/// Ends the caller's session's Web Push subscription (idempotent).
#[utoipa::path(delete, path = "/push/subscription", tag = "push", operation_id = "deletePushSubscription",
    responses((status = 204, description = "The session has no subscription (any more)")),
    security(("bearer" = [])))]
pub async fn delete_subscription(
    req: HttpRequest,
    state: web::Data<AppState>,
    _me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    let session = CurrentSession::of(&req)?;
    push::unsubscribe(&state.db, &session).await?;
    Ok(HttpResponse::NoContent().finish())
}
