//! Live events for the event stream (`GET /stream`).
//!
//! A write records an [`Event`] with [`emit`] inside its transaction: a post written or deleted,
//! a notification for a recipient, an account or a session ended. Each process's [`Hub`] hands
//! the events to the open streams they concern, **in the order the writes committed**, after
//! making each ready once for all of them ([`Hub::deliver_in_order`]): a new post is read once,
//! with the relationship of every connected reader to its author in one query
//! (`relationships::viewers_of`, the viewer state's own function), and given to the streams of
//! those on whose timeline it belongs (`timeline::shows`); so a post's delivery to a thousand
//! streams costs two queries, not a thousand timeline reads. Posts and reposts arrive in their
//! positions' order, found by the poller at or below the posts' horizon
//! ([`crate::services::clock`]), where nothing can land behind them later; so a stream shows each
//! one it is given that lies past its cursor, and keeps the lists' no-skip promise without reading.
//!
//! Whenever that order may have been broken (a lost listener connection, a failed read, a queue
//! or an inbox that overflowed) the streams concerned are told to read their timelines for
//! themselves from their cursors ([`Look`]), with the lists' own `newer_than` queries, as they do
//! when they open or replay. Notifications are always read by the stream itself (they are few).
//!
//! How events travel is the backend's [`Transport`], chosen once at start-up
//! ([`Transport::of`]):
//! - **PostgreSQL** ([`Transport::Notify`]): `pg_notify` inside the writing transaction, so it is
//!   sent at commit (and not at all on rollback), in commit order, to every API process sharing
//!   the database, this one included; each process LISTENs on one connection of its own
//!   ([`transport::notify::listen_postgres`]). Except posts and reposts
//!   ([`Event::found_by_position`]): the poller finds those by position, as below.
//! - **MySQL/MariaDB** (no notification channel) and **SQLite** ([`Transport::Poll`]): a
//!   request's events are handed to its process's hub after they commit, except posts: requests
//!   finish in any order, so posts are found by a poller that reads them by position
//!   ([`transport::poll::poll_for_posts`]), at once when this process wrote one and every
//!   [`POLL_INTERVAL`] for other processes' (one index-range query per look while any stream is
//!   open, none otherwise). On MySQL/MariaDB it also reads other processes' notifications and
//!   deleted posts (`post_deletions`, written with the deletion; this process's own deletions are
//!   found the same way, so none is announced twice), and [`transport::poll::sweep`] ends the
//!   streams of sessions ended elsewhere.
//!
//! The events that end sessions also keep each process's view of live sessions right
//! ([`live_sessions`]): the process that commits one forgets them before its request answers,
//! whatever the transport, and the others as the event arrives.
//!
//! This file holds the events and the per-transaction buffer, which the services' writes use; it
//! reads nothing. The rest ([`hub`], delivery, [`transport`]) runs after the commits and reads
//! through the services.

use std::cell::RefCell;
use std::sync::Arc;

use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, Statement};

use crate::error::ApiError;

mod deliver;
pub mod hub;
pub mod live_sessions;
pub mod transport;

pub use hub::{Hub, Inbox, LEASE_TTL, Look, Refusal, Registration, Slot};
pub use live_sessions::LiveSessions;
pub use transport::poll::{DELETIONS_KEPT, POLL_INTERVAL};

/// Something happened that some open streams should look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `author` wrote the post `post`: the author's and their followers' timelines have something
    /// new.
    Posted { author: i64, post: i64 },
    /// `reposter` reposted the post `post`: the reposter's and their followers' timelines may have
    /// a new newest entry for it.
    Reposted { reposter: i64, post: i64 },
    /// `author`'s post `post` is gone.
    Deleted { author: i64, post: i64 },
    /// `recipient` has a new notification.
    Notified { recipient: i64 },
    /// `user`'s account was suspended or removed: their streams end.
    Ended { user: i64 },
    /// The session `session` ended (logout, deletion, password change, a reused refresh token):
    /// the streams it opened end.
    SessionEnded { session: String },
    /// `user` moved a marker from session `session`: the user's other streams send the markers.
    Marked { user: i64, session: String },
    /// Nothing happened: sent on the bus by a process whose view of live sessions waits to hear
    /// it ([`probe`]), so that it knows it listens again.
    Probe,
}

impl Event {
    /// Whether the poller finds the event's entry by its position, on every backend
    /// ([`transport::poll::poll_for_posts`]): posts and reposts, which show only once the posts'
    /// horizon passes them ([`crate::services::clock`]), so their commit order is not their
    /// order. The write's own process looks at once after the request; others within
    /// [`POLL_INTERVAL`]. (On PostgreSQL a `pg_notify` in every post's transaction would also
    /// serialize their commits: NOTIFY holds one lock across the database while it commits.)
    pub fn found_by_position(&self) -> bool {
        matches!(self, Event::Posted { .. } | Event::Reposted { .. })
    }

    fn encode(&self) -> String {
        match self {
            Event::Posted { author, post } => format!("p {author} {post}"),
            Event::Reposted { reposter, post } => format!("r {reposter} {post}"),
            Event::Deleted { author, post } => format!("d {author} {post}"),
            Event::Notified { recipient } => format!("n {recipient}"),
            Event::Ended { user } => format!("e {user}"),
            Event::SessionEnded { session } => format!("s {session}"),
            Event::Marked { user, session } => format!("m {user} {session}"),
            Event::Probe => "k".to_owned(),
        }
    }

    /// Whether the event ends sessions ([`LiveSessions::forget`]): the process that commits it
    /// forgets them before its request answers, on every transport.
    fn ends_sessions(&self) -> bool {
        matches!(self, Event::SessionEnded { .. } | Event::Ended { .. })
    }

    fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.split(' ');
        let kind = parts.next()?;
        if kind == "k" {
            return parts.next().is_none().then_some(Event::Probe);
        }
        if kind == "s" {
            let session = parts.next().filter(|s| !s.is_empty())?.to_owned();
            return parts
                .next()
                .is_none()
                .then_some(Event::SessionEnded { session });
        }
        let first = parts.next()?.parse().ok()?;
        let event = match kind {
            "p" => Event::Posted {
                author: first,
                post: parts.next()?.parse().ok()?,
            },
            "r" => Event::Reposted {
                reposter: first,
                post: parts.next()?.parse().ok()?,
            },
            "d" => Event::Deleted {
                author: first,
                post: parts.next()?.parse().ok()?,
            },
            "n" => Event::Notified { recipient: first },
            "e" => Event::Ended { user: first },
            "m" => Event::Marked {
                user: first,
                session: parts.next().filter(|s| !s.is_empty())?.to_owned(),
            },
            _ => return None,
        };
        parts.next().is_none().then_some(event)
    }
}

/// How events travel between the writes and the streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// PostgreSQL: every event is sent with `pg_notify` inside its writing transaction, and every
    /// process LISTENs ([`transport::notify::listen_postgres`]).
    Notify,
    /// No notification channel: a request's events go to its own process's hub after they
    /// commit, and a poller finds the posts by position ([`transport::poll::poll_for_posts`]). With
    /// `other_processes` (MySQL/MariaDB, where other processes write to the same database) it
    /// also finds their notifications and deleted posts (recorded in `post_deletions` by the
    /// deletion), and [`transport::poll::sweep`] ends the streams of sessions ended elsewhere; without it
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

    /// Whether events are sent with the transaction's commit ([`send_at_commit`]) rather than kept
    /// for the request's end ([`crate::events::collect`]).
    pub fn sends_at_commit(self) -> bool {
        self == Transport::Notify
    }

    /// Whether the poller also reads what other processes wrote (their notifications and
    /// deletions), and [`transport::poll::sweep`] runs.
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
}

/// The PostgreSQL channel the events travel on.
pub(crate) const CHANNEL: &str = "social_events";

/// Sends `event` on the channel (`CHANNEL`) with the commit of `txn` (and not at all on rollback).
async fn send_at_commit(txn: &DatabaseTransaction, event: &Event) -> Result<(), ApiError> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [CHANNEL.into(), event.encode().into()],
    ))
    .await?;
    Ok(())
}

tokio::task_local! {
    /// The events of the current request's committed writes, handed to the hub when the request
    /// ends (`startup`'s `publish_events` middleware). On PostgreSQL only posts, reposts and the
    /// events that end sessions (for this process's view of live sessions).
    static COMMITTED: RefCell<Vec<Event>>;
    /// The events of the transaction attempt in progress (`db::write`).
    static ATTEMPT: RefCell<Vec<Event>>;
    /// The current request's hub, whose view of live sessions a write's endings leave at once
    /// ([`forget_ended_sessions`]).
    static HUB: Arc<Hub>;
}

/// Step of `db::write`, right before its commit: this process's view of live sessions forgets
/// the sessions that the attempt ends, and [`attempt`] forgets them again right after the commit
/// (a request that filled the view in between read them live). So from the commit on, no request
/// of this process finds them in the view, rather than from the request's end.
pub fn forget_ended_sessions() {
    let _ = ATTEMPT.try_with(|pending| forget_in_view(&pending.borrow()));
}

fn forget_in_view(events: &[Event]) {
    let _ = HUB.try_with(|hub| {
        for event in events.iter().filter(|event| event.ends_sessions()) {
            hub.sessions().forget(event);
        }
    });
}

/// Step: records `event`, to be delivered once the transaction commits: sent with the commit
/// where the [`Transport`] sends events itself ([`Transport::sends_at_commit`]), kept for the
/// request's end otherwise. (Where the transport records deletions for other processes
/// ([`Transport::records_deletions`]), the post's deletion writes its row itself.)
pub async fn emit(txn: &DatabaseTransaction, event: Event) -> Result<(), ApiError> {
    let transport = Transport::of(txn.get_database_backend());
    if transport.sends_at_commit() && !event.found_by_position() {
        send_at_commit(txn, &event).await?;
        // The bus brings it back to this process too, but maybe after the request answered: the
        // sessions it ends are forgotten here before that ([`Hub::publish`]).
        if !event.ends_sessions() {
            return Ok(());
        }
    }
    let _ = ATTEMPT.try_with(|pending| pending.borrow_mut().push(event));
    Ok(())
}

/// Runs one transaction attempt of `db::write`, collecting the events its steps emit; `commit`
/// says whether it committed, and only then do the events go on to the request's list.
pub async fn attempt<T>(run: impl Future<Output = Result<T, ApiError>>) -> Result<T, ApiError> {
    let (out, events) = ATTEMPT
        .scope(RefCell::new(Vec::new()), async {
            let out = run.await;
            (out, ATTEMPT.with(|pending| pending.take()))
        })
        .await;
    if out.is_ok() && !events.is_empty() {
        forget_in_view(&events);
        let _ = COMMITTED.try_with(|committed| committed.borrow_mut().extend(events));
    }
    out
}

/// Runs a request, then hands the events of its committed writes to `hub`.
pub async fn collect<T>(hub: &Arc<Hub>, request: impl Future<Output = T>) -> T {
    let (out, events) = HUB
        .scope(
            hub.clone(),
            COMMITTED.scope(RefCell::new(Vec::new()), async {
                let out = request.await;
                (out, COMMITTED.with(|committed| committed.take()))
            }),
        )
        .await;
    let mut ended = Vec::new();
    for event in events {
        if event.ends_sessions() {
            ended.push(event.clone());
        }
        hub.publish(event);
    }
    // Where other processes learn of endings on the bus, the answer waits until this process
    // hears its own back: by then the bus has brought them to every listener
    // ([`LiveSessions::wait_heard`]).
    for event in &ended {
        hub.sessions().wait_heard(event).await;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_survive_their_encoding_and_junk_is_refused() {
        for event in [
            Event::Posted { author: 1, post: 7 },
            Event::Deleted {
                author: 2,
                post: 99,
            },
            Event::Notified { recipient: 3 },
            Event::Ended { user: 4 },
            Event::SessionEnded {
                session: "AbC-_1".to_owned(),
            },
            Event::Marked {
                user: 5,
                session: "AbC-_1".to_owned(),
            },
            Event::Probe,
        ] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        for junk in [
            "", "p", "p x", "p 1", "p 1 2 3", "x 1", "d 1", "s", "s ", "s a b", "m 1", "m 1 ",
            "m x a", "m 1 a b", "k 1",
        ] {
            assert_eq!(Event::decode(junk), None, "{junk}");
        }
    }
}
