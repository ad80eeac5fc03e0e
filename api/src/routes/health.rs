//! Liveness and readiness probes.

use actix_web::{HttpResponse, web};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

/// The process answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process answers and so does its database.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ok` (otherwise the answer is a 503 problem).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Always `ok` (otherwise the answer is a 503 problem).
    #[schema(example = "ok")]
    pub database: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", operation_id = "health",
    responses((status = 200, description = "The process is alive", body = Health)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/health/ready", tag = "operations", operation_id = "ready",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "`service_unavailable`: the database does not answer"),
    ))]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ping = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        state.db.execute_unprepared("SELECT 1"),
    )
    .await;
    match ping {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(Readiness {
            status: "ok",
            database: "ok",
        })),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::Unavailable("the database does not answer"))
        }
        Err(_) => {
            tracing::warn!("readiness check timed out");
            Err(ApiError::Unavailable("the database does not answer"))
        }
    }
}
