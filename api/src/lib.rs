//! The social API: a JSON REST service for the follow graph and the timeline.
//!
//! Requests flow `routes` (extract, validate, map to wire types) -> `views` (the wire types) ->
//! `services` (all queries) -> `entity` (SeaORM models). Beside the routes, `extract` reads
//! bodies and `page` answers lists; `domain` holds the validated values and `error` the one
//! error type, which depends on nothing above it.

pub mod auth;
pub mod cli;
pub mod connection;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod extract;
pub mod http_cache;
pub mod idempotent;
pub mod limits;
pub mod mail;
pub mod media;
pub mod metrics;
pub mod openapi;
pub mod outbox_worker;
pub mod page;
pub mod push;
pub mod rate_limit;
pub mod replica;
pub mod routes;
pub mod services;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod time;
pub mod views;

pub use settings::Settings;
pub use startup::Application;

/// Runs the server as configured by the environment (and `.env`) until SIGTERM or SIGINT.
pub async fn run_from_env() -> Result<(), startup::StartupError> {
    load_dotenv();
    telemetry::init();
    let settings = Settings::from_env()?;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "listening");
    application.run_until_stopped().await?;
    Ok(())
}

/// The process entry point shared by the binaries: with no arguments, runs [`run_from_env`] on
/// actix's runtime and turns a start-up failure into one line on stderr and exit status 1; with
/// arguments, runs that command ([`cli::run`]).
pub fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        load_dotenv();
        return actix_web::rt::System::new().block_on(cli::run(&args));
    }
    match actix_web::rt::System::new().block_on(run_from_env()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads `.env` into the environment: a missing one is the normal case, a malformed one is worth
/// a warning.
fn load_dotenv() {
    if let Err(err) = dotenvy::dotenv()
        && !err.not_found()
    {
        eprintln!("ignoring .env: {err}");
    }
}
