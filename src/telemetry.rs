//! Logging. `RUST_LOG` picks the level (read once at start, by
//! tracing-subscriber's `EnvFilter`); `LOG_FORMAT=json` switches to JSON
//! lines. Secrets never reach a log line: request spans carry the path only,
//! never the query string or headers. Field names: `docs/logging.md`.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("sponsorgate=info,sponsorgate_sync=info,tower_http=warn")
    });
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
