//! Building the application from [`Settings`]: the database, the secret, the middleware and the
//! routes, then serving until SIGTERM or SIGINT.

use std::net::TcpListener;
use std::path::Path;

use actix_service::ServiceFactoryExt;
use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers, Next, from_fn};
use actix_web::{App, HttpMessage, ResponseError, web};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};

use crate::auth::{MIN_SECRET_BYTES, Tokens, generate_secret};
use crate::connection::ProblemIo;
use crate::db::connect_and_migrate;
use crate::error::{ApiError, PROBLEM_JSON};
use crate::http_cache;
use crate::limits::CLIENT_REQUEST_TIMEOUT;
use crate::openapi;
use crate::page::CursorCodec;
use crate::routes;
use crate::settings::Settings;
use crate::state::{AppState, STREAMS_PER_USER};

/// How long a PostgreSQL process waits at start for its LISTEN for stream events to be in place
/// before it serves anyway (say, while the database is slow to accept one more connection).
const LISTEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A built server, bound to its port, not yet running.
pub struct Application {
    port: u16,
    server: Server,
    db: DatabaseConnection,
}

/// Why the server could not start, in one line.
pub type StartupError = Box<dyn std::error::Error + Send + Sync>;

impl Application {
    /// Connects and migrates the database, resolves the token secret and binds the listener.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        settings.validate()?;

        let db = connect_and_migrate(&settings)
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        crate::services::operators::grant_at_start(&db, &settings.admin_usernames)
            .await
            .map_err(|e| format!("ADMIN_USERNAMES: {e}"))?;
        let secret = match &settings.jwt_secret {
            Some(secret) => secret.expose_secret().to_owned(),
            None => match settings.sqlite_file() {
                Some(file) => secret_beside(&file)?,
                None => generate_secret()?,
            },
        };

        // The quotas and the streams per user that every replica shares, when configured.
        let shared = match &settings.redis_url {
            Some(url) => Some(std::sync::Arc::new(
                crate::rate_limit::Shared::new(url.expose_secret(), &settings.redis_key_prefix)
                    .map_err(|e| format!("REDIS_URL: {e}"))?,
            )),
            None => None,
        };
        let limits = std::sync::Arc::new(crate::rate_limit::Limits::new(
            settings.rate_limit_auth_per_minute,
            settings.rate_limit_writes_per_minute,
            settings.rate_limit_refresh_per_minute,
            settings.trust_forwarded_for,
            shared.clone(),
        ));
        raise_open_file_limit(settings.stream_max_connections);
        crate::metrics::init().map_err(|e| format!("cannot set up the metrics: {e}"))?;
        let passwords = crate::auth::Passwords::new()?;
        // Hashed on the pool like every other password, so it reuses the pool's Argon2 memory.
        let dummy_password_hash = passwords
            .hash(generate_secret()?)
            .await
            .map_err(|e| format!("cannot hash a password: {e}"))?;
        let standby = match &settings.database_read_url {
            Some(url) => {
                let pool = crate::db::connect_standby(&settings, url.expose_secret())
                    .await
                    .map_err(|e| format!("DATABASE_READ_URL: {e}"))?;
                let standby = crate::replica::Standby::new(pool, settings.read_lag_budget);
                tokio::spawn(standby.clone().watch(db.clone()));
                Some(standby)
            }
            None => None,
        };
        // How events reach the streams is decided here, once, and consulted from then on.
        let transport = crate::events::Transport::of(db.get_database_backend());
        let hub = crate::events::Hub::new(
            db.clone(),
            transport,
            usize::try_from(settings.stream_max_connections).unwrap_or(usize::MAX),
            STREAMS_PER_USER,
            shared,
        );
        let listening = crate::events::transport::spawn(
            transport,
            &hub,
            &db,
            settings.database_url.expose_secret(),
        );
        if let Some(listening) = listening
            && tokio::time::timeout(LISTEN_WAIT, listening).await.is_err()
        {
            tracing::warn!(
                "not yet listening for stream events after {LISTEN_WAIT:?}: starting anyway"
            );
        }
        tokio::spawn(hub.clone().deliver_in_order());
        tokio::spawn(crate::events::live_sessions::keep_probing(
            hub.clone(),
            db.clone(),
        ));
        tokio::spawn(hub.clone().renew_leases());
        let mailing =
            crate::services::email::Mailing::new(secret.as_bytes(), settings.smtp_url.is_some());
        let mailer = crate::mail::Mailer::new(&settings, mailing.clone())?;
        let vapid = std::sync::Arc::new(match &settings.vapid_private_key {
            Some(key) => crate::push::VapidKey::parse(key.expose_secret())
                .map_err(|e| format!("VAPID_PRIVATE_KEY: {e}"))?,
            None => match settings.sqlite_file() {
                Some(file) => vapid_key_beside(&file)?,
                None => crate::push::VapidKey::generate()?,
            },
        });
        let pusher = crate::push::Pusher::new(
            vapid.clone(),
            settings.push_contact.clone(),
            settings.push_allow_private_endpoints,
        )?;
        let state = web::Data::new(AppState {
            vapid_public_key: vapid.public_key().to_owned(),
            push_allow_private_endpoints: settings.push_allow_private_endpoints,
            mailing,
            outbox: Default::default(),
            post_horizon: crate::services::clock::Horizon::start(db.clone()),
            hub: hub.clone(),
            metrics_allowed_from: settings.metrics_allowed_from.clone(),
            refresh_ttl: settings.refresh_ttl,
            refresh_reuse_grace: settings.refresh_reuse_grace,
            rotation: crate::services::sessions::Rotation::new(secret.as_bytes()),
            stream_slow_client_timeout: settings.stream_slow_client_timeout,
            standby,
            in_flight: Default::default(),
            popular: Default::default(),
            suggestion_sample: settings.suggestion_sample,
            archive_batch: settings.archive_batch.max(1),
            db: db.clone(),
            tokens: Tokens::new(secret.as_bytes(), settings.jwt_ttl),
            cursors: CursorCodec::new(secret.as_bytes()),
            dummy_password_hash,
            passwords,
            limits: limits.clone(),
            request_timeout: settings.request_timeout,
            timeline: crate::services::timeline::Strategy {
                per_author_max_followees: settings.timeline_per_author_max_followees,
                feeds: settings.timeline_feeds.then(|| {
                    crate::services::feeds::Feeds::start(db.clone(), settings.timeline_feeds_worker)
                }),
            },
            processor: Default::default(),
            media_store: crate::media::Store::Database,
        });
        limits.spawn_cleanup();
        spawn_idempotency_sweep(db.clone());
        spawn_media_sweep(db.clone(), state.media_store.clone());
        crate::outbox_worker::Worker {
            db: db.clone(),
            mailer,
            mailing: state.mailing.clone(),
            pusher,
            retry_base: settings.outbox_retry_base,
            poll: settings.outbox_poll,
        }
        .spawn(&state.outbox);
        let cors_origins = settings.cors_allowed_origins.clone();

        let listener = TcpListener::bind(&settings.bind_addr)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.bind_addr))?;
        let port = listener.local_addr()?.port();
        let address = listener.local_addr()?;
        let app = move || {
            App::new()
                .app_data(state.clone())
                .configure(routes::configure)
                .configure(openapi::configure)
                .default_service(web::to(routes::not_found))
                // Innermost, so that it routes HEAD as GET and every other layer sees its answer.
                .wrap(from_fn(http_cache::conditional_get))
                .wrap(from_fn(crate::auth::challenge))
                .wrap(cors(&cors_origins))
                .wrap(ErrorHandlers::new().default_handler(problem_for_plain_errors))
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
                )
                .wrap(from_fn(publish_events))
                .wrap(TracingLogger::<RequestSpan>::new())
                .wrap(from_fn(crate::metrics::record))
                .wrap(from_fn(request_id))
        };
        // What `HttpServer::listen` assembles, with each connection wrapped in `ProblemIo` so the
        // HTTP layer's own refusals are problem+json too.
        let mut builder = actix_server::Server::build();
        let shutdown = builder.graceful_shutdown_signal();
        {
            // Streams end when the server starts to stop, so that their connections can close.
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.notified().await;
                hub.shut_down().await;
            });
        }
        builder = builder
            .shutdown_timeout(10)
            .listen("api", listener, move || {
                let shutdown = shutdown.clone();
                let http = actix_http::HttpService::build()
                    // Ends idle keep-alive connections when the server stops.
                    .graceful_shutdown_signal(move || {
                        let shutdown = shutdown.clone();
                        async move { shutdown.notified().await }
                    })
                    // A client that sends its request head or body too slowly is cut off.
                    .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
                    .client_disconnect_timeout(std::time::Duration::from_secs(5))
                    // A client that closed its side of the connection is gone: an event stream it
                    // held is freed at once, not at its next keep-alive.
                    .h1_allow_half_closed(false)
                    .on_connect_ext(|io: &ProblemIo<_>, data| {
                        data.insert(io.disconnect());
                    })
                    .local_addr(address)
                    .h1(actix_service::map_config(app(), |()| {
                        actix_web::dev::AppConfig::default()
                    }));
                actix_service::fn_service(|io: actix_rt::net::TcpStream| {
                    let peer = io.peer_addr().ok();
                    let _ = io.set_nodelay(true);
                    std::future::ready(Ok::<_, actix_http::error::DispatchError>((
                        ProblemIo::new(io),
                        peer,
                    )))
                })
                .and_then(http)
            })?;
        let server = builder.run();
        Ok(Application { port, server, db })
    }

    /// The port the server listens on (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that stops the server (gracefully or not) from elsewhere.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The database pool the server uses.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Serves until the process receives SIGTERM or SIGINT, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// CORS for browsers: only the configured origins, never `*`, and no credentials (tokens travel in
/// the `Authorization` header, not cookies). A request from another origin is passed through
/// without CORS headers, so the browser blocks it, instead of failing with a plain-text error.
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            X_REQUEST_ID.clone(),
        ])
        .expose_headers([
            header::ETAG,
            header::LINK,
            header::LOCATION,
            header::RETRY_AFTER,
            X_REQUEST_ID.clone(),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(3600)
        .block_on_origin_mismatch(false);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Reads the secret kept beside the SQLite database file, creating it on first start, so tokens
/// survive a restart without any configuration.
fn secret_beside(database_file: &Path) -> Result<String, StartupError> {
    kept_beside(
        database_file,
        ".jwt-secret",
        "a token secret",
        || Ok(generate_secret()?),
        |secret| {
            (secret.len() >= MIN_SECRET_BYTES)
                .then(|| secret.to_owned())
                .ok_or_else(|| format!("holds a secret shorter than {MIN_SECRET_BYTES} bytes"))
        },
    )
}

/// Reads the VAPID key kept beside the SQLite database file, creating it on first start, so
/// push subscriptions (made for the server's public key) survive a restart.
fn vapid_key_beside(database_file: &Path) -> Result<crate::push::VapidKey, StartupError> {
    let text = kept_beside(
        database_file,
        ".vapid-key",
        "a VAPID key",
        || Ok(crate::push::VapidKey::generate()?.to_base64()),
        |text| crate::push::VapidKey::parse(text).map(|_| text.to_owned()),
    )?;
    Ok(crate::push::VapidKey::parse(&text)?)
}

/// Reads the value kept in the file beside `database_file` whose name ends in `suffix`,
/// checked by `check`, creating it with `generate` on first start (readable by the owner only).
fn kept_beside(
    database_file: &Path,
    suffix: &str,
    what: &str,
    generate: impl Fn() -> Result<String, StartupError>,
    check: impl Fn(&str) -> Result<String, String>,
) -> Result<String, StartupError> {
    let mut name = database_file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    let path = database_file.with_file_name(name);
    match std::fs::read_to_string(&path) {
        Ok(kept) => {
            return check(kept.trim()).map_err(|e| {
                format!("{} {e}; remove it to generate a new one", path.display()).into()
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
    }
    let value = generate()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(&path) {
        Ok(mut file) => {
            use std::io::Write;
            file.write_all(value.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), "generated {what} beside the database");
            Ok(value)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_owned())
        }
        Err(e) => Err(format!("cannot create {}: {e}", path.display()).into()),
    }
}

/// Hands the events of the request's committed writes to the event streams once it is answered,
/// and wakes the outbox worker when the request wrote to the outbox.
async fn publish_events(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return next.call(req).await;
    };
    let (out, wrote) =
        crate::services::outbox::watch(crate::events::collect(&state.hub, next.call(req))).await;
    if wrote {
        state.outbox.wake();
    }
    out
}

/// Raises the soft limit on open files to what the streams need (one descriptor each, plus the
/// database pool and some headroom), as far as the hard limit allows, and says so when it cannot.
fn raise_open_file_limit(streams: u32) {
    let wanted = u64::from(streams) + 1_024;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => tracing::warn!(
            limit = got,
            wanted,
            "the open-file limit is below what STREAM_MAX_CONNECTIONS needs"
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-file limit"),
    }
}

/// The id of a request: the client's `X-Request-Id` when it sent a usable one, else a new UUID.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Puts an `X-Request-Id` on every response, echoing the request's when it has a sane one.
async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    // Handlers and the middleware inside this one turn every error into a response, so `Err` does
    // not happen in practice; the request cannot be kept to build one here (routing needs it
    // unshared).
    let mut response = next.call(req).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    Ok(response)
}

/// Rewrites any error response that is not already problem+json (actix's own answers, should one
/// slip through) into the contract's problem body; [`ApiError::for_status`] picks the code, and a
/// 4xx it has no code for becomes a 400.
fn problem_for_plain_errors<B>(
    response: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(
            response.map_into_left_body(),
        ));
    }
    let status = response.status();
    let (request, _) = response.into_parts();
    let preflight = request.method() == actix_web::http::Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let error = if preflight && status.is_client_error() {
        // actix-cors refuses a preflight it cannot allow with a bare 400.
        ApiError::Forbidden(
            "this origin, method or header may not call the API from a browser (CORS); the \
             server's CORS_ALLOWED_ORIGINS lists the origins that may",
        )
    } else {
        ApiError::for_status(status, request.method().as_str(), request.path())
    };
    let rewritten = ServiceResponse::new(request, error.error_response());
    Ok(ErrorHandlerResponse::Response(
        rewritten.map_into_right_body(),
    ))
}

/// The span of a request: method, path, request id and status, logged when it closes.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            method = %request.method(),
            path = %request.path(),
            request_id = %request_id,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        let status = match outcome {
            Ok(response) => response.status().as_u16(),
            Err(err) => err.as_response_error().status_code().as_u16(),
        };
        // Client errors are the API working as documented, not something to warn about; server
        // errors were logged with their cause where they happened.
        span.record("status", status);
    }
}

/// Removes the `Idempotency-Key`s past their 24 hours and the mailed tokens past their expiry, once an
/// hour (and once at start-up).
fn spawn_idempotency_sweep(db: sea_orm::DatabaseConnection) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3_600));
        loop {
            tick.tick().await;
            match crate::services::idempotency::sweep(&db).await {
                Ok(0) => {}
                Ok(gone) => tracing::info!(gone, "swept idempotency keys past their 24 hours"),
                Err(err) => tracing::warn!(error = %err, "could not sweep idempotency keys"),
            }
            match crate::services::email::sweep(&db).await {
                Ok(0) => {}
                Ok(gone) => tracing::info!(gone, "swept mailed tokens past their expiry"),
                Err(err) => tracing::warn!(error = %err, "could not sweep mailed tokens"),
            }
        }
    });
}

/// Removes the media that no post took within their 24 hours, once an hour (and once at
/// start-up).
fn spawn_media_sweep(db: sea_orm::DatabaseConnection, store: crate::media::Store) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3_600));
        loop {
            tick.tick().await;
            match crate::services::media::sweep(&db, &store).await {
                Ok(0) => {}
                Ok(gone) => tracing::info!(gone, "swept media that no post used"),
                Err(err) => tracing::warn!(error = %err, "could not sweep unused media"),
            }
        }
    });
}
