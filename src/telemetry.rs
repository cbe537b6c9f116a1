//! Logging: human-readable text by default, JSON for log shippers, journald-friendly
//! when started by systemd.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::time::SystemTime;

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides `level`. Under systemd
/// (`JOURNAL_STREAM` set) text logs carry no timestamp of their own: journald adds one.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match (format, journald) {
        (LogFormat::Json, _) => builder.json().with_current_span(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => {
            builder.with_timer(SystemTime).with_ansi(std::io::stderr().is_terminal()).try_init()
        }
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
