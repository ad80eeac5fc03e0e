//! PostgreSQL's LISTEN/NOTIFY: each event is sent with `pg_notify` inside its writing
//! transaction ([`send`]), so at commit and in commit order, to every process, each of which
//! relays them to its hub ([`listen_postgres`]).

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::error::ApiError;
use crate::events::{Event, Hub};

/// The PostgreSQL channel the events travel on.
const CHANNEL: &str = "social_events";

/// Sends `event` on the channel (`CHANNEL`) with the commit of `txn` (and not at all on rollback).
pub async fn send(txn: &DatabaseTransaction, event: &Event) -> Result<(), ApiError> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), event.encode().into()],
    ))
    .await?;
    Ok(())
}

/// PostgreSQL: relays the events every process sends on [`CHANNEL`] to `hub`, for as long as the
/// process runs, on a connection of its own (reconnecting as needed).
pub async fn listen_postgres(hub: Arc<Hub>, database_url: String) {
    use sea_orm::sqlx::postgres::PgListener;
    let mut listener = loop {
        match PgListener::connect(&database_url).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => break listener,
                Err(err) => tracing::warn!(error = %err, "cannot LISTEN for stream events"),
            },
            Err(err) => tracing::warn!(error = %err, "cannot connect to LISTEN for stream events"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match Event::decode(notification.payload()) {
                Some(event) => hub.enqueue(event),
                None => tracing::warn!("an event on the stream channel that is not one of ours"),
            },
            // The connection was lost and is being re-established: anything may have been missed.
            Ok(None) => hub.wake_all(),
            Err(err) => {
                tracing::warn!(error = %err, "lost the stream events' LISTEN connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                hub.wake_all();
            }
        }
    }
}
