//! The HTTP surface: every route, and the handlers that turn extractor rejections, unknown routes
//! and wrong methods into the problem+json errors of the contract.

pub mod auth;
pub mod follows;
pub mod health;
pub mod notifications;
pub mod posts;
pub mod safety;
pub mod sessions;
pub mod stream;
pub mod users;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use actix_web::middleware::{Next, from_fn};

use crate::error::ApiError;
use crate::metrics;
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
            let object = tokio::time::timeout(BODY_TIMEOUT, object)
                .await
                .map_err(|_| ApiError::BodyTimeout {
                    seconds: BODY_TIMEOUT.as_secs(),
                })??
                .into_inner();
            serde_path_to_error::deserialize(serde_json::Value::Object(object))
                .map(JsonBody)
                .map_err(|e| ApiError::InvalidJson(shape_error(&e)).into())
        })
    }
}

/// Reads an optional whole number from JSON in every form JSON Schema calls an integer: `12` and
/// also `12.0`. Anything else (`1.5`, a number out of range, a string) is refused with a message
/// that names what the field must be ([`shape_error`]).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    use serde::de::{Error, Unexpected};
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    // A number that is not an i64 was read as a float: written with a fraction or an exponent,
    // or out of i64's range. Floats hold whole numbers exactly only below 2^53; past it, one that
    // was out of range (-9223372036854775809) rounds to one that is not, so those are refused.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float.abs() < EXACT => Ok(Some(float as i64)),
        Some(float) => Err(D::Error::invalid_value(
            Unexpected::Float(float),
            &"a whole number from -9223372036854775808 to 9223372036854775807",
        )),
        None => Err(D::Error::invalid_value(
            Unexpected::Other("a number"),
            &"a whole number from -9223372036854775808 to 9223372036854775807",
        )),
    }
}

/// What is wrong with a JSON body that is an object but not of the expected shape, naming the
/// field and the type it needs without repeating the value (it may be a password).
fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let field = error.path().to_string();
    let inner = error.inner().to_string();
    // serde's wording: "invalid type: integer `123`, expected a string"; the value is left out.
    match inner.split_once(", expected ") {
        Some((_, expected)) if field != "." => format!("the field '{field}' must be {expected}"),
        _ if field != "." => format!("the field '{field}' is not of the expected shape"),
        _ => "the body is not a JSON object of the expected shape".to_owned(),
    }
}

/// Longest a request body may take to arrive once the request head has (the documented 10 s;
/// actix's own client request timeout covers the head alone).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Which abuse quota a route's requests take (see [`crate::rate_limit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimit {
    /// No quota.
    None,
    /// Per client IP: login and registration.
    Auth,
    /// Per user: the writes on the graph (follows, unfollows, blocks, mutes, removed followers),
    /// posts and reports.
    Writes,
}

/// How a method of the table appears in `Allow`: every `GET` also answers `HEAD`
/// ([`crate::http_cache`]).
macro_rules! allow {
    (GET) => {
        "GET, HEAD"
    };
    ($method:ident) => {
        stringify!($method)
    };
}

/// The one route table. From each row come the resource and its handlers ([`configure`]), the
/// `Allow` header of its 405s, its quota (the middleware, and the 429 and `RateLimit-*` headers
/// in the document), and its operations in the OpenAPI document ([`Paths`]): a route cannot be
/// served without being documented, nor limited without the document saying so.
macro_rules! route_table {
    ($( $path:literal $quota:ident => { $first:ident $first_handler:path $(, $method:ident $handler:path)* $(,)? } ),* $(,)?) => {
        /// Registers every endpoint of the contract. Each path is one resource, so a known path
        /// with a wrong method answers 405 instead of falling through to 404.
        pub fn configure(cfg: &mut web::ServiceConfig) {
            cfg.app_data(json_config())
                .app_data(path_config())
                .app_data(query_config());
            $(
                cfg.service(
                    resource(
                        $path,
                        concat!(allow!($first) $(, ", ", allow!($method))*),
                        RateLimit::$quota,
                    )
                    .route(web::method(actix_web::http::Method::$first).to($first_handler))
                    $(.route(web::method(actix_web::http::Method::$method).to($handler)))*,
                );
            )*
        }

        /// Every route's path, the methods it serves (as its `Allow` header says them) and its
        /// quota.
        pub const ROUTES: &[(&str, &str, RateLimit)] = &[
            $( ($path, concat!(allow!($first) $(, ", ", allow!($method))*), RateLimit::$quota), )*
        ];

        /// The operations of every route, for the OpenAPI document.
        #[derive(utoipa::OpenApi)]
        #[openapi(paths($( $first_handler $(, $handler)* ),*))]
        pub struct Paths;
    };
}

route_table! {
    "/health" None => { GET health::health },
    "/health/ready" None => { GET health::ready },
    "/metrics" None => { GET metrics::export },
    "/auth/register" Auth => { POST auth::register },
    "/auth/login" Auth => { POST auth::login },
    "/auth/refresh" Auth => { POST auth::refresh },
    "/auth/logout" None => { POST auth::logout },
    "/users/me/sessions" None => { GET sessions::list_sessions },
    "/users/me/sessions/{id}" None => { DELETE sessions::delete_session },
    "/users/me/password" Auth => { PUT sessions::change_password },
    "/users/me" None => { GET users::get_me, PATCH users::update_me, DELETE users::delete_me },
    "/users/me/blocks" None => { GET safety::list_blocks },
    "/users/me/mutes" None => { GET safety::list_mutes },
    "/users/me/followers/{username}" Writes => { DELETE safety::remove_follower },
    "/users/me/follow_requests" None => { GET follows::list_follow_requests },
    "/users/me/follow_requests/{username}/accept" Writes => { POST follows::accept_follow_request },
    "/users/me/follow_requests/{username}/reject" Writes => { POST follows::reject_follow_request },
    "/users" None => { GET users::search_users },
    "/users/{username}" None => { GET users::get_user },
    "/users/{username}/follow" Writes => { POST follows::follow_user, DELETE follows::unfollow_user },
    "/users/{username}/block" Writes => { POST safety::block_user, DELETE safety::unblock_user },
    "/users/{username}/mute" Writes => { POST safety::mute_user, DELETE safety::unmute_user },
    "/users/{username}/followers" None => { GET follows::list_followers },
    "/users/{username}/following" None => { GET follows::list_following },
    "/users/{username}/posts" None => { GET posts::list_user_posts },
    "/relationships" None => { GET follows::get_relationships },
    "/posts" Writes => { POST posts::create_post },
    "/posts/{id}" None => { GET posts::get_post, DELETE posts::delete_post },
    "/timeline" None => { GET posts::get_timeline },
    "/notifications" None => { GET notifications::list_notifications },
    "/notifications/unread_count" None => { GET notifications::unread_count },
    "/notifications/read" None => { POST notifications::mark_read },
    "/stream" None => { GET stream::open_stream },
    "/stream/ticket" None => { POST stream::create_ticket },
    "/reports" Writes => { POST safety::create_report },
    "/admin/reports" None => { GET safety::list_reports },
    "/admin/reports/{id}/resolve" None => { POST safety::resolve_report },
    "/admin/users/{username}/suspension" None => { POST safety::suspend_user, DELETE safety::unsuspend_user },
}

/// The quota of the route at `path` (a path of the table, with its `{parameters}`).
pub fn quota(path: &str) -> RateLimit {
    ROUTES
        .iter()
        .find(|(route, _, _)| *route == path)
        .map_or(RateLimit::None, |(_, _, quota)| *quota)
}

/// A resource whose unmatched methods answer 405 `method_not_allowed` with an `Allow` header
/// naming `allow`, the methods its routes serve (a test checks the two agree), and whose requests
/// take `quota`.
pub(crate) fn resource(
    path: &str,
    allow: &'static str,
    quota: RateLimit,
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
                method: crate::http_cache::sent_method(&req),
                path: req.path().to_owned(),
                allow,
            })
        }))
        .wrap(from_fn(request_timeout))
        .wrap(from_fn(
            move |req: actix_web::dev::ServiceRequest, next: Next<actix_web::body::BoxBody>| {
                rate_limit::limit(quota, req, next)
            },
        ))
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
                JsonPayloadError::Deserialize(e) => ApiError::InvalidJson(json_syntax_error(&e)),
                other => ApiError::InvalidJson(format!("the body could not be read: {other}")),
            }
            .into()
        })
}

/// Path parameters that are not strings are ids: say which must be a whole number, in words (not
/// the framework's "can not parse ... to a i64"), without repeating what was sent.
fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err: PathError, req| {
        let name = req
            .match_info()
            .iter()
            .find(|(_, value)| value.parse::<i64>().is_err())
            .map_or("id", |(name, _)| name);
        let what = match (req.match_pattern().as_deref(), name) {
            (Some(pattern), "id") if pattern.starts_with("/posts/") => "the post id".to_owned(),
            (_, name) => format!("'{name}' in the path"),
        };
        ApiError::InvalidParameter(format!("{what} must be a whole number, such as 42")).into()
    })
}

/// What is wrong with a body that is not a JSON object at all, in words a client developer
/// understands; serde_json's positions are kept, the text sent is not repeated.
fn json_syntax_error(error: &serde_json::Error) -> String {
    let at = format!("line {}, column {}", error.line(), error.column());
    let message = error.to_string();
    if message.contains("surrogate") || message.contains("hex escape") {
        format!(
            "the body is not valid JSON: the \\u escape before {at} is not a whole character (a \
             lone UTF-16 surrogate, or cut short); text must be whole Unicode characters"
        )
    } else if error.is_data() {
        "the body must be a JSON object such as {\"field\": \"value\"}".to_owned()
    } else if error.is_eof() {
        format!("the body is not valid JSON: it ends early, at {at}")
    } else {
        format!("the body is not valid JSON: a syntax error at {at}")
    }
}

/// Query strings are parsed into `Option<String>` fields, so the one thing that can go wrong here
/// is a parameter given more than once; say so in words.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        let message = err.to_string();
        let detail = match message.split('`').nth(1) {
            Some(name) if message.contains("duplicate field") => {
                format!("the query parameter '{name}' is given more than once")
            }
            _ => "the query string is not valid".to_owned(),
        };
        ApiError::InvalidParameter(detail).into()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use utoipa::OpenApi;

    use super::*;

    /// A handler's `#[utoipa::path]` names its own path and method; they must be the row's.
    #[test]
    fn the_document_has_exactly_the_paths_and_methods_of_the_route_table() {
        let document = crate::openapi::ApiDoc::openapi();
        let documented: BTreeMap<String, String> = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods: Vec<&str> = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (path.clone(), methods.join(", "))
            })
            .collect();
        let table: BTreeMap<String, String> = ROUTES
            .iter()
            .map(|(path, allow, _)| {
                let mut methods: Vec<&str> = allow.split(", ").filter(|m| *m != "HEAD").collect();
                let order = ["GET", "POST", "PUT", "PATCH", "DELETE"];
                methods.sort_by_key(|m| order.iter().position(|o| o == m));
                ((*path).to_owned(), methods.join(", "))
            })
            .collect();
        assert_eq!(documented, table);
    }
}
