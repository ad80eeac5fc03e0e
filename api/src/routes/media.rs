//! Media: uploading images for posts, serving them, and avatars.

use actix_multipart::Multipart;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use utoipa::ToSchema;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::limits::{BODY_TIMEOUT, MAX_UPLOAD_BYTES};
use crate::media::{BlobKind, MediaStore, Shape};
use crate::services::media;
use crate::services::relationships::{Relation, ViewerStates};
use crate::state::AppState;
use crate::views::{Media, Profile};

/// The longest alt text, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1_500;

/// What the multipart body around the file may add to it (the boundaries, the parts' headers,
/// the description): a body that declares more than the file's limit and this is refused before
/// it is read.
const MULTIPART_SLACK_BYTES: usize = 64 * 1024;

/// How long an image stays fresh in a cache: a year (its bytes never change; a new image is a
/// new id).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The parts of `POST /media`, for the document (the handler reads the multipart body itself,
/// streaming, so that it can stop at the file's limit).
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "a schema for the document: the handler streams the parts itself"
)]
pub struct MediaUpload {
    /// The image: JPEG, PNG, WebP or GIF (its first frame), recognised by its bytes; at most
    /// {MAX_UPLOAD_MIB} MiB and {MAX_IMAGE_MEGAPIXELS} megapixels.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// The alt text: at most {MEDIA_DESCRIPTION_MAX_CHARS} characters, trimmed; empty is none.
    description: Option<String>,
}

/// The part of `PUT /users/me/avatar`.
#[derive(ToSchema)]
#[expect(
    dead_code,
    reason = "a schema for the document: the handler streams the parts itself"
)]
pub struct AvatarUpload {
    /// The image: JPEG, PNG, WebP or GIF (its first frame), recognised by its bytes; at most
    /// {MAX_UPLOAD_MIB} MiB and {MAX_IMAGE_MEGAPIXELS} megapixels.
    #[schema(value_type = String, format = Binary, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
}

/// Uploads an image, to be attached to a post (`media_ids` of `POST /posts`) within
/// {UNUSED_MEDIA_KEPT_HOURS} hours; unused, it is removed after that.
#[utoipa::path(post, path = "/media", tag = "media", operation_id = "uploadMedia",
    request_body(content = MediaUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "The image, decoded and encoded anew: no metadata of the file survives (no EXIF, no GPS position), the orientation it asked for is applied, and it is at most {MAX_SIDE} pixels on its longer side (the thumbnail {THUMB_SIDE}). Stored as JPEG, or as PNG when it has transparent pixels", body = Media,
            headers(("Location" = String, description = "`/media/{id}`"))),
        (status = 400, description = "`invalid_parameter`: the multipart body could not be read"),
        (status = 408, description = "`request_timeout`: the body did not arrive in time"),
        (status = 413, description = "`payload_too_large`: the file is over {MAX_UPLOAD_MIB} MiB, or the image over {MAX_IMAGE_MEGAPIXELS} megapixels (refused before it is decoded)"),
        (status = 415, description = "`unsupported_media_type`: the body is not `multipart/form-data`, or the file is not a JPEG, PNG, WebP or GIF image that decodes"),
        (status = 422, description = "`validation_failed`: no `file` part, or a `description` over {MEDIA_DESCRIPTION_MAX_CHARS} characters"),
    ),
    security(("bearer" = [])))]
pub async fn upload_media(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = read_upload(&req, payload, true).await?;
    let processed = state.processor.process(upload.file, Shape::Post).await?;
    let created = media::create(
        &state.db,
        &state.media_store,
        &me.0,
        &processed,
        upload.description.as_deref(),
    )
    .await?;
    let body = Media::from(&created);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, body.url.clone()))
        .json(body))
}

/// An image.
#[utoipa::path(get, path = "/media/{id}", tag = "media", operation_id = "getMedia",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 200, description = "The image, with its exact `Content-Type`, `Cache-Control: public, max-age=31536000, immutable` (its bytes never change) and `X-Content-Type-Options: nosniff`",
            content((String = "image/jpeg"), (String = "image/png")),
            headers(("ETag" = String, description = "The image's tag, for `If-None-Match`"))),
        (status = 304, description = "`If-None-Match` names the image's `ETag`"),
        (status = 404, description = "`media_not_found`"),
    ),
    security(()))]
pub async fn get_media(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, &id, BlobKind::Original).await
}

/// An image's thumbnail.
#[utoipa::path(get, path = "/media/{id}/thumbnail", tag = "media", operation_id = "getMediaThumbnail",
    params(("id" = String, Path, description = "The media's id")),
    responses(
        (status = 200, description = "The thumbnail, at most {THUMB_SIDE} pixels on its longer side, with the headers of `GET /media/{id}`",
            content((String = "image/jpeg"), (String = "image/png")),
            headers(("ETag" = String, description = "The thumbnail's tag, for `If-None-Match`"))),
        (status = 304, description = "`If-None-Match` names the thumbnail's `ETag`"),
        (status = 404, description = "`media_not_found`"),
    ),
    security(()))]
pub async fn get_thumbnail(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, &id, BlobKind::Thumbnail).await
}

/// Sets the caller's avatar.
#[utoipa::path(put, path = "/users/me/avatar", tag = "media", operation_id = "setAvatar",
    request_body(content = AvatarUpload, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "The caller's profile, whose `avatar_url` names the new avatar: the image cropped to its centre square, decoded and encoded anew as for `POST /media`. The avatar it replaces is removed", body = Profile),
        (status = 400, description = "`invalid_parameter`: the multipart body could not be read"),
        (status = 408, description = "`request_timeout`: the body did not arrive in time"),
        (status = 413, description = "`payload_too_large`: the file is over {MAX_UPLOAD_MIB} MiB, or the image over {MAX_IMAGE_MEGAPIXELS} megapixels"),
        (status = 415, description = "`unsupported_media_type`: the body is not `multipart/form-data`, or the file is not a JPEG, PNG, WebP or GIF image that decodes"),
        (status = 422, description = "`validation_failed`: no `file` part"),
    ),
    security(("bearer" = [])))]
pub async fn set_avatar(
    req: HttpRequest,
    state: web::Data<AppState>,
    me: AuthUser,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let upload = read_upload(&req, payload, false).await?;
    let processed = state.processor.process(upload.file, Shape::Avatar).await?;
    let user = media::set_avatar(&state.db, &state.media_store, &me.0, &processed).await?;
    let states = ViewerStates::known(user.id, Relation::default());
    Ok(HttpResponse::Ok().json(Profile::own(&user, &states)))
}

/// Removes the caller's avatar.
#[utoipa::path(delete, path = "/users/me/avatar", tag = "media", operation_id = "removeAvatar",
    responses(
        (status = 204, description = "The caller has no avatar (idempotent)"),
    ),
    security(("bearer" = [])))]
pub async fn remove_avatar(
    state: web::Data<AppState>,
    me: AuthUser,
) -> Result<HttpResponse, ApiError> {
    media::remove_avatar(&state.db, &state.media_store, &me.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Answers image `kind` of media `id`: 304 when `If-None-Match` names it (without reading the
/// bytes), else the bytes.
async fn serve(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    kind: BlobKind,
) -> Result<HttpResponse, ApiError> {
    let found = find(state, id).await?;
    // The bytes of an id never change: the id and the kind are the tag.
    let tag = format!("\"{}.{}\"", found.id, kind.as_str());
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|wanted| {
            wanted.trim() == "*"
                || wanted
                    .split(',')
                    .any(|entry| entry.trim().trim_start_matches("W/") == tag)
        });
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag))
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ));
    if not_modified {
        return Ok(response.finish());
    }
    let store = &state.media_store;
    let bytes = match state
        .read(None, async |db| store.get(db, &found.id, kind).await)
        .await?
    {
        Some(bytes) => bytes,
        // The standby had the row but not yet the bytes (or none is configured: then this is
        // the primary's answer again, and the media went meanwhile).
        None => store
            .get(&state.db, &found.id, kind)
            .await?
            .ok_or(ApiError::MediaNotFound)?,
    };
    Ok(response.content_type(found.content_type).body(bytes))
}

/// Media `id`, from the standby when there is one, else (or when the standby has not seen it
/// yet: an image is fetched right after its upload) from the primary.
async fn find(state: &AppState, id: &str) -> Result<entity::media::Model, ApiError> {
    match state.read(None, async |db| media::find(db, id).await).await {
        Err(ApiError::MediaNotFound) if state.standby.is_some() => media::find(&state.db, id).await,
        found => found,
    }
}

/// The parts of an upload.
struct Upload {
    file: Vec<u8>,
    description: Option<String>,
}

/// Reads a `multipart/form-data` upload: its `file` part (at most [`MAX_UPLOAD_BYTES`], 413
/// past it, before more is read) and, when `with_description`, its `description` part, within
/// [`BODY_TIMEOUT`]. Other parts are read and dropped.
async fn read_upload(
    req: &HttpRequest,
    payload: web::Payload,
    with_description: bool,
) -> Result<Upload, ApiError> {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::NotMultipart);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|length| length > MAX_UPLOAD_BYTES + MULTIPART_SLACK_BYTES) {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_UPLOAD_BYTES,
        });
    }
    // The whole body is counted as it arrives, whatever `Content-Length` says or a chunked body
    // does not: the multipart parser buffers a part's headers until they end, so a body whose
    // headers never end would otherwise be held whole.
    let budget = MAX_UPLOAD_BYTES + MULTIPART_SLACK_BYTES;
    let over = std::rc::Rc::new(std::cell::Cell::new(false));
    let mut seen = 0usize;
    let counted = {
        let over = over.clone();
        payload.map(move |chunk| {
            let chunk = chunk?;
            seen += chunk.len();
            if seen > budget {
                over.set(true);
                return Err(actix_web::error::PayloadError::Overflow);
            }
            Ok(chunk)
        })
    };
    let unreadable = |err: actix_multipart::MultipartError| {
        if over.get() {
            ApiError::PayloadTooLarge {
                limit: MAX_UPLOAD_BYTES,
            }
        } else {
            unreadable(err)
        }
    };
    let mut parts = Multipart::new(req.headers(), counted);
    let read = async {
        let mut file: Option<Vec<u8>> = None;
        let mut description: Option<Vec<u8>> = None;
        // The description may take 4 bytes a character; the other parts are small.
        let text_limit = DESCRIPTION_MAX_CHARS * 4;
        while let Some(part) = parts.next().await {
            let mut part = part.map_err(unreadable)?;
            let name = part.name().unwrap_or_default().to_owned();
            let (into, limit) = match name.as_str() {
                "file" if file.is_none() => (file.insert(Vec::new()), MAX_UPLOAD_BYTES),
                "file" => return Err(ApiError::field("file", "only one file may be sent")),
                "description" if with_description && description.is_none() => {
                    (description.insert(Vec::new()), text_limit + 1)
                }
                _ => {
                    // Read and dropped: the body's own bound above limits what it may cost.
                    while let Some(chunk) = part.next().await {
                        chunk.map_err(unreadable)?;
                    }
                    continue;
                }
            };
            while let Some(chunk) = part.next().await {
                let chunk = chunk.map_err(unreadable)?;
                if into.len() + chunk.len() > limit {
                    return Err(match name.as_str() {
                        "description" => too_long_description(),
                        _ => ApiError::PayloadTooLarge {
                            limit: MAX_UPLOAD_BYTES,
                        },
                    });
                }
                into.extend_from_slice(&chunk);
            }
        }
        Ok((file, description))
    };
    let (file, description) = tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .map_err(|_| ApiError::BodyTimeout {
            seconds: BODY_TIMEOUT.as_secs(),
        })??;
    let file = file
        .ok_or_else(|| ApiError::field("file", "is required: the image, as a part named 'file'"))?;
    let description = match description {
        None => None,
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::field("description", "must be UTF-8 text"))?;
            let text = text.trim();
            if text.chars().count() > DESCRIPTION_MAX_CHARS {
                return Err(too_long_description());
            }
            if text.contains('\0') {
                return Err(ApiError::field("description", "must not contain NUL"));
            }
            (!text.is_empty()).then(|| text.to_owned())
        }
    };
    Ok(Upload { file, description })
}

fn too_long_description() -> ApiError {
    ApiError::field(
        "description",
        format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
    )
}

/// A multipart body that does not parse (or a connection that failed while sending it).
fn unreadable(err: actix_multipart::MultipartError) -> ApiError {
    ApiError::InvalidParameter(format!("the multipart body could not be read: {err}"))
}
