//! `GET /users/me/archive`: everything the account holds, as one JSON document written while it
//! is read. Each list is read [`AppState::archive_batch`] rows at a time with the list's own query and the
//! page's viewer state ([`page::items`], as every list of the API), serialized into a buffer that
//! is handed to the connection whenever it holds [`CHUNK`] bytes; the hand-over waits while the
//! client is slow (a channel of [`CHANNEL_CHUNKS`]), so the memory an archive takes is one batch
//! and a few chunks, whatever the account's size. A client that goes away ends the reading.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use tokio::sync::mpsc;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::page::{self, ShowsUser};
use crate::services::archive;
use crate::services::follows::{self, Direction};
use crate::services::keyset::{Neighbours, PageRequest, Position};
use crate::services::marks::{self, Mark};
use crate::services::relationships::ViewerStates;
use crate::services::{likes, posts, reposts};
use crate::state::AppState;
use crate::time::Timestamp;
use crate::views::{BlockItem, FollowItem, MuteItem, Post, Profile};
use entity::user;
use sea_orm::DatabaseConnection;

/// The bytes gathered before they are handed to the connection.
const CHUNK: usize = 64 * 1024;

/// How many chunks may wait for a slow client before the reading waits too.
const CHANNEL_CHUNKS: usize = 2;

/// The archive document, as it is streamed (this type describes it; it is never built whole).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct Archive {
    /// The caller's profile, as `GET /users/me` answers it.
    account: Profile,
    /// The caller's posts (replies included), newest first.
    posts: Vec<Post>,
    /// Whom the caller follows, most recent follow first.
    following: Vec<FollowItem>,
    /// Who follows the caller, most recent follow first.
    followers: Vec<FollowItem>,
    /// Whom the caller blocks, newest first.
    blocks: Vec<BlockItem>,
    /// Whom the caller mutes, newest first.
    mutes: Vec<MuteItem>,
    /// The posts the caller likes, most recent like first.
    likes: Vec<ArchivedLike>,
    /// The posts the caller reposted, most recent repost first.
    reposts: Vec<ArchivedRepost>,
}

/// A like in the archive.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchivedLike {
    /// The liked post.
    #[schema(example = 42)]
    pub post_id: i64,
    /// When the caller liked it.
    pub liked_at: Timestamp,
}

/// A repost in the archive.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchivedRepost {
    /// The reposted post.
    #[schema(example = 42)]
    pub post_id: i64,
    /// When the caller reposted it.
    pub reposted_at: Timestamp,
}

/// Everything the caller's account holds, in one JSON document.
#[utoipa::path(get, path = "/users/me/archive", tag = "accounts", operation_id = "getArchive",
    responses(
        (status = 200, description = "The whole account, each list newest first. Streamed as it is read (no `Content-Length`, no `ETag`), list by list, so that an account of any size takes the server the same memory; each list is read in batches, so a change made while the archive downloads may or may not be in it. A failure after the answer has begun ends the connection before the document is complete (the JSON does not parse): download again after the wait. Sent as an attachment (`archive.json`), `Cache-Control: no-store`",
            body = Archive),
        (status = 429, description = "`rate_limited`: an archive of this account began less than {ARCHIVE_EVERY_MINUTES} minutes ago (on any replica); retry after `Retry-After` seconds"),
    ),
    security(("bearer" = [])))]
pub async fn get_archive(
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    archive::take_turn(&state.db, me.0.id).await?;
    // Read before the answer begins, so that a failure here is still a problem+json answer.
    let account = state
        .read(Some(&me.0), async |db| {
            super::users::own_profile(db, &me.0).await
        })
        .await?;
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let writer = Writer {
        buf: Vec::with_capacity(CHUNK + CHUNK / 4),
        tx,
    };
    actix_web::rt::spawn(write(state.into_inner(), me.0, account, writer));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"archive.json\"",
        ))
        .streaming(body))
}

/// Why the writing stopped early.
enum Stop {
    /// The client went away: nothing to say to anyone.
    Gone,
    /// A read failed: the connection is ended so that the client sees an incomplete document.
    Failed(ApiError),
}

impl From<ApiError> for Stop {
    fn from(err: ApiError) -> Self {
        Stop::Failed(err)
    }
}

/// The document being written and the connection it goes to.
struct Writer {
    buf: Vec<u8>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Writer {
    fn raw(&mut self, text: &str) {
        self.buf.extend_from_slice(text.as_bytes());
    }

    fn value(&mut self, value: &impl Serialize) -> Result<(), Stop> {
        serde_json::to_writer(&mut self.buf, value)
            .map_err(|err| Stop::Failed(ApiError::internal(err)))
    }

    /// Hands the buffer to the connection once it holds a chunk (or, `all`, whatever it holds).
    async fn flush(&mut self, all: bool) -> Result<(), Stop> {
        if self.buf.is_empty() || (!all && self.buf.len() < CHUNK) {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + CHUNK / 4),
        ));
        self.tx.send(Ok(chunk)).await.map_err(|_| Stop::Gone)
    }

    /// Writes `"key":[...]`, the items `next` reads batch by batch: each call is given the
    /// position after the last batch and answers a batch and the position after it, if any more
    /// may follow.
    async fn list<T: Serialize>(
        &mut self,
        key: &str,
        mut next: impl AsyncFnMut(Option<Position>) -> Result<(Vec<T>, Option<Position>), ApiError>,
    ) -> Result<(), Stop> {
        self.raw(&format!(",\"{key}\":["));
        let mut after = None;
        let mut first = true;
        loop {
            let (items, more) = next(after).await?;
            for item in &items {
                if !first {
                    self.raw(",");
                }
                first = false;
                self.value(item)?;
                self.flush(false).await?;
            }
            match more {
                Some(position) => after = Some(position),
                None => break,
            }
        }
        self.raw("]");
        Ok(())
    }
}

/// Writes the archive of `me`, whose profile is `account`, to `out`.
async fn write(
    state: std::sync::Arc<AppState>,
    me: user::Model,
    account: Profile,
    mut out: Writer,
) {
    match write_all(&state, &me, &account, &mut out).await {
        Ok(()) | Err(Stop::Gone) => {}
        Err(Stop::Failed(err)) => {
            tracing::error!(user = me.id, error = %err, "the archive stopped before its end");
            let _ = out
                .tx
                .send(Err(std::io::Error::other("the archive could not be read")))
                .await;
        }
    }
}

async fn write_all(
    state: &AppState,
    me: &user::Model,
    account: &Profile,
    out: &mut Writer,
) -> Result<(), Stop> {
    out.raw("{\"account\":");
    out.value(account)?;
    out.list("posts", async |after| {
        listed(state, me, after, Post::new, async |db, page| {
            posts::list_by_author(db, me, page).await
        })
        .await
    })
    .await?;
    for (key, direction) in [
        ("following", Direction::Following),
        ("followers", Direction::Followers),
    ] {
        out.list(key, async |after| {
            listed(state, me, after, FollowItem::new, async |db, page| {
                follows::list(db, me.id, direction, page).await
            })
            .await
        })
        .await?;
    }
    out.list("blocks", async |after| {
        listed(state, me, after, BlockItem::new, async |db, page| {
            marks::list(db, Mark::Block, me.id, page).await
        })
        .await
    })
    .await?;
    out.list("mutes", async |after| {
        listed(state, me, after, MuteItem::new, async |db, page| {
            marks::list(db, Mark::Mute, me.id, page).await
        })
        .await
    })
    .await?;
    out.list("likes", async |after| {
        let rows = state
            .read(Some(me), async |db| {
                likes::of_user(db, me.id, after, state.archive_batch).await
            })
            .await?;
        Ok(interactions(rows, state.archive_batch, |(post_id, at)| {
            ArchivedLike {
                post_id,
                liked_at: Timestamp(at),
            }
        }))
    })
    .await?;
    out.list("reposts", async |after| {
        let rows = state
            .read(Some(me), async |db| {
                reposts::of_user(db, me.id, after, state.archive_batch).await
            })
            .await?;
        Ok(interactions(rows, state.archive_batch, |(post_id, at)| {
            ArchivedRepost {
                post_id,
                reposted_at: Timestamp(at),
            }
        }))
    })
    .await?;
    out.raw("}");
    out.flush(true).await
}

/// One batch of a list of the API, after `after`: its rows as the caller sees them, and the
/// position after them when more may follow.
async fn listed<Row: ShowsUser, T>(
    state: &AppState,
    me: &user::Model,
    after: Option<Position>,
    item: impl Fn(&Row, &ViewerStates) -> T,
    fetch: impl AsyncFn(&DatabaseConnection, PageRequest) -> Result<(Vec<Row>, Neighbours), ApiError>,
) -> Result<(Vec<T>, Option<Position>), ApiError> {
    state
        .read(Some(me), async |db| {
            let (rows, neighbours) =
                fetch(db, PageRequest::older(state.archive_batch, after)).await?;
            let items = page::items(db, Some(me.id), &rows, &item).await?;
            Ok((items, neighbours.next))
        })
        .await
}

/// A batch of `(post id, at)` rows as items, and the position after them when the batch is whole.
fn interactions<T>(
    rows: Vec<(i64, i64)>,
    batch: u64,
    item: impl Fn((i64, i64)) -> T,
) -> (Vec<T>, Option<Position>) {
    let more = if rows.len() as u64 == batch {
        rows.last().map(|&(id, at)| Position { at, id })
    } else {
        None
    };
    (rows.into_iter().map(item).collect(), more)
}
