//! This process's view of live sessions ([`LiveSessions`]): which sessions it has seen live in the
//! database, and for whom, so that an authenticated request is checked without a database round
//! trip. The event bus keeps it right: every write that ends a session emits
//! [`Event::SessionEnded`] (logout, a deleted session, a password change or reset, a reused
//! refresh token, the session cap) or [`Event::Ended`] (suspension, account removal), and the view
//! forgets what they name as soon as they arrive ([`LiveSessions::forget`]):
//! - in the process that committed them, before its request answers ([`crate::events::collect`]
//!   hands them over, on every backend), so the caller's next request is refused wherever the
//!   bus stands;
//! - in every other process, as they arrive on the bus: PostgreSQL's LISTEN
//!   ([`crate::events::Hub::heard`]); the request that ended them answers once its own process
//!   has heard them back ([`LiveSessions::wait_heard`]), so by then every listener has them.
//!   A request that reaches another process while the ending commits, before it has read the
//!   notification, may still pass, as if it had come just before.
//!
//! The view is trusted only while nothing can have been missed:
//! - PostgreSQL: from the first event heard on the listener's connection (each process probes
//!   the bus, [`probe`], every 200 ms while it waits and every second after) until that
//!   connection is lost ([`LiveSessions::bus_lost`]) or nothing was heard for 5 s
//!   ([`LiveSessions::check_silence`]); each change of trust empties the view.
//! - SQLite: always (one process has its database: every ending is its own).
//! - MySQL/MariaDB: never, for now: no channel brings other processes' endings (their streams
//!   learn of them by a 15 s sweep), so every request reads its session from the database, as
//!   before.
//!
//! While it is not trusted, every request reads its session from the database and nothing is
//! kept. A filling read that raced an ending is not kept either: each forgetting moves an epoch,
//! and an entry read under an older epoch is dropped ([`LiveSessions::fill`]). Entries are read
//! again from the database after [`MAX_AGE_MS`] (so an ending the bus never carried, a row
//! removed by hand, lasts at most that), and at their session's expiry.
//!
//! What is kept is only what never changes for a session: its user's id, and its expiry and last
//! use as read. The user's row (counts, flags) is not kept: a handler that needs it reads it by
//! primary key ([`crate::auth::AuthUser`]); one that needs only the caller's id reads nothing
//! ([`crate::auth::MaybeCaller`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{Event, Transport};
use crate::error::ApiError;

/// How long an entry is trusted after it was read from the database, in milliseconds: then it is
/// read again (a backstop for endings that no event carried).
pub const MAX_AGE_MS: i64 = 60_000;

/// The most sessions kept; past it the stale ones go first, then an arbitrary eighth.
pub const MAX_ENTRIES: usize = 50_000;

/// A session as the database last showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub user_id: i64,
    /// When the session expires (a refresh moves it later, never earlier; a suspension's expiry
    /// comes with its event).
    pub expires_at: i64,
    /// When the session was last noted as used (`last_used_at`).
    pub last_used_at: i64,
    /// When this was read from the database.
    pub read_at: i64,
}

/// What a filling read must show when it is done: the epoch it started in.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

struct View {
    trusted: bool,
    /// When an event was last heard on the bus (milliseconds since the epoch).
    last_heard: i64,
    epoch: u64,
    sessions: HashMap<String, Seen>,
}

/// This process's view of live sessions (see the module's documentation).
pub struct LiveSessions {
    /// Whether the transport can keep a view right at all.
    enabled: bool,
    /// Whether the trust comes from hearing the bus (PostgreSQL), rather than from the start.
    needs_bus: bool,
    view: Mutex<View>,
    max_entries: usize,
    /// The endings heard back on the bus lately, newest last ([`LiveSessions::wait_heard`]).
    echoes: Mutex<VecDeque<Event>>,
    echoed: tokio::sync::Notify,
}

/// How many endings heard on the bus are remembered for the requests that wait for theirs.
const ECHOES_KEPT: usize = 1_024;

/// The longest a request that ended sessions waits to hear its ending back on the bus.
pub const ECHO_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

impl LiveSessions {
    /// The view for a process whose events travel by `transport`.
    pub fn for_transport(transport: Transport) -> Self {
        let (enabled, needs_bus) = match transport {
            Transport::Notify => (true, true),
            Transport::Poll {
                other_processes: false,
            } => (true, false),
            Transport::Poll {
                other_processes: true,
            } => (false, false),
        };
        Self::new(enabled, needs_bus, MAX_ENTRIES)
    }

    fn new(enabled: bool, needs_bus: bool, max_entries: usize) -> Self {
        LiveSessions {
            enabled,
            needs_bus,
            view: Mutex::new(View {
                trusted: enabled && !needs_bus,
                last_heard: 0,
                epoch: 0,
                sessions: HashMap::new(),
            }),
            max_entries: max_entries.max(1),
            echoes: Mutex::new(VecDeque::new()),
            echoed: tokio::sync::Notify::new(),
        }
    }

    /// Notes that the ending `event` was heard on the bus, for the request that waits for it.
    pub fn echo(&self, event: &Event) {
        if !event.ends_sessions() {
            return;
        }
        if let Ok(mut echoes) = self.echoes.lock() {
            if echoes.len() >= ECHOES_KEPT {
                echoes.pop_front();
            }
            echoes.push_back(event.clone());
        }
        self.echoed.notify_waiters();
    }

    /// Waits, at most [`ECHO_WAIT`], until this process hears the ending `event`, which it
    /// committed, back on the bus (PostgreSQL, while the bus is heard). PostgreSQL hands a
    /// notification to every listener at once, so when this process has it, the other processes
    /// have it too (they still have to read it): a client that gets the ending's answer and goes
    /// to another replica finds it refused there.
    pub async fn wait_heard(&self, event: &Event) {
        if !self.needs_bus || !self.trusted() {
            return;
        }
        let deadline = tokio::time::Instant::now() + ECHO_WAIT;
        loop {
            let notified = self.echoed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let heard = self
                .echoes
                .lock()
                .is_ok_and(|echoes| echoes.iter().rev().any(|echo| echo == event));
            if heard || tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// Whether the view waits to hear the bus before it is trusted again (a probe is due).
    pub fn wants_probe(&self) -> bool {
        self.enabled && self.needs_bus && !self.lock().is_some_and(|view| view.trusted)
    }

    /// Whether the view is trusted now.
    pub fn trusted(&self) -> bool {
        self.lock().is_some_and(|view| view.trusted)
    }

    fn lock(&self) -> Option<std::sync::MutexGuard<'_, View>> {
        // A panic while holding the lock cannot leave the map half-changed in a way that matters
        // (each change is one insert or removal), but be safe: a poisoned view is not trusted.
        self.view.lock().ok()
    }

    /// The session `session` of `user_id`, if the view holds it live at `now` and trusts it.
    pub fn get(&self, session: &str, user_id: i64, now: i64) -> Option<Seen> {
        if !self.enabled {
            return None;
        }
        let view = self.lock()?;
        if !view.trusted {
            return None;
        }
        view.sessions.get(session).copied().filter(|seen| {
            seen.user_id == user_id
                && seen.expires_at > now
                && now.saturating_sub(seen.read_at) < MAX_AGE_MS
        })
    }

    /// Taken before reading a session from the database, to [`fill`](Self::fill) the view with
    /// what it shows; `None` when nothing would be kept.
    pub fn ticket(&self) -> Option<Ticket> {
        if !self.enabled {
            return None;
        }
        let view = self.lock()?;
        view.trusted.then_some(Ticket(view.epoch))
    }

    /// Keeps `seen` for `session`, read from the database after `ticket` was taken, unless
    /// anything was forgotten since (it may have been this session's ending, which the read may
    /// not have seen) or trust was lost.
    pub fn fill(&self, ticket: Ticket, session: &str, seen: Seen) {
        let Some(mut view) = self.lock() else {
            return;
        };
        if !view.trusted || view.epoch != ticket.0 {
            return;
        }
        if view.sessions.len() >= self.max_entries && !view.sessions.contains_key(session) {
            let now = seen.read_at;
            view.sessions.retain(|_, kept| {
                kept.expires_at > now && now.saturating_sub(kept.read_at) < MAX_AGE_MS
            });
            if view.sessions.len() >= self.max_entries {
                let excess = view.sessions.len() + 1 - self.max_entries;
                let dropped = excess.max(self.max_entries / 8);
                let gone: Vec<String> = view.sessions.keys().take(dropped).cloned().collect();
                for key in gone {
                    view.sessions.remove(&key);
                }
            }
        }
        view.sessions.insert(session.to_owned(), seen);
    }

    /// Notes that `session`'s use was written down at `at` (`last_used_at`).
    pub fn touched(&self, session: &str, at: i64) {
        if let Some(mut view) = self.lock()
            && let Some(seen) = view.sessions.get_mut(session)
        {
            seen.last_used_at = seen.last_used_at.max(at);
        }
    }

    /// Forgets what `event` ends: a session ([`Event::SessionEnded`]) or every session of an
    /// account ([`Event::Ended`]). Other events change nothing.
    pub fn forget(&self, event: &Event) {
        let Some(mut view) = self.lock() else {
            return;
        };
        match event {
            Event::SessionEnded { session } => {
                view.epoch = view.epoch.wrapping_add(1);
                view.sessions.remove(session);
            }
            Event::Ended { user } => {
                view.epoch = view.epoch.wrapping_add(1);
                view.sessions.retain(|_, seen| seen.user_id != *user);
            }
            _ => {}
        }
    }

    /// The bus may have lost events (its connection dropped): nothing kept is trusted, nothing is
    /// kept, until it is heard again.
    pub fn bus_lost(&self) {
        if !self.needs_bus {
            return;
        }
        if let Some(mut view) = self.lock() {
            if view.trusted {
                tracing::warn!(
                    "the event bus is down: sessions are read from the database until it is back"
                );
            }
            view.trusted = false;
            view.epoch = view.epoch.wrapping_add(1);
            view.sessions.clear();
        }
    }

    /// The bus has been silent for longer than [`SILENCE_MS`] at `now`, though this process
    /// probes it every [`HEARTBEAT`]: its connection may be dead without having said so (a
    /// network that drops packets rather than connections). Trust ends, as at a loss.
    pub fn check_silence(&self, now: i64) {
        let silent = self
            .lock()
            .is_some_and(|view| view.trusted && now.saturating_sub(view.last_heard) > SILENCE_MS);
        if silent {
            self.bus_lost();
        }
    }

    /// An event came on the bus's connection at `now`: it is listening, so every ending committed
    /// from now on will come too. Trust starts again from an empty view.
    pub fn bus_heard(&self, now: i64) {
        if !self.enabled || !self.needs_bus {
            return;
        }
        let Some(mut view) = self.lock() else {
            return;
        };
        view.last_heard = now;
        if !view.trusted {
            view.trusted = true;
            view.epoch = view.epoch.wrapping_add(1);
            view.sessions.clear();
            tracing::info!("the event bus is up: sessions are checked in memory");
        }
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.lock().map_or(0, |view| view.sessions.len())
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sends [`Event::Probe`] on the bus (PostgreSQL), for a process whose view of live sessions waits
/// to hear the bus ([`LiveSessions::wants_probe`]).
pub async fn probe(db: &sea_orm::DatabaseConnection) -> Result<(), ApiError> {
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [super::CHANNEL.into(), Event::Probe.encode().into()],
    ))
    .await?;
    Ok(())
}

/// Probes the bus for as long as the process runs (PostgreSQL; elsewhere it returns): every
/// [`PROBE_EVERY`] while this process's view of live sessions waits to hear it, every
/// [`HEARTBEAT`] while it is trusted, and ends that trust when nothing was heard for
/// [`SILENCE_MS`] ([`LiveSessions::check_silence`]).
pub async fn keep_probing(hub: Arc<super::Hub>, db: sea_orm::DatabaseConnection) {
    if !hub.transport().sends_at_commit() {
        return;
    }
    loop {
        let view = hub.sessions();
        view.check_silence(crate::time::now_millis());
        if let Err(err) = probe(&db).await {
            tracing::debug!(error = %err, "could not probe the event bus");
        }
        let wait = if view.wants_probe() {
            PROBE_EVERY
        } else {
            HEARTBEAT
        };
        tokio::time::sleep(wait).await;
    }
}

/// How often a process whose view of live sessions waits to hear the bus probes it.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// How often a process whose view is trusted probes the bus, to know that it still hears it.
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the bus may stay silent, in milliseconds, before the view stops trusting it.
pub const SILENCE_MS: i64 = 5_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(user_id: i64, now: i64) -> Seen {
        Seen {
            user_id,
            expires_at: now + 1_000_000,
            last_used_at: now,
            read_at: now,
        }
    }

    #[test]
    fn a_fill_that_raced_an_ending_is_not_kept() {
        let view = LiveSessions::new(true, false, 10);
        let ticket = view.ticket().unwrap();
        view.forget(&Event::SessionEnded {
            session: "a".into(),
        });
        view.fill(ticket, "a", seen(1, 0));
        assert_eq!(view.get("a", 1, 0), None);
        let ticket = view.ticket().unwrap();
        view.fill(ticket, "a", seen(1, 0));
        assert_eq!(view.get("a", 1, 0), Some(seen(1, 0)));
        assert_eq!(view.get("a", 2, 0), None, "another user's token");
        assert_eq!(view.get("a", 1, MAX_AGE_MS), None, "too old: read again");
    }

    #[test]
    fn an_account_ending_forgets_all_its_sessions() {
        let view = LiveSessions::new(true, false, 10);
        for (session, user) in [("a", 1), ("b", 1), ("c", 2)] {
            let ticket = view.ticket().unwrap();
            view.fill(ticket, session, seen(user, 0));
        }
        view.forget(&Event::Ended { user: 1 });
        assert_eq!(view.get("a", 1, 0), None);
        assert_eq!(view.get("b", 1, 0), None);
        assert!(view.get("c", 2, 0).is_some());
    }

    #[test]
    fn on_the_bus_nothing_is_trusted_before_it_is_heard_nor_after_it_is_lost() {
        let view = LiveSessions::new(true, true, 10);
        assert!(view.ticket().is_none() && view.wants_probe());
        view.bus_heard(0);
        let ticket = view.ticket().unwrap();
        view.fill(ticket, "a", seen(1, 0));
        assert!(view.get("a", 1, 0).is_some());
        view.bus_lost();
        assert_eq!(view.get("a", 1, 0), None);
        view.fill(ticket, "a", seen(1, 0));
        view.bus_heard(0);
        assert_eq!(view.get("a", 1, 0), None, "read before the loss");
        assert!(view.is_empty());
        view.check_silence(SILENCE_MS);
        assert!(view.trusted(), "not silent for long enough yet");
        view.check_silence(SILENCE_MS + 1);
        assert!(!view.trusted() && view.wants_probe());
    }

    #[test]
    fn the_view_stays_within_its_cap() {
        let view = LiveSessions::new(true, false, 16);
        for i in 0..100 {
            let ticket = view.ticket().unwrap();
            view.fill(ticket, &format!("s{i}"), seen(i, 0));
            assert!(view.len() <= 16);
        }
        assert!(view.get("s99", 99, 0).is_some(), "the newest is kept");
    }

    #[test]
    fn without_a_channel_for_endings_nothing_is_kept() {
        let view = LiveSessions::for_transport(Transport::Poll {
            other_processes: true,
        });
        assert!(view.ticket().is_none());
        assert!(!view.wants_probe());
    }
}
