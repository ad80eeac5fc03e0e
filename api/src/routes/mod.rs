//! The HTTP surface: the one route table, one module of handlers per resource, and the answers for
//! unknown routes, wrong methods and requests that take too long. A handler module imports no other
//! one: what they share lives below them, in [`crate::extract`], [`crate::page`] and
//! [`crate::views`].

pub mod archive;
pub mod auth;
pub mod discovery;
pub mod email;
pub mod follow_lists;
pub mod follows;
pub mod health;
pub mod markers;
pub mod media;
pub mod metrics;
pub mod notifications;
pub mod posts;
pub mod push;
pub mod safety;
pub mod sessions;
pub mod stream;
pub mod users;

use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, Resource, web};

use crate::error::ApiError;
use crate::extract::{json_config, path_config, query_config};
use crate::rate_limit::{self, RateLimit};
use crate::state::AppState;

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
    "/auth/refresh" Refresh => { POST auth::refresh },
    "/auth/logout" None => { POST auth::logout },
    "/users/me/sessions" None => { GET sessions::list_sessions },
    "/users/me/sessions/{id}" None => { DELETE sessions::delete_session },
    "/users/me/password" Password => { PUT sessions::change_password },
    "/users/me" None => { GET users::get_me, PATCH users::update_me, DELETE users::delete_me },
    "/users/me/avatar" Writes => { PUT media::set_avatar, DELETE media::remove_avatar },
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
    "/users/{username}/known_followers" None => { GET discovery::list_known_followers },
    "/suggestions" None => { GET discovery::get_suggestions },
    "/suggestions/{username}" None => { DELETE discovery::dismiss_suggestion },
    "/users/{username}/posts" None => { GET posts::list_user_posts },
    "/relationships" None => { GET follows::get_relationships },
    "/posts" Writes => { POST posts::create_post },
    "/posts/{id}" None => { GET posts::get_post, DELETE posts::delete_post },
    "/posts/{id}/replies" None => { GET posts::list_replies },
    "/posts/{id}/like" Writes => { POST posts::like_post, DELETE posts::unlike_post },
    "/posts/{id}/likes" None => { GET posts::list_likes },
    "/posts/{id}/repost" Writes => { POST posts::repost_post, DELETE posts::unrepost_post },
    "/posts/{id}/reposts" None => { GET posts::list_reposts },
    "/timeline" None => { GET posts::get_timeline },
    "/notifications" None => { GET notifications::list_notifications },
    "/notifications/unread_count" None => { GET notifications::unread_count },
    "/notifications/read" None => { POST notifications::mark_read },
    "/markers" None => { GET markers::get_markers, POST markers::move_markers },
    "/stream" None => { GET stream::open_stream },
    "/stream/ticket" None => { POST stream::create_ticket },
    "/reports" Writes => { POST safety::create_report },
    "/admin/reports" None => { GET safety::list_reports },
    "/admin/reports/{id}/resolve" None => { POST safety::resolve_report },
    "/admin/users/{username}/suspension" None => { POST safety::suspend_user, DELETE safety::unsuspend_user },
    "/auth/email/verify" Auth => { POST email::verify_email },
    "/auth/email/verification" None => { POST email::request_verification },
    "/auth/password/forgot" Auth => { POST email::forgot_password },
    "/auth/password/reset" Auth => { POST email::reset_password },
    "/media" Writes => { POST media::upload_media },
    "/media/{id}" None => { GET media::get_media },
    "/media/{id}/thumbnail" None => { GET media::get_thumbnail },
    "/users/me/following.csv" Writes => { GET follow_lists::export_following, POST follow_lists::import_following },
    "/users/me/archive" None => { GET archive::get_archive },
    "/push/server_key" None => { GET push::server_key },
    "/push/subscription" Writes => { PUT push::put_subscription, GET push::get_subscription, DELETE push::delete_subscription },
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

    /// One direction of dependency: a handler module shares nothing with another (what they share
    /// lives in `extract`, `page` and `views`), and `error` reaches for nothing above it.
    #[test]
    fn no_route_module_imports_another_and_error_imports_no_route() {
        let modules = [
            ("auth", include_str!("auth.rs")),
            ("discovery", include_str!("discovery.rs")),
            ("follows", include_str!("follows.rs")),
            ("health", include_str!("health.rs")),
            ("markers", include_str!("markers.rs")),
            ("notifications", include_str!("notifications.rs")),
            ("posts", include_str!("posts.rs")),
            ("safety", include_str!("safety.rs")),
            ("sessions", include_str!("sessions.rs")),
            ("stream", include_str!("stream.rs")),
            ("users", include_str!("users.rs")),
            ("email", include_str!("email.rs")),
            ("follow_lists", include_str!("follow_lists.rs")),
            ("media", include_str!("media.rs")),
        ];
        for (name, source) in modules {
            for reach in ["crate::routes", "super::"] {
                assert!(!source.contains(reach), "routes/{name}.rs uses {reach}");
            }
        }
        let error = include_str!("../error.rs");
        assert!(
            !error.contains("crate::routes"),
            "error.rs uses crate::routes"
        );
        assert!(!include_str!("../rate_limit.rs").contains("use crate::routes"));
    }
}
