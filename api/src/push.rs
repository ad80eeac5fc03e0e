//! Web Push: the server's VAPID key (RFC 8292), the rules a subscription's endpoint and keys obey,
//! and the transport that sends one encrypted message (RFC 8291 `aes128gcm`, RFC 8030 delivery).
//!
//! The cryptography is the well-kept crates': `p256` holds the key, `jsonwebtoken` signs the
//! ES256 token, `ece` encrypts the payload. The POST goes through `reqwest` (TLS by the system's
//! OpenSSL and CA certificates) with no redirects
//! followed, no proxy, a timeout, and a resolver that refuses names resolving to a loopback,
//! private, link-local or unspecified address (no server-side request forgery through a
//! subscription), unless `PUSH_ALLOW_PRIVATE_ENDPOINTS` lifts it for development.
//!
//! Nothing a client sent (its endpoint, its keys) is ever logged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;

/// The longest endpoint a subscription may have, in characters.
pub const MAX_ENDPOINT_CHARS: usize = 1_000;

/// How long a push service keeps a message for a device that is offline (the `TTL` header):
/// two days.
pub const TTL_SECONDS: u64 = 172_800;

/// The largest payload sent, in bytes (before encryption).
pub const MAX_PAYLOAD_BYTES: usize = 3_000;

/// How long one POST to a push service may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a VAPID token is valid (RFC 8292 allows at most 24 hours).
const TOKEN_LIFETIME_SECONDS: u64 = 12 * 3_600;

/// The server's P-256 key pair for VAPID.
pub struct VapidKey {
    secret: p256::SecretKey,
    /// The private key as PKCS#8 DER, for `jsonwebtoken`'s ES256 signer.
    pkcs8: Vec<u8>,
    /// The public key, uncompressed (65 bytes), base64url without padding.
    public: String,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl VapidKey {
    /// The key whose 32-byte private scalar `text` holds in base64url (padding and surrounding
    /// blanks tolerated); the reason it is refused otherwise (the value is never repeated).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim().trim_end_matches('='))
            .map_err(|_| "is not base64url".to_owned())?;
        if bytes.len() != 32 {
            return Err(format!(
                "is {} bytes long; a P-256 private key is 32 bytes (base64url)",
                bytes.len()
            ));
        }
        let secret = p256::SecretKey::from_slice(&bytes)
            .map_err(|_| "is not a valid P-256 private key".to_owned())?;
        Self::from_secret(secret)
    }

    /// A new random key.
    pub fn generate() -> Result<Self, String> {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
            // Fails only for the zero scalar or one past the group order: astronomically rare.
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                return Self::from_secret(secret);
            }
        }
    }

    fn from_secret(secret: p256::SecretKey) -> Result<Self, String> {
        let pkcs8 = secret
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the key: {e}"))?
            .as_bytes()
            .to_vec();
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_encoded_point(false).as_bytes());
        Ok(VapidKey {
            secret,
            pkcs8,
            public,
        })
    }

    /// The private key as `VAPID_PRIVATE_KEY` takes it.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.to_bytes())
    }

    /// The public key, as `GET /push/server_key` gives it (the browser's `applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header of a push to `audience` (the endpoint's origin) that names
    /// `contact`, valid for [`TOKEN_LIFETIME_SECONDS`] from `now` (seconds since the epoch).
    pub fn authorization(&self, audience: &str, contact: &str, now: u64) -> Result<String, String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            exp: u64,
            sub: &'a str,
        }
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let claims = Claims {
            aud: audience,
            exp: now + TOKEN_LIFETIME_SECONDS,
            sub: contact,
        };
        let token = jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_der(&self.pkcs8),
        )
        .map_err(|e| format!("cannot sign the VAPID token: {e}"))?;
        Ok(format!("vapid t={token}, k={}", self.public))
    }
}

/// Why an address may not receive pushes, as the validation message says it.
pub const PRIVATE_ADDRESS: &str =
    "must not be a loopback, private, link-local, unique-local or unspecified address";

/// Checks a subscription's `endpoint`: an `https://` URL (or `http://` when `allow_private`) of
/// at most [`MAX_ENDPOINT_CHARS`] characters, with no user or password, whose host is not
/// `localhost` nor, as written, a private address ([`is_private`]) unless `allow_private`. The
/// message of the first rule it breaks otherwise.
pub fn check_endpoint(endpoint: &str, allow_private: bool) -> Result<url::Url, String> {
    if endpoint.chars().count() > MAX_ENDPOINT_CHARS {
        return Err(format!(
            "must be at most {} characters",
            crate::openapi::thousands(MAX_ENDPOINT_CHARS as u64)
        ));
    }
    // The URL parser drops or escapes control characters; the endpoint is stored and sent as
    // written, so it must have none (PostgreSQL refuses a NUL in text).
    if endpoint.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    let url = url::Url::parse(endpoint).map_err(|_| "must be an https:// URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must be an https:// URL".to_owned()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".to_owned());
    }
    let private = match url.host() {
        None => return Err("must be an https:// URL".to_owned()),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => is_private(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private(IpAddr::V6(ip)),
    };
    if private && !allow_private {
        return Err(PRIVATE_ADDRESS.to_owned());
    }
    Ok(url)
}

/// Whether `ip` is one that a push must not reach: loopback, private (RFC 1918), shared
/// (RFC 6598), link-local (`169.254.0.0/16` with the cloud metadata address, `fe80::/10`),
/// unique-local (`fc00::/7`), unspecified (`0.0.0.0/8`, `::`), multicast, broadcast or reserved;
/// an IPv6 address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by it.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || (first & 0xfe00) == 0xfc00 // unique-local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first & 0xff00) == 0xff00 // multicast
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0 included
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 224 // multicast, reserved, broadcast
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || (s[5] == 0 && s[6] != 0)) {
        return Some(last(s[6], s[7]));
    }
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(last(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(last(s[1], s[2]));
    }
    None
}

/// Decodes a subscription key sent in base64url (padding tolerated).
pub fn decode_key(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// A key that [`decode_key`] accepts, as base64url without padding (the stored form).
pub fn canonical_key(text: &str) -> String {
    decode_key(text).map_or_else(String::new, |bytes| URL_SAFE_NO_PAD.encode(bytes))
}

/// Checks `p256dh`: a P-256 public key, the 65-byte uncompressed point, base64url.
pub fn check_p256dh(text: &str) -> Result<(), &'static str> {
    let bytes = decode_key(text).ok_or("must be base64url")?;
    if bytes.len() != 65 || bytes[0] != 0x04 || p256::PublicKey::from_sec1_bytes(&bytes).is_err() {
        return Err("must be a P-256 public key: an uncompressed point of 65 bytes, base64url");
    }
    Ok(())
}

/// Checks `auth`: 16 bytes, base64url.
pub fn check_auth(text: &str) -> Result<(), &'static str> {
    match decode_key(text) {
        Some(bytes) if bytes.len() == 16 => Ok(()),
        Some(_) => Err("must be 16 bytes, base64url"),
        None => Err("must be base64url"),
    }
}

/// What became of one push.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The push service took it (2xx).
    Delivered,
    /// The subscription is gone (404, 410): it goes too.
    Gone,
    /// Try again later (429, 5xx, no answer), after at least `after` when the service said so
    /// (`Retry-After`). `cause` labels the metric.
    Retry {
        after: Option<Duration>,
        cause: &'static str,
    },
    /// The message is dropped (another 4xx, a redirect, an endpoint that resolves to a private
    /// address, a subscription whose keys cannot be used). `cause` labels the metric.
    Dropped { cause: &'static str },
}

/// Where to send one push, and for whom to encrypt it.
pub struct Target<'a> {
    pub endpoint: &'a str,
    pub p256dh: &'a str,
    pub auth: &'a str,
}

/// Sends pushes: the HTTP client, the key and the contact.
pub struct Pusher {
    client: reqwest::Client,
    key: Arc<VapidKey>,
    contact: String,
    allow_private: bool,
}

impl Pusher {
    /// A pusher signing with `key` in the name of `contact`; `allow_private` lifts the address
    /// rules (development and tests).
    pub fn new(key: Arc<VapidKey>, contact: String, allow_private: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .dns_resolver(Arc::new(PublicOnly { allow_private }))
            .build()
            .map_err(|e| format!("cannot build the push client: {e}"))?;
        Ok(Pusher {
            client,
            key,
            contact,
            allow_private,
        })
    }

    /// Encrypts `payload` for `target` and POSTs it to its push service.
    pub async fn send(&self, target: &Target<'_>, payload: &[u8]) -> Delivery {
        // The rules of the subscription, again: they may have been stricter when it was made.
        let Ok(url) = check_endpoint(target.endpoint, self.allow_private) else {
            return Delivery::Dropped {
                cause: "bad_endpoint",
            };
        };
        let (Some(p256dh), Some(auth)) = (decode_key(target.p256dh), decode_key(target.auth))
        else {
            return Delivery::Dropped { cause: "bad_keys" };
        };
        let Ok(body) = ece::encrypt(&p256dh, &auth, payload) else {
            return Delivery::Dropped { cause: "bad_keys" };
        };
        let now = u64::try_from(crate::time::now_millis() / 1_000).unwrap_or(0);
        let authorization =
            match self
                .key
                .authorization(&url.origin().ascii_serialization(), &self.contact, now)
            {
                Ok(header) => header,
                Err(error) => {
                    tracing::error!(%error, "cannot sign a push");
                    return Delivery::Retry {
                        after: None,
                        cause: "signing",
                    };
                }
            };
        let sent = self
            .client
            .post(url)
            .header("TTL", TTL_SECONDS.to_string())
            .header("Urgency", "normal")
            .header("Content-Encoding", "aes128gcm")
            .header("Content-Type", "application/octet-stream")
            .header("Authorization", authorization)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) if err.is_timeout() => {
                return Delivery::Retry {
                    after: None,
                    cause: "timeout",
                };
            }
            Err(err) if refused_address(&err) => {
                return Delivery::Dropped {
                    cause: "private_address",
                };
            }
            Err(_) => {
                return Delivery::Retry {
                    after: None,
                    cause: "connection",
                };
            }
        };
        let status = response.status();
        match status.as_u16() {
            200..=299 => Delivery::Delivered,
            404 | 410 => Delivery::Gone,
            429 | 500..=599 => Delivery::Retry {
                after: retry_after(response.headers()),
                cause: if status.as_u16() == 429 {
                    "rate_limited"
                } else {
                    "server_error"
                },
            },
            300..=399 => Delivery::Dropped { cause: "redirect" },
            _ => Delivery::Dropped {
                cause: "client_error",
            },
        }
    }
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis() - crate::time::now_millis();
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

/// Whether a send failed because the name resolved to an address that may not receive pushes.
fn refused_address(err: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(cause) = source {
        if cause.to_string().contains(REFUSED_RESOLUTION) {
            return true;
        }
        source = cause.source();
    }
    false
}

const REFUSED_RESOLUTION: &str = "resolves to an address that may not receive pushes";

/// The resolver of the push client: the system's, refusing a name when any of its addresses is
/// private ([`is_private`]), so the address checked is the address connected to.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private && addrs.iter().any(|addr| is_private(addr.ip())) {
                return Err(std::io::Error::other(REFUSED_RESOLUTION).into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vapid_key_survives_its_text_and_its_public_key_is_an_uncompressed_point() {
        let key = VapidKey::generate().unwrap();
        let again = VapidKey::parse(&key.to_base64()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        let public = URL_SAFE_NO_PAD.decode(key.public_key()).unwrap();
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 4);
        for bad in [
            "",
            "not base64!",
            "AAAA",
            &URL_SAFE_NO_PAD.encode([0u8; 32]),
        ] {
            assert!(VapidKey::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{key:?}").contains(&key.to_base64()));
    }

    #[test]
    fn addresses_are_private_by_their_ranges_and_embedded_ipv4_counts() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "ff02::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn the_push_clients_resolver_refuses_names_of_private_addresses_unless_allowed() {
        use reqwest::dns::Resolve;
        let refused = PublicOnly {
            allow_private: false,
        }
        .resolve("localhost".parse().unwrap())
        .await;
        let error = refused.err().expect("localhost is refused at resolution");
        assert!(error.to_string().contains(REFUSED_RESOLUTION), "{error}");
        let allowed = PublicOnly {
            allow_private: true,
        }
        .resolve("localhost".parse().unwrap())
        .await;
        let addrs: Vec<SocketAddr> = allowed.expect("allowed for development").collect();
        assert!(
            addrs.iter().all(|addr| addr.ip().is_loopback()),
            "{addrs:?}"
        );
    }

    #[tokio::test]
    async fn a_send_to_a_name_of_a_private_address_fails_as_refused_and_is_dropped() {
        let key = Arc::new(VapidKey::generate().unwrap());
        let pusher = Pusher::new(key, "mailto:a@b.example".into(), false).unwrap();
        // Past the written rules (which refuse `localhost` before any send), straight to the
        // client: its resolver refuses, and the failure is recognised as that refusal.
        let err = pusher
            .client
            .post("http://localhost:9/")
            .send()
            .await
            .unwrap_err();
        assert!(refused_address(&err), "{err:?}");
        // A connection refused by a port where nothing listens is not that refusal.
        let open = Pusher::new(
            Arc::new(VapidKey::generate().unwrap()),
            "mailto:a@b.example".into(),
            true,
        )
        .unwrap();
        let err = open
            .client
            .post("http://127.0.0.1:9/")
            .send()
            .await
            .unwrap_err();
        assert!(!refused_address(&err), "{err:?}");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    }
}
