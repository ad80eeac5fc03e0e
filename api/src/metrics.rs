//! `GET /metrics`: what this process is doing, in Prometheus' text format (the `prometheus`
//! crate's registry and encoder), readable only from `METRICS_ALLOWED_FROM` (loopback by
//! default); anyone else gets the 404 of an unknown route.
//!
//! The counters are the process's (one registry per process, as a scraper expects of one
//! target): requests by method, route pattern (never the raw path, so a million usernames stay
//! one series) and status; request latency histograms by method and route; open event streams;
//! the database pool's connections in use and idle, and its maximum; transactions retried after a
//! conflict; requests refused by a rate limit, by quota; with a read standby, whether it takes
//! reads, its lag and the reads that fell back to the primary.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use ipnet::IpNet;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::error::ApiError;
use crate::startup::AppState;

/// This process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    transaction_retries: IntCounter,
    rate_limited: IntCounterVec,
}

/// The metrics of this process, from the first server's start ([`init`]).
static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Sets up this process's metrics, once.
pub fn init() -> Result<(), prometheus::Error> {
    if METRICS.get().is_none() {
        // Two servers starting at once in one process (tests) may both build one; one is kept.
        let _ = METRICS.set(Metrics::new()?);
    }
    Ok(())
}

/// Counts a write transaction run again after losing a conflict (`db::write`).
pub fn count_retry() {
    if let Some(metrics) = METRICS.get() {
        metrics.transaction_retries.inc();
    }
}

/// Counts a request refused with 429 by the rate limit `quota` (`rate_limit`).
pub fn count_rate_limited(quota: &str) {
    if let Some(metrics) = METRICS.get() {
        metrics.rate_limited.with_label_values(&[quota]).inc();
    }
}

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route pattern and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's arrival to its response's head, by route pattern",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        let transaction_retries = IntCounter::new(
            "db_transaction_retries_total",
            "Write transactions run again after a conflict with a concurrent one",
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "rate_limited_requests_total",
                "Requests refused with 429 by a rate limit, by quota (auth, writes)",
            ),
            &["quota"],
        )?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(transaction_retries.clone()),
            Box::new(rate_limited.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
            transaction_retries,
            rate_limited,
        })
    }
}

/// The middleware that counts and times every request by its route pattern.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_owned());
    let response = next.call(req).await;
    let Some(metrics) = METRICS.get() else {
        return response;
    };
    let status = match &response {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    metrics
        .requests
        .with_label_values(&[method.as_str(), route.as_str(), status.as_str()])
        .inc();
    metrics
        .latency
        .with_label_values(&[method.as_str(), route.as_str()])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Whether `ip` may read the metrics.
pub fn allowed(allowed_from: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    allowed_from.iter().any(|net| net.contains(&ip))
}

/// The metrics, in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format (version 0.0.4): `http_requests_total`, `http_request_duration_seconds`, `event_streams_open`, `db_pool_connections`, `db_pool_max_connections`, `db_transaction_retries_total`, `rate_limited_requests_total`; with `DATABASE_READ_URL` also `db_read_standby_in_rotation`, `db_read_standby_lag_seconds`, `db_read_standby_fallbacks_total`", content_type = "text/plain", body = String),
        (status = 404, description = "`not_found`: the caller's address is not in `METRICS_ALLOWED_FROM`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permitted = req
        .peer_addr()
        .is_some_and(|peer| allowed(&state.metrics_allowed_from, peer.ip()));
    let Some(metrics) = METRICS.get().filter(|_| permitted) else {
        return Err(ApiError::NotFound(req.path().to_owned()));
    };
    let mut families = metrics.registry.gather();
    families.extend(current_state(&state).map_err(ApiError::internal)?);
    let mut body = Vec::new();
    let encoder = TextEncoder::new();
    encoder
        .encode(&families, &mut body)
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type(encoder.format_type())
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(body))
}

/// The gauges read at the scrape from this server's own state (its streams, its pool), in a
/// registry of the scrape's own: nothing shared, so servers sharing one process (the tests) each
/// report their own.
fn current_state(
    state: &AppState,
) -> Result<Vec<prometheus::proto::MetricFamily>, prometheus::Error> {
    let registry = Registry::new();
    let streams_open = IntGauge::new("event_streams_open", "Event streams open in this process")?;
    streams_open.set(i64::try_from(state.hub.open_streams()).unwrap_or(i64::MAX));
    registry.register(Box::new(streams_open))?;
    if let Some((size, idle, max)) = pool_state(&state.db) {
        let connections = IntGaugeVec::new(
            Opts::new(
                "db_pool_connections",
                "Database connections of this process's pool, by state (in_use, idle)",
            ),
            &["state"],
        )?;
        connections
            .with_label_values(&["in_use"])
            .set(size.saturating_sub(idle));
        connections.with_label_values(&["idle"]).set(idle);
        registry.register(Box::new(connections))?;
        let most = IntGauge::new(
            "db_pool_max_connections",
            "The most connections the pool opens (DATABASE_POOL_SIZE); in_use at this is requests waiting",
        )?;
        most.set(max);
        registry.register(Box::new(most))?;
    }
    if let Some(standby) = &state.standby {
        let in_rotation = IntGauge::new(
            "db_read_standby_in_rotation",
            "1 while reads may go to the standby of DATABASE_READ_URL, 0 while they go to the primary",
        )?;
        in_rotation.set(i64::from(standby.in_rotation()));
        registry.register(Box::new(in_rotation))?;
        if let Some(lag) = standby.lag() {
            let lag_seconds = prometheus::Gauge::new(
                "db_read_standby_lag_seconds",
                "How far the standby's replay was behind the primary at the last check",
            )?;
            lag_seconds.set(lag.as_secs_f64());
            registry.register(Box::new(lag_seconds))?;
        }
        let fallbacks = IntCounter::new(
            "db_read_standby_fallbacks_total",
            "Reads that failed on the standby and were answered from the primary",
        )?;
        fallbacks.inc_by(standby.fallbacks());
        registry.register(Box::new(fallbacks))?;
    }
    Ok(registry.gather())
}

/// The pool's open connections, idle ones and maximum.
fn pool_state(db: &sea_orm::DatabaseConnection) -> Option<(i64, i64, i64)> {
    fn of<DB: sea_orm::sqlx::Database>(pool: &sea_orm::sqlx::Pool<DB>) -> (i64, i64, i64) {
        (
            i64::from(pool.size()),
            i64::try_from(pool.num_idle()).unwrap_or(i64::MAX),
            i64::from(pool.options().get_max_connections()),
        )
    }
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => Some(of(db.get_postgres_connection_pool())),
        sea_orm::DbBackend::MySql => Some(of(db.get_mysql_connection_pool())),
        sea_orm::DbBackend::Sqlite => Some(of(db.get_sqlite_connection_pool())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_allowed_by_range_and_mapped_addresses_count_as_their_ipv4() {
        let allowed_from: Vec<IpNet> = vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
        ];
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.1.255.3",
            "::ffff:127.0.0.1",
        ] {
            assert!(allowed(&allowed_from, ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.2.0.1", "192.168.1.1", "::2", "::ffff:10.2.0.1"] {
            assert!(!allowed(&allowed_from, ip.parse().unwrap()), "{ip}");
        }
    }
}
