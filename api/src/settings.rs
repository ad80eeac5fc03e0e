//! Typed configuration, read once from the environment and passed into the application builder.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default database: a SQLite file under `./data/`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/social.db?mode=rwc";

/// Everything the server needs to start. Tests build one by hand with their own database and port.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `sqlite://`, `postgres://` or `mysql://` URL.
    pub database_url: String,
    /// Where to listen, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub bind_addr: String,
    /// HMAC key for tokens (and cursors); `None` means "generate and keep one beside the SQLite
    /// database", which is refused on any other database.
    pub jwt_secret: Option<String>,
    /// Lifetime of an access token.
    pub jwt_ttl: Duration,
    /// Origins allowed to call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// Login and registration attempts per client IP per minute.
    pub rate_limit_auth_per_minute: u32,
    /// Follows, unfollows and posts per user per minute.
    pub rate_limit_writes_per_minute: u32,
    /// Largest number of pooled database connections.
    pub database_pool_size: u32,
    /// Longest a single SQL statement may run (PostgreSQL and MySQL/MariaDB).
    pub database_statement_timeout: Duration,
    /// Longest a request may take from routing to response before it is answered 503.
    pub request_timeout: Duration,
    /// Take the client IP for per-IP limits from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

/// A configuration value that cannot be used, named so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct SettingsError {
    name: &'static str,
    message: String,
}

impl Settings {
    /// Reads the variables of the contract's configuration table; unset ones take their defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(Settings {
            database_url: var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            bind_addr: var("BIND_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
            jwt_secret: var("JWT_SECRET"),
            jwt_ttl: Duration::from_secs(parse_number(
                "JWT_TTL_SECONDS",
                var("JWT_TTL_SECONDS"),
                86_400,
            )?),
            cors_allowed_origins: var("CORS_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
            rate_limit_auth_per_minute: parse_number(
                "RATE_LIMIT_AUTH_PER_MINUTE",
                var("RATE_LIMIT_AUTH_PER_MINUTE"),
                10,
            )?,
            rate_limit_writes_per_minute: parse_number(
                "RATE_LIMIT_WRITES_PER_MINUTE",
                var("RATE_LIMIT_WRITES_PER_MINUTE"),
                120,
            )?,
            database_pool_size: parse_number("DATABASE_POOL_SIZE", var("DATABASE_POOL_SIZE"), 10)?,
            database_statement_timeout: Duration::from_secs(parse_number(
                "DATABASE_STATEMENT_TIMEOUT_SECONDS",
                var("DATABASE_STATEMENT_TIMEOUT_SECONDS"),
                10,
            )?),
            request_timeout: Duration::from_secs(parse_number(
                "REQUEST_TIMEOUT_SECONDS",
                var("REQUEST_TIMEOUT_SECONDS"),
                30,
            )?),
            trust_forwarded_for: match var("TRUST_X_FORWARDED_FOR").as_deref() {
                None | Some("false" | "0" | "no") => false,
                Some("true" | "1" | "yes") => true,
                Some(other) => {
                    return Err(SettingsError::new(
                        "TRUST_X_FORWARDED_FOR",
                        format!("'{other}' is not true or false"),
                    ));
                }
            },
        })
    }

    /// Settings for a server on `database_url` with every other value at its default.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: database_url.into(),
            bind_addr: "127.0.0.1:8080".to_owned(),
            jwt_secret: None,
            jwt_ttl: Duration::from_secs(86_400),
            cors_allowed_origins: Vec::new(),
            rate_limit_auth_per_minute: 10,
            rate_limit_writes_per_minute: 120,
            database_pool_size: 10,
            database_statement_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            trust_forwarded_for: false,
        }
    }

    /// The file of a SQLite URL (`None` for other databases and in-memory SQLite).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        sqlite_file(&self.database_url)
    }

    /// Whether the URL names a SQLite database (file or memory).
    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

fn parse_number<T: std::str::FromStr + PartialOrd + From<u8>>(
    name: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, SettingsError> {
    match value {
        None => Ok(default),
        Some(v) => match v.trim().parse::<T>() {
            Ok(n) if n > T::from(0) => Ok(n),
            _ => Err(SettingsError {
                name,
                message: format!("'{v}' is not a positive whole number"),
            }),
        },
    }
}

/// The path of the file behind a `sqlite:` URL, or `None` for memory databases and other backends.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
        return None;
    }
    Some(Path::new(path).to_path_buf())
}

impl SettingsError {
    pub(crate) fn new(name: &'static str, message: impl Into<String>) -> Self {
        SettingsError {
            name,
            message: message.into(),
        }
    }
}
