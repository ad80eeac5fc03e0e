//! The HTTP layer's own refusals, as problem+json.
//!
//! actix-http answers a request it cannot even parse (a garbage request line, a URL or header
//! block too big, more than 96 headers) or whose head never completes inside its own connection
//! dispatcher, before any service or middleware sees a request, and writes those answers with an
//! empty body: there is no hook for them. So each accepted connection is wrapped in [`ProblemIo`],
//! which watches what the dispatcher writes and replaces exactly those responses (status 400, 408
//! or 431, `content-length: 0`, no `content-type`: our own error answers always carry a
//! problem+json body, so they never look like this) with the contract's problem+json body and an
//! `X-Request-Id`, and logs the refusal once, as every request is. Everything else passes through
//! untouched.
//!
//! Finding them in the byte stream is exact: a response head is the only place where a raw CR LF
//! can follow `HTTP/1.1 431 ...`, since every body we write is JSON (which escapes control
//! characters) or a static asset of the documentation.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use actix_web::http::StatusCode;
use futures_util::task::AtomicWaker;
use memchr::memmem;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;

/// A connection whose HTTP-layer refusals are rewritten as problem+json, and which a handler can
/// cut off ([`Disconnect`]).
pub struct ProblemIo<T> {
    inner: T,
    /// A rewritten response not yet written to `inner`, from `written` on.
    pending: Vec<u8>,
    written: usize,
    disconnect: Disconnect,
}

impl<T> ProblemIo<T> {
    pub fn new(inner: T) -> Self {
        ProblemIo {
            inner,
            pending: Vec::new(),
            written: 0,
            disconnect: Disconnect::default(),
        }
    }

    /// What cuts this connection off; handlers find it with `HttpRequest::conn_data`.
    pub fn disconnect(&self) -> Disconnect {
        self.disconnect.clone()
    }

    /// `Err` once the connection was cut off; otherwise registers the task to be woken when it is.
    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        self.disconnect.0.waker.register(cx.waker());
        if self.disconnect.0.cut.load(Ordering::Acquire) {
            return Err(io::ErrorKind::ConnectionAborted.into());
        }
        Ok(())
    }
}

/// Cuts a connection off: its next read or write fails, and actix-http drops it, whatever it was
/// waiting for. For an event stream whose client stopped reading, whose response therefore can
/// never end.
#[derive(Clone, Default)]
pub struct Disconnect(Arc<DisconnectState>);

#[derive(Default)]
struct DisconnectState {
    cut: AtomicBool,
    waker: AtomicWaker,
}

impl Disconnect {
    pub fn now(&self) {
        self.0.cut.store(true, Ordering::Release);
        self.0.waker.wake();
    }
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is left of a rewritten response; ready once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending = Vec::new();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check(cx)?;
        ready!(this.poll_pending(cx))?;
        match find_refusal(buf) {
            None => Pin::new(&mut this.inner).poll_write(cx, buf),
            // Whatever precedes it first (the end of an earlier response on the connection).
            Some(refusal) if refusal.start > 0 => {
                Pin::new(&mut this.inner).poll_write(cx, &buf[..refusal.start])
            }
            Some(refusal) => {
                this.pending = rewrite(&buf[..refusal.end], refusal.status);
                this.written = 0;
                // The caller's bytes are taken; the rewritten ones go out now or on the next
                // write, flush or shutdown, all of which finish them first.
                if let Poll::Ready(Err(err)) = this.poll_pending(cx) {
                    return Poll::Ready(Err(err));
                }
                Poll::Ready(Ok(refusal.end))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Where a bodiless refusal of the HTTP layer sits in a buffer about to be written.
#[derive(Debug, PartialEq)]
struct Refusal {
    start: usize,
    /// Just past its head's blank line.
    end: usize,
    status: StatusCode,
}

fn find_refusal(buf: &[u8]) -> Option<Refusal> {
    let mut from = 0;
    while let Some(offset) = memmem::find(&buf[from..], b"HTTP/1.") {
        let start = from + offset;
        from = start + 1;
        let Some(status) = refused_status(&buf[start..]) else {
            continue;
        };
        let Some(head_len) = memmem::find(&buf[start..], b"\r\n\r\n") else {
            // Not all of it is here; the dispatcher always hands a head over whole, so this is
            // not one of its refusals.
            continue;
        };
        let head = &buf[start..start + head_len + 2];
        let mut empty_body = false;
        let mut typed = false;
        for line in head.split(|&b| b == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let lower = line.to_ascii_lowercase();
            empty_body |= lower == b"content-length: 0";
            typed |= lower.starts_with(b"content-type:");
        }
        if empty_body && !typed {
            return Some(Refusal {
                start,
                end: start + head_len + 4,
                status,
            });
        }
    }
    None
}

/// The status of a status line `HTTP/1.x NNN ...\r\n`, if it is one the dispatcher refuses with.
fn refused_status(line: &[u8]) -> Option<StatusCode> {
    // "HTTP/1.1 400 " is 13 bytes.
    let line = line.get(..13)?;
    if !(line[7] == b'0' || line[7] == b'1') || line[8] != b' ' || line[12] != b' ' {
        return None;
    }
    match &line[9..12] {
        b"400" => Some(StatusCode::BAD_REQUEST),
        b"408" => Some(StatusCode::REQUEST_TIMEOUT),
        b"431" => Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        _ => None,
    }
}

/// The refusal's head with the problem body of its status, a request id, and the headers every
/// answer carries; its `date` and `connection` headers are kept.
fn rewrite(head: &[u8], status: StatusCode) -> Vec<u8> {
    let error = match status {
        StatusCode::REQUEST_TIMEOUT => ApiError::HeadTimeout {
            seconds: crate::limits::CLIENT_REQUEST_TIMEOUT.as_secs(),
        },
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ApiError::HeadersTooLarge,
        _ => ApiError::MalformedRequest,
    };
    let body = error.problem_json();
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::info!(
        status = status.as_u16(),
        code = error.code(),
        request_id = %request_id,
        "refused by the HTTP layer before routing",
    );
    let head = head.strip_suffix(b"\r\n\r\n").unwrap_or(head);
    let mut out = Vec::with_capacity(head.len() + body.len() + 160);
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.to_ascii_lowercase().starts_with(b"content-length:") {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-type: {}\r\ncontent-length: {}\r\nx-content-type-options: nosniff\r\n\
             x-request-id: {request_id}\r\n\r\n",
            crate::error::PROBLEM_JSON,
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\
        connection: close\r\ndate: Mon, 30 Nov 2026 02:00:00 GMT\r\n\r\n";

    #[test]
    fn a_bodiless_refusal_is_found_after_an_earlier_response() {
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
            content-length: 2\r\n\r\n{}";
        let buf = [&earlier[..], TIMEOUT].concat();
        assert_eq!(
            find_refusal(&buf),
            Some(Refusal {
                start: earlier.len(),
                end: buf.len(),
                status: StatusCode::REQUEST_TIMEOUT
            })
        );
    }

    #[test]
    fn our_own_error_answers_and_other_statuses_pass_through() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\
            content-type: application/problem+json\r\n\r\n";
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n";
        let other = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        let cut = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n";
        let quoted = br#"{"body":"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"}"#;
        for buf in [&ours[..], with_body, other, cut, quoted] {
            assert_eq!(find_refusal(buf), None, "{}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn the_rewrite_keeps_the_status_line_and_headers_and_adds_a_problem_body() {
        let out = String::from_utf8(rewrite(TIMEOUT, StatusCode::REQUEST_TIMEOUT)).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/problem+json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(!head.contains("content-length: 0"), "{head}");
        assert!(head.contains("\r\nx-request-id: "), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["status"], 408);
        assert_eq!(body["code"], "request_timeout");
    }
}
