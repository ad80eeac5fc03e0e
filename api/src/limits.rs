//! The request limits the HTTP layer enforces and the document quotes (the document's descriptions
//! are built from these, [`crate::openapi`]).

/// Longest a request body may take to arrive once the request head has (actix's own client request
/// timeout covers the head alone).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long a client may take to send a request's head (actix-http's client request timeout; the
/// body then has [`BODY_TIMEOUT`]).
pub const CLIENT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
