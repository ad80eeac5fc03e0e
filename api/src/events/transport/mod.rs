//! How events reach every process's [`Hub`], by backend: chosen once, at start-up, as a
//! [`Transport`] ([`Transport::of`]), which the rest consults: [`crate::events::emit`] (send at
//! commit or keep for the request's end), the post's deletion (record it for other processes or
//! not), [`Hub::publish`] (what the poller has to find), the poller (what it reads) and
//! [`Transport::spawn`] (which tasks run).

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbBackend};

use super::Hub;

pub mod notify;
pub mod poll;

/// How events travel between the writes and the streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// PostgreSQL: every event is sent with `pg_notify` inside its writing transaction, and every
    /// process LISTENs ([`notify::listen_postgres`]).
    Notify,
    /// No notification channel: a request's events go to its own process's hub after they
    /// commit, and a poller finds the posts by position ([`poll::poll_for_posts`]). With
    /// `other_processes` (MySQL/MariaDB, where other processes write to the same database) it
    /// also finds their notifications and deleted posts (recorded in `post_deletions` by the
    /// deletion), and [`poll::sweep`] ends the streams of sessions ended elsewhere; without it
    /// (SQLite) the process is alone with its database.
    Poll { other_processes: bool },
}

impl Transport {
    /// The transport of `backend`: the one place a backend is mapped to how events travel.
    pub fn of(backend: DbBackend) -> Self {
        match backend {
            DbBackend::Postgres => Transport::Notify,
            DbBackend::MySql => Transport::Poll {
                other_processes: true,
            },
            // SQLite.
            _ => Transport::Poll {
                other_processes: false,
            },
        }
    }

    /// Whether events are sent with the transaction's commit ([`notify::send`]) rather than kept
    /// for the request's end ([`crate::events::collect`]).
    pub fn sends_at_commit(self) -> bool {
        self == Transport::Notify
    }

    /// Whether the poller also reads what other processes wrote (their notifications and
    /// deletions), and [`poll::sweep`] runs.
    pub fn polls_other_processes(self) -> bool {
        self == Transport::Poll {
            other_processes: true,
        }
    }

    /// Whether a deleted post is written to `post_deletions` ([`crate::services::posts::delete`]),
    /// for every process's poller to find: where the poller reads other processes' writes.
    pub fn records_deletions(self) -> bool {
        self.polls_other_processes()
    }

    /// Starts the tasks that bring events to `hub` for as long as the process runs: the listener,
    /// or the poller (and, where other processes write too, the sweep).
    pub fn spawn(self, hub: &Arc<Hub>, db: &DatabaseConnection, database_url: &str) {
        match self {
            Transport::Notify => {
                tokio::spawn(notify::listen_postgres(
                    hub.clone(),
                    database_url.to_owned(),
                ));
            }
            Transport::Poll { .. } => {
                tokio::spawn(poll::poll_for_posts(hub.clone(), db.clone()));
                if self.polls_other_processes() {
                    tokio::spawn(poll::sweep(hub.clone(), db.clone()));
                }
            }
        }
    }
}
