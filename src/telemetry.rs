//! Logging. `RUST_LOG` picks the levels (parsed with the rest of the
//! configuration, as an `EnvFilter`); `LOG_FORMAT=json` switches to JSON
//! lines. Secrets never reach a log line: request spans carry the path only,
//! never the query string or headers. Field names: `docs/logging.md`.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// The levels when `RUST_LOG` is unset (or not a valid filter).
pub const DEFAULT_FILTER: &str = "sponsorgate=info,sponsorgate_sync=info,tower_http=warn";

pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if format == LogFormat::Json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        // Colours only on a terminal: escape codes in files and journald are
        // noise, and styling every span's fields costs time on each request.
        registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
