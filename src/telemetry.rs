//! Logging: human-readable text by default, JSON for log shippers, journald-friendly
//! when started by systemd.

use std::io::IsTerminal;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;

/// Prefixes each line with its syslog priority (`<3>` error … `<7>` debug), which
/// journald reads from a service's stderr.
struct JournaldPriority<F>(F);

impl<S, N, F> FormatEvent<S, N> for JournaldPriority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides `level`. Under systemd
/// (`JOURNAL_STREAM` set) text logs carry a priority prefix and no timestamp of their own:
/// journald adds one.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match (format, journald) {
        (LogFormat::Json, _) => builder.json().with_current_span(true).try_init(),
        (LogFormat::Text, true) => builder
            .with_ansi(false)
            .event_format(JournaldPriority(
                tracing_subscriber::fmt::format().without_time().with_ansi(false),
            ))
            .try_init(),
        (LogFormat::Text, false) => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}
