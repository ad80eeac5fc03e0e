//! Password hashing: Argon2id on a small dedicated pool whose threads each reuse one memory.

use std::cell::RefCell;

use argon2::password_hash::{self, phc};
use argon2::{Argon2, PasswordHash};

use crate::error::ApiError;

/// Argon2id hashing and verification on a small dedicated thread pool.
///
/// Each hash takes 19 MiB and a core for tens of milliseconds. On the async runtime's blocking
/// pool a burst of logins ran on as many threads as there were logins; a fixed pool of one thread
/// per core (at most four) bounds the CPU that password hashing can take at once, and each pool
/// thread reuses one working memory (`ARGON2_MEMORY`), which bounds its memory too: at most
/// 19 MiB per pool thread, however many logins come. (Allocating it per hash, as the argon2
/// crate's `PasswordHasher` does, let glibc keep every freed 19 MiB block once its mmap threshold
/// had adapted: 30 logins grew a server by 170 MB.)
pub struct Passwords {
    pool: rayon::ThreadPool,
}

impl Passwords {
    pub fn new() -> Result<Self, rayon::ThreadPoolBuildError> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("argon2-{i}"))
            .build()?;
        Ok(Passwords { pool })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            let _ = sender.send(work());
        });
        receiver.await.map_err(ApiError::internal)
    }

    /// Hashes a password with Argon2id (default parameters) into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.run(move || hash_password(password.as_bytes()))
            .await?
            .map_err(|e| ApiError::internal(std::io::Error::other(e.to_string())))
    }

    /// Whether `password` matches the PHC string `hash`. To answer an unknown user as slowly as a
    /// wrong password, callers verify against a hash of a password nobody knows
    /// ([`crate::state::AppState::dummy_password_hash`]).
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        self.run(move || verify_password(password.as_bytes(), &hash).unwrap_or(false))
            .await
    }
}

thread_local! {
    /// The Argon2 working memory of this thread, grown on first use to what the parameters need
    /// and reused by every later hash on the thread. The server writes only default-parameter
    /// hashes (19 MiB); a stored hash naming a larger memory cost would grow it for good.
    /// Borrowed for a whole hash, which is safe because the argon2 crate's `parallel` feature is
    /// off: with it, rayon could start a second hash on this thread mid-borrow and panic.
    static ARGON2_MEMORY: RefCell<Vec<argon2::Block>> = const { RefCell::new(Vec::new()) };
}

/// `argon2`'s raw hash of `password` and `salt` into `out`, in this thread's [`ARGON2_MEMORY`].
fn argon2_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    ARGON2_MEMORY.with_borrow_mut(|memory| {
        let blocks = argon2.params().block_count();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, memory.as_mut_slice())
    })
}

/// An Argon2id PHC string (default parameters, a random 16-byte salt) for `password`: the same
/// string the argon2 crate's `PasswordHasher` makes, computed in this thread's reused memory.
pub fn hash_password(password: &[u8]) -> password_hash::Result<String> {
    let argon2 = Argon2::default();
    let salt = password_hash::try_generate_salt().map_err(|_| password_hash::Error::RngFailure)?;
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon2, password, &salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::default().ident(),
        version: Some(argon2::Version::default().into()),
        params: phc::ParamsString::try_from(argon2.params())?,
        salt: Some(phc::Salt::new(&salt)?),
        hash: Some(phc::Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (any Argon2 variant, version and parameters
/// the string names), compared in constant time. An unreadable `hash` is an error.
pub fn verify_password(password: &[u8], hash: &str) -> password_hash::Result<bool> {
    let hash = PasswordHash::new(hash)?;
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return Err(password_hash::Error::EncodingInvalid);
    };
    let argon2 = Argon2::new(
        argon2::Algorithm::try_from(hash.algorithm.as_str())?,
        hash.version
            .map(argon2::Version::try_from)
            .transpose()?
            .unwrap_or_default(),
        argon2::Params::try_from(&hash)?,
    );
    let mut out = vec![0u8; expected.len()];
    argon2_into(&argon2, password, salt, &mut out)?;
    // `Output`'s equality is constant-time.
    Ok(phc::Output::new(&out)? == *expected)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn a_hash_verifies_its_own_password_only() -> password_hash::Result<()> {
        let hash = hash_password(b"correct horse")?;
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(b"correct horse", &hash)?);
        assert!(!verify_password(b"correct horsf", &hash)?);
        assert!(!verify_password(b"", &hash)?);
        Ok(())
    }

    #[test]
    fn hashes_interoperate_with_the_argon2_crates_own_hasher() -> password_hash::Result<()> {
        // Hashes stored before the reused memory came from `PasswordHasher`; they must still
        // verify, and ours must verify with the crate's verifier.
        let theirs = Argon2::default().hash_password(b"s3cret pass")?.to_string();
        assert!(verify_password(b"s3cret pass", &theirs)?);
        assert!(!verify_password(b"s3cret pasS", &theirs)?);
        let ours = hash_password(b"s3cret pass")?;
        assert!(
            Argon2::default()
                .verify_password(b"s3cret pass", ours.as_str())
                .is_ok()
        );
        Ok(())
    }

    #[test]
    fn other_argon2_parameters_are_verified_with_their_own_parameters() -> password_hash::Result<()>
    {
        let params = argon2::Params::new(8 * 1024, 1, 2, Some(24))?;
        let argon2i = Argon2::new(argon2::Algorithm::Argon2i, argon2::Version::V0x10, params);
        let hash = argon2i.hash_password(b"pw")?.to_string();
        assert!(hash.starts_with("$argon2i$v=16$"), "{hash}");
        assert!(verify_password(b"pw", &hash)?);
        assert!(!verify_password(b"pW", &hash)?);
        Ok(())
    }

    #[test]
    fn an_unreadable_hash_is_an_error_not_a_match() {
        assert!(verify_password(b"pw", "not a phc string").is_err());
        assert!(verify_password(b"pw", "$argon2id$v=19$m=19456,t=2,p=1").is_err());
    }
}
