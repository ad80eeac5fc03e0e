//! Markers: a reading position that follows the user from device to device. The timeline marker
//! is a position in the user's timeline; the notifications marker is the read mark of
//! `POST /notifications/read` (`users.notifications_read_id`: one state, two ways to move it).
//! Both move forward only, each change counted once in its `version` (moves are taken under the
//! user's row lock, so two devices moving at once leave the newest position and count each
//! change), and a change reaches the user's other streams ([`Event::Marked`]).

use entity::{marker, user};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    QuerySelect,
};

use crate::db;
use crate::error::ApiError;
use crate::events::{self, Event};
use crate::services::keyset::Position;
use crate::services::{notifications, users};
use crate::time::now_millis;

/// A user's markers as they stand.
#[derive(Clone, Debug, Default)]
pub struct Markers {
    /// The row of versions, times and the timeline position; `None` until a marker first moves.
    pub row: Option<marker::Model>,
    /// The notifications marker's position: the read mark.
    pub notifications_read_id: i64,
}

impl Markers {
    /// The timeline marker's position, when it was set.
    pub fn timeline(&self) -> Option<Position> {
        let row = self.row.as_ref()?;
        Some(Position {
            at: row.timeline_at?,
            id: row.timeline_id?,
        })
    }

    /// Both versions, which tell a stream whether the markers changed since it last looked.
    pub fn versions(&self) -> (i64, i64) {
        self.row.as_ref().map_or((0, 0), |row| {
            (row.timeline_version, row.notifications_version)
        })
    }

    /// Whether every change after `seen` (both versions) came from `session`.
    pub fn changed_only_by(&self, seen: (i64, i64), session: &str) -> bool {
        let Some(row) = &self.row else {
            return true;
        };
        let timeline =
            row.timeline_version == seen.0 || row.timeline_session.as_deref() == Some(session);
        let notifications = row.notifications_version == seen.1
            || row.notifications_session.as_deref() == Some(session);
        timeline && notifications
    }
}

/// `user_id`'s markers, read as they stand now.
#[tracing::instrument(name = "markers::get", skip_all, fields(user = user_id))]
pub async fn get(db: &impl ConnectionTrait, user_id: i64) -> Result<Markers, ApiError> {
    let row = marker::Entity::find_by_id(user_id).one(db).await?;
    let notifications_read_id: Option<i64> = user::Entity::find_by_id(user_id)
        .select_only()
        .column(user::Column::NotificationsReadId)
        .into_tuple()
        .one(db)
        .await?;
    Ok(Markers {
        row,
        notifications_read_id: notifications_read_id.unwrap_or(0),
    })
}

/// Moves `me`'s markers forward from session `session`: the timeline marker to `timeline`, the
/// notifications marker (the read mark) to `last_read_id`, each only when that is past where it
/// stands. Returns the markers as they stand after.
#[tracing::instrument(name = "markers::set", skip_all, fields(user = me.id))]
pub async fn set(
    db: &DatabaseConnection,
    me: &user::Model,
    session: &str,
    timeline: Option<Position>,
    last_read_id: Option<i64>,
) -> Result<Markers, ApiError> {
    db::write(db, async |txn| {
        users::lock(txn, me, &[]).await?;
        // A locking read: the latest row, also on MySQL.
        let row = marker::Entity::find_by_id(me.id)
            .lock_exclusive()
            .one(txn)
            .await?;
        let mut next = row.clone().unwrap_or(marker::Model {
            user_id: me.id,
            timeline_at: None,
            timeline_id: None,
            timeline_updated_at: None,
            timeline_version: 0,
            timeline_session: None,
            notifications_updated_at: None,
            notifications_version: 0,
            notifications_session: None,
            changed_at: 0,
        });
        let now = now_millis();
        let mut changed = false;
        if let Some(position) = timeline {
            let stands = next
                .timeline_at
                .zip(next.timeline_id)
                .map(|(at, id)| Position { at, id });
            if stands.is_none_or(|stands| position > stands) {
                next.timeline_at = Some(position.at);
                next.timeline_id = Some(position.id);
                next.timeline_updated_at = Some(now);
                next.timeline_version += 1;
                next.timeline_session = Some(session.to_owned());
                changed = true;
            }
        }
        if let Some(id) = last_read_id
            && notifications::move_read_mark(txn, me.id, id).await?
        {
            next.notifications_updated_at = Some(now);
            next.notifications_version += 1;
            next.notifications_session = Some(session.to_owned());
            changed = true;
        }
        if changed {
            next.changed_at = now;
            // Every column written, as the row now stands.
            let active = next.clone().into_active_model().reset_all();
            if row.is_some() {
                active.update(txn).await?;
            } else {
                active.insert(txn).await?;
            }
            events::emit(
                txn,
                Event::Marked {
                    user: me.id,
                    session: session.to_owned(),
                },
            )
            .await?;
        }
        let notifications_read_id: Option<i64> = user::Entity::find_by_id(me.id)
            .select_only()
            .column(user::Column::NotificationsReadId)
            .into_tuple()
            .one(txn)
            .await?;
        Ok(Markers {
            row: (changed || row.is_some()).then_some(next),
            notifications_read_id: notifications_read_id.unwrap_or(0),
        })
    })
    .await
}
