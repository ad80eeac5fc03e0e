//! Lists on the HTTP side: `limit` and an opaque, signed `cursor` (older items) or `newer_than`
//! (newer items), pages newest first, the page body with its `Link` header, and [`list`], the one
//! function every list handler calls. The positions and the queries are
//! [`crate::services::keyset`].
//!
//! A cursor is a position (timestamp, unique id) in a list, signed with an HMAC over the list it
//! belongs to. A cursor that was tampered with, made up, or issued for another list fails the
//! signature check and answers 400 `invalid_cursor`, never a 500.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::services::follows::FollowEntry;
use crate::services::keyset::{Neighbours, PageRequest, Position};
use crate::services::likes::LikeEntry;
use crate::services::marks::MarkEntry;
use crate::services::notifications::NotificationEntry;
use crate::services::posts::{self, PostWithAuthor};
use crate::services::relationships::{self, ViewerStates};
use crate::services::reposts::RepostEntry;
use crate::services::timeline::Entry;
use crate::services::users;
use crate::state::AppState;
use crate::views::{self, Page};
use entity::user;
use sea_orm::DatabaseConnection;

/// Default and largest page sizes.
pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// The query parameters of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to {MAX_LIMIT}.
    // Its maximum and default come from `MAX_LIMIT` and `DEFAULT_LIMIT` (`openapi::Numbers`).
    #[param(value_type = Option<u64>, minimum = 1)]
    pub limit: Option<String>,
    /// Opaque cursor from the `next_cursor` of the previous page (two base64url parts joined by a
    /// dot; one the server did not issue for this list is a 400 `invalid_cursor`).
    #[param(min_length = 3, pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub cursor: Option<String>,
    /// Opaque cursor from the `prev_cursor` of an earlier page: the `limit` items immediately newer
    /// than it, still newest first. A page shorter than `limit` means there is nothing newer yet.
    /// Not together with `cursor` (400 `invalid_parameter`).
    #[param(min_length = 3, pattern = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")]
    pub newer_than: Option<String>,
}

/// Signs and checks cursors.
#[derive(Clone)]
pub struct CursorCodec {
    key: Vec<u8>,
}

type HmacSha256 = Hmac<Sha256>;

impl CursorCodec {
    /// A codec whose key is derived from the server secret, so that cursors and tokens never share
    /// a key.
    pub fn new(secret: &[u8]) -> Self {
        let key = match <HmacSha256 as Mac>::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(b"social-api cursor key v1");
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => secret.to_vec(),
        };
        CursorCodec { key }
    }

    fn tag(&self, list: &str, payload: &str) -> Vec<u8> {
        match <HmacSha256 as Mac>::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(list.as_bytes());
                mac.update(b"\n");
                mac.update(payload.as_bytes());
                mac.finalize().into_bytes()[..16].to_vec()
            }
            Err(_) => Vec::new(),
        }
    }

    /// The cursor for `position` in the list named `list` (e.g. `followers:42`).
    pub fn encode(&self, list: &str, position: Position) -> String {
        self.encode_text(list, &format!("{}.{}", position.at, position.id))
    }

    /// A cursor that carries `payload`, any text, in the list named `list`: for lists ordered by
    /// something other than a position (user search, by username).
    pub fn encode_text(&self, list: &str, payload: &str) -> String {
        let tag = self.tag(list, payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The position in `cursor`, if this server issued it for `list`.
    pub fn decode(&self, list: &str, cursor: &str) -> Result<Position, ApiError> {
        let payload = self.decode_text(list, cursor)?;
        let (at, id) = payload.split_once('.').ok_or(ApiError::InvalidCursor)?;
        Ok(Position {
            at: at.parse().map_err(|_| ApiError::InvalidCursor)?,
            id: id.parse().map_err(|_| ApiError::InvalidCursor)?,
        })
    }

    /// The payload of `cursor` ([`Self::encode_text`]), if this server issued it for `list`.
    pub fn decode_text(&self, list: &str, cursor: &str) -> Result<String, ApiError> {
        let (payload, tag) = cursor.split_once('.').ok_or(ApiError::InvalidCursor)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or(ApiError::InvalidCursor)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| ApiError::InvalidCursor)?;
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key).map_err(|_| ApiError::InvalidCursor)?;
        mac.update(list.as_bytes());
        mac.update(b"\n");
        mac.update(payload.as_bytes());
        if tag.len() != 16 {
            return Err(ApiError::InvalidCursor);
        }
        mac.verify_truncated_left(&tag)
            .map_err(|_| ApiError::InvalidCursor)?;
        Ok(payload)
    }

    /// Validates the query of a list named `list`.
    pub fn page_request(&self, list: &str, query: &PageQuery) -> Result<PageRequest, ApiError> {
        let limit = parse_limit(query.limit.as_deref())?;
        match (query.cursor.as_deref(), query.newer_than.as_deref()) {
            (Some(_), Some(_)) => Err(ApiError::InvalidParameter(
                "send cursor (older items) or newer_than (newer items), not both".to_owned(),
            )),
            (Some(cursor), None) => Ok(PageRequest::older(limit, Some(self.decode(list, cursor)?))),
            (None, Some(cursor)) => Ok(PageRequest::newer(limit, self.decode(list, cursor)?)),
            (None, None) => Ok(PageRequest::older(limit, None)),
        }
    }

    /// The 200 response for a page of the list named `list`: the body with `next_cursor` and
    /// `prev_cursor`, and a `Link` header with `rel="next"` and `rel="prev"` for those that are
    /// not null (RFC 8288).
    pub fn page_response<T: Serialize>(
        &self,
        req: &HttpRequest,
        list: &str,
        page: PageRequest,
        items: Vec<T>,
        neighbours: Neighbours,
    ) -> HttpResponse {
        let next_cursor = neighbours.next.map(|p| self.encode(list, p));
        let prev_cursor = neighbours.prev.map(|p| self.encode(list, p));
        page_response(req, "", page.limit, items, next_cursor, prev_cursor)
    }
}

/// `limit` of a list's query: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn parse_limit(raw: Option<&str>) -> Result<u64, ApiError> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(raw) => match raw.trim().parse::<u64>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidParameter(format!(
                "limit must be a whole number from 1 to {MAX_LIMIT}, not '{raw}'"
            ))),
        },
    }
}

/// The 200 response for a page whose cursors are already encoded: the body, and a `Link` header
/// with `rel="next"` and `rel="prev"` for those that are not null. `query` comes before `limit`
/// in the links' query strings (`q=ab&`, for a list that needs more than a cursor), percent-encoded
/// by the caller.
pub fn page_response<T: Serialize>(
    req: &HttpRequest,
    query: &str,
    limit: u64,
    items: Vec<T>,
    next_cursor: Option<String>,
    prev_cursor: Option<String>,
) -> HttpResponse {
    let path = req.uri().path();
    let links: Vec<String> = [
        next_cursor
            .as_ref()
            .map(|c| format!("<{path}?{query}limit={limit}&cursor={c}>; rel=\"next\"")),
        prev_cursor
            .as_ref()
            .map(|c| format!("<{path}?{query}limit={limit}&newer_than={c}>; rel=\"prev\"")),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut response = HttpResponse::Ok();
    if !links.is_empty() {
        response.insert_header((header::LINK, links.join(", ")));
    }
    response.json(Page {
        items,
        next_cursor,
        prev_cursor,
    })
}

/// Whose list a request reads.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    /// The caller's own list: no access check.
    Caller(&'a user::Model),
    /// The list of the user named in the path (`me` is the caller), as `viewer` (perhaps
    /// anonymous) may see it: 404 `user_not_found`, 401 for `me` without a token, 403 `blocked`
    /// or `private_account` ([`relationships::check_access`]).
    InPath {
        username: &'a str,
        viewer: Option<&'a user::Model>,
    },
    /// A list of the post `id` (its replies, its likes), as `viewer` (perhaps anonymous) may see
    /// it: the rules of reading the post, 404 `post_not_found` (also while its author is
    /// suspended), 403 `blocked` or `private_account` as for its author's posts. The list's owner
    /// is the post's author.
    OfPost {
        id: i64,
        viewer: Option<&'a user::Model>,
    },
}

impl<'a> Owner<'a> {
    /// Who reads the list.
    fn viewer(self) -> Option<&'a user::Model> {
        match self {
            Owner::Caller(me) => Some(me),
            Owner::InPath { viewer, .. } | Owner::OfPost { viewer, .. } => viewer,
        }
    }
}

/// A row of a list that shows a user's card: the page's viewer state is read for these users
/// (and for the post the row shows, if any: whether the viewer likes it).
pub trait ShowsUser {
    /// The id of the user whose card the row shows.
    fn shown_user(&self) -> i64;

    /// The id of the post the row shows, if any.
    fn shown_post(&self) -> Option<i64> {
        None
    }

    /// The id of another user whose card the row shows, if any (a timeline item's reposter).
    fn also_shown_user(&self) -> Option<i64> {
        None
    }
}

impl ShowsUser for FollowEntry {
    fn shown_user(&self) -> i64 {
        self.user.id
    }
}

impl ShowsUser for MarkEntry {
    fn shown_user(&self) -> i64 {
        self.user.id
    }
}

impl ShowsUser for PostWithAuthor {
    fn shown_user(&self) -> i64 {
        self.author.id
    }

    fn shown_post(&self) -> Option<i64> {
        Some(self.post.id)
    }
}

impl ShowsUser for Entry {
    fn shown_user(&self) -> i64 {
        self.post.author.id
    }

    fn shown_post(&self) -> Option<i64> {
        Some(self.post.post.id)
    }

    fn also_shown_user(&self) -> Option<i64> {
        self.reposted_by.as_ref().map(|u| u.id)
    }
}

impl ShowsUser for NotificationEntry {
    /// The account; the card of its post's author is the recipient's own (a like) or the
    /// account's (a reply).
    fn shown_user(&self) -> i64 {
        self.account.id
    }

    fn shown_post(&self) -> Option<i64> {
        self.post.as_ref().map(|p| p.post.id)
    }
}

impl ShowsUser for LikeEntry {
    fn shown_user(&self) -> i64 {
        self.user.id
    }
}

impl ShowsUser for RepostEntry {
    fn shown_user(&self) -> i64 {
        self.user.id
    }
}

/// The one path of every list of positions. A handler names the list (`name`, for its owner's
/// id: what its cursors are signed for), its query (`fetch`: a page of the owner's list and the
/// page's neighbours) and its item mapping (`item`, a row with the page's viewer states); this
/// finds the owner and checks that the viewer may see the list, turns the query parameters into
/// a page request of that list (its cursor checked against the name), runs the query and the
/// viewer state of every user shown in one more query, maps the rows, and answers the page with
/// its body and `Link` ([`CursorCodec::page_response`]). Everything is read where
/// [`AppState::read`] sends the viewer's reads (the standby, when it may take them).
pub async fn list<Row: ShowsUser, T: Serialize>(
    req: &HttpRequest,
    state: &AppState,
    query: &PageQuery,
    owner: Owner<'_>,
    name: impl Fn(i64) -> String,
    fetch: impl AsyncFn(
        &DatabaseConnection,
        &user::Model,
        PageRequest,
    ) -> Result<(Vec<Row>, Neighbours), ApiError>,
    item: impl Fn(&Row, &ViewerStates) -> T,
) -> Result<HttpResponse, ApiError> {
    let viewer = owner.viewer();
    let viewer_id = viewer.map(|v| v.id);
    state
        .read(viewer, async |db| {
            let found;
            let owner = match owner {
                Owner::Caller(me) => me,
                Owner::InPath { username, viewer } => {
                    found = users::find_in_path(db, username, viewer).await?;
                    relationships::check_access(db, &found, viewer_id).await?;
                    &found
                }
                Owner::OfPost { id, .. } => {
                    found = posts::find(db, id).await?.author;
                    relationships::check_access(db, &found, viewer_id).await?;
                    &found
                }
            };
            let name = name(owner.id);
            let page = state.cursors.page_request(&name, query)?;
            let (rows, neighbours) = fetch(db, owner, page).await?;
            let items = items(db, viewer_id, &rows, &item).await?;
            Ok(state
                .cursors
                .page_response(req, &name, page, items, neighbours))
        })
        .await
}

/// The items of a page's `rows` as `viewer` sees them: the viewer state of every user and post
/// the rows show, read in one query, then each row mapped by `item`.
pub async fn items<Row: ShowsUser, T>(
    db: &DatabaseConnection,
    viewer: Option<i64>,
    rows: &[Row],
    item: impl Fn(&Row, &ViewerStates) -> T,
) -> Result<Vec<T>, ApiError> {
    let shown = rows
        .iter()
        .flat_map(|row| std::iter::once(row.shown_user()).chain(row.also_shown_user()));
    let posts: Vec<i64> = rows.iter().filter_map(ShowsUser::shown_post).collect();
    let states = views::posts::states(db, viewer, shown, &posts).await?;
    Ok(rows.iter().map(|row| item(row, &states)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_only_for_its_own_list() {
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let position = Position {
            at: 1_700_000_000_123,
            id: 42,
        };
        let cursor = codec.encode("followers:1", position);
        assert_eq!(codec.decode("followers:1", &cursor).unwrap(), position);
        assert!(codec.decode("followers:2", &cursor).is_err());
        assert!(codec.decode("following:1", &cursor).is_err());
    }

    /// The document publishes the cursor's form; every cursor the server issues has it.
    #[test]
    fn issued_cursors_match_the_published_pattern() {
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let pattern = regex::Regex::new(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$").unwrap();
        for (at, id) in [
            (0, 0),
            (1_700_000_000_123, 42),
            (i64::MAX, i64::MAX),
            (5, 1),
        ] {
            let cursor = codec.encode("timeline:7", Position { at, id });
            assert!(pattern.is_match(&cursor), "{cursor}");
            assert!(cursor.len() >= 3);
        }
    }

    #[test]
    fn tampered_and_made_up_cursors_are_refused() {
        let codec = CursorCodec::new(b"0123456789abcdef0123456789abcdef");
        let cursor = codec.encode("posts:1", Position { at: 5, id: 6 });
        let forged_payload = URL_SAFE_NO_PAD.encode(b"5.7");
        let (_, tag) = cursor.split_once('.').unwrap();
        for bad in [
            format!("{forged_payload}.{tag}"),
            "garbage".to_owned(),
            String::new(),
            ".".to_owned(),
            format!("{}.", cursor.split_once('.').unwrap().0),
        ] {
            assert!(codec.decode("posts:1", &bad).is_err(), "{bad} was accepted");
        }
        let other = CursorCodec::new(b"another secret of at least 32 bytes!!");
        assert!(other.decode("posts:1", &cursor).is_err());
    }
}
