//! Where the bytes of images live, behind one interface: [`MediaStore`]. The database keeps them
//! by default ([`super::database`]): every replica serves them and a backup holds them. A
//! deployment that outgrows that puts them in an object store (S3 or the like): one more file
//! that implements [`MediaStore`], and one more arm of [`Store`], chosen at start-up.

use sea_orm::{ConnectionTrait, DatabaseTransaction};

use super::database::DatabaseStore;
use crate::error::ApiError;

/// Which of a media's two images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    Original,
    Thumbnail,
}

impl BlobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobKind::Original => "original",
            BlobKind::Thumbnail => "thumbnail",
        }
    }
}

/// Keeps and serves the bytes of media. `put` runs inside the transaction that writes the media's
/// row, so a store that can join it (the database) never holds bytes without a row; one that
/// cannot (an object store) writes first, and a sweep of keys without a row tidies what a
/// rolled-back upload left.
pub trait MediaStore {
    /// Keeps `bytes` as image `kind` of media `id`.
    fn put(
        &self,
        txn: &DatabaseTransaction,
        id: &str,
        kind: BlobKind,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// The bytes of image `kind` of media `id`, if it has them.
    fn get(
        &self,
        db: &impl ConnectionTrait,
        id: &str,
        kind: BlobKind,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, ApiError>> + Send;

    /// Forgets the images of media `ids`, whose rows the same transaction deletes.
    fn delete(
        &self,
        txn: &DatabaseTransaction,
        ids: &[String],
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
}

/// The store this process uses, chosen once at start-up.
#[derive(Clone, Debug, Default)]
pub enum Store {
    /// The `media_blobs` table.
    #[default]
    Database,
}

impl MediaStore for Store {
    async fn put(
        &self,
        txn: &DatabaseTransaction,
        id: &str,
        kind: BlobKind,
        bytes: Vec<u8>,
    ) -> Result<(), ApiError> {
        match self {
            Store::Database => DatabaseStore.put(txn, id, kind, bytes).await,
        }
    }

    async fn get(
        &self,
        db: &impl ConnectionTrait,
        id: &str,
        kind: BlobKind,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        match self {
            Store::Database => DatabaseStore.get(db, id, kind).await,
        }
    }

    async fn delete(&self, txn: &DatabaseTransaction, ids: &[String]) -> Result<(), ApiError> {
        match self {
            Store::Database => DatabaseStore.delete(txn, ids).await,
        }
    }
}
