//! Delivery: the hub's queued events, made ready once for all the streams they concern (the post
//! read, its readers' relationships to its author), handed over in the order they were queued.

use std::sync::Arc;

use super::Event;
use super::hub::{Hub, Look};
use crate::error::ApiError;
use crate::services::posts::{self as posts_service, PostWithAuthor};
use crate::services::relationships::{self, Relation};
use crate::services::timeline;

/// How many events are made ready for the streams at once (each a query or two), while they are
/// handed over one at a time, in the order they came.
const READYING_AT_ONCE: usize = 8;

/// An event made ready for the streams ([`Hub::make_ready`]).
enum Ready {
    /// A new post, and those connected here on whose timeline it belongs, each with their
    /// relationship to its author.
    Post(Arc<PostWithAuthor>, Vec<(i64, Relation)>),
    /// A repost, and the connected users on whose timelines it may be a new entry: each reads its
    /// timeline for itself (the one place that decides what a timeline holds, which knows whether
    /// the post shows there, and at which entry).
    Reposted(Vec<i64>),
    /// A deleted post, and the connected users who may have seen it.
    Deleted(Vec<i64>, i64),
    /// An event that needs nothing read.
    Other(Event),
    /// Nothing to deliver.
    Nothing,
}

impl Hub {
    /// Hands the queued events to the streams they concern, in the order they were queued, for as
    /// long as the process runs: up to [`READYING_AT_ONCE`] are made ready (read from the
    /// database) at once, and each is handed over only after those before it. The writers are
    /// never held: this runs after their commits.
    pub async fn deliver_in_order(self: Arc<Self>) {
        use futures_util::StreamExt;
        let Some(queued) = self.take_queue() else {
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
                        if event.found_by_position() {
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
                let post = match posts_service::find(self.db(), post).await {
                    Ok(post) if post.author.id == author => post,
                    // Deleted meanwhile, or its author suspended: nothing to show.
                    Ok(_) | Err(ApiError::PostNotFound(_)) => return Ok(Ready::Nothing),
                    Err(err) => return Err(err),
                };
                let readers = self.readers_of(author, post.post.parent_author_id).await?;
                Ready::Post(Arc::new(post), readers)
            }
            Event::Reposted { reposter, .. } => {
                let mut readers = Vec::new();
                for chunk in self.connected_users().chunks(500) {
                    let relations = relationships::viewers_of(self.db(), chunk, reposter).await?;
                    readers.extend(relations.into_iter().filter_map(|(reader, relation)| {
                        timeline::sees_entries_of(reader, reposter, &relation).then_some(reader)
                    }));
                }
                Ready::Reposted(readers)
            }
            Event::Deleted { author, post } => {
                let readers = self.readers_of(author, None).await?;
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
                self.each_slot_of(readers, |slot, relation| {
                    slot.give_post(post.clone(), *relation);
                });
            }
            Ready::Reposted(users) => {
                for slot in self.slots_of(&users) {
                    slot.wake(Look::POSTS);
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
            Ready::Other(Event::Marked { user, session }) => {
                for slot in self.slots_of(&[user]) {
                    if slot.session != session {
                        slot.wake(Look::MARKERS);
                    }
                }
            }
            Ready::Other(_) | Ready::Nothing => {}
        }
    }

    /// The users connected here on whose timeline `author`'s post belongs (`timeline::shows`),
    /// each with their relationship to the author: one query per 500 connected users
    /// (`relationships::viewers_of`), index probes whatever the author's following; a reply to a
    /// post by `parent_author` (another account) takes one more for their relationships to them.
    async fn readers_of(
        &self,
        author: i64,
        parent_author: Option<i64>,
    ) -> Result<Vec<(i64, Relation)>, ApiError> {
        let mut readers = Vec::new();
        for chunk in self.connected_users().chunks(500) {
            let relations = relationships::viewers_of(self.db(), chunk, author).await?;
            let to_parent = match parent_author {
                Some(parent) if parent != author => {
                    Some(relationships::viewers_of(self.db(), chunk, parent).await?)
                }
                _ => None,
            };
            readers.extend(relations.into_iter().filter(|(reader, relation)| {
                let reply_to = parent_author.map(|parent| {
                    let parent_relation = to_parent
                        .as_ref()
                        .and_then(|all| all.get(reader))
                        .unwrap_or(relation);
                    (parent, parent_relation)
                });
                timeline::shows(*reader, author, relation, reply_to)
            }));
        }
        Ok(readers)
    }
}
