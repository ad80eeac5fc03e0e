//! The event stream: `GET /stream` (Server-Sent Events) and `POST /stream/ticket`.
//!
//! Each open stream is a task that holds two cursors, one in the caller's timeline and one in
//! their notifications, and sleeps until [`crate::events`] gives it something: new posts for its
//! timeline, in commit order, each with the caller's relationship to its author (shown at once if
//! past the cursor), or word to read for itself past a cursor with the lists' own queries
//! (`newer_than`, whose positions are given in commit order), as it does at its opening, on a
//! replay, and whenever an event may have been missed. So a stream sees exactly what the timeline
//! shows (mutes, blocks, locked accounts and suspensions included), never skips a post that
//! commits late, and never repeats one; a reconnect with `Last-Event-ID` starts its timeline
//! cursor there. The task writes into a channel of [`BUFFERED_CHUNKS`]; a client that leaves it
//! full for `Settings::stream_slow_client_timeout` loses its connection (it reconnects
//! with `Last-Event-ID`), so it never holds more of the server's memory than that.

use std::rc::Rc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::Bytes;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use entity::user;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{self, AuthUser, CurrentSession};
use crate::connection::Disconnect;
use crate::error::ApiError;
use crate::events::{Inbox, Look, Refusal, Registration};
use crate::http_cache::RoutedAsGet;
use crate::services::keyset::{PageRequest, Position};
use crate::services::posts::PostWithAuthor;
use crate::services::relationships::Relation;
use crate::services::timeline::Entry;
use crate::services::{clock, markers, notifications, posts, sessions, timeline};
use crate::state::AppState;
use crate::views;

/// How often a comment line goes out on a stream that has nothing else to say.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How many chunks (up to a batch of posts each, some 100 KB at most) wait for a slow client
/// before the stream stops reading: with actix-http's own write buffer, what a stream whose client
/// does not read can hold of the server's memory.
const BUFFERED_CHUNKS: usize = 2;

/// How many missed posts a reconnect replays; past it the client gets `event: reset`.
pub const MAX_REPLAY: usize = 1_000;

/// Posts read per query while catching up.
const BATCH: u64 = 100;

/// The start of every list: older than anything.
const ORIGIN: Position = Position {
    at: i64::MIN,
    id: i64::MIN,
};

/// A credential for `GET /stream?ticket=...`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTicket {
    /// Valid only as the `ticket` parameter of `GET /stream`, for `expires_in` seconds.
    pub ticket: String,
    #[schema(example = 60)]
    pub expires_in: u64,
}

/// Issues a stream ticket: browsers' `EventSource` cannot send an `Authorization` header.
#[utoipa::path(post, path = "/stream/ticket", tag = "stream", operation_id = "createStreamTicket",
    responses(
        (status = 201, description = "A ticket for `GET /stream?ticket=...`, valid for {TICKET_TTL_SECONDS} seconds", body = StreamTicket),
    ),
    security(("bearer" = [])))]
pub async fn create_ticket(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(StreamTicket {
            ticket: state
                .tokens
                .issue_ticket(me.0.id, &CurrentSession::of(&req)?)?,
            expires_in: crate::auth::TICKET_TTL_SECONDS,
        }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// A ticket from `POST /stream/ticket`, instead of the `Authorization` header. It must open
    /// a stream within {TICKET_TTL_SECONDS} seconds of its issue; a ticket that did may open it
    /// again (as `EventSource` does by itself after a drop) for as long as its session lives.
    #[param(min_length = 1)]
    pub ticket: Option<String>,
    /// As the `Last-Event-ID` header, for a new `EventSource` (which cannot send it): the `id`
    /// of the last `post` event seen. The header wins when both are sent.
    #[param(min_length = 1)]
    pub last_event_id: Option<String>,
}

/// The caller's live events, as Server-Sent Events.
///
/// `event: post` (`id` is the post's timeline cursor, `data` a Post) for each post that belongs on
/// the caller's timeline, `event: post_deleted` (`data: {"id"}`), `event: notification` (`data` a
/// Notification), `event: marker` (`data` the caller's Markers, when another session of the caller
/// moved one), and a `: keep-alive` comment at least every {KEEP_ALIVE_SECONDS} seconds. With `Last-Event-ID`
/// (the `id` of the last `post` seen) the timeline posts since then come first, oldest first,
/// or `event: reset` when more than {MAX_REPLAY} were missed.
#[utoipa::path(get, path = "/stream", tag = "stream", operation_id = "openStream",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last `post` event received: the posts since then are sent first"),
    ),
    responses(
        (status = 200, description = "The event stream: it ends with its session (logout, expiry, suspension, removal), when the client reads too slowly, or at the server's shutdown; the client reconnects with `Last-Event-ID`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_cursor`: `Last-Event-ID` (or `last_event_id`) is not an id this stream sent"),
        (status = 429, description = "`too_many_streams`: the caller has {STREAMS_PER_USER} streams open already; retry after `Retry-After` seconds",
            headers(("Retry-After" = u64, description = "Seconds to wait before opening another stream"))),
    ),
    security(("bearer" = []), ("ticket" = [])))]
pub async fn open_stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let me = auth::stream_caller(&req, query.ticket.as_deref()).await?;
    let list_name = timeline::list_name(me.id);
    let last_seen = match req.headers().get("last-event-id") {
        Some(value) => Some(value.to_str().map_err(|_| ApiError::InvalidCursor)?),
        None => query.last_event_id.as_deref(),
    };
    let last_seen = last_seen
        .map(|cursor| state.cursors.decode(&list_name, cursor.trim()))
        .transpose()?;
    let session = CurrentSession::of(&req)?;
    let registration = state
        .hub
        .open(me.id, &session)
        .await
        .map_err(|refusal| match refusal {
            Refusal::TooManyForUser => ApiError::TooManyStreams {
                limit: state.hub.per_user(),
            },
            Refusal::Full => ApiError::StreamsFull,
        })?;
    if req.extensions().contains::<RoutedAsGet>() {
        // A HEAD answers what the GET would (a 429 too, when the caller has no place left),
        // without a body, and holds nothing: the place goes back at once, and no task starts.
        drop(registration);
        return Ok(event_stream().finish());
    }
    let stream = Stream::start(&state, &me, &session, last_seen).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFERED_CHUNKS);
    // On this worker's own thread: the stream's queries borrow across awaits in ways `Send` cannot
    // name, and a stream has no reason to move.
    let disconnect = req.conn_data::<Disconnect>().cloned();
    actix_web::rt::spawn(stream.run(state.into_inner(), registration, tx, disconnect));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok(event_stream().streaming(body))
}

/// The head of a stream's answer (and of a `HEAD /stream`).
fn event_stream() -> actix_web::HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        // Asks proxies such as nginx not to hold events back.
        .insert_header(("x-accel-buffering", "no"));
    response
}

/// An open stream's cursors.
struct Stream {
    /// The caller's row as it was at the opening: its end (suspension, removal) comes as an event.
    /// Shared with the task's loop, which lends it to each catch-up (one copy per stream).
    me: Rc<user::Model>,
    timeline: Position,
    notifications: Position,
    /// Whether the first wake-up replays from `Last-Event-ID` (and may answer `reset`).
    replaying: bool,
    /// The session that opened the stream, and when it expires: the stream ends with it (an
    /// ended session's event ends it at once; an expiry is noticed when it comes, and a refresh
    /// that moved it meanwhile keeps the stream open).
    session: String,
    expires_at: i64,
    /// The versions of the markers this stream has seen (sent, or moved by its own session).
    markers_seen: (i64, i64),
}

/// Why a stream stops.
enum Stop {
    /// The client is gone, too slow, or the stream was ended.
    Closed,
    Failed(ApiError),
}

impl From<ApiError> for Stop {
    fn from(err: ApiError) -> Self {
        Stop::Failed(err)
    }
}

impl Stream {
    /// The cursors of a new stream: from `last_seen` in the timeline, else from the posts'
    /// horizon (every entry at or below it shows already, and every one still to show lies above
    /// it: the stream sends what the timeline shows from its opening on, without reading the
    /// timeline to find its newest entry); from the newest notification.
    async fn start(
        state: &AppState,
        me: &user::Model,
        session: &str,
        last_seen: Option<Position>,
    ) -> Result<Self, ApiError> {
        let expires_at =
            sessions::expires_at(&state.db, session)
                .await?
                .ok_or(ApiError::Unauthorized(
                    "the session of this access token has ended: log in again, or refresh",
                ))?;
        let timeline = match last_seen {
            Some(position) => position,
            None => Position {
                at: clock::read_posts_horizon(&state.db).await?,
                id: i64::MAX,
            },
        };
        let (_, neighbours) =
            notifications::list(&state.db, me.id, PageRequest::older(1, None)).await?;
        let markers_seen = markers::get(&state.db, me.id).await?.versions();
        Ok(Stream {
            markers_seen,
            me: Rc::new(me.clone()),
            timeline,
            notifications: neighbours.prev.unwrap_or(ORIGIN),
            replaying: last_seen.is_some(),
            session: session.to_owned(),
            expires_at,
        })
    }

    async fn run(
        mut self,
        state: std::sync::Arc<AppState>,
        registration: Registration,
        tx: mpsc::Sender<Bytes>,
        disconnect: Option<Disconnect>,
    ) {
        let slot = registration.slot.clone();
        let me = Rc::clone(&self.me);
        if self.replaying {
            slot.wake(Look::EVERYTHING);
        }
        let mut out = Out {
            tx,
            last_sent: Instant::now(),
            slow_client_timeout: state.stream_slow_client_timeout,
            slow: false,
        };
        let result: Result<(), Stop> = async {
            // How long a client waits before reconnecting, in milliseconds.
            out.send("retry: 2000\n\n".to_owned()).await?;
            loop {
                tokio::select! {
                    () = slot.wake.notified() => {}
                    () = tokio::time::sleep_until(out.last_sent + KEEP_ALIVE) => {
                        out.send(": keep-alive\n\n".to_owned()).await?;
                        continue;
                    }
                    () = out.tx.closed() => return Err(Stop::Closed),
                    () = tokio::time::sleep_until(until(self.expires_at)) => {
                        // Boxed, as the catch-up below: an idle stream's task holds only what it
                        // needs while it waits, not room for the largest query it may run.
                        match Box::pin(sessions::expires_at(&state.db, &self.session)).await? {
                            Some(later) => self.expires_at = later,
                            None => return Err(Stop::Closed),
                        }
                        continue;
                    }
                }
                if slot.ended() {
                    return Err(Stop::Closed);
                }
                let inbox = slot.take().ok_or(Stop::Closed)?;
                Box::pin(self.catch_up(&state, &me, inbox, &mut out)).await?;
            }
        }
        .await;
        if let Err(Stop::Failed(err)) = result {
            tracing::warn!(error = %err, user = self.me.id, "an event stream failed");
        }
        if out.slow {
            // Its response cannot end while the client does not read: the connection goes.
            if let Some(disconnect) = disconnect {
                disconnect.now();
            }
        }
        drop(registration);
    }

    /// Writes what is new since the cursors, and moves them: what the inbox says to read, then
    /// the posts it was given that lie past the timeline cursor.
    async fn catch_up(
        &mut self,
        state: &AppState,
        me: &user::Model,
        inbox: Inbox,
        out: &mut Out,
    ) -> Result<(), Stop> {
        let Inbox {
            look,
            posts: given,
            deleted,
            ..
        } = inbox;
        let mut chunk = String::new();
        for id in deleted {
            chunk.push_str(&format!("event: post_deleted\ndata: {{\"id\":{id}}}\n\n"));
        }
        if std::mem::take(&mut self.replaying) && self.missed_too_many(state, me).await? {
            self.timeline = newest_timeline_position(state, me).await?;
            chunk.push_str("event: reset\ndata: {}\n\n");
        }
        let list_name = timeline::list_name(me.id);
        if look.posts {
            loop {
                let (rows, neighbours) = timeline::page(
                    &state.db,
                    me,
                    PageRequest::newer(BATCH, self.timeline),
                    &state.timeline,
                )
                .await?;
                let full = rows.len() as u64 == BATCH;
                let positions: Vec<Position> = rows.iter().map(Entry::position).collect();
                let rendered = views::posts::render_entries(&state.db, me.id, &rows).await?;
                // Oldest first, as they happened.
                for (post, position) in rendered.iter().zip(&positions).rev() {
                    let id = state.cursors.encode(&list_name, *position);
                    let data = serde_json::to_string(post).map_err(ApiError::internal)?;
                    chunk.push_str(&format!("event: post\nid: {id}\ndata: {data}\n\n"));
                }
                if let Some(newest) = neighbours.prev {
                    self.timeline = newest;
                }
                if !chunk.is_empty() {
                    out.send(std::mem::take(&mut chunk)).await?;
                }
                if !full {
                    break;
                }
            }
        }
        // Given in commit order, so each is the next of the timeline once the cursor has passed
        // what came before it (by a read, or by the ones before it); a read above may have found
        // some already.
        let mut past = self.timeline;
        let fresh: Vec<(&PostWithAuthor, Relation)> = given
            .iter()
            .filter(|(post, _)| {
                let position = posts::position(&post.post);
                let new = position > past;
                if new {
                    past = position;
                }
                new
            })
            .map(|(post, relation)| (post.as_ref(), *relation))
            .collect();
        let rendered = views::posts::render_known(&state.db, me.id, &fresh).await?;
        for ((post, _), wire) in fresh.iter().zip(&rendered) {
            let position = posts::position(&post.post);
            let id = state.cursors.encode(&list_name, position);
            let data = serde_json::to_string(wire).map_err(ApiError::internal)?;
            chunk.push_str(&format!("event: post\nid: {id}\ndata: {data}\n\n"));
            self.timeline = position;
        }
        if look.markers {
            // Another session moved a marker (or an event may have been missed): the markers,
            // unless nothing changed since this stream last looked but what its own session did.
            let stored = markers::get(&state.db, me.id).await?;
            let versions = stored.versions();
            if versions != self.markers_seen
                && !stored.changed_only_by(self.markers_seen, &self.session)
            {
                let view = views::markers::Markers::new(&stored, me.id, &state.cursors);
                let data = serde_json::to_string(&view).map_err(ApiError::internal)?;
                chunk.push_str(&format!("event: marker\ndata: {data}\n\n"));
            }
            self.markers_seen = versions;
        }
        if look.notifications {
            let (entries, neighbours) = notifications::list(
                &state.db,
                me.id,
                PageRequest::newer(BATCH, self.notifications),
            )
            .await?;
            let rendered = views::notifications::render(&state.db, me, entries).await?;
            for notification in rendered.iter().rev() {
                let data = serde_json::to_string(notification).map_err(ApiError::internal)?;
                chunk.push_str(&format!("event: notification\ndata: {data}\n\n"));
            }
            if let Some(newest) = neighbours.prev {
                self.notifications = newest;
            }
        }
        if !chunk.is_empty() {
            out.send(chunk).await?;
        }
        Ok(())
    }

    /// Whether more than [`MAX_REPLAY`] timeline posts lie past the cursor: reads the positions
    /// of at most that many, a batch at a time.
    async fn missed_too_many(&self, state: &AppState, me: &user::Model) -> Result<bool, ApiError> {
        let mut from = self.timeline;
        let mut missed = 0;
        loop {
            let (rows, neighbours) = timeline::page(
                &state.db,
                me,
                PageRequest::newer(BATCH, from),
                &state.timeline,
            )
            .await?;
            missed += rows.len();
            if missed > MAX_REPLAY {
                return Ok(true);
            }
            match neighbours.prev {
                Some(newest) if rows.len() as u64 == BATCH => from = newest,
                _ => return Ok(false),
            }
        }
    }
}

/// The instant of `at` (milliseconds since the epoch), at the earliest now.
fn until(at: i64) -> Instant {
    let wait = u64::try_from(at.saturating_sub(crate::time::now_millis())).unwrap_or(0);
    Instant::now() + Duration::from_millis(wait)
}

/// The newest position in `me`'s timeline, or the start when it is empty.
async fn newest_timeline_position(
    state: &AppState,
    me: &user::Model,
) -> Result<Position, ApiError> {
    let (_, neighbours) =
        timeline::page(&state.db, me, PageRequest::older(1, None), &state.timeline).await?;
    Ok(neighbours.prev.unwrap_or(ORIGIN))
}

/// The sending end of a stream's body.
struct Out {
    tx: mpsc::Sender<Bytes>,
    last_sent: Instant,
    slow_client_timeout: Duration,
    /// Whether the client left the buffer full for too long.
    slow: bool,
}

impl Out {
    async fn send(&mut self, chunk: String) -> Result<(), Stop> {
        match self
            .tx
            .send_timeout(Bytes::from(chunk), self.slow_client_timeout)
            .await
        {
            Ok(()) => {
                self.last_sent = Instant::now();
                Ok(())
            }
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.slow = true;
                Err(Stop::Closed)
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(Stop::Closed),
        }
    }
}
