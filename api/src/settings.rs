//! Typed configuration, read once from the environment and passed into the application builder.
//!
//! Each default is written once ([`Settings::default`]) and each rule once ([`Settings::validate`],
//! which [`crate::Application::build`] runs on every configuration, hand-built ones included).

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::auth::MIN_SECRET_BYTES;

/// The default database: a SQLite file under `./data/`, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/social.db?mode=rwc";

/// Everything the server needs to start. Tests build one by hand with their own database and port.
///
/// The token secret and the URLs (which may carry passwords) are [`SecretString`]s: `Debug`, and so
/// any log line that prints the settings, shows them as `[REDACTED]`; their users call
/// `expose_secret()` where they connect or sign.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `sqlite://`, `postgres://` or `mysql://` URL.
    pub database_url: SecretString,
    /// A PostgreSQL hot standby of `database_url` for reads (`DATABASE_READ_URL`); `None` reads
    /// everything from `database_url`.
    pub database_read_url: Option<SecretString>,
    /// How far behind the primary the standby may be and still take reads, and how long after a
    /// write its writer's reads stay on the primary (`READ_LAG_BUDGET_MS`).
    pub read_lag_budget: Duration,
    /// Where to listen, e.g. `127.0.0.1:8080`; port 0 picks a free port.
    pub bind_addr: String,
    /// HMAC key for tokens (and cursors); `None` means "generate and keep one beside the SQLite
    /// database", which is refused on any other database.
    pub jwt_secret: Option<SecretString>,
    /// Lifetime of an access token.
    pub jwt_ttl: Duration,
    /// Lifetime of a refresh token, from its issue.
    pub refresh_ttl: Duration,
    /// How long after its first use a refresh token sent again gets the same answer instead of
    /// ending its session (`REFRESH_REUSE_GRACE_SECONDS`): a phone that lost the answer retries.
    pub refresh_reuse_grace: Duration,
    /// Origins allowed to call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// Accounts that may use `/admin/...`, by username (any letter case).
    pub admin_usernames: Vec<String>,
    /// Login and registration attempts per client IP per minute.
    pub rate_limit_auth_per_minute: u32,
    /// Writes (follows, unfollows, blocks, mutes, removed followers, posts, reports) per user per
    /// minute.
    pub rate_limit_writes_per_minute: u32,
    /// Refreshes per session per minute (`RATE_LIMIT_REFRESH_PER_MINUTE`): a quota of its own, so
    /// that logins from the same address cannot spend a phone's refreshes.
    pub rate_limit_refresh_per_minute: u32,
    /// Most event streams open at once in this process.
    pub stream_max_connections: u32,
    /// How long an event stream waits for a client that does not read before it disconnects it
    /// (not configurable from the environment; tests shorten it).
    pub stream_slow_client_timeout: Duration,
    /// Which of a caller's most recent followees suggestions are drawn from (not configurable
    /// from the environment; tests lower it to reach both sides of it).
    pub suggestion_sample: crate::services::discovery::Sample,
    /// How many rows of a list one read of an archive takes (not configurable from the
    /// environment; tests lower it so that small accounts span several reads).
    pub archive_batch: u64,
    /// Largest number of pooled database connections.
    pub database_pool_size: u32,
    /// Longest a single SQL statement may run (PostgreSQL and MySQL/MariaDB).
    pub database_statement_timeout: Duration,
    /// Longest a request may take from routing to response before it is answered 503.
    pub request_timeout: Duration,
    /// Take the client IP for per-IP limits from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Readers who follow at most this many accounts get the timeline's per-author query, others
    /// the newest-first walk (see `services::timeline`). Not read from the environment: the
    /// measured default suits every backend, and tests lower it so that a handful of accounts
    /// reaches both queries.
    pub timeline_per_author_max_followees: i64,
    /// Readers past the per-author query get a precomputed timeline, kept by a background worker
    /// (`TIMELINE_FEEDS`, on unless `false`; see `services::feeds`). Off, every such reader's page
    /// is read by the newest-first walk, as before feeds.
    pub timeline_feeds: bool,
    /// Whether this process runs the feeds' worker (not read from the environment: tests turn it
    /// off and step it themselves, `services::feeds::step`).
    pub timeline_feeds_worker: bool,
    /// The Redis that keeps the rate limits' quotas for every replica (`REDIS_URL`); `None` keeps
    /// them in each process.
    pub redis_url: Option<SecretString>,
    /// What the quotas' Redis keys start with (not read from the environment: replicas of one
    /// service share it; tests give each server its own).
    pub redis_key_prefix: String,
    /// Addresses and ranges that may read `GET /metrics` (`METRICS_ALLOWED_FROM`).
    pub metrics_allowed_from: Vec<ipnet::IpNet>,
    /// The mail server (`SMTP_URL`, `smtp://` or `smtps://`, perhaps with a user and password);
    /// `None` turns mail off.
    pub smtp_url: Option<SecretString>,
    /// The sender of the mail (`MAIL_FROM`), an address or `Name <address>`.
    pub mail_from: String,
    /// The app's address, for the links in mail (`PUBLIC_URL`); `None` mails the token alone.
    pub public_url: Option<String>,
    /// The first wait before a failed send is tried again; each later one doubles (not read from
    /// the environment; tests shorten it).
    pub outbox_retry_base: Duration,
    /// How often a worker looks for due rows that no wake-up announced: other processes' writes
    /// and retries (not read from the environment; tests shorten it).
    pub outbox_poll: Duration,
    /// The server's P-256 private key for Web Push (`VAPID_PRIVATE_KEY`, the 32-byte scalar in
    /// base64url); `None` means "generate and keep one beside the SQLite database", which is
    /// refused on any other database.
    pub vapid_private_key: Option<SecretString>,
    /// The `sub` of VAPID tokens (`PUSH_CONTACT`): a `mailto:` or `https:` URL where push services
    /// reach the operator.
    pub push_contact: String,
    /// Allow `http://` push endpoints and endpoints on private addresses
    /// (`PUSH_ALLOW_PRIVATE_ENDPOINTS`): for development and tests only.
    pub push_allow_private_endpoints: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: DEFAULT_DATABASE_URL.into(),
            database_read_url: None,
            read_lag_budget: Duration::from_millis(2_000),
            bind_addr: "127.0.0.1:8080".to_owned(),
            jwt_secret: None,
            jwt_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(2_592_000),
            refresh_reuse_grace: Duration::from_secs(30),
            cors_allowed_origins: Vec::new(),
            admin_usernames: Vec::new(),
            rate_limit_auth_per_minute: 10,
            rate_limit_writes_per_minute: 120,
            rate_limit_refresh_per_minute: 30,
            stream_max_connections: 10_000,
            stream_slow_client_timeout: Duration::from_secs(30),
            suggestion_sample: crate::services::discovery::Sample::default(),
            archive_batch: crate::services::archive::BATCH,
            database_pool_size: 10,
            database_statement_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            trust_forwarded_for: false,
            timeline_per_author_max_followees: crate::services::timeline::PER_AUTHOR_MAX_FOLLOWEES,
            timeline_feeds: true,
            timeline_feeds_worker: true,
            redis_url: None,
            redis_key_prefix: "social:limits".to_owned(),
            metrics_allowed_from: vec![
                ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
                    std::net::Ipv4Addr::new(127, 0, 0, 0),
                    8,
                )),
                ipnet::IpNet::from(std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            ],
            smtp_url: None,
            mail_from: "no-reply@localhost".to_owned(),
            public_url: None,
            outbox_retry_base: Duration::from_secs(5),
            outbox_poll: Duration::from_secs(5),
            vapid_private_key: None,
            push_contact: "mailto:admin@localhost".to_owned(),
            push_allow_private_endpoints: false,
        }
    }
}

/// A numeric variable and the values it may take (both ends included).
struct Bounds {
    name: &'static str,
    min: u64,
    max: u64,
    unit: &'static str,
}

const JWT_TTL_SECONDS: Bounds = Bounds::seconds("JWT_TTL_SECONDS", 30 * 86_400);
const REFRESH_TTL_SECONDS: Bounds = Bounds::seconds("REFRESH_TTL_SECONDS", 366 * 86_400);
const RATE_LIMIT_AUTH_PER_MINUTE: Bounds = Bounds::count("RATE_LIMIT_AUTH_PER_MINUTE", 1_000_000);
const RATE_LIMIT_WRITES_PER_MINUTE: Bounds =
    Bounds::count("RATE_LIMIT_WRITES_PER_MINUTE", 1_000_000);
const RATE_LIMIT_REFRESH_PER_MINUTE: Bounds =
    Bounds::count("RATE_LIMIT_REFRESH_PER_MINUTE", 1_000_000);
const DATABASE_POOL_SIZE: Bounds = Bounds::count("DATABASE_POOL_SIZE", 1_000);
const STREAM_MAX_CONNECTIONS: Bounds = Bounds::count("STREAM_MAX_CONNECTIONS", 1_000_000);
const DATABASE_STATEMENT_TIMEOUT_SECONDS: Bounds =
    Bounds::seconds("DATABASE_STATEMENT_TIMEOUT_SECONDS", 3_600);
const REQUEST_TIMEOUT_SECONDS: Bounds = Bounds::seconds("REQUEST_TIMEOUT_SECONDS", 3_600);
const REFRESH_REUSE_GRACE_SECONDS: Bounds = Bounds {
    name: "REFRESH_REUSE_GRACE_SECONDS",
    min: 0,
    max: 300,
    unit: " seconds",
};
const READ_LAG_BUDGET_MS: Bounds = Bounds {
    name: "READ_LAG_BUDGET_MS",
    min: 1,
    max: 600_000,
    unit: " milliseconds",
};

impl Bounds {
    /// A whole number from 1 to `max`.
    const fn count(name: &'static str, max: u64) -> Self {
        Bounds {
            name,
            min: 1,
            max,
            unit: "",
        }
    }

    /// A number of seconds from 1 to `max`.
    const fn seconds(name: &'static str, max: u64) -> Self {
        Bounds {
            name,
            min: 1,
            max,
            unit: " seconds",
        }
    }

    fn error(&self, value: impl std::fmt::Display) -> SettingsError {
        SettingsError::new(
            self.name,
            format!(
                "'{value}' is not a whole number from {} to {}{}",
                self.min, self.max, self.unit
            ),
        )
    }

    fn check(&self, value: u64) -> Result<u64, SettingsError> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(self.error(value))
        }
    }

    /// The variable's value, or `default` when it is unset; out of range is an error.
    fn read<T: TryFrom<u64>>(&self, raw: Option<String>, default: T) -> Result<T, SettingsError> {
        let Some(raw) = raw else {
            return Ok(default);
        };
        let value = raw.trim().parse().map_err(|_| self.error(&raw))?;
        T::try_from(self.check(value)?).map_err(|_| self.error(&raw))
    }
}

/// One row of the README's configuration table: a variable, its default as the table writes it,
/// and, for a number, the range it may take (both ends included).
#[derive(Debug)]
pub struct Documented {
    pub name: &'static str,
    pub default: String,
    pub range: Option<(u64, u64)>,
}

/// Every variable [`Settings::from_env`] reads, with the default of [`Settings::default`] and the
/// range [`Settings::validate`] checks, and the two that [`crate::telemetry::init`] reads: what the
/// README's configuration table must say (a test compares them).
pub fn documented() -> Vec<Documented> {
    let d = Settings::default();
    let code = |value: &dyn std::fmt::Display| format!("`{value}`");
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            code(&items.join(","))
        }
    };
    let text = |name, default: &str| Documented {
        name,
        default: default.to_owned(),
        range: None,
    };
    let number = |bounds: &Bounds, default: u128| Documented {
        name: bounds.name,
        default: code(&default),
        range: Some((bounds.min, bounds.max)),
    };
    let addresses: Vec<String> = d
        .metrics_allowed_from
        .iter()
        .map(|net| {
            if net.prefix_len() == net.max_prefix_len() {
                net.addr().to_string()
            } else {
                net.to_string()
            }
        })
        .collect();
    vec![
        text("DATABASE_URL", &code(&DEFAULT_DATABASE_URL)),
        text("DATABASE_READ_URL", "unset"),
        number(&READ_LAG_BUDGET_MS, d.read_lag_budget.as_millis()),
        text("BIND_ADDR", &code(&d.bind_addr)),
        text("JWT_SECRET", "generated beside a SQLite database"),
        number(&JWT_TTL_SECONDS, d.jwt_ttl.as_secs().into()),
        number(&REFRESH_TTL_SECONDS, d.refresh_ttl.as_secs().into()),
        number(
            &REFRESH_REUSE_GRACE_SECONDS,
            d.refresh_reuse_grace.as_secs().into(),
        ),
        text("CORS_ALLOWED_ORIGINS", &list(&d.cors_allowed_origins)),
        number(&STREAM_MAX_CONNECTIONS, d.stream_max_connections.into()),
        text("ADMIN_USERNAMES", &list(&d.admin_usernames)),
        number(
            &RATE_LIMIT_AUTH_PER_MINUTE,
            d.rate_limit_auth_per_minute.into(),
        ),
        number(
            &RATE_LIMIT_WRITES_PER_MINUTE,
            d.rate_limit_writes_per_minute.into(),
        ),
        number(
            &RATE_LIMIT_REFRESH_PER_MINUTE,
            d.rate_limit_refresh_per_minute.into(),
        ),
        number(&DATABASE_POOL_SIZE, d.database_pool_size.into()),
        number(
            &DATABASE_STATEMENT_TIMEOUT_SECONDS,
            d.database_statement_timeout.as_secs().into(),
        ),
        number(&REQUEST_TIMEOUT_SECONDS, d.request_timeout.as_secs().into()),
        text("REDIS_URL", "unset"),
        text("METRICS_ALLOWED_FROM", &list(&addresses)),
        text("TRUST_X_FORWARDED_FOR", &code(&d.trust_forwarded_for)),
        text("TIMELINE_FEEDS", &code(&d.timeline_feeds)),
        text("SMTP_URL", "unset"),
        text("MAIL_FROM", &code(&d.mail_from)),
        text("PUBLIC_URL", "unset"),
        text("VAPID_PRIVATE_KEY", "generated beside a SQLite database"),
        text("PUSH_CONTACT", &code(&d.push_contact)),
        text(
            "PUSH_ALLOW_PRIVATE_ENDPOINTS",
            &code(&d.push_allow_private_endpoints),
        ),
        text("RUST_LOG", &code(&crate::telemetry::DEFAULT_FILTER)),
        text("LOG_FORMAT", "text"),
    ]
}

/// A comma-separated list of addresses (`10.0.0.5`, `::1`) and CIDR ranges (`10.0.0.0/8`).
fn address_ranges(name: &'static str, raw: &str) -> Result<Vec<ipnet::IpNet>, SettingsError> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    SettingsError::new(
                        name,
                        format!("'{item}' is not an IP address or a CIDR range such as 10.0.0.0/8"),
                    )
                })
        })
        .collect()
}

/// Checks that `value` of the variable `name` parses as a URL with one of `schemes`. The value is
/// never quoted back: a database or Redis URL may carry a password.
fn check_url(name: &'static str, value: &str, schemes: &[&str]) -> Result<(), SettingsError> {
    let wanted = || {
        schemes
            .iter()
            .map(|scheme| format!("{scheme}:"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match url::Url::parse(value) {
        Ok(url) if schemes.contains(&url.scheme()) => Ok(()),
        Ok(_) => Err(SettingsError::new(
            name,
            format!("is not a URL of a kind the server knows ({})", wanted()),
        )),
        Err(err) => Err(SettingsError::new(
            name,
            format!(
                "is not a URL ({err}); it must start with one of {}",
                wanted()
            ),
        )),
    }
}

/// Checks that `entry` of `CORS_ALLOWED_ORIGINS` is an origin as a browser sends it
/// (`scheme://host[:port]`, lower case, no path, no `*`): one that is not would never match a
/// request, and every browser call from it would be refused without a word.
fn check_origin(entry: &str) -> Result<(), SettingsError> {
    let serialized = url::Url::parse(entry)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
        .map(|url| url.origin().ascii_serialization());
    match serialized {
        Some(origin) if origin == entry => Ok(()),
        Some(origin) => Err(SettingsError::new(
            "CORS_ALLOWED_ORIGINS",
            format!(
                "'{entry}' is not an origin as browsers send it: write '{origin}' (scheme://host[:port], no path)"
            ),
        )),
        None => Err(SettingsError::new(
            "CORS_ALLOWED_ORIGINS",
            format!(
                "'{entry}' is not an origin: each entry is scheme://host[:port] with http or https, such as https://app.example (no path, no '*')"
            ),
        )),
    }
}

/// A yes-or-no variable: `true`, `1` or `yes`; `false`, `0` or `no`; `default` when unset.
fn boolean(name: &'static str, raw: Option<String>, default: bool) -> Result<bool, SettingsError> {
    match raw.as_deref().map(str::trim) {
        None => Ok(default),
        Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(SettingsError::new(
            name,
            format!("'{other}' is not true or false"),
        )),
    }
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
    /// The result is validated.
    pub fn from_env() -> Result<Self, SettingsError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let seconds = |bounds: &Bounds, default: Duration| {
            bounds
                .read(var(bounds.name), default.as_secs())
                .map(Duration::from_secs)
        };
        let defaults = Settings::default();
        let settings = Settings {
            database_url: var("DATABASE_URL")
                .map(SecretString::from)
                .unwrap_or(defaults.database_url),
            database_read_url: var("DATABASE_READ_URL").map(SecretString::from),
            read_lag_budget: READ_LAG_BUDGET_MS
                .read(
                    var(READ_LAG_BUDGET_MS.name),
                    u64::try_from(defaults.read_lag_budget.as_millis()).unwrap_or(u64::MAX),
                )
                .map(Duration::from_millis)?,
            bind_addr: var("BIND_ADDR").unwrap_or(defaults.bind_addr),
            jwt_secret: var("JWT_SECRET").map(SecretString::from),
            jwt_ttl: seconds(&JWT_TTL_SECONDS, defaults.jwt_ttl)?,
            refresh_ttl: seconds(&REFRESH_TTL_SECONDS, defaults.refresh_ttl)?,
            refresh_reuse_grace: seconds(
                &REFRESH_REUSE_GRACE_SECONDS,
                defaults.refresh_reuse_grace,
            )?,
            cors_allowed_origins: var("CORS_ALLOWED_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or(defaults.cors_allowed_origins),
            admin_usernames: var("ADMIN_USERNAMES")
                .map(|v| {
                    v.split(',')
                        .map(|name| name.trim().to_owned())
                        .filter(|name| !name.is_empty())
                        .collect()
                })
                .unwrap_or(defaults.admin_usernames),
            rate_limit_auth_per_minute: RATE_LIMIT_AUTH_PER_MINUTE.read(
                var(RATE_LIMIT_AUTH_PER_MINUTE.name),
                defaults.rate_limit_auth_per_minute,
            )?,
            rate_limit_writes_per_minute: RATE_LIMIT_WRITES_PER_MINUTE.read(
                var(RATE_LIMIT_WRITES_PER_MINUTE.name),
                defaults.rate_limit_writes_per_minute,
            )?,
            rate_limit_refresh_per_minute: RATE_LIMIT_REFRESH_PER_MINUTE.read(
                var(RATE_LIMIT_REFRESH_PER_MINUTE.name),
                defaults.rate_limit_refresh_per_minute,
            )?,
            stream_max_connections: STREAM_MAX_CONNECTIONS.read(
                var(STREAM_MAX_CONNECTIONS.name),
                defaults.stream_max_connections,
            )?,
            stream_slow_client_timeout: defaults.stream_slow_client_timeout,
            suggestion_sample: defaults.suggestion_sample,
            archive_batch: defaults.archive_batch,
            database_pool_size: DATABASE_POOL_SIZE
                .read(var(DATABASE_POOL_SIZE.name), defaults.database_pool_size)?,
            database_statement_timeout: seconds(
                &DATABASE_STATEMENT_TIMEOUT_SECONDS,
                defaults.database_statement_timeout,
            )?,
            request_timeout: seconds(&REQUEST_TIMEOUT_SECONDS, defaults.request_timeout)?,
            trust_forwarded_for: boolean(
                "TRUST_X_FORWARDED_FOR",
                var("TRUST_X_FORWARDED_FOR"),
                defaults.trust_forwarded_for,
            )?,
            timeline_per_author_max_followees: defaults.timeline_per_author_max_followees,
            timeline_feeds: boolean(
                "TIMELINE_FEEDS",
                var("TIMELINE_FEEDS"),
                defaults.timeline_feeds,
            )?,
            timeline_feeds_worker: defaults.timeline_feeds_worker,
            redis_url: var("REDIS_URL").map(SecretString::from),
            redis_key_prefix: defaults.redis_key_prefix,
            metrics_allowed_from: match var("METRICS_ALLOWED_FROM") {
                Some(raw) => address_ranges("METRICS_ALLOWED_FROM", &raw)?,
                None => defaults.metrics_allowed_from,
            },
            smtp_url: var("SMTP_URL").map(SecretString::from),
            mail_from: var("MAIL_FROM")
                .map(|v| v.trim().to_owned())
                .unwrap_or(defaults.mail_from),
            public_url: var("PUBLIC_URL").map(|v| v.trim().trim_end_matches('/').to_owned()),
            outbox_retry_base: defaults.outbox_retry_base,
            outbox_poll: defaults.outbox_poll,
            vapid_private_key: var("VAPID_PRIVATE_KEY").map(SecretString::from),
            push_contact: var("PUSH_CONTACT")
                .map(|v| v.trim().to_owned())
                .unwrap_or(defaults.push_contact),
            push_allow_private_endpoints: boolean(
                "PUSH_ALLOW_PRIVATE_ENDPOINTS",
                var("PUSH_ALLOW_PRIVATE_ENDPOINTS"),
                defaults.push_allow_private_endpoints,
            )?,
        };
        settings.validate()?;
        Ok(settings)
    }

    /// Settings for a server on `database_url` with every other value at its default.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: SecretString::from(database_url.into()),
            ..Settings::default()
        }
    }

    /// Checks every value against its rule, naming the first variable that breaks one.
    pub fn validate(&self) -> Result<(), SettingsError> {
        JWT_TTL_SECONDS.check(self.jwt_ttl.as_secs())?;
        REFRESH_TTL_SECONDS.check(self.refresh_ttl.as_secs())?;
        REFRESH_REUSE_GRACE_SECONDS.check(self.refresh_reuse_grace.as_secs())?;
        RATE_LIMIT_AUTH_PER_MINUTE.check(self.rate_limit_auth_per_minute.into())?;
        RATE_LIMIT_WRITES_PER_MINUTE.check(self.rate_limit_writes_per_minute.into())?;
        RATE_LIMIT_REFRESH_PER_MINUTE.check(self.rate_limit_refresh_per_minute.into())?;
        DATABASE_POOL_SIZE.check(self.database_pool_size.into())?;
        STREAM_MAX_CONNECTIONS.check(self.stream_max_connections.into())?;
        DATABASE_STATEMENT_TIMEOUT_SECONDS.check(self.database_statement_timeout.as_secs())?;
        REQUEST_TIMEOUT_SECONDS.check(self.request_timeout.as_secs())?;
        READ_LAG_BUDGET_MS
            .check(u64::try_from(self.read_lag_budget.as_millis()).unwrap_or(u64::MAX))?;
        check_url(
            "DATABASE_URL",
            self.database_url.expose_secret(),
            &["sqlite", "postgres", "postgresql", "mysql"],
        )?;
        if let Some(read_url) = &self.database_read_url {
            check_url(
                "DATABASE_READ_URL",
                read_url.expose_secret(),
                &["postgres", "postgresql"],
            )?;
        }
        if let Some(redis_url) = &self.redis_url {
            check_url("REDIS_URL", redis_url.expose_secret(), &["redis", "rediss"])?;
        }
        for origin in &self.cors_allowed_origins {
            check_origin(origin)?;
        }
        if let Some(smtp_url) = &self.smtp_url {
            check_url("SMTP_URL", smtp_url.expose_secret(), &["smtp", "smtps"])?;
        }
        if let Some(public_url) = &self.public_url {
            check_url("PUBLIC_URL", public_url, &["http", "https"])?;
        }
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(SettingsError::new(
                "MAIL_FROM",
                format!(
                    "'{}' is not a mail address such as no-reply@example.com or 'Social <no-reply@example.com>'",
                    self.mail_from
                ),
            ));
        }
        let postgres =
            |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
        if let Some(read_url) = &self.database_read_url
            && !(postgres(read_url.expose_secret()) && postgres(self.database_url.expose_secret()))
        {
            return Err(SettingsError::new(
                "DATABASE_READ_URL",
                "reads on a standby need PostgreSQL: both it and DATABASE_URL must be postgres:// URLs",
            ));
        }
        match &self.jwt_secret {
            None if !self.is_sqlite() => {
                return Err(SettingsError::new(
                    "JWT_SECRET",
                    format!(
                        "must be set (at least {MIN_SECRET_BYTES} bytes) when DATABASE_URL is not SQLite"
                    ),
                ));
            }
            Some(secret) if secret.expose_secret().len() < MIN_SECRET_BYTES => {
                return Err(SettingsError::new(
                    "JWT_SECRET",
                    format!("must be at least {MIN_SECRET_BYTES} bytes long"),
                ));
            }
            _ => {}
        }
        match &self.vapid_private_key {
            None if !self.is_sqlite() => {
                return Err(SettingsError::new(
                    "VAPID_PRIVATE_KEY",
                    "must be set when DATABASE_URL is not SQLite: a P-256 private key, base64url \
                     (`social push-key` prints a new one)",
                ));
            }
            Some(key) => {
                crate::push::VapidKey::parse(key.expose_secret())
                    .map_err(|message| SettingsError::new("VAPID_PRIVATE_KEY", message))?;
            }
            None => {}
        }
        let contact = url::Url::parse(&self.push_contact).ok();
        if !contact.is_some_and(|url| matches!(url.scheme(), "mailto" | "https")) {
            return Err(SettingsError::new(
                "PUSH_CONTACT",
                format!(
                    "'{}' is not a mailto: or https: URL such as mailto:admin@example.com",
                    self.push_contact
                ),
            ));
        }
        Ok(())
    }

    /// The file of a SQLite URL (`None` for other databases and in-memory SQLite).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        sqlite_file(self.database_url.expose_secret())
    }

    /// Whether the URL names a SQLite database (file or memory).
    pub fn is_sqlite(&self) -> bool {
        self.database_url.expose_secret().starts_with("sqlite:")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::thousands;

    /// A valid `VAPID_PRIVATE_KEY` (32 bytes of 0x01).
    const VAPID: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";

    #[test]
    fn push_settings_that_cannot_work_are_refused_naming_the_variable() {
        let with = |database: &str, key: Option<&str>, contact: &str| Settings {
            database_url: database.into(),
            jwt_secret: Some("s".repeat(MIN_SECRET_BYTES).into()),
            vapid_private_key: key.map(SecretString::from),
            push_contact: contact.to_owned(),
            ..Settings::default()
        };
        let pg = "postgres://db/social";
        for (settings, name) in [
            (
                with(pg, None, "mailto:a@b.example"),
                "VAPID_PRIVATE_KEY: must be set",
            ),
            (
                with(pg, Some("short"), "mailto:a@b.example"),
                "VAPID_PRIVATE_KEY: ",
            ),
            (
                with(
                    DEFAULT_DATABASE_URL,
                    Some("not base64!"),
                    "mailto:a@b.example",
                ),
                "VAPID_PRIVATE_KEY: ",
            ),
            (with(pg, Some(VAPID), "admin@b.example"), "PUSH_CONTACT: "),
            (with(pg, Some(VAPID), "http://b.example"), "PUSH_CONTACT: "),
        ] {
            let err = settings.validate().unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
            assert!(!err.contains("not base64!"), "{err}");
        }
        with(pg, Some(VAPID), "https://b.example/contact")
            .validate()
            .unwrap();
        with(DEFAULT_DATABASE_URL, None, "mailto:admin@localhost")
            .validate()
            .unwrap();
        assert!(boolean("PUSH_ALLOW_PRIVATE_ENDPOINTS", Some(" yes ".into()), false).unwrap());
        assert!(boolean("PUSH_ALLOW_PRIVATE_ENDPOINTS", Some("maybe".into()), false).is_err());
    }

    #[test]
    fn numbers_outside_their_range_are_refused_naming_the_variable_and_the_range() {
        for (raw, ok) in [
            ("1", true),
            ("2592000", true),
            ("0", false),
            ("2592001", false),
            ("18446744073709551615", false),
            ("18446744073709551616", false),
            ("-5", false),
            ("ten", false),
        ] {
            let result = JWT_TTL_SECONDS.read(Some(raw.to_owned()), 5u64);
            match result {
                Ok(value) => assert!(ok, "{raw} was accepted as {value}"),
                Err(err) => {
                    assert!(!ok, "{raw} was refused: {err}");
                    assert_eq!(
                        err.to_string(),
                        format!(
                            "JWT_TTL_SECONDS: '{raw}' is not a whole number from 1 to 2592000 seconds"
                        )
                    );
                }
            }
        }
        assert_eq!(JWT_TTL_SECONDS.read(None, 5u64).unwrap(), 5);
    }

    #[test]
    fn metrics_addresses_are_addresses_or_ranges_and_anything_else_is_refused() {
        let ranges =
            address_ranges("METRICS_ALLOWED_FROM", " 10.0.0.0/8, ::1 ,192.168.1.7,").unwrap();
        let shown: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]);
        for bad in ["10.0.0.0/33", "localhost", "10.0.0", "*"] {
            let err = address_ranges("METRICS_ALLOWED_FROM", bad).unwrap_err();
            assert!(
                err.to_string().starts_with("METRICS_ALLOWED_FROM: '"),
                "{bad}: {err}"
            );
        }
        let defaults: Vec<String> = Settings::default()
            .metrics_allowed_from
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(defaults, ["127.0.0.0/8", "::1/128"]);
    }

    #[test]
    fn a_value_that_fits_the_range_but_not_the_field_is_refused() {
        let wide = Bounds {
            name: "WIDE",
            min: 0,
            max: u64::MAX,
            unit: "",
        };
        assert!(wide.read::<u32>(Some("4294967296".into()), 1).is_err());
        assert_eq!(
            wide.read::<u32>(Some("4294967295".into()), 1).unwrap(),
            u32::MAX
        );
    }

    #[test]
    fn the_defaults_are_valid_and_hand_built_settings_are_checked_too() {
        Settings::default().validate().unwrap();
        let settings = Settings {
            jwt_ttl: Duration::from_secs(u64::MAX),
            ..Settings::default()
        };
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.starts_with("JWT_TTL_SECONDS: "), "{err}");
        let settings = Settings {
            database_pool_size: 0,
            ..Settings::default()
        };
        let err = settings.validate().unwrap_err().to_string();
        assert!(err.starts_with("DATABASE_POOL_SIZE: "), "{err}");
    }

    #[test]
    fn the_readme_table_matches_the_settings() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Configuration\n")
            .nth(1)
            .expect("the README has a Configuration section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let rows: Vec<(String, String, String)> = section
            .lines()
            .filter_map(|line| {
                line.strip_prefix("| `")?
                    .strip_suffix(" |")
                    .map(str::to_owned)
            })
            .map(|row| {
                let cells: Vec<&str> = row.splitn(3, " | ").collect();
                assert_eq!(cells.len(), 3, "a row of three cells: {row}");
                let name = cells[0].strip_suffix('`').unwrap_or(cells[0]);
                (name.to_owned(), cells[1].to_owned(), cells[2].to_owned())
            })
            .collect();
        let documented = documented();

        // Every variable the code reads is in `documented` (so a new one cannot be forgotten).
        let code = include_str!("settings.rs");
        let code = code.split("#[cfg(test)]").next().unwrap_or(code);
        for opening in [
            "var(\"",
            "Bounds::count(\"",
            "Bounds::seconds(\"",
            "name: \"",
        ] {
            for read in code.split(opening).skip(1) {
                let name = read.split('"').next().unwrap_or_default();
                assert!(
                    documented.iter().any(|d| d.name == name),
                    "{name} is read by Settings but not documented"
                );
            }
        }

        // The table has exactly those rows, in any order, each once.
        let mut in_readme: Vec<&str> = rows.iter().map(|(name, _, _)| name.as_str()).collect();
        let mut expected: Vec<&str> = documented.iter().map(|d| d.name).collect();
        in_readme.sort_unstable();
        expected.sort_unstable();
        assert_eq!(in_readme, expected, "the README's variables");

        for (name, default, meaning) in &rows {
            let Some(want) = documented.iter().find(|d| d.name == name) else {
                continue;
            };
            assert_eq!(default, &want.default, "the README's default of {name}");
            if let Some((min, max)) = want.range {
                let range = format!("{} to {}", thousands(min), thousands(max));
                assert!(
                    meaning.contains(&range),
                    "the README should give {name}'s range as '{range}': {meaning}"
                );
            }
        }
    }

    #[test]
    fn debug_shows_neither_the_secret_nor_the_urls_that_may_carry_passwords() {
        let secrets = [
            "postgres://social:primary-password@db/social",
            "postgres://social:standby-password@standby/social",
            "a-token-secret-of-at-least-thirty-two-bytes",
            "redis://:redis-password@cache:6379",
            "smtps://mailer:smtp-password@mail.example:465",
            VAPID,
        ];
        let settings = Settings {
            database_url: secrets[0].into(),
            database_read_url: Some(secrets[1].into()),
            jwt_secret: Some(secrets[2].into()),
            redis_url: Some(secrets[3].into()),
            smtp_url: Some(secrets[4].into()),
            vapid_private_key: Some(secrets[5].into()),
            ..Settings::default()
        };
        settings.validate().unwrap();
        let shown = format!("{settings:?}");
        for secret in secrets {
            assert!(!shown.contains(secret), "{secret} is in {shown}");
        }
        for word in [
            "password",
            "thirty-two",
            "@db",
            "@standby",
            "@cache",
            "@mail",
        ] {
            assert!(!shown.contains(word), "{word} is in {shown}");
        }
        assert!(shown.contains("REDACTED"), "{shown}");
        assert!(shown.contains("bind_addr"), "{shown}");
    }

    #[test]
    fn mail_settings_that_cannot_work_are_refused_naming_the_variable() {
        let with = |smtp: Option<&str>, public: Option<&str>, from: &str| Settings {
            smtp_url: smtp.map(SecretString::from),
            public_url: public.map(str::to_owned),
            mail_from: from.to_owned(),
            ..Settings::default()
        };
        for (settings, name) in [
            (
                with(Some("http://mail.example"), None, "a@b.example"),
                "SMTP_URL: ",
            ),
            (
                with(Some("mail.example:25"), None, "a@b.example"),
                "SMTP_URL: ",
            ),
            (
                with(None, Some("ftp://app.example"), "a@b.example"),
                "PUBLIC_URL: ",
            ),
            (with(None, None, "no address"), "MAIL_FROM: "),
        ] {
            let err = settings.validate().unwrap_err().to_string();
            assert!(err.starts_with(name), "{err}");
            assert!(!err.contains("mail.example:25"), "{err}");
        }
        with(
            Some("smtps://user:password@mail.example:465"),
            Some("https://app.example"),
            "Social <no-reply@app.example>",
        )
        .validate()
        .unwrap();
    }

    #[test]
    fn a_read_url_needs_postgresql_on_both_sides() {
        let secret = Some(SecretString::from("s".repeat(MIN_SECRET_BYTES)));
        let with = |primary: &str, read: &str| Settings {
            database_url: primary.into(),
            database_read_url: Some(read.into()),
            jwt_secret: secret.clone(),
            vapid_private_key: Some(VAPID.into()),
            ..Settings::default()
        };
        with("postgres://db/social", "postgres://standby/social")
            .validate()
            .unwrap();
        with("postgresql://db/social", "postgresql://standby/social")
            .validate()
            .unwrap();
        for (primary, read) in [
            ("mysql://db/social", "mysql://standby/social"),
            ("postgres://db/social", "mysql://standby/social"),
            (DEFAULT_DATABASE_URL, "postgres://standby/social"),
        ] {
            let err = with(primary, read).validate().unwrap_err().to_string();
            assert!(err.starts_with("DATABASE_READ_URL: "), "{err}");
        }
        let settings = Settings {
            read_lag_budget: Duration::ZERO,
            ..Settings::default()
        };
        let err = settings.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "READ_LAG_BUDGET_MS: '0' is not a whole number from 1 to 600000 milliseconds"
        );
    }
}
