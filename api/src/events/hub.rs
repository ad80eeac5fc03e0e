//! The open streams of this process ([`Hub`]), each with its mailbox ([`Slot`], [`Inbox`]), and
//! their places among a user's streams, counted here and, with `REDIS_URL`, across replicas by
//! leases ([`Hub::open`], [`Hub::renew_leases`], [`Hub::shut_down`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::{Notify, mpsc};

use super::Event;
use super::Transport;
use crate::rate_limit::Shared;
use crate::services::posts::PostWithAuthor;
use crate::services::relationships::Relation;

/// How many deleted posts a stream keeps for its client; a client that lets more pile up is
/// disconnected (it reconnects and reloads).
const MAX_PENDING_DELETIONS: usize = 256;

/// How many new posts a stream keeps for its client while it is busy writing; past it the stream
/// reads its timeline for itself once it can.
const MAX_PENDING_POSTS: usize = 64;

/// How many events may wait to be made ready; past it they are dropped and every stream reads for
/// itself.
const QUEUED_EVENTS: usize = 4_096;

/// How long a stream's place in Redis outlives its last renewal (`REDIS_URL`): renewed every third
/// of it, so a replica that dies without closing its streams frees their places within a minute.
pub const LEASE_TTL: Duration = Duration::from_secs(60);

/// One open stream's mailbox: a wake-up, its [`Inbox`], and whether it has to end.
#[derive(Default)]
pub struct Slot {
    /// The session that opened the stream.
    pub(super) session: String,
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
    /// Its user's markers, which another session moved (or may have).
    pub markers: bool,
}

impl Slot {
    /// Wakes the stream to read what `look` says (added to what it already had to).
    pub fn wake(&self, look: Look) {
        self.with_inbox(|inbox| {
            inbox.look.posts |= look.posts;
            inbox.look.notifications |= look.notifications;
            inbox.look.markers |= look.markers;
        });
        self.wake.notify_one();
    }

    /// Hands the stream a new post for its timeline. A stream that lets more than
    /// [`MAX_PENDING_POSTS`] pile up gets none of them, and reads its timeline instead.
    pub(super) fn give_post(&self, post: Arc<PostWithAuthor>, relation: Relation) {
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

    pub(super) fn give_deleted(&self, post: i64) {
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

    pub(super) fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

impl Look {
    pub const EVERYTHING: Look = Look {
        posts: true,
        notifications: true,
        markers: true,
    };
    pub(super) const POSTS: Look = Look {
        posts: true,
        notifications: false,
        markers: false,
    };
    pub(super) const NOTIFICATIONS: Look = Look {
        posts: false,
        notifications: true,
        markers: false,
    };
    pub(super) const MARKERS: Look = Look {
        posts: false,
        notifications: false,
        markers: true,
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
    /// How events reach this process ([`Transport::of`] its database's backend).
    transport: Transport,
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
    /// Asks the poller ([`crate::events::transport::poll::poll_for_posts`]) to look now.
    poke: Notify,
    /// The sessions this process has seen live, which the events that end sessions update.
    sessions: super::LiveSessions,
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
        transport: Transport,
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
            transport,
            streams: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            max_open,
            per_user,
            shared,
            process: uuid::Uuid::new_v4().simple().to_string(),
            leases_given: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
            sessions: super::LiveSessions::for_transport(transport),
        })
    }

    /// The sessions this process has seen live ([`super::LiveSessions`]).
    pub fn sessions(&self) -> &super::LiveSessions {
        &self.sessions
    }

    /// An event heard on the bus (PostgreSQL's LISTEN): the sessions it ends are forgotten at
    /// once, before it waits its turn among the streams' events, and the bus is known to be up.
    pub fn heard(&self, event: Event) {
        self.sessions.forget(&event);
        self.sessions.bus_heard(crate::time::now_millis());
        self.sessions.echo(&event);
        if event != Event::Probe {
            self.enqueue(event);
        }
    }

    /// The bus's connection was lost: events may have been missed. Every stream reads for
    /// itself, and sessions are read from the database until the bus is heard again.
    pub fn listener_lost(&self) {
        self.sessions.bus_lost();
        self.wake_all();
    }

    /// How events reach this process.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The database the hub reads what it delivers from.
    pub(super) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The queue of events for [`Hub::deliver_in_order`], taken once.
    pub(super) fn take_queue(&self) -> Option<mpsc::Receiver<Event>> {
        self.queued.lock().ok().and_then(|mut queued| queued.take())
    }

    /// Waits until the poller is asked to look now ([`Hub::publish`]).
    pub(super) async fn poked(&self) {
        self.poke.notified().await;
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

    pub(super) fn each_slot(&self, mut f: impl FnMut(i64, &Slot)) {
        if let Ok(streams) = self.streams.lock() {
            for (user, slots) in streams.iter() {
                for slot in slots {
                    f(*user, slot);
                }
            }
        }
    }

    pub(super) fn slots_of(&self, users: &[i64]) -> Vec<Arc<Slot>> {
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
    pub(super) fn open_sessions(&self) -> Vec<String> {
        let mut sessions = Vec::new();
        self.each_slot(|_, slot| sessions.push(slot.session.clone()));
        sessions.sort_unstable();
        sessions.dedup();
        sessions
    }

    /// Wakes `user`'s streams to look at the markers (a poller saw them move in some process).
    pub(super) fn wake_markers(&self, user: i64) {
        for slot in self.slots_of(&[user]) {
            slot.wake(Look::MARKERS);
        }
    }

    pub(super) fn connected_users(&self) -> Vec<i64> {
        self.streams
            .lock()
            .map(|streams| streams.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Calls `f` with each open stream of each of `users`, and the value given with that user,
    /// holding the streams' lock once.
    pub(super) fn each_slot_of<T>(
        &self,
        users: impl IntoIterator<Item = (i64, T)>,
        mut f: impl FnMut(&Slot, &T),
    ) {
        let Ok(streams) = self.streams.lock() else {
            return;
        };
        for (user, value) in users {
            for slot in streams.get(&user).into_iter().flatten() {
                f(slot, &value);
            }
        }
    }

    /// Hands the event of a request's committed write to the streams (where the transport sends
    /// events at commit, [`Transport::Notify`], only posts and reposts come here: the others come
    /// back through [`crate::events::transport::notify::listen_postgres`]). A post is left to the
    /// poller ([`crate::events::transport::poll::poll_for_posts`]), which is asked to look at
    /// once: only it sees posts in their positions' order, up to the horizon. So is a deleted post where the transport records
    /// deletions ([`Transport::records_deletions`], MySQL/MariaDB), where the poller finds every
    /// process's deletions (announcing this one here too would announce it twice).
    ///
    /// The sessions an event ends are forgotten here on every transport, before the request
    /// answers; on [`Transport::Notify`] that is all (the streams get the event from the bus).
    pub fn publish(&self, event: Event) {
        self.sessions.forget(&event);
        match event {
            event if event.found_by_position() => self.poke.notify_one(),
            _ if self.transport.sends_at_commit() => {}
            Event::Deleted { .. } if self.transport.records_deletions() => {
                self.poke.notify_one();
            }
            event => self.enqueue(event),
        }
    }

    /// Queues `event` for [`Hub::deliver_in_order`]; when the queue is full the event is dropped
    /// and every stream reads for itself.
    pub(super) fn enqueue(&self, event: Event) {
        if self.open_streams() == 0 {
            return;
        }
        if self.queue.try_send(event).is_err() {
            tracing::warn!("the stream events' queue is full: every stream reads for itself");
            self.wake_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post_by(author: i64, id: i64) -> Arc<PostWithAuthor> {
        Arc::new(PostWithAuthor {
            post: entity::post::Model {
                id,
                author_id: author,
                body: format!("post {id}"),
                created_at: id,
                in_reply_to_id: None,
                parent_id: None,
                parent_author_id: None,
                replies_count: 0,
                likes_count: 0,
                reposts_count: 0,
            },
            author: crate::services::users::sample(author),
            parent_author: None,
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
}
