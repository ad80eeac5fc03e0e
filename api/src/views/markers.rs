//! Markers on the wire: `GET`/`POST /markers`, and the stream's `event: marker`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::page::CursorCodec;
use crate::services::markers::Markers as Stored;
use crate::services::timeline;
use crate::time::Timestamp;

/// Where the caller stopped reading the timeline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineMarker {
    /// A timeline cursor (the `id` of a stream `post` event, or a timeline page's
    /// `prev_cursor`): pass it as `newer_than` to read on from there.
    pub position: String,
    /// When it last moved.
    pub updated_at: Timestamp,
    /// Grows by one at each change.
    #[schema(example = 3)]
    pub version: i64,
}

/// How far the caller read the notifications: the read mark of `POST /notifications/read`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsMarker {
    /// Every notification with an id up to this one is read.
    #[schema(example = 12)]
    pub last_read_id: i64,
    /// When it last moved.
    pub updated_at: Timestamp,
    /// Grows by one at each change.
    #[schema(example = 7)]
    pub version: i64,
}

/// The caller's markers; `null` for one that was never set.
#[derive(Debug, Serialize, ToSchema)]
pub struct Markers {
    pub timeline: Option<TimelineMarker>,
    pub notifications: Option<NotificationsMarker>,
}

impl Markers {
    /// `reader`'s stored markers, the timeline position as a cursor of the reader's timeline.
    pub fn new(stored: &Stored, reader: i64, cursors: &CursorCodec) -> Self {
        let row = stored.row.as_ref();
        let timeline = stored.timeline().and_then(|position| {
            let row = row?;
            Some(TimelineMarker {
                position: cursors.encode(&timeline::list_name(reader), position),
                updated_at: Timestamp(row.timeline_updated_at.unwrap_or_default()),
                version: row.timeline_version,
            })
        });
        let notifications =
            row.filter(|row| row.notifications_version > 0)
                .map(|row| NotificationsMarker {
                    last_read_id: stored.notifications_read_id,
                    updated_at: Timestamp(row.notifications_updated_at.unwrap_or_default()),
                    version: row.notifications_version,
                });
        Markers {
            timeline,
            notifications,
        }
    }
}
