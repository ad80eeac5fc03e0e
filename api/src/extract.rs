//! The extractors' side of the contract: a JSON body that must be an object, whole numbers in
//! JSON, and the error handlers that turn actix's extractor rejections (body, path, query) into
//! the problem+json errors of `API.md`.

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, web};

use crate::error::ApiError;
use crate::limits::{BODY_TIMEOUT, MAX_BODY_BYTES};

/// A JSON request body that must be an object. (`web::Json` alone would also read a struct from a
/// JSON array, field by field, which no client means.) Rejections are the same problem+json errors
/// as `web::Json`'s.
pub struct JsonBody<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonBody<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let object = read_object(req, payload);
        Box::pin(async move {
            let object = object.await?;
            parse_object(object).map(JsonBody)
        })
    }
}

/// The body as a JSON object, read within [`BODY_TIMEOUT`] and the size limit.
fn read_object(
    req: &HttpRequest,
    payload: &mut actix_web::dev::Payload,
) -> impl std::future::Future<
    Output = Result<serde_json::Map<String, serde_json::Value>, actix_web::Error>,
> + 'static {
    read_json(req, payload)
}

/// The body as JSON of the shape `J`, read within [`BODY_TIMEOUT`] and the size limit.
fn read_json<J: serde::de::DeserializeOwned + 'static>(
    req: &HttpRequest,
    payload: &mut actix_web::dev::Payload,
) -> impl std::future::Future<Output = Result<J, actix_web::Error>> + 'static {
    let object = <web::Json<J> as actix_web::FromRequest>::from_request(req, payload);
    async move {
        Ok(tokio::time::timeout(BODY_TIMEOUT, object)
            .await
            .map_err(|_| ApiError::BodyTimeout {
                seconds: BODY_TIMEOUT.as_secs(),
            })??
            .into_inner())
    }
}

fn parse_object<T: serde::de::DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<T, actix_web::Error> {
    serde_path_to_error::deserialize(serde_json::Value::Object(object))
        .map_err(|e| ApiError::InvalidJson(shape_error(&e)).into())
}

/// A JSON object body, as [`JsonBody`], with its canonical text: keys sorted at every level, no
/// white space. Two bodies that differ only in key order or spacing have the same canonical text,
/// which is what a repeat with an `Idempotency-Key` is compared by.
pub struct CanonicalJson<T> {
    pub body: T,
    pub canonical: String,
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for CanonicalJson<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let object = read_object(req, payload);
        Box::pin(async move {
            let object = object.await?;
            let mut canonical = String::new();
            write_canonical(&serde_json::Value::Object(object.clone()), &mut canonical);
            Ok(CanonicalJson {
                body: parse_object(object)?,
                canonical,
            })
        })
    }
}

/// Writes `value` as JSON with every object's keys in sorted order and no white space.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The `Idempotency-Key` header of a write that creates: 1 to 255 visible ASCII characters
/// (400 `invalid_parameter` otherwise), or `None` when it is not sent.
pub struct IdempotencyKey(pub Option<String>);

/// The longest `Idempotency-Key`.
pub const IDEMPOTENCY_KEY_MAX_CHARS: usize = 255;

impl actix_web::FromRequest for IdempotencyKey {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let Some(value) = req.headers().get("idempotency-key") else {
            return std::future::ready(Ok(IdempotencyKey(None)));
        };
        let bytes = value.as_bytes();
        let valid = (1..=IDEMPOTENCY_KEY_MAX_CHARS).contains(&bytes.len())
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b));
        std::future::ready(if valid {
            Ok(IdempotencyKey(Some(
                String::from_utf8_lossy(bytes).into_owned(),
            )))
        } else {
            Err(ApiError::InvalidParameter(format!(
                "the Idempotency-Key header must be 1 to {IDEMPOTENCY_KEY_MAX_CHARS} visible ASCII characters"
            ))
            .into())
        })
    }
}

/// A JSON body that may be left out: `None` for a request with no body at all (no
/// `Content-Length` but 0, no chunked body) or a body of `null`; otherwise an object read as
/// [`JsonBody`] reads it, with its errors (so a body that is sent but broken is still a 400 or
/// 415, never silently ignored).
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for OptionalJsonBody<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let headers = req.headers();
        let length = headers
            .get(actix_web::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let chunked = headers.contains_key(actix_web::http::header::TRANSFER_ENCODING);
        if !chunked && length.unwrap_or(0) == 0 {
            return Box::pin(async { Ok(OptionalJsonBody(None)) });
        }
        let value = read_json::<Option<serde_json::Map<String, serde_json::Value>>>(req, payload);
        Box::pin(async move {
            match value.await? {
                None => Ok(OptionalJsonBody(None)),
                Some(object) => parse_object(object).map(|body| OptionalJsonBody(Some(body))),
            }
        })
    }
}

/// Reads an optional whole number from JSON in every form JSON Schema calls an integer: `12` and
/// also `12.0`. Anything else (`1.5`, a number out of range, a string) is refused with a message
/// that names what the field must be ([`shape_error`]).
pub fn whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    use serde::de::{Error, Unexpected};
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    // A number that is not an i64 was read as a float: written with a fraction or an exponent,
    // or out of i64's range. Floats hold whole numbers exactly only below 2^53; past it, one that
    // was out of range (-9223372036854775809) rounds to one that is not, so those are refused.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float.abs() < EXACT => Ok(Some(float as i64)),
        Some(float) => Err(D::Error::invalid_value(
            Unexpected::Float(float),
            &"a whole number from -9223372036854775808 to 9223372036854775807",
        )),
        None => Err(D::Error::invalid_value(
            Unexpected::Other("a number"),
            &"a whole number from -9223372036854775808 to 9223372036854775807",
        )),
    }
}

/// What is wrong with a JSON body that is an object but not of the expected shape, naming the
/// field and the type it needs without repeating the value (it may be a password).
fn shape_error(error: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let field = error.path().to_string();
    let inner = error.inner().to_string();
    // serde's wording: "invalid type: integer `123`, expected a string"; the value is left out.
    match inner.split_once(", expected ") {
        Some((_, expected)) if field != "." => format!("the field '{field}' must be {expected}"),
        _ if field != "." => format!("the field '{field}' is not of the expected shape"),
        _ => "the body is not a JSON object of the expected shape".to_owned(),
    }
}

pub(crate) fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(MAX_BODY_BYTES)
        .content_type_required(true)
        .error_handler(|err, _req| {
            match err {
                JsonPayloadError::OverflowKnownLength { limit, .. }
                | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit },
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(e) => ApiError::InvalidJson(json_syntax_error(&e)),
                other => ApiError::InvalidJson(format!("the body could not be read: {other}")),
            }
            .into()
        })
}

/// Path parameters that are not strings are ids: say which must be a whole number, in words (not
/// the framework's "can not parse ... to a i64"), without repeating what was sent.
pub(crate) fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_err: PathError, req| {
        let name = req
            .match_info()
            .iter()
            .find(|(_, value)| value.parse::<i64>().is_err())
            .map_or("id", |(name, _)| name);
        let what = match (req.match_pattern().as_deref(), name) {
            (Some(pattern), "id") if pattern.starts_with("/posts/") => "the post id".to_owned(),
            (_, name) => format!("'{name}' in the path"),
        };
        ApiError::InvalidParameter(format!("{what} must be a whole number, such as 42")).into()
    })
}

/// What is wrong with a body that is not a JSON object at all, in words a client developer
/// understands; serde_json's positions are kept, the text sent is not repeated.
fn json_syntax_error(error: &serde_json::Error) -> String {
    let at = format!("line {}, column {}", error.line(), error.column());
    let message = error.to_string();
    if message.contains("surrogate") || message.contains("hex escape") {
        format!(
            "the body is not valid JSON: the \\u escape before {at} is not a whole character (a \
             lone UTF-16 surrogate, or cut short); text must be whole Unicode characters"
        )
    } else if error.is_data() {
        "the body must be a JSON object such as {\"field\": \"value\"}".to_owned()
    } else if error.is_eof() {
        format!("the body is not valid JSON: it ends early, at {at}")
    } else {
        format!("the body is not valid JSON: a syntax error at {at}")
    }
}

/// Query strings are parsed into `Option<String>` fields, so the one thing that can go wrong here
/// is a parameter given more than once; say so in words.
pub(crate) fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        let message = err.to_string();
        let detail = match message.split('`').nth(1) {
            Some(name) if message.contains("duplicate field") => {
                format!("the query parameter '{name}' is given more than once")
            }
            _ => "the query string is not valid".to_owned(),
        };
        ApiError::InvalidParameter(detail).into()
    })
}
