//! The HTTP surface: every route, and the handlers that turn extractor rejections, unknown routes
//! and wrong methods into the problem+json errors of the contract.

pub mod auth;
pub mod follows;
pub mod health;
pub mod posts;
pub mod users;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use crate::error::ApiError;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Registers every endpoint of the contract. Each path is one resource, so a known path with a
/// wrong method answers 405 instead of falling through to 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(json_config())
        .app_data(path_config())
        .app_data(query_config())
        .service(resource("/health").route(web::get().to(health::health)))
        .service(resource("/health/ready").route(web::get().to(health::ready)))
        .service(resource("/auth/register").route(web::post().to(auth::register)))
        .service(resource("/auth/login").route(web::post().to(auth::login)))
        .service(
            resource("/users/me")
                .route(web::get().to(users::get_me))
                .route(web::patch().to(users::update_me))
                .route(web::delete().to(users::delete_me)),
        )
        .service(resource("/users/{username}").route(web::get().to(users::get_user)))
        .service(
            resource("/users/{username}/follow")
                .route(web::post().to(follows::follow_user))
                .route(web::delete().to(follows::unfollow_user)),
        )
        .service(
            resource("/users/{username}/followers").route(web::get().to(follows::list_followers)),
        )
        .service(
            resource("/users/{username}/following").route(web::get().to(follows::list_following)),
        )
        .service(resource("/users/{username}/posts").route(web::get().to(posts::list_user_posts)))
        .service(resource("/relationships").route(web::get().to(follows::get_relationships)))
        .service(resource("/posts").route(web::post().to(posts::create_post)))
        .service(
            resource("/posts/{id}")
                .route(web::get().to(posts::get_post))
                .route(web::delete().to(posts::delete_post)),
        )
        .service(resource("/timeline").route(web::get().to(posts::get_timeline)));
}

/// A resource whose unmatched methods answer 405 `method_not_allowed`.
fn resource(path: &str) -> Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
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
