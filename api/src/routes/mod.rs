//! The HTTP surface: every route, and the handlers that turn extractor rejections, unknown routes
//! and wrong methods into the problem+json errors of the contract.

pub mod auth;
pub mod follows;
pub mod health;
pub mod posts;
pub mod users;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use actix_web::middleware::{Next, from_fn};

use crate::error::ApiError;
use crate::rate_limit;
use crate::startup::AppState;

/// A JSON request body that must be an object. (`web::Json` alone would also read a struct from a
/// JSON array, field by field, which no client means.) Rejections are the same problem+json errors
/// as `web::Json`'s.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let object =
            web::Json::<serde_json::Map<String, serde_json::Value>>::from_request(req, payload);
        Box::pin(async move {
            let object = object.await?.into_inner();
            T::deserialize(serde_json::Value::Object(object))
                .map(JsonBody)
                .map_err(|e| {
                    ApiError::InvalidJson(format!(
                        "the body is not valid JSON of the expected shape: {e}"
                    ))
                    .into()
                })
        })
    }
}

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers every endpoint of the contract. Each path is one resource, so a known path with a
/// wrong method answers 405 instead of falling through to 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(path_config())
        .app_data(query_config())
        .service(resource("/health", "GET").route(web::get().to(health::health)))
        .service(resource("/health/ready", "GET").route(web::get().to(health::ready)))
        .service(
            resource("/auth/register", "POST")
                .route(web::post().to(auth::register))
                .wrap(from_fn(rate_limit::limit_auth)),
        )
        .service(
            resource("/auth/login", "POST")
                .route(web::post().to(auth::login))
                .wrap(from_fn(rate_limit::limit_auth)),
        )
        .service(
            resource("/users/me", "GET, PATCH, DELETE")
                .route(web::get().to(users::get_me))
                .route(web::patch().to(users::update_me))
                .route(web::delete().to(users::delete_me)),
        )
        .service(resource("/users/{username}", "GET").route(web::get().to(users::get_user)))
        .service(
            resource("/users/{username}/follow", "POST, DELETE")
                .route(web::post().to(follows::follow_user))
                .route(web::delete().to(follows::unfollow_user))
                .wrap(from_fn(rate_limit::limit_writes)),
        )
        .service(
            resource("/users/{username}/followers", "GET")
                .route(web::get().to(follows::list_followers)),
        )
        .service(
            resource("/users/{username}/following", "GET")
                .route(web::get().to(follows::list_following)),
        )
        .service(
            resource("/users/{username}/posts", "GET").route(web::get().to(posts::list_user_posts)),
        )
        .service(resource("/relationships", "GET").route(web::get().to(follows::get_relationships)))
        .service(
            resource("/posts", "POST")
                .route(web::post().to(posts::create_post))
                .wrap(from_fn(rate_limit::limit_writes)),
        )
        .service(
            resource("/posts/{id}", "GET, DELETE")
                .route(web::get().to(posts::get_post))
                .route(web::delete().to(posts::delete_post)),
        )
        .service(resource("/timeline", "GET").route(web::get().to(posts::get_timeline)));
}

/// A resource whose unmatched methods answer 405 `method_not_allowed` with an `Allow` header
/// naming `allow`, the methods its routes serve (a test checks the two agree).
pub(crate) fn resource(
    path: &str,
    allow: &'static str,
) -> Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<actix_web::body::BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(path)
        .default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                method: req.method().to_string(),
                path: req.path().to_owned(),
                allow,
            })
        }))
        .wrap(from_fn(request_timeout))
}

/// Answers 503 `service_unavailable` when a request takes longer than the configured limit, so
/// one slow request cannot hold a worker forever. (Runs after routing, where the request may be
/// kept to build the answer.)
async fn request_timeout(
    req: actix_web::dev::ServiceRequest,
    next: Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map_or(std::time::Duration::from_secs(30), |state| {
            state.request_timeout
        });
    let request = req.request().clone();
    match tokio::time::timeout(limit, next.call(req)).await {
        Ok(response) => Ok(response?.map_into_boxed_body()),
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "request timed out");
            Ok(actix_web::dev::ServiceResponse::new(
                request,
                actix_web::ResponseError::error_response(&ApiError::Unavailable(
                    "the request took too long; retry later",
                )),
            ))
        }
    }
}

/// The answer for every path that matches no route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(req.path().to_owned()))
}

fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .error_handler(|err, _req| {
            match err {
                JsonPayloadError::OverflowKnownLength { limit, .. }
                | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit },
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(e) => ApiError::InvalidJson(format!(
                    "the body is not valid JSON of the expected shape: {e}"
                )),
                other => ApiError::InvalidJson(format!("the body could not be read: {other}")),
            }
            .into()
        })
}

fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::InvalidParameter(format!("a path parameter is not valid: {err}")).into()
    })
}

fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::InvalidParameter(format!("a query parameter is not valid: {err}")).into()
    })
}
