//! The transports that bring events to every process's [`Hub`]: PostgreSQL's LISTEN
//! ([`notify`]) and the poller ([`poll`]), started by [`spawn`] for the backend's [`Transport`].
//! The value itself lives in [`crate::events`], below the services that consult it, while these
//! tasks read through services.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use super::{Hub, Transport};

pub mod notify;
pub mod poll;

/// Starts the tasks that bring events to `hub` for as long as the process runs: the listener,
/// or the poller (and, where other processes write too, the sweep). Returns, for the listener,
/// what tells once it listens: a process should not serve streams before, or it would miss the
/// events of the writes in between (a logout's among them).
pub fn spawn(
    transport: Transport,
    hub: &Arc<Hub>,
    db: &DatabaseConnection,
    database_url: &str,
) -> Option<tokio::sync::oneshot::Receiver<()>> {
    match transport {
        Transport::Notify => {
            let (listening, listens) = tokio::sync::oneshot::channel();
            tokio::spawn(notify::listen_postgres(
                hub.clone(),
                database_url.to_owned(),
                listening,
            ));
            // Posts and reposts are found by position on every backend.
            tokio::spawn(poll::poll_for_posts(hub.clone(), db.clone()));
            Some(listens)
        }
        Transport::Poll { .. } => {
            tokio::spawn(poll::poll_for_posts(hub.clone(), db.clone()));
            if transport.polls_other_processes() {
                tokio::spawn(poll::sweep(hub.clone(), db.clone()));
            }
            None
        }
    }
}
