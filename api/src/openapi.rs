//! The OpenAPI 3.1 document, generated from the handlers' annotations, and the interactive docs.
//! `openapi.yaml` at the repository root is this document, committed; a test keeps them equal.

use std::sync::LazyLock;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::ApiError;
use crate::limits::{BODY_TIMEOUT, MAX_BODY_BYTES};
use crate::rate_limit::RateLimit;
use crate::{domain, routes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Social API",
        description = "The follow graph and the timeline: register, follow and unfollow, see who \
follows whom and since when, write short posts and read a timeline. Every error is \
`application/problem+json` with a stable `code`. Every `GET` also answers `HEAD`, and a `GET` \
whose `If-None-Match` names the current `ETag` is a 304. A request the HTTP layer cannot read is \
refused before any operation, with a problem body and an `X-Request-Id` too: 400 \
`malformed_request` (a garbage request line, an invalid header, a URL over 64 KiB), 431 \
`headers_too_large` (a head over 128 KiB or more than 96 headers), 408 `request_timeout` (a head \
not complete within {CLIENT_REQUEST_TIMEOUT_SECONDS} seconds).\n\n\
Lists are keyset pages, newest first: `cursor` (from `next_cursor`) pages toward older items, \
`newer_than` (from `prev_cursor`) toward newer ones. A client that loops on \
`newer_than=<prev_cursor>` while others write receives every new item once: positions are given \
in commit order, so nothing becomes visible behind a position already handed out.",
        license(name = "MIT", identifier = "MIT"),
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&Routes, &Numbers, &FieldRules, &BearerAuth, &ProblemBodies, &CommonResponses),
    tags(
        (name = "accounts", description = "Registration, login and profiles"),
        (name = "follows", description = "The follow graph"),
        (name = "posts", description = "Posts and the timeline"),
        (name = "notifications", description = "What others did that concerns the caller"),
        (name = "markers", description = "Reading positions that follow the user from device to device"),
        (name = "stream", description = "Live events as Server-Sent Events"),
        (name = "push", description = "Web Push (RFC 8030, RFC 8291 `aes128gcm`, RFC 8292 VAPID): each notification the session's alerts select reaches its browser or phone through its push service, also while the app is closed"),
        (name = "safety", description = "Blocks, mutes, removing a follower, and reports"),
        (name = "media", description = "Images: uploads for posts, and avatars"),
        (name = "admin", description = "The operators' endpoints: accounts with the operator role, granted by `social operator grant NAME` (or at start-up by `ADMIN_USERNAMES` to accounts that exist then)"),
        (name = "operations", description = "Health probes"),
    )
)]
pub struct ApiDoc;

/// Adds the operations of the route table ([`routes::Paths`]), and the schemas they use, before
/// the other modifiers look at them.
struct Routes;

impl Modify for Routes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi.merge(routes::Paths::openapi());
    }
}

/// Publishes each request field's rule from `domain`, where the parser that enforces it lives, so
/// the document cannot drift from the code (a table test in `domain` runs both on the same inputs).
struct FieldRules;

impl FieldRules {
    /// Which request field follows which rule.
    fn table() -> Vec<(&'static str, &'static str, domain::TextRule)> {
        vec![
            ("RegisterRequest", "username", domain::Username::rule()),
            ("RegisterRequest", "email", domain::Email::rule()),
            ("RegisterRequest", "password", domain::Password::rule()),
            (
                "RegisterRequest",
                "display_name",
                domain::display_name_rule(),
            ),
            ("RegisterRequest", "bio", domain::bio_rule()),
            (
                "UpdateProfileRequest",
                "display_name",
                domain::display_name_rule(),
            ),
            ("UpdateProfileRequest", "bio", domain::bio_rule()),
            ("CreatePostRequest", "body", domain::PostBody::rule()),
            ("ForgotPasswordRequest", "email", domain::Email::rule()),
            (
                "ResetPasswordRequest",
                "new_password",
                domain::Password::rule(),
            ),
        ]
    }
}

impl Modify for FieldRules {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        // The one query parameter with a text rule: `q` of the user search.
        let search = openapi.paths.paths.get_mut("/users");
        let search = search.and_then(|item| item.get.as_mut());
        for parameter in search
            .into_iter()
            .flat_map(|op| op.parameters.iter_mut().flatten())
        {
            if let RefOr::T(parameter) = parameter
                && parameter.name == "q"
                && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
            {
                schema.pattern = domain::SearchPrefix::rule().pattern;
            }
        }
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, field, rule) in Self::table() {
            let property = match components.schemas.get_mut(schema) {
                Some(RefOr::T(Schema::Object(object))) => object.properties.get_mut(field),
                _ => None,
            };
            // A field that is not there would be a mistake in the table: the document test fails.
            let Some(RefOr::T(Schema::Object(property))) = property else {
                continue;
            };
            property.min_length = rule.min_chars;
            property.max_length = rule.max_chars;
            property.pattern = rule.pattern;
        }
    }
}

/// Declares the security schemes the operations refer to: `bearer` (the access token) and
/// `ticket` (a stream ticket, which only `GET /stream` takes).
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
                    .description(Some(
                        "Paste the `access_token` of a login (`POST /auth/login`) or a \
                         registration; it is sent as `Authorization: Bearer <access_token>`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "ticket",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "ticket",
                "A ticket from `POST /stream/ticket`, for `GET /stream` only: browsers' \
                 `EventSource` cannot send an `Authorization` header.",
            ))),
        );
    }
}

/// Gives every error response (4xx, 5xx) that an annotation lists with only its status and
/// description the one error body: `Problem`, as `application/problem+json`. So a handler's
/// annotation says what can go wrong, never how errors are written.
struct ProblemBodies;

impl Modify for ProblemBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr};
        for item in openapi.paths.paths.values_mut() {
            for operation in operations_of(item) {
                for (status, response) in operation.responses.responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if (status.starts_with('4') || status.starts_with('5'))
                        && response.content.is_empty()
                    {
                        response.content.insert(
                            crate::error::PROBLEM_JSON.to_owned(),
                            RefOr::T(
                                ContentBuilder::new()
                                    .schema(Some(Ref::from_schema_name("Problem")))
                                    .build(),
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// The numbers the document quotes, each from the constant the code enforces: a description
/// (which utoipa takes as a literal) writes `{NAME}` and this fills it in, so the document cannot
/// drift from the code. It runs before the examples are drawn from the descriptions; a test checks
/// that no `{NAME}` is left.
struct Numbers;

impl Numbers {
    /// Each placeholder and its value.
    fn table() -> Vec<(&'static str, String)> {
        use crate::routes::{follows, stream};
        vec![
            (
                "CLIENT_REQUEST_TIMEOUT_SECONDS",
                crate::limits::CLIENT_REQUEST_TIMEOUT.as_secs().to_string(),
            ),
            (
                "STREAMS_PER_USER",
                crate::state::STREAMS_PER_USER.to_string(),
            ),
            (
                "TICKET_TTL_SECONDS",
                crate::auth::TICKET_TTL_SECONDS.to_string(),
            ),
            (
                "KEEP_ALIVE_SECONDS",
                stream::KEEP_ALIVE.as_secs().to_string(),
            ),
            ("MAX_REPLAY", thousands(stream::MAX_REPLAY as u64)),
            (
                "IDEMPOTENCY_KEY_MAX_CHARS",
                crate::extract::IDEMPOTENCY_KEY_MAX_CHARS.to_string(),
            ),
            (
                "IDEMPOTENCY_KEPT_HOURS",
                (crate::services::idempotency::KEPT / 3_600_000).to_string(),
            ),
            (
                "MAX_SUGGESTIONS",
                crate::services::discovery::MAX_SUGGESTIONS.to_string(),
            ),
            (
                "DEFAULT_SUGGESTIONS",
                crate::routes::discovery::DEFAULT_SUGGESTIONS.to_string(),
            ),
            (
                "SUGGESTION_SAMPLE",
                crate::services::discovery::SAMPLE.to_string(),
            ),
            (
                "SUGGESTION_SAMPLE_FOLLOWS",
                crate::services::discovery::SAMPLE_FOLLOWS.to_string(),
            ),
            (
                "FOLLOWED_BY_SHOWN",
                crate::services::discovery::FOLLOWED_BY_SHOWN.to_string(),
            ),
            (
                "FRESH_LOGIN_MINUTES",
                (crate::auth::FRESH_LOGIN_SECONDS / 60).to_string(),
            ),
            ("MAX_LIMIT", crate::page::MAX_LIMIT.to_string()),
            (
                "REFRESH_REUSE_GRACE_SECONDS_DEFAULT",
                crate::Settings::default()
                    .refresh_reuse_grace
                    .as_secs()
                    .to_string(),
            ),
            ("MAX_RELATIONSHIPS", follows::MAX_RELATIONSHIPS.to_string()),
            ("SEARCH_MAX_CHARS", domain::SEARCH_MAX_CHARS.to_string()),
            (
                "MAX_LIVE_SESSIONS",
                crate::services::sessions::MAX_LIVE.to_string(),
            ),
            ("USERNAME_MIN_CHARS", domain::USERNAME_MIN_CHARS.to_string()),
            ("USERNAME_MAX_CHARS", domain::USERNAME_MAX_CHARS.to_string()),
            ("EMAIL_MAX_CHARS", domain::EMAIL_MAX_CHARS.to_string()),
            ("PASSWORD_MIN_CHARS", domain::PASSWORD_MIN_CHARS.to_string()),
            ("PASSWORD_MAX_CHARS", domain::PASSWORD_MAX_CHARS.to_string()),
            (
                "DISPLAY_NAME_MAX_CHARS",
                domain::DISPLAY_NAME_MAX_CHARS.to_string(),
            ),
            ("BIO_MAX_CHARS", domain::BIO_MAX_CHARS.to_string()),
            (
                "POST_BODY_MAX_CHARS",
                domain::POST_BODY_MAX_CHARS.to_string(),
            ),
            (
                "REPORT_REASON_MAX_CHARS",
                thousands(domain::REPORT_REASON_MAX_CHARS as u64),
            ),
            (
                "VERIFY_TTL_HOURS",
                (crate::services::email::VERIFY_TTL_MS / 3_600_000).to_string(),
            ),
            (
                "RESET_TTL_MINUTES",
                (crate::services::email::RESET_TTL_MS / 60_000).to_string(),
            ),
            (
                "MAX_CSV_ROWS",
                thousands(crate::services::follow_lists::MAX_ROWS as u64),
            ),
            (
                "MAX_CSV_MIB",
                (crate::services::follow_lists::MAX_BYTES / (1024 * 1024)).to_string(),
            ),
            (
                "ARCHIVE_EVERY_MINUTES",
                (crate::services::archive::ARCHIVE_EVERY_MS / 60_000).to_string(),
            ),
            (
                "MAX_UPLOAD_MIB",
                (crate::limits::MAX_UPLOAD_BYTES / (1024 * 1024)).to_string(),
            ),
            (
                "MAX_IMAGE_MEGAPIXELS",
                crate::limits::MAX_IMAGE_MEGAPIXELS.to_string(),
            ),
            (
                "MAX_SIDE",
                thousands(u64::from(crate::media::processing::MAX_SIDE)),
            ),
            (
                "THUMB_SIDE",
                crate::media::processing::THUMB_SIDE.to_string(),
            ),
            (
                "MEDIA_DESCRIPTION_MAX_CHARS",
                thousands(crate::routes::media::DESCRIPTION_MAX_CHARS as u64),
            ),
            (
                "MAX_MEDIA_PER_POST",
                crate::services::media::MAX_PER_POST.to_string(),
            ),
            (
                "UNUSED_MEDIA_KEPT_HOURS",
                (crate::services::media::UNUSED_KEPT.as_secs() / 3_600).to_string(),
            ),
        ]
    }
}

/// The operations of a path item that the route table can declare.
fn operations_of(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// `n` with a comma between each group of three digits, as the document (and the README) write
/// numbers.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl Modify for Numbers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, Schema};
        let table = Self::table();
        let fill = |text: &mut String| {
            for (name, value) in &table {
                let placeholder = format!("{{{name}}}");
                if text.contains(&placeholder) {
                    *text = text.replace(&placeholder, value);
                }
            }
        };
        if let Some(description) = openapi.info.description.as_mut() {
            fill(description);
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            // The suggestions are no page: their `limit` has a range of its own.
            let (max_limit, default_limit) = if path == "/suggestions" {
                (
                    crate::services::discovery::MAX_SUGGESTIONS,
                    crate::routes::discovery::DEFAULT_SUGGESTIONS,
                )
            } else {
                (crate::page::MAX_LIMIT, crate::page::DEFAULT_LIMIT)
            };
            for operation in operations_of(item) {
                if let Some(description) = operation.description.as_mut() {
                    fill(description);
                }
                if let Some(summary) = operation.summary.as_mut() {
                    fill(summary);
                }
                for parameter in operation.parameters.iter_mut().flatten() {
                    let RefOr::T(parameter) = parameter else {
                        continue;
                    };
                    if let Some(description) = parameter.description.as_mut() {
                        fill(description);
                    }
                    // Every list's `limit`: its range and default are the pages' own.
                    if parameter.name == "limit"
                        && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
                    {
                        schema.maximum = Some(max_limit.into());
                        schema.default = Some(default_limit.into());
                    }
                }
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        fill(&mut response.description);
                    }
                }
                if let Some(RefOr::T(body)) = operation.request_body.as_mut()
                    && let Some(description) = body.description.as_mut()
                {
                    fill(description);
                }
            }
        }
        // The request and response fields (one level: the objects' own properties).
        for schema in openapi
            .components
            .iter_mut()
            .flat_map(|components| components.schemas.values_mut())
        {
            let RefOr::T(Schema::Object(object)) = schema else {
                continue;
            };
            if let Some(description) = object.description.as_mut() {
                fill(description);
            }
            for property in object.properties.values_mut() {
                match property {
                    RefOr::T(Schema::Object(property)) => {
                        if let Some(description) = property.description.as_mut() {
                            fill(description);
                        }
                    }
                    RefOr::T(Schema::Array(property)) => {
                        if let Some(description) = property.description.as_mut() {
                            fill(description);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// What every operation can answer, added to all of them so each annotation lists only its own
/// outcomes: the `X-Request-Id` header on every response, `WWW-Authenticate` on 401s,
/// `Retry-After` on 429s and 503s, and the problem responses of the shared layers (400/413/415 for
/// bodies, 503 when a write keeps losing to concurrent ones, 500).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            ContentBuilder, HttpMethod, Ref, RefOr, ResponseBuilder, header::HeaderBuilder,
        };

        let string_header = |description: &str| {
            HeaderBuilder::new()
                .schema(Some(utoipa::openapi::schema::Object::with_type(
                    utoipa::openapi::schema::Type::String,
                )))
                .description(Some(description))
                .build()
        };
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    crate::error::PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            for method in [
                HttpMethod::Get,
                HttpMethod::Post,
                HttpMethod::Put,
                HttpMethod::Patch,
                HttpMethod::Delete,
            ] {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Put => item.put.as_mut(),
                    HttpMethod::Patch => item.patch.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    _ => None,
                };
                let Some(operation) = operation else { continue };
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(problem(description)));
                };
                // Authentication answers: 401 when a token is required and missing or invalid, or
                // (optional auth, an empty requirement among the alternatives) sent but invalid.
                let requirements: Vec<serde_json::Value> = operation
                    .security
                    .iter()
                    .flatten()
                    .filter_map(|r| serde_json::to_value(r).ok())
                    .collect();
                if requirements.contains(&serde_json::json!({})) {
                    add(
                        "401",
                        "`unauthorized`: a token was sent but is not valid (or its session ended); `token_expired`: the access token ran out, refresh it",
                    );
                } else if !requirements.is_empty() {
                    add(
                        "401",
                        "`unauthorized`: no valid token (or its session ended); `token_expired`: the access token ran out, refresh it",
                    );
                }
                // Every paginated list validates `limit` and its cursor.
                let paginated = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|p| matches!(p, RefOr::T(parameter) if parameter.name == "cursor"));
                if paginated {
                    add(
                        "400",
                        "`invalid_parameter` or `invalid_cursor`: a bad `limit`, or a cursor the server did not issue for this list",
                    );
                }
                if operation.request_body.is_some() {
                    add(
                        "400",
                        "`invalid_json`: the body is not JSON of the expected shape",
                    );
                    add(
                        "408",
                        &format!(
                            "`request_timeout`: the body did not arrive within {} seconds of the request head",
                            BODY_TIMEOUT.as_secs()
                        ),
                    );
                    add(
                        "413",
                        &format!(
                            "`payload_too_large`: the body is over {} KiB",
                            MAX_BODY_BYTES / 1024
                        ),
                    );
                    add(
                        "415",
                        "`unsupported_media_type`: the body is not sent as application/json",
                    );
                }
                let limited = routes::quota(path) != RateLimit::None;
                if limited {
                    add(
                        "429",
                        "`rate_limited`: the quota of this client IP (login, registration, mailed tokens), user (follows, posts, password checks) or session (refresh) is spent; retry after `Retry-After` seconds",
                    );
                }
                let writes = !matches!(method, HttpMethod::Get) && !path.starts_with("/auth/");
                if writes {
                    add(
                        "503",
                        "`service_unavailable`: the write kept conflicting with concurrent ones; retry after `Retry-After` seconds",
                    );
                }
                add(
                    "500",
                    "`internal`: an unexpected failure, logged with the request id",
                );
                // A stream is no representation to tag: it has no `ETag` and no 304.
                let get = matches!(method, HttpMethod::Get) && path != "/stream";
                if get {
                    responses.entry("304".to_owned()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(
                                    "Not modified: `If-None-Match` named the current `ETag`; no body",
                                )
                                .build(),
                        )
                    });
                }

                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if let Some(RefOr::T(content)) =
                        response.content.get_mut(crate::error::PROBLEM_JSON)
                        && content.example.is_none()
                    {
                        content.example = Some(problem_example(status, &response.description));
                    }
                    response.headers.insert(
                        "X-Request-Id".into(),
                        string_header("The request's id: the client's own `X-Request-Id` when it sent one, else a new UUID").into(),
                    );
                    if get && (status == "200" || status == "304") {
                        response.headers.insert(
                            "ETag".into(),
                            string_header("A strong tag of this representation: send it back as `If-None-Match` to get a 304 while it is current").into(),
                        );
                        // An image never changes under its id.
                        let cache = if path.starts_with("/media/") {
                            "`public, max-age=31536000, immutable`: the image never changes under its id"
                        } else {
                            "`private, no-cache` on authenticated requests, `no-cache` on anonymous ones"
                        };
                        response
                            .headers
                            .insert("Cache-Control".into(), string_header(cache).into());
                    }
                    if limited {
                        for (name, description) in [
                            (
                                "RateLimit-Limit",
                                "Requests allowed per minute on this route's quota",
                            ),
                            ("RateLimit-Remaining", "Requests left in the quota now"),
                            ("RateLimit-Reset", "Seconds until the quota is whole again"),
                        ] {
                            response
                                .headers
                                .insert(name.into(), string_header(description).into());
                        }
                    }
                    match status.as_str() {
                        "401" => {
                            response.headers.insert(
                                "WWW-Authenticate".into(),
                                string_header("`Bearer error=\"invalid_token\"` when the request sent a token (an expired one is `token_expired`), `Bearer` when it sent none (RFC 6750)").into(),
                            );
                        }
                        "429" | "503" => {
                            response.headers.insert(
                                "Retry-After".into(),
                                string_header("Seconds to wait before retrying").into(),
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

/// An example problem body for an error response: its own status, and the first code its
/// description names in backticks (else the code every answer of that status has).
fn problem_example(status: &str, description: &str) -> serde_json::Value {
    let code = description
        .split('`')
        .nth(1)
        .filter(|code| code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .unwrap_or(match status {
            "400" => "invalid_parameter",
            "401" => "unauthorized",
            "403" => "forbidden",
            "404" => "not_found",
            "409" => "conflict",
            "408" => "request_timeout",
            "413" => "payload_too_large",
            "415" => "unsupported_media_type",
            "422" => "validation_failed",
            "429" => "rate_limited",
            "503" => "service_unavailable",
            _ => "internal",
        });
    let status_code = status.parse::<u16>().unwrap_or(500);
    let title = actix_web::http::StatusCode::from_u16(status_code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let mut example = serde_json::json!({
        "type": "about:blank",
        "title": title,
        "status": status_code,
        "code": code,
        "detail": description.split(": ").nth(1).unwrap_or(description),
    });
    if code == "validation_failed" {
        example["errors"] = serde_json::json!({"username": ["must be 3 to 30 characters"]});
    }
    example
}

/// The document as YAML, exactly as committed in `openapi.yaml`.
pub fn yaml() -> Result<String, String> {
    ApiDoc::openapi().to_yaml().map_err(|e| e.to_string())
}

/// The page at `/docs`: Swagger UI from the assets bundled under `/docs/`, reading `/openapi.json`.
/// (The bundle's own index only works at `/docs/`, with the trailing slash.)
const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Social API documentation</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    });
  </script>
</body>
</html>
"##;

async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

/// `/openapi.json`, built and serialized once per process: the app factory runs once per worker,
/// and the document as a value takes some 6 MB, where its JSON takes a tenth of that.
static DOCUMENT: LazyLock<Result<web::Bytes, String>> = LazyLock::new(|| {
    serde_json::to_vec(&ApiDoc::openapi())
        .map(web::Bytes::from)
        .map_err(|err| err.to_string())
});

async fn document() -> Result<HttpResponse, ApiError> {
    match &*DOCUMENT {
        Ok(json) => Ok(HttpResponse::Ok()
            .content_type(ContentType::json())
            .body(json.clone())),
        Err(err) => Err(ApiError::internal(std::io::Error::other(err.clone()))),
    }
}

/// Serves `/openapi.json` and the interactive documentation at `/docs`, all from the binary (no
/// CDN: the machine running it may be offline). Like every route, their paths answer other
/// methods with 405 and `Allow: GET`: Swagger UI's assets are served to `GET` only, so a resource
/// after them catches the rest.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        routes::resource("/openapi.json", "GET, HEAD", RateLimit::None)
            .route(web::get().to(document)),
    )
    .service(
        routes::resource("/docs", "GET, HEAD", RateLimit::None).route(web::get().to(docs_page)),
    )
    .service(
        SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/openapi.json")),
    )
    .service(routes::resource(
        "/docs/{_:.*}",
        "GET, HEAD",
        RateLimit::None,
    ));
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi;
    use utoipa::openapi::RefOr;

    use super::*;

    /// /docs shows each error with an example of its own status and code, not the schema's 404.
    #[test]
    fn every_problem_response_has_an_example_of_its_own_status() {
        let document = ApiDoc::openapi();
        let mut checked = 0;
        for (path, item) in &document.paths.paths {
            let operations = [&item.get, &item.post, &item.put, &item.patch, &item.delete];
            for operation in operations.into_iter().flatten() {
                for (status, response) in &operation.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let Some(RefOr::T(content)) = response.content.get(crate::error::PROBLEM_JSON)
                    else {
                        continue;
                    };
                    let example = content.example.as_ref().expect("an example");
                    assert_eq!(example["status"].to_string(), *status, "{path} {status}");
                    let code = example["code"].as_str().unwrap_or_default();
                    assert!(
                        !code.is_empty() && response.description.contains(code)
                            || !response.description.contains('`'),
                        "{path} {status}: {code} / {}",
                        response.description
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "{checked}");
    }

    /// Every `{NAME}` a description writes is in [`Numbers::table`].
    #[test]
    fn no_number_placeholder_is_left_in_the_document() {
        let document = yaml().unwrap();
        let placeholder = regex::Regex::new(r"\{[A-Z][A-Z0-9_]*\}").unwrap();
        let left: Vec<&str> = placeholder
            .find_iter(&document)
            .map(|m| m.as_str())
            .collect();
        assert!(left.is_empty(), "unfilled: {left:?}");
        for (name, _) in Numbers::table() {
            assert!(!name.is_empty());
        }
    }

    #[test]
    fn numbers_are_written_with_thousands_separators() {
        assert_eq!(thousands(5), "5");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
