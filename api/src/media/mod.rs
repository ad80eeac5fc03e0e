//! Images: how an upload becomes the images the server keeps ([`processing`]), off the async
//! executor and a few at a time ([`Processor`]), and where their bytes live ([`MediaStore`]:
//! the database by default, [`database`]).

pub mod database;
pub mod processing;
pub mod store;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::sync::Semaphore;

pub use processing::{Processed, Shape};
pub use store::{BlobKind, MediaStore, Store};

use crate::error::ApiError;

/// The most images one process decodes at once: each may take a core and up to a few hundred
/// megabytes, so uploads queue here rather than take every core and the memory.
pub const MAX_CONCURRENT_DECODES: usize = 2;

/// How many images this process decodes at once: one core fewer than the machine has, so that
/// a core is always left to the requests the executor serves (measured with `bench media` on 2
/// cores: two decodes at once took both, and a timeline read meanwhile had 5x its p99), at
/// least one and at most [`MAX_CONCURRENT_DECODES`].
pub fn concurrent_decodes() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |cores| cores.get().saturating_sub(1))
        .clamp(1, MAX_CONCURRENT_DECODES)
}

/// Runs [`processing::process`] on tokio's blocking pool, at most [`concurrent_decodes`] at
/// once, so that decoding never stalls the requests the executor serves.
#[derive(Clone)]
pub struct Processor(Arc<Semaphore>);

impl Default for Processor {
    fn default() -> Self {
        Processor(Arc::new(Semaphore::new(concurrent_decodes())))
    }
}

impl Processor {
    /// `bytes` processed as `shape`: 413 `payload_too_large` for an image of too many pixels,
    /// 415 `unsupported_media_type` for a file that is not an image it decodes.
    pub async fn process(&self, bytes: Vec<u8>, shape: Shape) -> Result<Processed, ApiError> {
        // Owned and moved into the blocking task: a request dropped while its image decodes (a
        // client gone, the request timeout) must not free the permit before the decode ends.
        let permit = self
            .0
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        match tokio::task::spawn_blocking(move || {
            let done = processing::process(&bytes, shape);
            drop(permit);
            done
        })
        .await
        {
            Ok(done) => done,
            // A decoder that panics on a file is a bug to fix (the fuzz test looks for them), but
            // for the client it is a file the server cannot read, not a server error.
            Err(err) if err.is_panic() => {
                tracing::error!(error = %err, "an image decoder panicked");
                Err(ApiError::NotAnImage)
            }
            Err(err) => Err(ApiError::internal(err)),
        }
    }
}

/// A new media id: 128 random bits, base64url without padding (22 characters).
pub fn new_id() -> Result<String, ApiError> {
    let mut raw = [0u8; 16];
    getrandom::fill(&mut raw)
        .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// Whether `id` could be a media id (22 base64url characters); anything else is no media's.
pub fn is_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
