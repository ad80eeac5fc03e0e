//! The poller: on every backend it finds posts and reposts by position; on backends without a
//! notification channel (MySQL/MariaDB, SQLite: [`Transport::Poll`](super::Transport::Poll)) where
//! other processes write too, also their notifications and deleted posts by id (`IdWindow`); [`sweep`]
//! ends the streams of sessions ended elsewhere. What they read, they read through
//! [`crate::services::stream_sources`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::error::ApiError;
use crate::events::{Event, Hub};
use crate::services::keyset::Position;
use crate::services::stream_sources::{self, NewEntry};

/// How often a MySQL/MariaDB process looks for other processes' posts, notifications and
/// deletions. Each look is index-range reads that find nothing most of the time: 1,000 looks of
/// the first two took 0.19 s of a client's time on the benchmark's MariaDB (2 million posts), so
/// ten a second cost some 2 ms of the database's time per second and process; the third, of the
/// few rows of `post_deletions`, adds a primary-key range read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Every backend: reads the posts and reposts written since the last look, by position, up to the
/// posts' horizon (so none is passed over, and they come in the timeline's order), and
/// queues them for the streams: at once when a request of this process wrote one
/// ([`Hub::publish`]), and every [`POLL_INTERVAL`] for other processes' posts, while any stream is
/// open. Where other processes write too (MySQL/MariaDB:
/// [`super::Transport::polls_other_processes`]) it also reads the notifications and the posts'
/// deletions (`post_deletions`, written by the deletion: [`crate::services::posts::delete`]) of
/// the last few seconds, wakes the streams the notifications concern and queues the deletions
/// (each one once). Ended sessions are [`sweep`]'s.
pub async fn poll_for_posts(hub: Arc<Hub>, db: DatabaseConnection) {
    let other_processes = hub.transport().polls_other_processes();
    let mut posts_seen: Option<Position> = None;
    let mut notifications_seen = IdWindow::default();
    let mut deletions_seen = IdWindow::default();
    let mut markers_seen = MarkerWindow::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = hub.poked() => {}
        }
        if hub.open_streams() == 0 {
            posts_seen = None;
            continue;
        }
        let looked = poll_once(
            &hub,
            &db,
            posts_seen,
            other_processes.then_some((
                &mut notifications_seen,
                &mut deletions_seen,
                &mut markers_seen,
            )),
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

/// How far back, in milliseconds, a look reads the markers moved: a move that commits up to this
/// long after it was made is still seen.
const MARKERS_REREAD_MS: i64 = 5_000;

/// The marker moves (`(user, changed_at)`) a poller has seen in the last [`MARKERS_REREAD_MS`].
#[derive(Default)]
struct MarkerWindow {
    seen: HashSet<(i64, i64)>,
}

impl MarkerWindow {
    /// Notes a look's moves at `now`; the users of the ones not seen before.
    fn look(&mut self, now: i64, moved: Vec<(i64, i64)>) -> Vec<i64> {
        self.seen
            .retain(|(_, changed_at)| *changed_at > now - MARKERS_REREAD_MS);
        let mut users: Vec<i64> = moved
            .into_iter()
            .filter(|moved| self.seen.insert(*moved))
            .map(|(user, _)| user)
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }
}

/// How long a `post_deletions` row is kept for other processes' pollers.
pub const DELETIONS_KEPT: Duration = Duration::from_secs(600);

/// How many new posts one look reads; it looks again at once when there were more.
const POSTS_PER_LOOK: u64 = 1_000;

/// How many notifications, and how many post deletions, one look reads at most.
const IDS_PER_LOOK: u64 = 10_000;

async fn poll_once(
    hub: &Arc<Hub>,
    db: &DatabaseConnection,
    posts_seen: Option<Position>,
    other_processes: Option<(&mut IdWindow, &mut IdWindow, &mut MarkerWindow)>,
) -> Result<Option<Position>, ApiError> {
    let Some(mut seen) = posts_seen else {
        // The first look: start from the newest post and notification.
        let newest = stream_sources::newest_entry(db).await?;
        if let Some((notifications_seen, deletions_seen, _)) = other_processes {
            let newest_notification = stream_sources::newest_notification_id(db).await?;
            notifications_seen.restart_at(newest_notification.unwrap_or(0));
            let newest_deletion = stream_sources::newest_deletion_id(db).await?;
            deletions_seen.restart_at(newest_deletion.unwrap_or(0));
        }
        // Whatever was written between the streams' opening and this first look is behind the
        // starting point: every stream looks once for itself.
        hub.wake_all();
        return Ok(Some(newest.unwrap_or(Position {
            at: i64::MIN,
            id: i64::MIN,
        })));
    };
    loop {
        let new_posts = stream_sources::entries_since(db, seen, POSTS_PER_LOOK).await?;
        for &entry in &new_posts {
            match entry {
                NewEntry::Writing { at, author } => {
                    hub.enqueue(Event::Posted {
                        author,
                        post: at.id,
                    });
                    seen = at;
                }
                NewEntry::Repost { at, reposter } => {
                    hub.enqueue(Event::Reposted {
                        reposter,
                        post: at.id,
                    });
                    seen = at;
                }
            }
        }
        if (new_posts.len() as u64) < POSTS_PER_LOOK {
            break;
        }
    }
    if let Some((notifications_seen, deletions_seen, markers_seen)) = other_processes {
        let connected: HashSet<i64> = hub.connected_users().into_iter().collect();
        // Markers moved in any process: the streams of their users look (each sends the markers
        // only when they changed since it last looked, by another session than its own).
        let now = crate::time::now_millis();
        let moved =
            stream_sources::markers_changed_since(db, now - MARKERS_REREAD_MS, IDS_PER_LOOK)
                .await?;
        for user in markers_seen.look(now, moved) {
            if connected.contains(&user) {
                hub.wake_markers(user);
            }
        }
        let deleted: HashMap<i64, (i64, i64)> =
            stream_sources::deletions_since(db, deletions_seen.floor(), IDS_PER_LOOK)
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
        let recipients: HashMap<i64, i64> = stream_sources::notification_recipients_since(
            db,
            notifications_seen.floor(),
            IDS_PER_LOOK,
        )
        .await?
        .into_iter()
        .collect();
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
        if let Err(err) = stream_sources::remove_deletions_before(&db, kept_since).await {
            tracing::warn!(error = %err, "could not remove old post deletions");
        }
        let open = hub.open_sessions();
        for chunk in open.chunks(500) {
            let live = stream_sources::live_sessions_among(&db, chunk).await;
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
}
