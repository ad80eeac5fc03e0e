//! A media on the wire.

use entity::media;
use serde::Serialize;
use utoipa::ToSchema;

/// An uploaded image: where to fetch it and its thumbnail, and what to show while they load.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "q3T5n0m8QeKbV1x2y3z4Aw", "url": "/media/q3T5n0m8QeKbV1x2y3z4Aw",
    "thumbnail_url": "/media/q3T5n0m8QeKbV1x2y3z4Aw/thumbnail", "width": 1600, "height": 1200,
    "description": "A cat on a windowsill", "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj"}))]
pub struct Media {
    /// Its id: 22 characters, random.
    pub id: String,
    /// The image (`GET /media/{id}`), as a path on this server.
    pub url: String,
    /// Its thumbnail (`GET /media/{id}/thumbnail`), at most {THUMB_SIDE} pixels on its longer
    /// side, as a path on this server.
    pub thumbnail_url: String,
    /// The image's width in pixels (at most {MAX_SIDE}).
    pub width: i32,
    /// The image's height in pixels (at most {MAX_SIDE}).
    pub height: i32,
    /// The alt text; `null` when none was given.
    pub description: Option<String>,
    /// A BlurHash of the image, to show while it loads.
    pub blurhash: String,
}

impl From<&media::Model> for Media {
    fn from(m: &media::Model) -> Self {
        Media {
            id: m.id.clone(),
            url: url(&m.id),
            thumbnail_url: thumbnail_url(&m.id),
            width: m.width,
            height: m.height,
            description: m.description.clone(),
            blurhash: m.blurhash.clone(),
        }
    }
}

/// The path of media `id`'s image.
pub fn url(id: &str) -> String {
    format!("/media/{id}")
}

/// The path of media `id`'s thumbnail.
pub fn thumbnail_url(id: &str) -> String {
    format!("/media/{id}/thumbnail")
}
