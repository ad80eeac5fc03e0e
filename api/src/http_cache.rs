//! `HEAD`, `ETag` and the cache headers of every `GET`, in one middleware between the other
//! middleware and the router:
//!
//! - a `HEAD` request is routed as the `GET` it asks about (actix-http, which read the request as
//!   `HEAD`, then sends the headers without the body);
//! - every 200 answer to a `GET` whose body has a known size carries a strong `ETag` (a hash of the
//!   body), and a `GET` whose `If-None-Match` names it is answered 304 with no body;
//! - every answer to a `GET` says how it may be cached: `private, no-cache` when the request was
//!   authenticated (it may hold the caller's viewer state), `no-cache` otherwise, both with
//!   `Vary: Authorization`; a handler that set `Cache-Control` itself (answers that carry tokens
//!   say `no-store`) keeps its own;
//! - a handler that set `ETag` itself (images, [`crate::routes::media`]) keeps it and answers
//!   `If-None-Match` itself.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Marks a `HEAD` request routed as `GET`, so that a 405 names the method the client sent.
#[derive(Clone, Copy, Debug)]
pub struct RoutedAsGet;

/// The method the client sent: `HEAD` for a request this middleware routed as `GET`.
pub fn sent_method(req: &actix_web::HttpRequest) -> String {
    if req.extensions().contains::<RoutedAsGet>() {
        Method::HEAD.to_string()
    } else {
        req.method().to_string()
    }
}

/// Bodies larger than this are sent without an `ETag` rather than held in memory to hash.
const MAX_HASHED_BODY: usize = 1024 * 1024;

pub async fn conditional_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(RoutedAsGet);
    }
    if req.method() != Method::GET {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let authenticated = req.headers().contains_key(header::AUTHORIZATION);
    let if_none_match = req.headers().get(header::IF_NONE_MATCH).cloned();
    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    if !headers.contains_key(header::CACHE_CONTROL) {
        let policy = if authenticated {
            "private, no-cache"
        } else {
            "no-cache"
        };
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    // A public answer (an image) is the same whoever asks: it does not vary by `Authorization`.
    let public = headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("public"));
    if !public {
        headers.append(header::VARY, HeaderValue::from_static("Authorization"));
    }
    let hashable = matches!(
        res.response().body().size(),
        actix_web::body::BodySize::Sized(n) if n <= MAX_HASHED_BODY as u64
    );
    // A handler that tags its answers itself (an image, whose id names its bytes) answered the
    // conditional request already: its body is not read again to hash it.
    if res.status() != StatusCode::OK || !hashable || res.headers().contains_key(header::ETAG) {
        return Ok(res);
    }

    let (request, response) = res.into_parts();
    let (mut response, body) = response.into_parts();
    let bytes = match to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let err = ApiError::internal(std::io::Error::other(err.to_string()));
            return Ok(ServiceResponse::new(request, err.error_response()));
        }
    };
    let tag = etag_of(&bytes);
    response.headers_mut().insert(header::ETAG, tag.clone());
    if if_none_match.is_some_and(|wanted| names(&wanted, &tag)) {
        let mut not_modified = HttpResponse::NotModified().finish();
        copy_validators(response.headers(), not_modified.headers_mut());
        return Ok(ServiceResponse::new(request, not_modified));
    }
    Ok(ServiceResponse::new(
        request,
        response.set_body(bytes).map_into_boxed_body(),
    ))
}

/// A strong entity tag: the first 128 bits of the body's SHA-256.
fn etag_of(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let tag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether an `If-None-Match` value names `tag`: `*`, or a list in which one entry equals it
/// (weak comparison, as RFC 9110 asks for `If-None-Match`: a `W/` prefix is ignored).
fn names(if_none_match: &HeaderValue, tag: &HeaderValue) -> bool {
    let (Ok(wanted), Ok(tag)) = (if_none_match.to_str(), tag.to_str()) else {
        return false;
    };
    wanted.trim() == "*"
        || wanted
            .split(',')
            .map(|entry| entry.trim().trim_start_matches("W/"))
            .any(|entry| entry == tag)
}

/// The headers a 304 repeats from the 200 it stands for (RFC 9110, 15.4.5).
fn copy_validators(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [
        header::ETAG,
        header::CACHE_CONTROL,
        header::VARY,
        header::CONTENT_LOCATION,
        header::DATE,
        header::EXPIRES,
    ] {
        for value in from.get_all(&name) {
            to.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_names_a_tag_in_a_list_weakly_or_by_star() {
        let tag = etag_of(b"{}");
        let value = |s: &str| HeaderValue::from_str(s).unwrap();
        let t = tag.to_str().unwrap();
        assert!(names(&value(t), &tag));
        assert!(names(&value(&format!("\"other\", W/{t}")), &tag));
        assert!(names(&value("*"), &tag));
        assert!(!names(&value("\"other\""), &tag));
        assert!(!names(&value(&t[1..]), &tag));
        assert_ne!(etag_of(b"{}"), etag_of(b"[]"));
    }
}
