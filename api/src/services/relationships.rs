//! How one user relates to others: who follows whom, and since when.

use std::collections::HashMap;

use entity::follow;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::ApiError;

/// `viewer`'s relationship to one other user; the timestamps are when each follow began.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relation {
    /// The viewer follows the user, since then.
    pub following_since: Option<i64>,
    /// The user follows the viewer, since then.
    pub followed_by_since: Option<i64>,
}

/// The viewer's relationship to each of `others`, in two queries whatever their number.
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
    let following = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(viewer))
        .filter(follow::Column::FollowedId.is_in(others.iter().copied()))
        .all(db)
        .await?;
    for row in following {
        relations
            .entry(row.followed_id)
            .or_default()
            .following_since = Some(row.created_at);
    }
    let followed_by = follow::Entity::find()
        .filter(follow::Column::FollowedId.eq(viewer))
        .filter(follow::Column::FollowerId.is_in(others.iter().copied()))
        .all(db)
        .await?;
    for row in followed_by {
        relations
            .entry(row.follower_id)
            .or_default()
            .followed_by_since = Some(row.created_at);
    }
    Ok(relations)
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
