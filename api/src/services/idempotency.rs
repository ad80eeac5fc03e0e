//! `Idempotency-Key` on the writes that create (`POST /posts`, `POST /reports`): a repeat of a
//! request that created something answers what the first answered, and creates nothing.
//!
//! The key is recorded in the transaction that creates the object ([`record`]), after the
//! caller's row lock that every such write takes first: two requests with one key therefore
//! queue on that lock, and the second finds the first's row ([`prior`]) instead of creating a
//! second object, on every backend and across replicas and restarts. The answer's body is added
//! after the commit ([`store_response`]); a repeat that finds no body (a crash came between)
//! renders the object again from the row's `resource_id`. A repeat that comes while the first is
//! still running in this process is told so at once (409, [`InFlight`]), without waiting on the
//! lock. Keys live 24 hours ([`KEPT`]); [`sweep`] removes older ones.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use entity::idempotency_key;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::time::now_millis;

/// How long a key is kept, in milliseconds: 24 hours.
pub const KEPT: i64 = 24 * 3_600_000;

/// A caller's key for one request: who sent it, the key, and what the request was.
#[derive(Clone, Debug)]
pub struct Claim {
    pub user_id: i64,
    pub key: String,
    /// SHA-256 (hex) of the method, the path and the canonical JSON body.
    fingerprint: String,
}

impl Claim {
    /// The claim of `user_id`'s `key` on `operation` (such as `POST /posts`) with a body whose
    /// canonical JSON is `canonical_body` (keys sorted, no spacing: two bodies that differ only
    /// in key order or spacing are the same request).
    pub fn new(user_id: i64, key: String, operation: &str, canonical_body: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(operation.as_bytes())
            .chain_update(b"\n")
            .chain_update(canonical_body.as_bytes())
            .finalize();
        Claim {
            user_id,
            key,
            fingerprint: digest.iter().map(|b| format!("{b:02x}")).collect(),
        }
    }
}

/// What a first request answered, kept for its repeats.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub resource_id: Option<i64>,
    /// The body, unless a crash came between the commit and its writing.
    pub response: Option<String>,
}

/// What a write that takes a key did: its own work, or the first request's answer again.
pub enum Outcome<T> {
    Done(T),
    Replay(Answer),
}

/// The answer of an earlier request with this claim's key (within [`KEPT`]), or `None`; 422
/// `idempotency_key_reused` when that request was another. Under the caller's row lock in the
/// creating transaction, where a concurrent repeat's key is seen once it commits; and before it,
/// where a committed key is answered at once.
pub async fn prior(txn: &impl ConnectionTrait, claim: &Claim) -> Result<Option<Answer>, ApiError> {
    // A locking read: the latest row on every backend (MySQL's plain reads would see the
    // transaction's snapshot, which may be older than the lock).
    let row = idempotency_key::Entity::find_by_id((claim.user_id, claim.key.clone()))
        .filter(idempotency_key::Column::CreatedAt.gt(now_millis() - KEPT))
        .lock_exclusive()
        .one(txn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    if row.fingerprint != claim.fingerprint {
        return Err(ApiError::IdempotencyKeyReused);
    }
    Ok(Some(Answer {
        status: u16::try_from(row.status).unwrap_or(200),
        location: row.location,
        resource_id: row.resource_id,
        response: row.response,
    }))
}

/// Step, in the transaction that creates the object: records the claim's key with the answer's
/// status, `Location` and the object's id (replacing a key past its 24 hours).
pub async fn record(
    txn: &DatabaseTransaction,
    claim: &Claim,
    status: u16,
    location: Option<String>,
    resource_id: i64,
) -> Result<(), ApiError> {
    idempotency_key::Entity::delete_by_id((claim.user_id, claim.key.clone()))
        .exec(txn)
        .await?;
    idempotency_key::ActiveModel {
        user_id: Set(claim.user_id),
        key: Set(claim.key.clone()),
        fingerprint: Set(claim.fingerprint.clone()),
        status: Set(i32::from(status)),
        location: Set(location),
        resource_id: Set(Some(resource_id)),
        response: Set(None),
        created_at: Set(now_millis()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Adds the first answer's body to its key, after the commit. A failure here costs a repeat a
/// fresh rendering of the object, nothing more.
pub async fn store_response(db: &impl ConnectionTrait, claim: &Claim, response: &str) {
    let stored = idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::Response,
            sea_orm::sea_query::Expr::value(response.to_owned()),
        )
        .filter(idempotency_key::Column::UserId.eq(claim.user_id))
        .filter(idempotency_key::Column::Key.eq(claim.key.clone()))
        .exec(db)
        .await;
    if let Err(err) = stored {
        tracing::warn!(error = %err, "could not keep an idempotent answer's body");
    }
}

/// Removes the keys past their 24 hours; how many went.
#[tracing::instrument(name = "idempotency::sweep", skip_all)]
pub async fn sweep(db: &impl ConnectionTrait) -> Result<u64, ApiError> {
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lte(now_millis() - KEPT))
        .exec(db)
        .await?
        .rows_affected)
}

/// The keys whose first request is running in this process: a repeat meanwhile is 409
/// `idempotency_key_in_use` at once, rather than a wait on the caller's lock.
#[derive(Clone, Default)]
pub struct InFlight(Arc<Mutex<HashSet<(i64, String)>>>);

/// A key held by a running request; let go when dropped.
pub struct Held {
    set: InFlight,
    entry: (i64, String),
}

impl InFlight {
    /// Holds `claim`'s key for the request that runs it, or 409 when another request holds it.
    pub fn hold(&self, claim: &Claim) -> Result<Held, ApiError> {
        let entry = (claim.user_id, claim.key.clone());
        let mut running = self
            .0
            .lock()
            .map_err(|_| ApiError::internal(std::io::Error::other("in-flight keys poisoned")))?;
        if !running.insert(entry.clone()) {
            return Err(ApiError::IdempotencyKeyInUse);
        }
        Ok(Held {
            set: self.clone(),
            entry,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut running) = self.set.0.lock() {
            running.remove(&self.entry);
        }
    }
}
