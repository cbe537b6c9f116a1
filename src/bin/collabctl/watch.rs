//! `collabctl watch`: each new collaboration and unmatched message, as committed.

use crate::*;

/// One human line for a `watch` event; every stored value escaped and cut.
pub(crate) fn watch_line(event: &WatchEvent) -> String {
    let cell = |s: &str| display::clip(s, display::CELL_MAX);
    match event {
        WatchEvent::Collaboration(l) => format!(
            "{}  collaboration {}  {}  {} / {}  ({})",
            l.created_at.format("%Y-%m-%d %H:%M:%S"),
            l.id,
            l.status.as_str(),
            cell(&l.creator.handle),
            cell(&l.campaign.name),
            cell(&l.source)
        ),
        WatchEvent::Unmatched(m) => format!(
            "{}  unmatched {}  {}  \"{}\"  in {}",
            m.received_at.format("%Y-%m-%d %H:%M:%S"),
            m.id,
            cell(&sender(m)),
            cell(m.subject.as_deref().unwrap_or_default()),
            cell(&m.mailbox)
        ),
    }
}

/// Streams `watch` events until the daemon closes the connection or the user interrupts.
pub(crate) fn watch(cli: &Cli, c: &mut Client) -> anyhow::Result<()> {
    // Events come when they come.
    c.wait_forever()?;
    let mut out = std::io::stdout().lock();
    let mut next = c.call_raw(Watch {}.into());
    loop {
        let event: WatchEvent =
            serde_json::from_value(next?).context("unexpected event from collabd")?;
        if cli.json {
            writeln!(out, "{}", display::json(serde_json::to_string(&event)?))?;
        } else {
            writeln!(out, "{}", watch_line(&event))?;
        }
        out.flush()?;
        next = c.next_answer();
    }
}
