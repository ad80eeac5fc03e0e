//! [`MediaStore`] in the database: the `media_blobs` table, one row per image, read by primary
//! key and by nothing else (no list query touches it). Its rows go with their media's row
//! (`ON DELETE CASCADE`), so deleting a post or an account removes its images too.

use entity::media_blob;
use sea_orm::{ConnectionTrait, DatabaseTransaction, EntityTrait, Set};

use super::store::{BlobKind, MediaStore};
use crate::error::ApiError;

/// The images in the `media_blobs` table.
#[derive(Clone, Copy, Debug, Default)]
pub struct DatabaseStore;

impl MediaStore for DatabaseStore {
    async fn put(
        &self,
        txn: &DatabaseTransaction,
        id: &str,
        kind: BlobKind,
        bytes: Vec<u8>,
    ) -> Result<(), ApiError> {
        // Without reading the row back, as `insert` would on some backends.
        media_blob::Entity::insert(media_blob::ActiveModel {
            media_id: Set(id.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            bytes: Set(bytes),
        })
        .exec_without_returning(txn)
        .await?;
        Ok(())
    }

    async fn get(
        &self,
        db: &impl ConnectionTrait,
        id: &str,
        kind: BlobKind,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(
            media_blob::Entity::find_by_id((id.to_owned(), kind.as_str().to_owned()))
                .one(db)
                .await?
                .map(|blob| blob.bytes),
        )
    }

    async fn delete(&self, _txn: &DatabaseTransaction, _ids: &[String]) -> Result<(), ApiError> {
        // The rows go with their media's row (`ON DELETE CASCADE`).
        Ok(())
    }
}
