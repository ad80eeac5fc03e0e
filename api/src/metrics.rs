//! What this process is doing, for `GET /metrics` ([`crate::routes::metrics`]), in the
//! `prometheus` crate's registry: the request middleware ([`record`]) and the counters the rest of
//! the server bumps ([`count_retry`], [`count_rate_limited`]).
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
use ipnet::IpNet;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// This process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    transaction_retries: IntCounter,
    rate_limited: IntCounterVec,
    outbox: IntCounterVec,
    outbox_depth: IntGaugeVec,
    pushes: IntCounterVec,
    push_failures: IntCounterVec,
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

/// Counts an outbox row by its kind and what became of it: `sent`, `retried` or `given_up`
/// (`crate::mail`).
pub fn count_outbox(kind: &str, outcome: &str) {
    if let Some(metrics) = METRICS.get() {
        metrics.outbox.with_label_values(&[kind, outcome]).inc();
    }
}

/// Counts a push by what became of it: `sent`, `retried` or `subscription_removed`
/// (`crate::outbox_worker`).
pub fn count_push(outcome: &str) {
    if let Some(metrics) = METRICS.get() {
        metrics.pushes.with_label_values(&[outcome]).inc();
    }
}

/// Counts a failed push attempt by its cause (`rate_limited`, `server_error`, `timeout`,
/// `connection`, `client_error`, `redirect`, `private_address`, `bad_keys`, ...).
pub fn count_push_failed(cause: &str) {
    if let Some(metrics) = METRICS.get() {
        metrics.push_failures.with_label_values(&[cause]).inc();
    }
}

/// Sets the outbox's depth, by kind, as last counted; a kind that is not named has none.
pub fn set_outbox_depth(depth: &[(String, i64)]) {
    if let Some(metrics) = METRICS.get() {
        metrics.outbox_depth.reset();
        for (kind, rows) in depth {
            metrics.outbox_depth.with_label_values(&[kind]).set(*rows);
        }
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
        let outbox = IntCounterVec::new(
            Opts::new(
                "outbox_messages_total",
                "Outbox rows (mail, push) handled by this process's worker, by kind and outcome (sent, retried, dropped, given_up)",
            ),
            &["kind", "outcome"],
        )?;
        let outbox_depth = IntGaugeVec::new(
            Opts::new(
                "outbox_depth",
                "Rows waiting in the outbox (due, being sent, or waiting for a retry), by kind, as this process's worker last counted them",
            ),
            &["kind"],
        )?;
        let pushes = IntCounterVec::new(
            Opts::new(
                "push_messages_total",
                "Web Push messages handled by this process's worker, by outcome (sent, retried, subscription_removed)",
            ),
            &["outcome"],
        )?;
        let push_failures = IntCounterVec::new(
            Opts::new(
                "push_failures_total",
                "Failed Web Push attempts, by cause (rate_limited, server_error, timeout, connection, client_error, redirect, private_address, bad_keys, ...)",
            ),
            &["cause"],
        )?;
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(transaction_retries.clone()),
            Box::new(rate_limited.clone()),
            Box::new(outbox.clone()),
            Box::new(outbox_depth.clone()),
            Box::new(pushes.clone()),
            Box::new(push_failures.clone()),
        ] {
            registry.register(collector)?;
        }
        Ok(Metrics {
            registry,
            requests,
            latency,
            transaction_retries,
            rate_limited,
            outbox,
            outbox_depth,
            pushes,
            push_failures,
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

/// This process's counters and histograms, gathered for a scrape; `None` before [`init`].
pub fn gather() -> Option<Vec<prometheus::proto::MetricFamily>> {
    METRICS.get().map(|metrics| metrics.registry.gather())
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
