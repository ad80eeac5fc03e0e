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

/// Largest image file `POST /media` and `PUT /users/me/avatar` take (the `file` part; the
/// multipart body around it may add a few kilobytes).
pub const MAX_UPLOAD_BYTES: usize = 8 * 1024 * 1024;

/// The most pixels an uploaded image may declare: past it, 413 before it is decoded.
pub const MAX_IMAGE_MEGAPIXELS: u64 = 40;
