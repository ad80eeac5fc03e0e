//! How one user relates to others: who follows whom and since when, who blocks or mutes whom.

use std::collections::{HashMap, HashSet};

use entity::user;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query, SelectStatement, UnionType};
use sea_orm::{ConnectionTrait, FromQueryResult};

use crate::error::ApiError;

/// `viewer`'s relationship to one other user; the timestamps are when each follow began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relation {
    /// The viewer follows the user, since then.
    pub following_since: Option<i64>,
    /// The user follows the viewer, since then.
    pub followed_by_since: Option<i64>,
    /// The viewer asked to follow this locked user and waits.
    pub requested: bool,
    /// The user asked to follow the viewer and waits.
    pub requested_by: bool,
    /// The viewer blocks the user.
    pub blocking: bool,
    /// The user blocks the viewer.
    pub blocked_by: bool,
    /// The viewer mutes the user.
    pub muting: bool,
}

/// One row of the relations query: which kind of edge, between which viewer and which other user,
/// and when it began.
#[derive(FromQueryResult)]
struct Edge {
    kind: String,
    viewer_id: i64,
    user_id: i64,
    at: i64,
}

/// Every kind of edge the viewer state reads: its name, its table, the column that must be the
/// viewer and the column that holds the other user. (Nobody learns who mutes them: there is no
/// `muted_by`.)
const EDGES: [(&str, &str, &str, &str); 7] = [
    ("following", "follows", "follower_id", "followed_id"),
    ("followed_by", "follows", "followed_id", "follower_id"),
    ("blocking", "blocks", "blocker_id", "blocked_id"),
    ("blocked_by", "blocks", "blocked_id", "blocker_id"),
    ("muting", "mutes", "muter_id", "muted_id"),
    ("requested", "follow_requests", "requester_id", "target_id"),
    (
        "requested_by",
        "follow_requests",
        "target_id",
        "requester_id",
    ),
];

/// The edges of one kind between `viewers` and `others`: rows of `table` whose `from` column is
/// one of the viewers and whose `to` column is one of the others, as `(kind, from, to,
/// created_at)`; lookups of the table's primary key (or of the index on its other side).
fn edges(
    (kind, table, from, to): (&str, &str, &str, &str),
    viewers: &[i64],
    others: &[i64],
) -> SelectStatement {
    Query::select()
        .expr_as(Expr::val(kind), Alias::new("kind"))
        .expr_as(Expr::col(Alias::new(from)), Alias::new("viewer_id"))
        .expr_as(Expr::col(Alias::new(to)), Alias::new("user_id"))
        .expr_as(Expr::col(Alias::new("created_at")), Alias::new("at"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new(from)).is_in(viewers.iter().copied()))
        .and_where(Expr::col(Alias::new(to)).is_in(others.iter().copied()))
        .to_owned()
}

/// How each of `viewers` relates to each of `others`, by viewer then other, in one query whatever
/// their numbers: the `UNION ALL` of one lookup per kind of edge (`EDGES`), each planned on its
/// own, so none can turn into a walk of a popular user's followers. Either side is short in
/// practice: one viewer and a page of users ([`relations`]), or the open streams and a post's
/// author ([`viewers_of`]).
async fn relations_among(
    db: &impl ConnectionTrait,
    viewers: &[i64],
    others: &[i64],
) -> Result<HashMap<(i64, i64), Relation>, ApiError> {
    let mut relations = HashMap::new();
    if viewers.is_empty() || others.is_empty() {
        return Ok(relations);
    }
    let mut kinds = EDGES.into_iter().map(|edge| edges(edge, viewers, others));
    let Some(mut query) = kinds.next() else {
        return Ok(relations);
    };
    for other in kinds {
        query.union(UnionType::All, other);
    }
    let rows = Edge::find_by_statement(db.get_database_backend().build(&query))
        .all(db)
        .await?;
    for row in rows {
        let relation: &mut Relation = relations.entry((row.viewer_id, row.user_id)).or_default();
        match row.kind.as_str() {
            "following" => relation.following_since = Some(row.at),
            "followed_by" => relation.followed_by_since = Some(row.at),
            "blocking" => relation.blocking = true,
            "blocked_by" => relation.blocked_by = true,
            "requested" => relation.requested = true,
            "requested_by" => relation.requested_by = true,
            _ => relation.muting = true,
        }
    }
    Ok(relations)
}

/// The viewer's relationship to each of `others`, in one query whatever their number.
#[tracing::instrument(name = "relationships::relations", skip_all, fields(viewer = viewer, others = others.len()))]
pub async fn relations(
    db: &impl ConnectionTrait,
    viewer: i64,
    others: &[i64],
) -> Result<HashMap<i64, Relation>, ApiError> {
    // Nobody has a relationship to themselves (the API refuses following, requesting, blocking
    // and muting oneself): a page of the viewer's own posts asks nothing.
    let strangers: Vec<i64> = others.iter().copied().filter(|o| *o != viewer).collect();
    let among = relations_among(db, &[viewer], &strangers).await?;
    Ok(others
        .iter()
        .map(|other| {
            let relation = among.get(&(viewer, *other)).copied();
            (*other, relation.unwrap_or_default())
        })
        .collect())
}

/// Each of `viewers`' relationship to the one user `other` (the readers of a post on the event
/// stream), in one query whatever their number.
#[tracing::instrument(name = "relationships::viewers_of", skip_all, fields(viewers = viewers.len(), other = other))]
pub async fn viewers_of(
    db: &impl ConnectionTrait,
    viewers: &[i64],
    other: i64,
) -> Result<HashMap<i64, Relation>, ApiError> {
    let among = relations_among(db, viewers, &[other]).await?;
    Ok(viewers
        .iter()
        .map(|viewer| {
            let relation = among.get(&(*viewer, other)).copied();
            (*viewer, relation.unwrap_or_default())
        })
        .collect())
}

/// Whether `viewer` may read `owner`'s posts and lists: 403 `blocked` when the owner blocks the
/// viewer, 403 `private_account` when the owner is locked and the viewer (perhaps anonymous) does
/// not follow them. The one place that decides, in at most one query; the owner always may.
#[tracing::instrument(name = "relationships::check_access", skip_all, fields(owner = owner.id, viewer = ?viewer))]
pub async fn check_access(
    db: &impl ConnectionTrait,
    owner: &user::Model,
    viewer: Option<i64>,
) -> Result<(), ApiError> {
    let private = || Err(ApiError::PrivateAccount(owner.username.clone()));
    let Some(viewer) = viewer else {
        return if owner.locked { private() } else { Ok(()) };
    };
    if viewer == owner.id {
        return Ok(());
    }
    let relation = relation(db, viewer, owner.id).await?;
    if relation.blocked_by {
        return Err(ApiError::Blocked(format!(
            "'{}' blocks you",
            owner.username
        )));
    }
    if owner.locked && relation.following_since.is_none() {
        return private();
    }
    Ok(())
}

/// Whether `actor` may like or reply to `owner`'s posts: the rules of reading them
/// ([`check_access`]: 403 `private_account` for a locked owner the actor does not follow), and
/// 403 `blocked` while either blocks the other (Blocks v3). In one query; the owner always may.
pub async fn check_interaction(
    db: &impl ConnectionTrait,
    owner: &user::Model,
    actor: i64,
) -> Result<(), ApiError> {
    if actor == owner.id {
        return Ok(());
    }
    let relation = relation(db, actor, owner.id).await?;
    relation.ensure_unblocked(owner)?;
    if owner.locked && relation.following_since.is_none() {
        return Err(ApiError::PrivateAccount(owner.username.clone()));
    }
    Ok(())
}

impl Relation {
    /// 403 `blocked` when either of the two blocks the other (no follow can begin then).
    pub fn ensure_unblocked(&self, other: &user::Model) -> Result<(), ApiError> {
        if self.blocking {
            Err(ApiError::Blocked(format!(
                "you block '{}': unblock them first",
                other.username
            )))
        } else if self.blocked_by {
            Err(ApiError::Blocked(format!(
                "'{}' blocks you",
                other.username
            )))
        } else {
            Ok(())
        }
    }
}

/// What the viewer of a page, if any, is to each user on it ([`viewer_states`]), and what the
/// viewer did with the page's posts ([`ViewerStates::with_interactions`]).
pub struct ViewerStates(
    Option<HashMap<i64, Relation>>,
    Interactions,
    HashMap<i64, Vec<entity::media::Model>>,
);

/// Which posts of a page the viewer likes and which it reposted
/// (`crate::services::reposts::interactions_among`, one query for the page).
#[derive(Debug, Default)]
pub struct Interactions {
    pub liked: HashSet<i64>,
    pub reposted: HashSet<i64>,
}

impl ViewerStates {
    /// The viewer state of a page with one user on it, whose relationship to the viewer is known
    /// already (from [`viewers_of`]).
    pub fn known(user: i64, relation: Relation) -> Self {
        ViewerStates(
            Some(HashMap::from([(user, relation)])),
            Interactions::default(),
            HashMap::new(),
        )
    }

    /// The viewer state of a page whose users' relationships to the viewer are known already.
    pub fn known_many(relations: HashMap<i64, Relation>) -> Self {
        ViewerStates(Some(relations), Interactions::default(), HashMap::new())
    }

    /// These states, with what the viewer did with the page's posts (read by
    /// `crate::views::posts::states`, in one query for the page).
    pub fn with_interactions(self, interactions: Interactions) -> Self {
        ViewerStates(self.0, interactions, self.2)
    }

    /// These states, with the media of the page's posts (read by `crate::views::posts::states`,
    /// in one query for the page), by post.
    pub fn with_media(self, media: HashMap<i64, Vec<entity::media::Model>>) -> Self {
        ViewerStates(self.0, self.1, media)
    }

    /// The media of post `id`, in order (none when the page's media were not read).
    pub fn media(&self, id: i64) -> &[entity::media::Model] {
        self.2.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Whether the viewer likes post `id`; `None` when the request is anonymous.
    pub fn liked(&self, id: i64) -> Option<bool> {
        self.0.as_ref().map(|_| self.1.liked.contains(&id))
    }

    /// Whether the viewer reposted post `id`; `None` when the request is anonymous.
    pub fn reposted(&self, id: i64) -> Option<bool> {
        self.0.as_ref().map(|_| self.1.reposted.contains(&id))
    }

    /// The viewer's relationship to user `id`; `None` when the request is anonymous.
    pub fn of(&self, id: i64) -> Option<Relation> {
        self.0
            .as_ref()
            .map(|relations| relations.get(&id).copied().unwrap_or_default())
    }
}

/// The viewer state of a page of `users` (profiles, cards, post authors): the one function that
/// computes it, in one query whatever the page's length ([`relations`]), and in none when the
/// request is anonymous.
#[tracing::instrument(name = "relationships::viewer_states", skip_all, fields(viewer = ?viewer))]
pub async fn viewer_states(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    users: impl IntoIterator<Item = i64>,
) -> Result<ViewerStates, ApiError> {
    Ok(ViewerStates(
        match viewer {
            Some(viewer) => {
                let users: Vec<i64> = users.into_iter().collect();
                Some(relations(db, viewer, &users).await?)
            }
            None => None,
        },
        Interactions::default(),
        HashMap::new(),
    ))
}

/// The viewer's relationship to one user.
pub async fn relation(
    db: &impl ConnectionTrait,
    viewer: i64,
    other: i64,
) -> Result<Relation, ApiError> {
    Ok(relations(db, viewer, &[other])
        .await?
        .remove(&other)
        .unwrap_or_default())
}
