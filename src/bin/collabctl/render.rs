//! What collabctl prints: a call's result as JSON (`--json`) or as a table and lines
//! for people, every stored value made safe by `collabd::admin::display`; paging of lists.

use crate::*;

/// Sends one call and prints its result: raw with `--json`, else through `render`.
pub(crate) fn show<P: Params>(
    cli: &Cli,
    c: &mut Client,
    params: P,
    render: impl FnOnce(&P::Output) -> String,
) -> anyhow::Result<()> {
    let raw = c.call_raw(params.into())?;
    if cli.json {
        println!("{}", display::json(serde_json::to_string_pretty(&raw)?));
    } else {
        let typed: P::Output =
            serde_json::from_value(raw).context("unexpected result from collabd")?;
        print!("{}", render(&typed));
    }
    Ok(())
}

/// Prints a result the client put together (an import's totals).
pub(crate) fn print_report<T: serde::Serialize>(
    cli: &Cli,
    v: &T,
    render: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if cli.json {
        println!("{}", display::json(serde_json::to_string_pretty(v)?));
    } else {
        print!("{}", render(v));
    }
    Ok(())
}

/// Runs a list call. `--all` fetches page after page; `--json` with no paging flags asks
/// for the whole list (an array, as before paging existed); otherwise one page, with
/// `next_after` in the JSON and a note on stderr under a table when more rows exist.
pub(crate) fn list<P, T>(
    cli: &Cli,
    c: &mut Client,
    args: PageArgs,
    make: impl Fn(PageParams) -> P,
    id: fn(&T) -> i64,
    render: fn(&[T]) -> String,
) -> anyhow::Result<()>
where
    P: Params<Output = Listing<T>>,
    T: serde::Serialize,
{
    if args.all {
        // Streamed: each page is printed as it arrives (one JSON array with --json; the
        // table's header once), so memory holds one page whatever the list's size.
        let limit = Some(args.limit.unwrap_or(1000));
        let mut out = std::io::stdout().lock();
        let mut after = None;
        let mut first = true;
        if cli.json {
            write!(out, "[")?;
        }
        loop {
            let (items, next) = c.call(make(PageParams { after, limit }))?.into_parts();
            if cli.json {
                for item in &items {
                    write!(
                        out,
                        "{}{}",
                        if first { "\n  " } else { ",\n  " },
                        display::json(serde_json::to_string(item)?)
                    )?;
                    first = false;
                }
            } else if !items.is_empty() {
                let table = render(&items);
                let body = if first {
                    table.as_str()
                } else {
                    table.split_once('\n').map_or("", |(_, b)| b)
                };
                write!(out, "{body}")?;
                first = false;
            }
            out.flush()?;
            // A page that does not move on would loop forever.
            let last = items.last().map(id);
            match next {
                Some(n) if Some(n) == last && Some(n) != after => after = Some(n),
                _ => break,
            }
        }
        if cli.json {
            writeln!(out, "{}]", if first { "" } else { "\n" })?;
        }
        return Ok(());
    }
    if cli.json && args.limit.is_none() && args.after.is_none() {
        return show(cli, c, make(PageParams::default()), |_| String::new());
    }
    let page = PageParams { after: args.after, limit: Some(args.limit.unwrap_or(DEFAULT_PAGE)) };
    show(cli, c, make(page), |l| {
        let (items, next) = match l {
            Listing::All(items) => (&items[..], None),
            Listing::Page { items, next_after } => (&items[..], *next_after),
        };
        if let Some(n) = next {
            eprintln!("more rows: --after {n} for the next page, or --all");
        }
        render(items)
    })
}

pub(crate) fn slice<T>(x: &T) -> &[T] {
    std::slice::from_ref(x)
}

pub(crate) fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

pub(crate) fn render_status(st: &StatusResult) -> String {
    let mut out = format!(
        "collabd {}  up {}s  database {}  instance {}\n",
        display::clip(&st.version, display::CELL_MAX),
        st.uptime_secs,
        if st.database { "ok" } else { "UNREACHABLE" },
        display::clip(st.instance.as_deref().unwrap_or("-"), display::CELL_MAX),
    );
    // "here" for this instance's mailboxes, another's id, or "-" while nobody holds it.
    let holder = |h: &Option<String>| match h {
        Some(h) if Some(h) == st.instance.as_ref() => "here".to_owned(),
        Some(h) => h.clone(),
        None => "-".to_owned(),
    };
    out += &table(
        &[
            "MAILBOX",
            "CONNECTED",
            "LAST SYNC",
            "SINCE POLL",
            "LAST COMMIT",
            "UIDVALIDITY",
            "HIGHEST UID",
            "PROCESSED",
            "HOLDER",
            "LAST ERROR",
        ],
        st.mailboxes.iter().map(|m| {
            vec![
                m.name.clone(),
                // A gone OAuth2 grant needs a person: say so where the eye goes first.
                if m.paused {
                    "PAUSED".into()
                } else if m.reauthorize {
                    "REAUTHORIZE".into()
                } else {
                    m.connected.to_string()
                },
                opt(&m.last_sync),
                opt(&m.secs_since_poll),
                opt(&m.last_commit),
                opt(&m.uidvalidity),
                m.highest_uid.to_string(),
                m.processed.to_string(),
                holder(&m.holder),
                opt(&m.last_error),
            ]
        }),
    );
    if !st.instances.is_empty() {
        out += "\n";
        out += &table(
            &["INSTANCE", "HOST", "PID", "STARTED", "HEARTBEAT AGE", "MAILBOXES"],
            st.instances.iter().map(|i| {
                vec![
                    i.id.clone(),
                    i.host.clone(),
                    i.pid.to_string(),
                    i.started_at.to_string(),
                    format!("{:.1}s", i.heartbeat_age_ms as f64 / 1000.0),
                    i.mailboxes.to_string(),
                ]
            }),
        );
    }
    out
}

pub(crate) fn source(m: &MailboxEntry) -> &'static str {
    match m.source {
        MailboxSource::File => "file",
        MailboxSource::Database => "database",
    }
}

pub(crate) fn render_mailboxes(rows: &[MailboxEntry]) -> String {
    table(
        &["MAILBOX", "SOURCE", "STATE", "HOST", "USERNAME", "FOLDER", "AUTH"],
        rows.iter().map(|m| {
            vec![
                m.name.clone(),
                source(m).into(),
                if m.paused { "paused".into() } else { "active".into() },
                format!("{}:{}", m.host, m.port),
                m.username.clone(),
                m.folder.clone(),
                m.auth.clone(),
            ]
        }),
    )
}

pub(crate) fn render_mailbox(m: &MailboxEntry) -> String {
    let mut out = format!(
        "mailbox {}  ({}, {})\n",
        display::text(&m.name),
        source(m),
        if m.paused { "paused" } else { "active" }
    );
    if let Some(at) = m.created_at {
        out += &format!("created {at}  updated {}\n", opt(&m.updated_at));
    }
    if !m.stored_passwords.is_empty() {
        out += &format!("stored passwords (encrypted): {}\n", m.stored_passwords.join(", "));
    }
    // The settings as the file would have them; secrets are only ever named.
    for (k, v) in m.settings.0.iter().filter(|(_, v)| !v.is_null()) {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let k = display::clip(k, display::CELL_MAX);
        let pad = " ".repeat(18usize.saturating_sub(k.chars().count()));
        out += &format!("  {k}{pad} {}\n", display::text(&v));
    }
    out
}

pub(crate) fn render_campaigns(rows: &[Campaign]) -> String {
    table(
        &["ID", "NAME", "MAILBOXES", "ARCHIVED"],
        rows.iter().map(|r| {
            let mailboxes =
                if r.mailboxes.is_empty() { "(any)".to_owned() } else { r.mailboxes.join(", ") };
            vec![r.id.to_string(), r.name.clone(), mailboxes, opt(&r.archived_at)]
        }),
    )
}

pub(crate) fn render_creators(rows: &[Creator]) -> String {
    table(
        &["ID", "NAME", "PLATFORM", "HANDLE", "EMAILS"],
        rows.iter().map(|r| {
            let emails: Vec<String> =
                r.emails.iter().map(|e| format!("{} ({})", e.address, e.role)).collect();
            vec![
                r.id.to_string(),
                r.name.clone(),
                r.platform.clone(),
                r.handle.clone(),
                emails.join(", "),
            ]
        }),
    )
}

pub(crate) fn render_collabs(rows: &[Collaboration]) -> String {
    table(
        &["ID", "STATUS", "SOURCE", "CREATOR", "CAMPAIGN", "CREATED"],
        rows.iter().map(|r| {
            vec![
                r.id.to_string(),
                r.status.to_string(),
                r.source.clone(),
                format!("{} ({}:{})", r.creator.name, r.creator.platform, r.creator.handle),
                r.campaign.name.clone(),
                r.created_at.to_string(),
            ]
        }),
    )
}

pub(crate) fn render_collab(d: &CollabDetail) -> String {
    let v = &d.collab;
    let mut out = render_collabs(slice(v));
    let t = |v: &dyn erased::Json| display::text(&v.json());
    out += &format!(
        "\ndeliverables: {}\ncompensation: {}\ntimeline: {}\nterms: {}\n",
        t(&v.deliverables),
        t(&v.compensation),
        t(&v.timeline),
        display::text(&opt(&v.additional_terms))
    );
    out += "\nEVENTS\n";
    out += &table(
        &["AT", "KIND", "FROM", "TO", "ACTOR", "REASON"],
        d.events.iter().map(|e| {
            vec![
                e.at.to_string(),
                e.kind.as_str().to_owned(),
                opt(&e.from_status),
                opt(&e.to_status),
                e.actor.clone(),
                opt(&e.reason),
            ]
        }),
    );
    out
}

pub(crate) fn render_inbox(rows: &[UnmatchedMessage]) -> String {
    table(
        &["ID", "MAILBOX", "FROM", "SUBJECT", "RECEIVED"],
        rows.iter().map(|r| {
            vec![
                r.id.to_string(),
                r.mailbox.clone(),
                sender(r),
                opt(&r.subject),
                r.received_at.to_string(),
            ]
        }),
    )
}

/// `Name <address>`, or whichever of the two the mail had.
pub(crate) fn sender(m: &UnmatchedMessage) -> String {
    match (m.from_name.as_deref().filter(|n| !n.is_empty()), m.from_address.as_deref()) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (name, address) => name.or(address).unwrap_or_default().to_owned(),
    }
}

pub(crate) fn render_invalid(invalid: &[InvalidRow]) -> String {
    let mut out = format!("invalid: {}\n", invalid.len());
    for i in invalid {
        let (field, reason) = (display::text(&opt(&i.field)), display::text(&i.reason));
        out += &format!("  line {}: {field} {reason}\n", i.line);
    }
    out
}

pub(crate) fn render_send(r: &SendResult) -> String {
    let t = display::text;
    let mut out = format!(
        "message_id: {}\nto: {}\nreply_to: {}\n",
        t(&r.message_id),
        t(&r.to),
        t(&opt(&r.reply_to))
    );
    if !r.from.is_empty() {
        out += &format!("from: {}\n", t(&r.from));
    }
    if let Some(mailbox) = &r.mailbox {
        out += &format!("mailbox: {}\n", t(mailbox));
    }
    if let Some(status) = &r.status {
        out += &format!("status: {}\n", t(status));
    }
    if let Some(message) = &r.message {
        // The operator's own mail, its lines kept; stored names in it are escaped.
        out += &format!("dry_run: true\nmessage:\n{}\n", display::multiline(message, usize::MAX));
    }
    out
}

/// Terms as the compact JSON they are shown and exported in.
pub(crate) mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}
