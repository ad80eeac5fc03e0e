//! Logging: one structured line per request (method, path, request id, status, time), filtered by
//! `RUST_LOG`; `LOG_FORMAT=json` writes JSON lines for log shippers.
//!
//! Every event is printed with the stack of spans it happened in: the request's span (its request
//! id) and the span of the service function that was running (`#[tracing::instrument]` on the
//! services' entry points), so a 500's "internal error" line names the step that failed, e.g.
//! `request{method=POST path=/posts ...}:posts::create{author=7}: internal error error=...`.
//!
//! Only the request's span is logged again when it closes (its status and time): a line for each
//! service span as well would multiply the log by the number of steps of a request.

use tracing::Metadata;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{EnvFilter, FilterFn};
use tracing_subscriber::fmt::format::{DefaultFields, FmtSpan, Writer};
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The log filter when `RUST_LOG` is unset.
pub const DEFAULT_FILTER: &str = "info";

/// The name of the span `startup::RequestSpan` opens for each request.
const REQUEST_SPAN: &str = "request";

/// Installs the global subscriber. Call once, from `main`.
pub fn init() {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // actix-http logs each connection it refuses, or that a client dropped, as an ERROR "stream
    // error"; a refusal is logged once, with its request id, by `connection`, and a dropped
    // connection is the client's business.
    if let Ok(quiet) = "actix_http::h1::dispatcher=off".parse() {
        filter = filter.add_directive(quiet);
    }
    // Colour codes only on a terminal: a log file or a collector gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let result = tracing_subscriber::registry()
        .with(filter)
        .with(layers(std::io::stdout, ansi, json))
        .try_init();
    if let Err(err) = result {
        eprintln!("logging is already set up: {err}");
    }
}

/// The two writers of the log: every event, with its span stack; and the close line of each
/// request's span, alone.
fn layers<S, W>(writer: W, ansi: bool, json: bool) -> Vec<Box<dyn Layer<S> + Send + Sync>>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Clone + Send + Sync + 'static,
{
    let events = tracing_subscriber::fmt::layer()
        .with_writer(writer.clone())
        .with_ansi(ansi)
        .with_target(false);
    // This layer sees the request spans and nothing else, so it writes their close lines only.
    let request_closes = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false)
        .with_span_events(FmtSpan::CLOSE);
    let only_requests =
        FilterFn::new(|meta: &Metadata<'_>| meta.is_span() && meta.name() == REQUEST_SPAN);
    if json {
        vec![
            events.json().boxed(),
            request_closes.json().with_filter(only_requests).boxed(),
        ]
    } else {
        vec![
            events.boxed(),
            request_closes
                .fmt_fields(OwnFields(DefaultFields::new()))
                .with_filter(only_requests)
                .boxed(),
        ]
    }
}

/// A field formatter of a type of its own. Each fmt layer keeps a span's formatted fields in the
/// span under the type of its formatter, so two text layers with the same type would both append
/// a field recorded later (the request's `status`) to one record, which would print it twice.
/// (JSON layers may share one: `JsonFields` merges a recorded field into its object.)
struct OwnFields<F>(F);

impl<'w, F: FormatFields<'w>> FormatFields<'w> for OwnFields<F> {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> std::fmt::Result {
        self.0.format_fields(writer, fields)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Instrument;

    use super::*;
    use crate::error::ApiError;

    /// A log that the test can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;

        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[tokio::test]
    async fn a_500_in_a_service_is_logged_with_the_request_and_the_service_step() {
        // A database without the schema: the service's query fails, which is a 500.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        for json in [false, true] {
            let log = Captured::default();
            let subscriber = tracing_subscriber::registry()
                .with(EnvFilter::new("info"))
                .with(layers(log.clone(), false, json));
            let _guard = tracing::subscriber::set_default(subscriber);
            let request = tracing::info_span!(
                REQUEST_SPAN,
                method = "GET",
                path = "/posts/42",
                request_id = "r-1",
                status = tracing::field::Empty,
            );
            let result = crate::services::posts::find(&db, 42)
                .instrument(request.clone())
                .await;
            request.record("status", 500);
            drop(request);
            assert!(matches!(result, Err(ApiError::Internal(_))));

            // The request's span closes when its last handle drops, and SQLite's driver runs
            // each statement on a worker thread under a handle of the caller's span, which it
            // may drop a moment after the answer arrives: wait for the close line.
            let mut text = log.text();
            for _ in 0..200 {
                if text.lines().any(|line| line.contains("close")) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                text = log.text();
            }
            let lines: Vec<&str> = text.lines().collect();
            let error = lines
                .iter()
                .find(|line| line.contains("internal error"))
                .unwrap_or_else(|| panic!("no internal error in {text}"));
            assert!(error.contains("ERROR"), "{error}");
            assert!(error.contains("r-1"), "the request id is missing: {error}");
            assert!(
                error.contains("posts::find"),
                "the service step is missing: {error}"
            );
            assert!(error.contains("42"), "the post id is missing: {error}");
            // Two lines: the error, and the request's close line; none for the service span.
            assert_eq!(lines.len(), 2, "{text}");
            assert!(lines[1].contains("close"), "{text}");
            assert!(!lines[1].contains("posts::find"), "{text}");
            let status = if json { "\"status\":500" } else { "status=500" };
            // Once in text; JSON may name the closing span both as the current span and in the
            // span list, each an object of its own.
            let shown = lines[1].matches(status).count();
            assert!(shown == 1 || (json && shown == 2), "{text}");
        }
    }
}
