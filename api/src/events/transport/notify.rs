//! PostgreSQL's LISTEN/NOTIFY: each event but posts and reposts (which the poller finds by
//! position) is sent with `pg_notify` inside its writing transaction ([`crate::events::emit`]),
//! so at commit and in commit order, to every process, each of which relays them to its hub
//! ([`listen_postgres`]).

use std::sync::Arc;
use std::time::Duration;

use crate::events::{CHANNEL, Event, Hub};

/// PostgreSQL: relays the events every process sends on [`CHANNEL`] to `hub`, for as long as the
/// process runs, on a connection of its own (reconnecting as needed).
/// `listening` is told once the first LISTEN is in place.
pub async fn listen_postgres(
    hub: Arc<Hub>,
    database_url: String,
    listening: tokio::sync::oneshot::Sender<()>,
) {
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
    let _ = listening.send(());
    // A lost connection is reported at once (and connected again below): the view of live
    // sessions must stop trusting the bus before the reconnection, not after it.
    listener.eager_reconnect(false);
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => match Event::decode(notification.payload()) {
                Some(event) => hub.heard(event),
                None => tracing::warn!("an event on the stream channel that is not one of ours"),
            },
            // The connection was lost: anything may have been missed.
            Ok(None) => {
                // At once: endings of sessions may be missed until it listens again.
                hub.sessions().bus_lost();
                // Listening again before the streams read for themselves, so that nothing written
                // after their reads is missed.
                if let Err(err) = sea_orm::sqlx::query("SELECT 1")
                    .execute(&mut listener)
                    .await
                {
                    tracing::warn!(error = %err, "cannot LISTEN again for stream events");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                hub.listener_lost();
            }
            Err(err) => {
                // At once: endings of sessions may be missed from now on.
                hub.sessions().bus_lost();
                tracing::warn!(error = %err, "lost the stream events' LISTEN connection");
                tokio::time::sleep(Duration::from_secs(1)).await;
                hub.listener_lost();
            }
        }
    }
}
