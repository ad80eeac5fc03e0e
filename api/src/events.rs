//! Live events for the event stream (`GET /stream`): who should look again, never what they see.
//!
//! A write records an [`Event`] with [`emit`] inside its transaction: a post by an author, a post
//! deleted, a notification for a recipient, an account ended (suspended or removed). The event
//! only wakes the open streams it concerns ([`Hub`]); a woken stream reads what is new for it with
//! the same queries as the lists, from its own cursor (`routes::stream`). So an event that arrives
//! twice, late, or for a stream that has nothing new costs a query and nothing else, and the
//! stream keeps the lists' no-skip promise: it reads the timeline with `newer_than`, whose
//! positions are given in commit order.
//!
//! How events travel, by backend:
//! - **PostgreSQL**: `pg_notify` inside the writing transaction, so it is sent at commit (and not
//!   at all on rollback), to every API process sharing the database, this one included; each
//!   process LISTENs on one connection of its own ([`listen_postgres`]). A listener that lost its
//!   connection wakes every stream once it is back.
//! - **MySQL/MariaDB** (no notification channel): the events of this process's requests are
//!   handed to its hub after they commit; other processes' posts and notifications are found by a
//!   poller that reads what is new every [`POLL_INTERVAL`] ([`poll_mysql`]), two index-range
//!   queries per tick while any stream is open, none otherwise.
//! - **SQLite**: one process serves everything; events go to the hub after commit.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::{follow, notification, post, session};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::pagination::{self, Position};

/// The PostgreSQL channel the events travel on.
const CHANNEL: &str = "social_events";

/// How often a MySQL/MariaDB process looks for other processes' posts and notifications.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How many deleted posts a stream keeps for its client; a client that lets more pile up is
/// disconnected (it reconnects and reloads).
const MAX_PENDING_DELETIONS: usize = 256;

/// Something happened that some open streams should look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `author` wrote a post: the author's and their followers' timelines have something new.
    Posted { author: i64 },
    /// `author`'s post `post` is gone.
    Deleted { author: i64, post: i64 },
    /// `recipient` has a new notification.
    Notified { recipient: i64 },
    /// `user`'s account was suspended or removed: their streams end.
    Ended { user: i64 },
    /// The session `session` ended (logout, deletion, password change, a reused refresh token):
    /// the streams it opened end.
    SessionEnded { session: String },
}

impl Event {
    fn encode(&self) -> String {
        match self {
            Event::Posted { author } => format!("p {author}"),
            Event::Deleted { author, post } => format!("d {author} {post}"),
            Event::Notified { recipient } => format!("n {recipient}"),
            Event::Ended { user } => format!("e {user}"),
            Event::SessionEnded { session } => format!("s {session}"),
        }
    }

    fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.split(' ');
        let kind = parts.next()?;
        if kind == "s" {
            let session = parts.next().filter(|s| !s.is_empty())?.to_owned();
            return parts
                .next()
                .is_none()
                .then_some(Event::SessionEnded { session });
        }
        let first = parts.next()?.parse().ok()?;
        let event = match kind {
            "p" => Event::Posted { author: first },
            "d" => Event::Deleted {
                author: first,
                post: parts.next()?.parse().ok()?,
            },
            "n" => Event::Notified { recipient: first },
            "e" => Event::Ended { user: first },
            _ => return None,
        };
        parts.next().is_none().then_some(event)
    }
}

tokio::task_local! {
    /// The events of the current request's committed writes, handed to the hub when the request
    /// ends (`startup`'s `publish_events` middleware). Not used on PostgreSQL.
    static COMMITTED: RefCell<Vec<Event>>;
    /// The events of the transaction attempt in progress (`db::write`).
    static ATTEMPT: RefCell<Vec<Event>>;
}

/// Step: records `event`, to be delivered once the transaction commits.
pub async fn emit(txn: &DatabaseTransaction, event: Event) -> Result<(), ApiError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), event.encode().into()],
        ))
        .await?;
    } else {
        let _ = ATTEMPT.try_with(|pending| pending.borrow_mut().push(event));
    }
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
        let _ = COMMITTED.try_with(|committed| committed.borrow_mut().extend(events));
    }
    out
}

/// Runs a request, then hands the events of its committed writes to `hub`.
pub async fn collect<T>(hub: &Arc<Hub>, request: impl Future<Output = T>) -> T {
    let (out, events) = COMMITTED
        .scope(RefCell::new(Vec::new()), async {
            let out = request.await;
            (out, COMMITTED.with(|committed| committed.take()))
        })
        .await;
    for event in events {
        hub.publish(event);
    }
    out
}

/// One open stream's mailbox: a wake-up, what to look at (new posts, new notifications), the ids
/// of deleted posts to announce, and whether it has to end.
#[derive(Default)]
pub struct Slot {
    /// The session that opened the stream.
    session: String,
    pub wake: Notify,
    posts: AtomicBool,
    notifications: AtomicBool,
    deleted: Mutex<VecDeque<i64>>,
    ended: AtomicBool,
}

/// What a woken stream should look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Look {
    pub posts: bool,
    pub notifications: bool,
}

impl Slot {
    /// Wakes the stream to look at what `look` says (added to what it already had to).
    pub fn wake(&self, look: Look) {
        if look.posts {
            self.posts.store(true, Ordering::Release);
        }
        if look.notifications {
            self.notifications.store(true, Ordering::Release);
        }
        self.wake.notify_one();
    }

    /// What to look at since the last call, and nothing from then on until the next wake-up.
    pub fn take_look(&self) -> Look {
        Look {
            posts: self.posts.swap(false, Ordering::AcqRel),
            notifications: self.notifications.swap(false, Ordering::AcqRel),
        }
    }

    /// The deleted posts to announce, oldest first; `None` when too many piled up (the stream
    /// ends).
    pub fn take_deleted(&self) -> Option<Vec<i64>> {
        let mut deleted = self.deleted.lock().ok()?;
        if deleted.len() > MAX_PENDING_DELETIONS {
            return None;
        }
        Some(deleted.drain(..).collect())
    }

    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

impl Look {
    pub const EVERYTHING: Look = Look {
        posts: true,
        notifications: true,
    };
    const POSTS: Look = Look {
        posts: true,
        notifications: false,
    };
    const NOTIFICATIONS: Look = Look {
        posts: false,
        notifications: true,
    };
}

/// Why a stream cannot be opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The user has [`Hub::per_user`] open already.
    TooManyForUser,
    /// The process has its maximum open.
    Full,
}

/// The open streams of this process, by user.
pub struct Hub {
    db: DatabaseConnection,
    streams: Mutex<HashMap<i64, Vec<Arc<Slot>>>>,
    open: AtomicUsize,
    max_open: usize,
    per_user: usize,
    shut_down: AtomicBool,
}

/// An open stream's place in the hub; dropping it closes the place.
pub struct Registration {
    hub: Arc<Hub>,
    user: i64,
    pub slot: Arc<Slot>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Ok(mut streams) = self.hub.streams.lock() else {
            return;
        };
        if let Some(slots) = streams.get_mut(&self.user) {
            slots.retain(|slot| !Arc::ptr_eq(slot, &self.slot));
            if slots.is_empty() {
                streams.remove(&self.user);
            }
        }
        self.hub.open.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Hub {
    pub fn new(db: DatabaseConnection, max_open: usize, per_user: usize) -> Arc<Self> {
        Arc::new(Hub {
            db,
            streams: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            max_open,
            per_user,
            shut_down: AtomicBool::new(false),
        })
    }

    /// How many streams one user may have open.
    pub fn per_user(&self) -> usize {
        self.per_user
    }

    /// How many streams are open in this process.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A place for a new stream of `user`, opened by `session`.
    pub fn open(self: &Arc<Self>, user: i64, session: &str) -> Result<Registration, Refusal> {
        let mut streams = self.streams.lock().map_err(|_| Refusal::Full)?;
        if self.shut_down.load(Ordering::Acquire)
            || self.open.load(Ordering::Acquire) >= self.max_open
        {
            return Err(Refusal::Full);
        }
        let slots = streams.entry(user).or_default();
        if slots.len() >= self.per_user {
            return Err(Refusal::TooManyForUser);
        }
        let slot = Arc::new(Slot {
            session: session.to_owned(),
            ..Slot::default()
        });
        slots.push(slot.clone());
        self.open.fetch_add(1, Ordering::AcqRel);
        Ok(Registration {
            hub: self.clone(),
            user,
            slot,
        })
    }

    /// Ends every stream, and refuses new ones: the server is stopping.
    pub fn shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
        self.each_slot(|_, slot| slot.end());
    }

    /// Wakes every stream (after events may have been missed).
    pub fn wake_all(&self) {
        self.each_slot(|_, slot| slot.wake(Look::EVERYTHING));
    }

    fn each_slot(&self, mut f: impl FnMut(i64, &Slot)) {
        if let Ok(streams) = self.streams.lock() {
            for (user, slots) in streams.iter() {
                for slot in slots {
                    f(*user, slot);
                }
            }
        }
    }

    fn slots_of(&self, users: &[i64]) -> Vec<Arc<Slot>> {
        let Ok(streams) = self.streams.lock() else {
            return Vec::new();
        };
        users
            .iter()
            .filter_map(|user| streams.get(user))
            .flatten()
            .cloned()
            .collect()
    }

    /// The sessions of the open streams, each once.
    fn open_sessions(&self) -> Vec<String> {
        let mut sessions = Vec::new();
        self.each_slot(|_, slot| sessions.push(slot.session.clone()));
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }

    fn connected_users(&self) -> Vec<i64> {
        self.streams
            .lock()
            .map(|streams| streams.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Delivers `event` to the streams it concerns, on a task of its own: the writer is not held.
    pub fn publish(self: &Arc<Self>, event: Event) {
        if self.open_streams() == 0 {
            return;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            if let Err(err) = hub.deliver(&event).await {
                tracing::warn!(error = %err, ?event, "could not deliver an event to the streams");
            }
        });
    }

    async fn deliver(&self, event: &Event) -> Result<(), ApiError> {
        match *event {
            Event::Posted { author } => {
                for slot in self.slots_of(&self.author_and_followers(author).await?) {
                    slot.wake(Look::POSTS);
                }
            }
            Event::Deleted { author, post } => {
                for slot in self.slots_of(&self.author_and_followers(author).await?) {
                    if let Ok(mut deleted) = slot.deleted.lock() {
                        deleted.push_back(post);
                    }
                    slot.wake(Look::default());
                }
            }
            Event::Notified { recipient } => {
                for slot in self.slots_of(&[recipient]) {
                    slot.wake(Look::NOTIFICATIONS);
                }
            }
            Event::Ended { user } => {
                for slot in self.slots_of(&[user]) {
                    slot.end();
                }
            }
            Event::SessionEnded { ref session } => self.each_slot(|_, slot| {
                if slot.session == *session {
                    slot.end();
                }
            }),
        }
        Ok(())
    }

    /// `author` and those of their followers who have a stream open here: one query per 500
    /// connected users, each an index probe per connected user, whatever the author's following.
    async fn author_and_followers(&self, author: i64) -> Result<Vec<i64>, ApiError> {
        let connected: Vec<i64> = self
            .connected_users()
            .into_iter()
            .filter(|user| *user != author)
            .collect();
        let mut users = vec![author];
        for chunk in connected.chunks(500) {
            let followers: Vec<i64> = follow::Entity::find()
                .select_only()
                .column(follow::Column::FollowerId)
                .filter(follow::Column::FollowedId.eq(author))
                .filter(follow::Column::FollowerId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(&self.db)
                .await?;
            users.extend(followers);
        }
        Ok(users)
    }
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
                Some(event) => hub.publish(event),
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

/// MySQL/MariaDB: every [`POLL_INTERVAL`] while any stream is open, reads the posts written since
/// the last look (by position, which is given in commit order, so none is passed over) and the
/// notifications of the last few seconds, and wakes the streams they concern (each notification
/// once). Deletions in other processes are not seen here: a deleted post is simply missing from
/// the client's next timeline read. Ended sessions are [`sweep_ended`]'s.
pub async fn poll_mysql(hub: Arc<Hub>, db: DatabaseConnection) {
    let mut posts_seen: Option<Position> = None;
    let mut notifications_seen = NotificationWindow::default();
    loop {
        tokio::time::sleep(POLL_INTERVAL).await;
        if hub.open_streams() == 0 {
            posts_seen = None;
            continue;
        }
        match poll_once(&hub, &db, posts_seen, &mut notifications_seen).await {
            Ok(position) => posts_seen = position,
            Err(err) => tracing::warn!(error = %err, "could not poll for stream events"),
        }
    }
}

/// How many polls back notifications are read again: an insert that commits up to this many
/// intervals after a newer one is still seen.
const NOTIFICATION_POLLS_REREAD: usize = 10;

/// The notifications a poller has read in its last [`NOTIFICATION_POLLS_REREAD`] looks: ids are
/// given at insert, not at commit, so a look reads again from the newest id of that many looks
/// ago, and wakes only for the ids it has not seen.
#[derive(Default)]
struct NotificationWindow {
    /// The newest id of each of the last looks, oldest first.
    newest: VecDeque<i64>,
    /// The ids seen above the oldest of those.
    seen: HashSet<i64>,
}

impl NotificationWindow {
    fn floor(&self) -> i64 {
        self.newest.front().copied().unwrap_or(0)
    }

    fn restart_at(&mut self, newest: i64) {
        self.newest.clear();
        self.newest.push_back(newest);
        self.seen.clear();
    }

    /// Notes a look's ids; the ones not seen before.
    fn look(&mut self, ids: impl IntoIterator<Item = i64>) -> Vec<i64> {
        let fresh: Vec<i64> = ids.into_iter().filter(|id| self.seen.insert(*id)).collect();
        let newest = fresh
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.newest.back().copied().unwrap_or(0));
        self.newest.push_back(newest);
        if self.newest.len() > NOTIFICATION_POLLS_REREAD {
            self.newest.pop_front();
        }
        let floor = self.floor();
        self.seen.retain(|id| *id > floor);
        fresh
    }
}

async fn poll_once(
    hub: &Arc<Hub>,
    db: &DatabaseConnection,
    posts_seen: Option<Position>,
    notifications_seen: &mut NotificationWindow,
) -> Result<Option<Position>, ApiError> {
    let backend = db.get_database_backend();
    let Some(seen) = posts_seen else {
        // The first look: start from the newest post and notification.
        let newest: Option<(i64, i64)> = post::Entity::find()
            .select_only()
            .columns([post::Column::CreatedAt, post::Column::Id])
            .order_by_desc(post::Column::CreatedAt)
            .order_by_desc(post::Column::Id)
            .into_tuple()
            .one(db)
            .await?;
        let newest_notification: Option<i64> = notification::Entity::find()
            .select_only()
            .column(notification::Column::Id)
            .order_by_desc(notification::Column::Id)
            .into_tuple()
            .one(db)
            .await?;
        notifications_seen.restart_at(newest_notification.unwrap_or(0));
        // Whatever was written between the streams' opening and this first look is behind the
        // starting point: every stream looks once for itself.
        hub.wake_all();
        return Ok(Some(newest.map_or(
            Position {
                at: i64::MIN,
                id: i64::MIN,
            },
            |(at, id)| Position { at, id },
        )));
    };
    let new_posts: Vec<(i64, i64, i64)> = post::Entity::find()
        .select_only()
        .columns([
            post::Column::CreatedAt,
            post::Column::Id,
            post::Column::AuthorId,
        ])
        .filter(pagination::newer_than(
            backend,
            post::Column::CreatedAt,
            post::Column::Id,
            seen,
        ))
        .order_by_asc(post::Column::CreatedAt)
        .order_by_asc(post::Column::Id)
        .limit(1000)
        .into_tuple()
        .all(db)
        .await?;
    let mut authors: Vec<i64> = new_posts.iter().map(|(_, _, author)| *author).collect();
    authors.sort_unstable();
    authors.dedup();
    for author in authors {
        hub.publish(Event::Posted { author });
    }
    let recipients: HashMap<i64, i64> = notification::Entity::find()
        .select_only()
        .columns([notification::Column::Id, notification::Column::RecipientId])
        .filter(notification::Column::Id.gt(notifications_seen.floor()))
        .limit(10_000)
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let connected: HashSet<i64> = hub.connected_users().into_iter().collect();
    let mut woken: Vec<i64> = notifications_seen
        .look(recipients.keys().copied())
        .into_iter()
        .filter_map(|id| recipients.get(&id).copied())
        .filter(|recipient| connected.contains(recipient))
        .collect();
    woken.sort_unstable();
    woken.dedup();
    for recipient in woken {
        hub.publish(Event::Notified { recipient });
    }
    Ok(Some(
        new_posts
            .last()
            .map_or(seen, |(at, id, _)| Position { at: *at, id: *id }),
    ))
}

/// Ends the streams whose sessions ended in another process, for backends where that event does
/// not reach every process (MySQL/MariaDB): every 15 seconds, one primary-key query per 500 open
/// sessions. (A suspension expires the sessions and an account's removal deletes them, so this
/// covers both.)
pub async fn sweep_ended(hub: Arc<Hub>, db: DatabaseConnection) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let open = hub.open_sessions();
        for chunk in open.chunks(500) {
            let live: Result<Vec<String>, _> = session::Entity::find()
                .select_only()
                .column(session::Column::Id)
                .filter(session::Column::Id.is_in(chunk.iter().cloned()))
                .filter(session::Column::ExpiresAt.gt(crate::time::now_millis()))
                .into_tuple()
                .all(&db)
                .await;
            match live {
                Ok(live) => {
                    let live: HashSet<String> = live.into_iter().collect();
                    hub.each_slot(|_, slot| {
                        if chunk.contains(&slot.session) && !live.contains(&slot.session) {
                            slot.end();
                        }
                    });
                }
                Err(err) => tracing::warn!(error = %err, "could not check the streams' sessions"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_window_reads_again_but_wakes_once_per_id() {
        let mut window = NotificationWindow::default();
        window.restart_at(10);
        assert_eq!(window.look([11, 13]), vec![11, 13]);
        assert_eq!(window.floor(), 10, "the look before is still in the window");
        // 12 commits late, after 13 was seen; 11 and 13 are read again.
        assert_eq!(window.look([11, 12, 13]), vec![12]);
        for _ in 0..NOTIFICATION_POLLS_REREAD {
            assert_eq!(window.look([]), Vec::<i64>::new());
        }
        assert_eq!(window.floor(), 13, "the window moves on");
        assert!(window.seen.is_empty(), "and forgets what lies below it");
    }

    #[test]
    fn events_survive_their_encoding_and_junk_is_refused() {
        for event in [
            Event::Posted { author: 1 },
            Event::Deleted {
                author: 2,
                post: 99,
            },
            Event::Notified { recipient: 3 },
            Event::Ended { user: 4 },
            Event::SessionEnded {
                session: "AbC-_1".to_owned(),
            },
        ] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        for junk in ["", "p", "p x", "p 1 2", "x 1", "d 1", "s", "s ", "s a b"] {
            assert_eq!(Event::decode(junk), None, "{junk}");
        }
    }
}
