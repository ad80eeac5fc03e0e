//! Live events for the event stream (`GET /stream`).
//!
//! A write records an [`Event`] with [`emit`] inside its transaction: a post written or deleted,
//! a notification for a recipient, an account or a session ended. Each process's [`Hub`] hands
//! the events to the open streams they concern, **in the order the writes committed**, after
//! making each ready once for all of them ([`Hub::deliver_in_order`]): a new post is read once,
//! with the relationship of every connected reader to its author in one query
//! (`relationships::viewers_of`, the viewer state's own function), and given to the streams of
//! those on whose timeline it belongs (`timeline::shows`); so a post's delivery to a thousand
//! streams costs two queries, not a thousand timeline reads. Posts arrive in commit order, which
//! is their positions' order, so a stream shows each one it is given that lies past its cursor,
//! and keeps the lists' no-skip promise without reading.
//!
//! Whenever that order may have been broken (a lost listener connection, a failed read, a queue
//! or an inbox that overflowed) the streams concerned are told to read their timelines for
//! themselves from their cursors ([`Look`]), with the lists' own `newer_than` queries, as they do
//! when they open or replay. Notifications are always read by the stream itself (they are few).
//!
//! How events travel, by backend:
//! - **PostgreSQL**: `pg_notify` inside the writing transaction, so it is sent at commit (and not
//!   at all on rollback), in commit order, to every API process sharing the database, this one
//!   included; each process LISTENs on one connection of its own ([`listen_postgres`]).
//! - **MySQL/MariaDB** (no notification channel) and **SQLite**: a request's events are handed to
//!   its process's hub after they commit, except posts: requests finish in any order, so posts
//!   are found by a poller that reads them by position ([`poll_for_posts`]), at once when this
//!   process wrote one and every [`POLL_INTERVAL`] for other processes' (one index-range query
//!   per look while any stream is open, none otherwise). On MySQL/MariaDB it also reads other
//!   processes' notifications and deleted posts (`post_deletions`, written with the deletion;
//!   this process's own deletions are found the same way, so none is announced twice), and
//!   [`sweep`] ends the streams of sessions ended elsewhere.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use entity::{notification, post, post_deletion, session};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use tokio::sync::{Notify, mpsc};

use crate::error::ApiError;
use crate::pagination::{self, Position};
use crate::rate_limit::Shared;
use crate::services::posts::{self as posts_service, PostWithAuthor};
use crate::services::relationships::{self, Relation};
use crate::services::timeline;

/// The PostgreSQL channel the events travel on.
const CHANNEL: &str = "social_events";

/// How often a MySQL/MariaDB process looks for other processes' posts, notifications and
/// deletions. Each look is index-range reads that find nothing most of the time: 1,000 looks of
/// the first two took 0.19 s of a client's time on the benchmark's MariaDB (2 million posts), so
/// ten a second cost some 2 ms of the database's time per second and process; the third, of the
/// few rows of `post_deletions`, adds a primary-key range read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How many deleted posts a stream keeps for its client; a client that lets more pile up is
/// disconnected (it reconnects and reloads).
const MAX_PENDING_DELETIONS: usize = 256;

/// How many new posts a stream keeps for its client while it is busy writing; past it the stream
/// reads its timeline for itself once it can.
const MAX_PENDING_POSTS: usize = 64;

/// How many events are made ready for the streams at once (each a query or two), while they are
/// handed over one at a time, in the order they came.
const READYING_AT_ONCE: usize = 8;

/// How many events may wait to be made ready; past it they are dropped and every stream reads for
/// itself.
const QUEUED_EVENTS: usize = 4_096;

/// How long a stream's place in Redis outlives its last renewal (`REDIS_URL`): renewed every third
/// of it, so a replica that dies without closing its streams frees their places within a minute.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// Something happened that some open streams should look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `author` wrote the post `post`: the author's and their followers' timelines have something
    /// new.
    Posted { author: i64, post: i64 },
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
            Event::Posted { author, post } => format!("p {author} {post}"),
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
            "p" => Event::Posted {
                author: first,
                post: parts.next()?.parse().ok()?,
            },
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

/// Step: records `event`, to be delivered once the transaction commits. On MySQL/MariaDB a
/// deleted post is also written to `post_deletions`, where every process's poller finds it.
pub async fn emit(txn: &DatabaseTransaction, event: Event) -> Result<(), ApiError> {
    match txn.get_database_backend() {
        DbBackend::Postgres => {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, $2)",
                [CHANNEL.into(), event.encode().into()],
            ))
            .await?;
            return Ok(());
        }
        DbBackend::MySql => {
            if let Event::Deleted { author, post } = event {
                post_deletion::Entity::insert(post_deletion::ActiveModel {
                    post_id: Set(post),
                    author_id: Set(author),
                    deleted_at: Set(crate::time::now_millis()),
                    ..Default::default()
                })
                .exec_without_returning(txn)
                .await?;
            }
        }
        _ => {}
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

/// One open stream's mailbox: a wake-up, its [`Inbox`], and whether it has to end.
#[derive(Default)]
pub struct Slot {
    /// The session that opened the stream.
    session: String,
    /// Its lease among the user's streams in Redis (`REDIS_URL`), unique to this stream.
    lease: String,
    pub wake: Notify,
    inbox: Mutex<Inbox>,
    ended: AtomicBool,
}

/// What a stream has been given since it last looked.
#[derive(Default)]
pub struct Inbox {
    /// What to read for itself.
    pub look: Look,
    /// New posts for its timeline, in commit order (so in the timeline's order), each with the
    /// reader's relationship to its author: the stream shows those past its cursor without a
    /// query. Filled only from a source that sees every post in commit order.
    pub posts: Vec<(Arc<PostWithAuthor>, Relation)>,
    /// Deleted posts to announce, oldest first.
    pub deleted: Vec<i64>,
    /// More deletions piled up than [`MAX_PENDING_DELETIONS`]: the stream ends.
    overflowed: bool,
}

/// What a woken stream should read for itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Look {
    /// Its timeline, past its cursor: an event may have been missed, or came from a source that
    /// does not see posts in commit order.
    pub posts: bool,
    pub notifications: bool,
}

impl Slot {
    /// Wakes the stream to read what `look` says (added to what it already had to).
    pub fn wake(&self, look: Look) {
        self.with_inbox(|inbox| {
            inbox.look.posts |= look.posts;
            inbox.look.notifications |= look.notifications;
        });
        self.wake.notify_one();
    }

    /// Hands the stream a new post for its timeline. A stream that lets more than
    /// [`MAX_PENDING_POSTS`] pile up gets none of them, and reads its timeline instead.
    fn give_post(&self, post: Arc<PostWithAuthor>, relation: Relation) {
        self.with_inbox(|inbox| {
            if inbox.look.posts {
                // It reads for itself anyway, and will find this one.
            } else if inbox.posts.len() >= MAX_PENDING_POSTS {
                inbox.posts = Vec::new();
                inbox.look.posts = true;
            } else {
                inbox.posts.push((post, relation));
            }
        });
        self.wake.notify_one();
    }

    fn give_deleted(&self, post: i64) {
        self.with_inbox(|inbox| {
            if inbox.deleted.len() >= MAX_PENDING_DELETIONS {
                inbox.overflowed = true;
            } else {
                inbox.deleted.push(post);
            }
        });
        self.wake.notify_one();
    }

    fn with_inbox(&self, f: impl FnOnce(&mut Inbox)) {
        if let Ok(mut inbox) = self.inbox.lock() {
            f(&mut inbox);
        }
    }

    /// Everything given since the last call, taken at once (so a post given after a look was
    /// asked for is in this inbox or the next, never lost between the two); `None` when the
    /// stream let too much pile up and has to end.
    pub fn take(&self) -> Option<Inbox> {
        let inbox = std::mem::take(&mut *self.inbox.lock().ok()?);
        (!inbox.overflowed).then_some(inbox)
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
    /// Counts the streams per user across replicas (`REDIS_URL`), when configured.
    shared: Option<Arc<Shared>>,
    /// Names this process's leases: a random id, then a counter.
    process: String,
    leases_given: AtomicU64,
    shut_down: AtomicBool,
    /// Events waiting for [`Hub::deliver_in_order`].
    queue: mpsc::Sender<Event>,
    queued: Mutex<Option<mpsc::Receiver<Event>>>,
    /// Asks [`poll_for_posts`] to look now.
    poke: Notify,
}

/// An event made ready for the streams ([`Hub::make_ready`]).
enum Ready {
    /// A new post, and those connected here on whose timeline it belongs, each with their
    /// relationship to its author.
    Post(Arc<PostWithAuthor>, Vec<(i64, Relation)>),
    /// A deleted post, and the connected users who may have seen it.
    Deleted(Vec<i64>, i64),
    /// An event that needs nothing read.
    Other(Event),
    /// Nothing to deliver.
    Nothing,
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
        if let Some(shared) = self.hub.shared.clone()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let lease = [(self.user, self.slot.lease.clone())];
            runtime.spawn(async move { shared.release_streams(&lease).await });
        }
    }
}

impl Hub {
    pub fn new(
        db: DatabaseConnection,
        max_open: usize,
        per_user: usize,
        shared: Option<Arc<Shared>>,
    ) -> Arc<Self> {
        let (queue, queued) = mpsc::channel(QUEUED_EVENTS);
        Arc::new(Hub {
            queue,
            queued: Mutex::new(Some(queued)),
            poke: Notify::new(),
            db,
            streams: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            max_open,
            per_user,
            shared,
            process: uuid::Uuid::new_v4().simple().to_string(),
            leases_given: AtomicU64::new(0),
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

    /// A place for a new stream of `user`, opened by `session`: within this process's maximum
    /// and the user's [`Hub::per_user`], counted here and, with `REDIS_URL`, across every
    /// replica (where a lease holds the place while the stream is open: [`Hub::renew_leases`];
    /// while Redis does not answer, this process's own count decides).
    pub async fn open(self: &Arc<Self>, user: i64, session: &str) -> Result<Registration, Refusal> {
        let registration = self.open_here(user, session)?;
        if let Some(shared) = &self.shared {
            let claimed = shared
                .claim_stream(user, &registration.slot.lease, self.per_user, LEASE_TTL)
                .await;
            if claimed == Some(false) {
                return Err(Refusal::TooManyForUser);
            }
        }
        Ok(registration)
    }

    /// Keeps the leases of this process's open streams in Redis, every third of their lifetime,
    /// while the process runs (nothing to do without `REDIS_URL`). A process that stops
    /// without closing its streams loses their places when the leases expire.
    pub async fn renew_leases(self: Arc<Self>) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let mut every = tokio::time::interval(LEASE_TTL / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            every.tick().await;
            let leases = self.leases();
            if !leases.is_empty() {
                shared.renew_streams(&leases, LEASE_TTL).await;
            }
        }
    }

    /// The Redis leases of the open streams, `(user, lease)`.
    fn leases(&self) -> Vec<(i64, String)> {
        let mut leases = Vec::new();
        self.each_slot(|user, slot| leases.push((user, slot.lease.clone())));
        leases
    }

    /// The place of a new stream in this process, within its counts.
    fn open_here(self: &Arc<Self>, user: i64, session: &str) -> Result<Registration, Refusal> {
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
        let lease = self.leases_given.fetch_add(1, Ordering::AcqRel);
        let slot = Arc::new(Slot {
            session: session.to_owned(),
            lease: format!("{}:{lease}", self.process),
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

    /// Ends every stream, and refuses new ones: the server is stopping. With `REDIS_URL`, gives
    /// back their places in the users' counts first, while the process still runs (each stream
    /// also gives back its own as it closes, which a stopping process may not get to).
    pub async fn shut_down(&self) {
        self.shut_down.store(true, Ordering::Release);
        if let Some(shared) = &self.shared {
            shared.release_streams(&self.leases()).await;
        }
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

    /// Hands the event of a request's committed write to the streams (not used on PostgreSQL,
    /// where every event comes back through [`listen_postgres`]). A post is left to the poller
    /// ([`poll_for_posts`]), which is asked to look at once: only it sees posts in commit order.
    /// So is a deleted post on MySQL/MariaDB, where the poller finds every process's deletions
    /// (announcing this one here too would announce it twice).
    pub fn publish(&self, event: Event) {
        match event {
            Event::Posted { .. } => self.poke.notify_one(),
            Event::Deleted { .. } if self.db.get_database_backend() == DbBackend::MySql => {
                self.poke.notify_one();
            }
            event => self.enqueue(event),
        }
    }

    /// Queues `event` for [`Hub::deliver_in_order`]; when the queue is full the event is dropped
    /// and every stream reads for itself.
    fn enqueue(&self, event: Event) {
        if self.open_streams() == 0 {
            return;
        }
        if self.queue.try_send(event).is_err() {
            tracing::warn!("the stream events' queue is full: every stream reads for itself");
            self.wake_all();
        }
    }

    /// Hands the queued events to the streams they concern, in the order they were queued, for as
    /// long as the process runs: up to [`READYING_AT_ONCE`] are made ready (read from the
    /// database) at once, and each is handed over only after those before it. The writers are
    /// never held: this runs after their commits.
    pub async fn deliver_in_order(self: Arc<Self>) {
        use futures_util::StreamExt;
        let Some(queued) = self.queued.lock().ok().and_then(|mut queued| queued.take()) else {
            return;
        };
        let events = futures_util::stream::unfold(queued, |mut queued| async move {
            queued.recv().await.map(|event| (event, queued))
        });
        let hub = &self;
        events
            .map(|event| async move {
                let ready = hub.make_ready(&event).await;
                (event, ready)
            })
            .buffered(READYING_AT_ONCE)
            .for_each(|(event, ready)| async move {
                match ready {
                    Ok(ready) => hub.hand_over(ready),
                    Err(err) => {
                        tracing::warn!(error = %err, ?event, "could not deliver an event to the streams");
                        if matches!(event, Event::Posted { .. }) {
                            hub.wake_all();
                        }
                    }
                }
            })
            .await;
    }

    /// Reads what the streams need of `event`: a post with its readers' relationships to its
    /// author (one query for the post, one per 500 connected users), or who is concerned.
    async fn make_ready(&self, event: &Event) -> Result<Ready, ApiError> {
        Ok(match *event {
            Event::Posted { author, post } => {
                let post = match posts_service::find(&self.db, post).await {
                    Ok(post) if post.author.id == author => post,
                    // Deleted meanwhile, or its author suspended: nothing to show.
                    Ok(_) | Err(ApiError::PostNotFound(_)) => return Ok(Ready::Nothing),
                    Err(err) => return Err(err),
                };
                let readers = self.readers_of(author).await?;
                Ready::Post(Arc::new(post), readers)
            }
            Event::Deleted { author, post } => {
                let readers = self.readers_of(author).await?;
                Ready::Deleted(
                    readers.into_iter().map(|(reader, _)| reader).collect(),
                    post,
                )
            }
            ref event => Ready::Other(event.clone()),
        })
    }

    fn hand_over(&self, ready: Ready) {
        match ready {
            Ready::Post(post, readers) => {
                let Ok(streams) = self.streams.lock() else {
                    return;
                };
                for (reader, relation) in readers {
                    for slot in streams.get(&reader).into_iter().flatten() {
                        slot.give_post(post.clone(), relation);
                    }
                }
            }
            Ready::Deleted(users, post) => {
                for slot in self.slots_of(&users) {
                    slot.give_deleted(post);
                }
            }
            Ready::Other(Event::Notified { recipient }) => {
                for slot in self.slots_of(&[recipient]) {
                    slot.wake(Look::NOTIFICATIONS);
                }
            }
            Ready::Other(Event::Ended { user }) => {
                for slot in self.slots_of(&[user]) {
                    slot.end();
                }
            }
            Ready::Other(Event::SessionEnded { session }) => self.each_slot(|_, slot| {
                if slot.session == session {
                    slot.end();
                }
            }),
            Ready::Other(_) | Ready::Nothing => {}
        }
    }

    /// The users connected here on whose timeline `author`'s posts belong (`timeline::shows`),
    /// each with their relationship to the author: one query per 500 connected users
    /// (`relationships::viewers_of`), index probes whatever the author's following.
    async fn readers_of(&self, author: i64) -> Result<Vec<(i64, Relation)>, ApiError> {
        let mut readers = Vec::new();
        for chunk in self.connected_users().chunks(500) {
            let relations = relationships::viewers_of(&self.db, chunk, author).await?;
            readers.extend(
                relations
                    .into_iter()
                    .filter(|(reader, relation)| timeline::shows(*reader, author, relation)),
            );
        }
        Ok(readers)
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

/// MySQL/MariaDB and SQLite: reads the posts written since the last look, by position (which is
/// given in commit order, so none is passed over and they come in the timeline's order), and
/// queues them for the streams: at once when a request of this process wrote one
/// ([`Hub::publish`]), and every [`POLL_INTERVAL`] for other processes' posts, while any stream is
/// open. With `other_processes` (MySQL/MariaDB, where other processes write too) it also reads
/// the notifications and the posts' deletions (`post_deletions`, written by [`emit`]) of the last
/// few seconds, wakes the streams the notifications concern and queues the deletions (each one
/// once). Ended sessions are [`sweep`]'s.
pub async fn poll_for_posts(hub: Arc<Hub>, db: DatabaseConnection, other_processes: bool) {
    let mut posts_seen: Option<Position> = None;
    let mut notifications_seen = IdWindow::default();
    let mut deletions_seen = IdWindow::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = hub.poke.notified() => {}
        }
        if hub.open_streams() == 0 {
            posts_seen = None;
            continue;
        }
        let looked = poll_once(
            &hub,
            &db,
            posts_seen,
            other_processes.then_some((&mut notifications_seen, &mut deletions_seen)),
        );
        match looked.await {
            Ok(position) => posts_seen = position,
            Err(err) => {
                tracing::warn!(error = %err, "could not poll for stream events");
                // Whatever was written meanwhile: every stream reads for itself.
                posts_seen = None;
            }
        }
    }
}

/// How many polls back notifications are read again: an insert that commits up to this many
/// intervals after a newer one is still seen.
const NOTIFICATION_POLLS_REREAD: usize = 50;

/// The rows (notifications, post deletions) a poller has read in its last
/// [`NOTIFICATION_POLLS_REREAD`] looks: ids are given at insert, not at commit, so a look reads
/// again from the newest id of that many looks ago, and acts only on the ids it has not seen.
#[derive(Default)]
struct IdWindow {
    /// The newest id of each of the last looks, oldest first.
    newest: VecDeque<i64>,
    /// The ids seen above the oldest of those.
    seen: HashSet<i64>,
}

impl IdWindow {
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

/// How long a `post_deletions` row is kept for other processes' pollers.
pub const DELETIONS_KEPT: Duration = Duration::from_secs(600);

/// How many new posts one look reads; it looks again at once when there were more.
const POSTS_PER_LOOK: u64 = 1_000;

async fn poll_once(
    hub: &Arc<Hub>,
    db: &DatabaseConnection,
    posts_seen: Option<Position>,
    other_processes: Option<(&mut IdWindow, &mut IdWindow)>,
) -> Result<Option<Position>, ApiError> {
    let backend = db.get_database_backend();
    let Some(mut seen) = posts_seen else {
        // The first look: start from the newest post and notification.
        let newest: Option<(i64, i64)> = post::Entity::find()
            .select_only()
            .columns([post::Column::CreatedAt, post::Column::Id])
            .order_by_desc(post::Column::CreatedAt)
            .order_by_desc(post::Column::Id)
            .into_tuple()
            .one(db)
            .await?;
        if let Some((notifications_seen, deletions_seen)) = other_processes {
            let newest_notification: Option<i64> = notification::Entity::find()
                .select_only()
                .column(notification::Column::Id)
                .order_by_desc(notification::Column::Id)
                .into_tuple()
                .one(db)
                .await?;
            notifications_seen.restart_at(newest_notification.unwrap_or(0));
            let newest_deletion: Option<i64> = post_deletion::Entity::find()
                .select_only()
                .column(post_deletion::Column::Id)
                .order_by_desc(post_deletion::Column::Id)
                .into_tuple()
                .one(db)
                .await?;
            deletions_seen.restart_at(newest_deletion.unwrap_or(0));
        }
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
    loop {
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
            .limit(POSTS_PER_LOOK)
            .into_tuple()
            .all(db)
            .await?;
        for (at, id, author) in &new_posts {
            hub.enqueue(Event::Posted {
                author: *author,
                post: *id,
            });
            seen = Position { at: *at, id: *id };
        }
        if (new_posts.len() as u64) < POSTS_PER_LOOK {
            break;
        }
    }
    if let Some((notifications_seen, deletions_seen)) = other_processes {
        let deleted: HashMap<i64, (i64, i64)> = post_deletion::Entity::find()
            .select_only()
            .columns([
                post_deletion::Column::Id,
                post_deletion::Column::PostId,
                post_deletion::Column::AuthorId,
            ])
            .filter(post_deletion::Column::Id.gt(deletions_seen.floor()))
            .limit(10_000)
            .into_tuple::<(i64, i64, i64)>()
            .all(db)
            .await?
            .into_iter()
            .map(|(id, post, author)| (id, (post, author)))
            .collect();
        let mut fresh = deletions_seen.look(deleted.keys().copied());
        fresh.sort_unstable();
        for id in fresh {
            if let Some(&(post, author)) = deleted.get(&id) {
                hub.enqueue(Event::Deleted { author, post });
            }
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
            hub.enqueue(Event::Notified { recipient });
        }
    }
    Ok(Some(seen))
}

/// Ends the streams whose sessions ended in another process, for backends where that event does
/// not reach every process (MySQL/MariaDB): every 15 seconds, one primary-key query per 500 open
/// sessions. (A suspension expires the sessions and an account's removal deletes them, so this
/// covers both.) It also removes the `post_deletions` rows older than [`DELETIONS_KEPT`], which
/// every poller has read long before (they read a few seconds back).
pub async fn sweep(hub: Arc<Hub>, db: DatabaseConnection) {
    loop {
        tokio::time::sleep(Duration::from_secs(15)).await;
        let kept_since = crate::time::now_millis()
            - i64::try_from(DELETIONS_KEPT.as_millis()).unwrap_or(i64::MAX);
        if let Err(err) = post_deletion::Entity::delete_many()
            .filter(post_deletion::Column::DeletedAt.lt(kept_since))
            .exec(&db)
            .await
        {
            tracing::warn!(error = %err, "could not remove old post deletions");
        }
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

    fn post_by(author: i64, id: i64) -> Arc<PostWithAuthor> {
        Arc::new(PostWithAuthor {
            post: post::Model {
                id,
                author_id: author,
                body: format!("post {id}"),
                created_at: id,
            },
            author: crate::services::users::sample(author),
        })
    }

    #[test]
    fn an_inbox_keeps_posts_in_order_up_to_its_limit_then_asks_for_a_read() {
        let slot = Slot::default();
        for id in 1..=3 {
            slot.give_post(post_by(1, id), Relation::default());
        }
        let inbox = slot.take().unwrap();
        let ids: Vec<i64> = inbox.posts.iter().map(|(p, _)| p.post.id).collect();
        assert_eq!(ids, vec![1, 2, 3]);
        assert_eq!(inbox.look, Look::default());
        assert!(slot.take().unwrap().posts.is_empty(), "taken once");

        let limit = i64::try_from(MAX_PENDING_POSTS).unwrap();
        for id in 1..=limit {
            slot.give_post(post_by(1, id), Relation::default());
        }
        let inbox = slot.take().unwrap();
        assert_eq!(
            inbox.posts.len(),
            MAX_PENDING_POSTS,
            "the limit itself is kept"
        );
        assert!(!inbox.look.posts);
        for id in 1..=limit + 1 {
            slot.give_post(post_by(1, id), Relation::default());
        }
        let inbox = slot.take().unwrap();
        assert!(inbox.posts.is_empty(), "one past it: none kept");
        assert!(inbox.look.posts, "and the stream reads for itself");
        slot.wake(Look::EVERYTHING);
        slot.give_post(post_by(1, 9), Relation::default());
        assert!(
            slot.take().unwrap().posts.is_empty(),
            "a stream that reads anyway is given nothing"
        );
    }

    #[test]
    fn an_inbox_with_too_many_deletions_ends_its_stream() {
        let slot = Slot::default();
        for id in 0..i64::try_from(MAX_PENDING_DELETIONS).unwrap() {
            slot.give_deleted(id);
        }
        assert_eq!(slot.take().unwrap().deleted.len(), MAX_PENDING_DELETIONS);
        for id in 0..=i64::try_from(MAX_PENDING_DELETIONS).unwrap() {
            slot.give_deleted(id);
        }
        assert!(slot.take().is_none());
    }

    #[test]
    fn a_notification_window_reads_again_but_wakes_once_per_id() {
        let mut window = IdWindow::default();
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
        ] {
            assert_eq!(Event::decode(&event.encode()), Some(event));
        }
        for junk in [
            "", "p", "p x", "p 1", "p 1 2 3", "x 1", "d 1", "s", "s ", "s a b",
        ] {
            assert_eq!(Event::decode(junk), None, "{junk}");
        }
    }
}
