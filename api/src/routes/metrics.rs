//! `GET /metrics`: what this process is doing, in Prometheus' text format, readable only from
//! `METRICS_ALLOWED_FROM` (loopback by default); anyone else gets the 404 of an unknown route.
//! The registry and its counters are [`crate::metrics`]'; the gauges of this server's own state
//! (its streams, its pool, its standby) are read here, at the scrape.

use actix_web::{HttpRequest, HttpResponse, web};
use prometheus::{Encoder, IntCounter, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// The metrics, in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text format (version 0.0.4): `http_requests_total`, `http_request_duration_seconds`, `event_streams_open`, `sessions_in_memory`, `sessions_in_memory_trusted`, `db_pool_connections`, `db_pool_max_connections`, `db_transaction_retries_total`, `rate_limited_requests_total`; with `DATABASE_READ_URL` also `db_read_standby_in_rotation`, `db_read_standby_lag_seconds`, `db_read_standby_fallbacks_total`", content_type = "text/plain", body = String),
        (status = 404, description = "`not_found`: the caller's address is not in `METRICS_ALLOWED_FROM`", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let permitted = req
        .peer_addr()
        .is_some_and(|peer| metrics::allowed(&state.metrics_allowed_from, peer.ip()));
    let Some(mut families) = metrics::gather().filter(|_| permitted) else {
        return Err(ApiError::NotFound(req.path().to_owned()));
    };
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
    let sessions = state.hub.sessions();
    let kept = IntGauge::new(
        "sessions_in_memory",
        "Sessions this process's view of live sessions holds (checked without a query)",
    )?;
    kept.set(i64::try_from(sessions.len()).unwrap_or(i64::MAX));
    registry.register(Box::new(kept))?;
    let trusted = IntGauge::new(
        "sessions_in_memory_trusted",
        "1 while the view of live sessions is used, 0 while every request reads its session from the database (the event bus is not heard, or MySQL/MariaDB)",
    )?;
    trusted.set(i64::from(sessions.trusted()));
    registry.register(Box::new(trusted))?;
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
