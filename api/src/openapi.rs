//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive docs.
//! `openapi.yaml` at the repository root is this document, committed; a test keeps them equal.

use actix_web::web;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Social API",
        description = "The follow graph and the timeline: register, follow and unfollow, see who \
follows whom and since when, write short posts and read a timeline. Every error is \
`application/problem+json` with a stable `code`.",
        license(name = "MIT", identifier = "MIT"),
    ),
    paths(
        routes::auth::register,
        routes::auth::login,
        routes::users::get_me,
        routes::users::update_me,
        routes::users::delete_me,
        routes::users::get_user,
        routes::follows::follow_user,
        routes::follows::unfollow_user,
        routes::follows::list_followers,
        routes::follows::list_following,
        routes::follows::get_relationships,
        routes::posts::create_post,
        routes::posts::get_post,
        routes::posts::delete_post,
        routes::posts::list_user_posts,
        routes::posts::get_timeline,
        routes::health::health,
        routes::health::ready,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, login and profiles"),
        (name = "follows", description = "The follow graph"),
        (name = "posts", description = "Posts and the timeline"),
        (name = "operations", description = "Health probes"),
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the operations refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as YAML, exactly as committed in `openapi.yaml`.
pub fn yaml() -> Result<String, String> {
    ApiDoc::openapi().to_yaml().map_err(|e| e.to_string())
}

/// Serves `/openapi.json` and the interactive documentation under `/docs/`, from the binary.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", ApiDoc::openapi()));
}
