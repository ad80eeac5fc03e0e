//! How one user relates to others: who follows whom, and since when.

use std::collections::HashMap;

use entity::follow;
use sea_orm::sea_query::UnionType;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryTrait,
};

use crate::error::ApiError;

/// `viewer`'s relationship to one other user; the timestamps are when each follow began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relation {
    /// The viewer follows the user, since then.
    pub following_since: Option<i64>,
    /// The user follows the viewer, since then.
    pub followed_by_since: Option<i64>,
}

/// The viewer's relationship to each of `others`, in one query whatever their number: the
/// viewer's follows of them and their follows of the viewer, as the `UNION ALL` of two primary-key
/// lookups (each planned on its own, so neither can turn into a walk of a popular viewer's
/// followers).
pub async fn relations(
    db: &impl ConnectionTrait,
    viewer: i64,
    others: &[i64],
) -> Result<HashMap<i64, Relation>, ApiError> {
    let mut relations: HashMap<i64, Relation> =
        others.iter().map(|id| (*id, Relation::default())).collect();
    if others.is_empty() {
        return Ok(relations);
    }
    let follows = |this_side: follow::Column, other_side: follow::Column| {
        follow::Entity::find()
            .filter(this_side.eq(viewer))
            .filter(other_side.is_in(others.iter().copied()))
            .into_query()
    };
    let query = follows(follow::Column::FollowerId, follow::Column::FollowedId)
        .union(
            UnionType::All,
            follows(follow::Column::FollowedId, follow::Column::FollowerId),
        )
        .to_owned();
    let rows = follow::Model::find_by_statement(db.get_database_backend().build(&query))
        .all(db)
        .await?;
    // No one follows themself (a CHECK constraint), so each row is one of the two kinds.
    for row in rows {
        if row.follower_id == viewer {
            relations
                .entry(row.followed_id)
                .or_default()
                .following_since = Some(row.created_at);
        } else {
            relations
                .entry(row.follower_id)
                .or_default()
                .followed_by_since = Some(row.created_at);
        }
    }
    Ok(relations)
}

/// What the viewer of a page, if any, is to each user on it ([`viewer_states`]).
pub struct ViewerStates(Option<HashMap<i64, Relation>>);

impl ViewerStates {
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
pub async fn viewer_states(
    db: &impl ConnectionTrait,
    viewer: Option<i64>,
    users: impl IntoIterator<Item = i64>,
) -> Result<ViewerStates, ApiError> {
    Ok(ViewerStates(match viewer {
        Some(viewer) => {
            let users: Vec<i64> = users.into_iter().collect();
            Some(relations(db, viewer, &users).await?)
        }
        None => None,
    }))
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
