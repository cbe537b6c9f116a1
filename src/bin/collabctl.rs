//! `collabctl`: the operators' client of collabd's admin socket.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use collabd::admin::protocol::{Request, Response};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(version, about = "Manage collabd: collaborations, the Creator Pool, outreach")]
struct Cli {
    /// The daemon's admin socket.
    #[arg(long, env = "COLLABD_SOCKET", default_value = "/run/collabd/admin.sock", global = true)]
    socket: PathBuf,
    /// Print the raw JSON result instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Daemon version, uptime, mailboxes and database health.
    Status,
    /// Campaigns.
    #[command(subcommand)]
    Campaign(CampaignCmd),
    /// The Creator Pool.
    #[command(subcommand)]
    Creator(CreatorCmd),
    /// Outreach messages.
    #[command(subcommand)]
    Outreach(OutreachCmd),
    /// Collaborations and their lifecycle.
    #[command(subcommand)]
    Collab(CollabCmd),
    /// Messages no rule could match.
    #[command(subcommand)]
    Inbox(InboxCmd),
    /// Mailboxes' logins.
    #[command(subcommand)]
    Mailbox(MailboxCmd),
}

#[derive(Subcommand)]
enum MailboxCmd {
    /// Get an OAuth2 grant for a mailbox (or, with --smtp, for sending): the device-code
    /// flow where the provider offers it (Microsoft), else authorization code + PKCE with a
    /// redirect to this machine (Google). The daemon stores the refresh token and retries
    /// the mailbox at once.
    Authorize {
        /// The mailbox's name in the configuration.
        #[arg(required_unless_present = "smtp")]
        name: Option<String>,
        /// Authorize the [smtp] login instead of a mailbox.
        #[arg(long, conflicts_with = "name")]
        smtp: bool,
        /// `auto`, `device` or `code`.
        #[arg(long, default_value = "auto")]
        flow: String,
        /// Port of the loopback redirect for the code flow (0: any free one). Over SSH,
        /// pick one and forward it: `ssh -L PORT:127.0.0.1:PORT host`.
        #[arg(long, default_value_t = 0)]
        redirect_port: u16,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 900)]
        wait: u64,
    },
}

#[derive(Subcommand)]
enum CampaignCmd {
    Create {
        name: String,
    },
    List,
    /// Archive by name or id.
    Archive {
        campaign: String,
    },
}

#[derive(Subcommand)]
enum CreatorCmd {
    Add {
        #[arg(long)]
        name: String,
        #[arg(long)]
        platform: String,
        #[arg(long)]
        handle: String,
        #[arg(long)]
        email: Vec<String>,
        #[arg(long)]
        manager_email: Vec<String>,
        #[arg(long)]
        tag: Vec<String>,
    },
    List {
        #[arg(long)]
        search: Option<String>,
    },
    /// By id, platform:handle, handle or email address.
    Show { creator: String },
    /// CSV with columns name,platform,handle,email[,manager_email][,tags] (tags split on ';').
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum OutreachCmd {
    /// Record outreach sent by another system so replies to it match.
    Record {
        #[arg(long)]
        message_id: String,
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        creator: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "")]
        subject: String,
        /// RFC 3339 time, e.g. 2026-11-20T10:00:00Z.
        #[arg(long)]
        sent_at: Option<String>,
    },
    /// CSV with columns message_id,campaign,platform,handle,to,subject,sent_at.
    Import { file: PathBuf },
    /// Send outreach through the configured SMTP server.
    Send {
        #[arg(long)]
        campaign: String,
        #[arg(long)]
        creator: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        body_file: PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Args, Default)]
struct TermsArgs {
    /// "QUANTITY x POST_TYPE", e.g. "2 x tiktok_video" (repeatable).
    #[arg(long)]
    deliverable: Vec<String>,
    #[arg(long)]
    talking_points: Vec<String>,
    #[arg(long)]
    hashtags: Vec<String>,
    #[arg(long)]
    attribution_keywords: Vec<String>,
    #[arg(long, requires = "currency", allow_negative_numbers = true)]
    fixed_fee: Option<f64>,
    /// ISO 4217 code, e.g. USD.
    #[arg(long)]
    currency: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    commission_percent: Option<f64>,
    #[arg(long)]
    product: Option<String>,
    /// "2026-12-01" or "publish=2026-12-01" (repeatable).
    #[arg(long)]
    deadline: Vec<String>,
    #[arg(long)]
    terms: Option<String>,
}

#[derive(Subcommand)]
enum CollabCmd {
    Create {
        #[arg(long, required_unless_present = "from_file")]
        creator: Option<String>,
        #[arg(long, required_unless_present = "from_file")]
        campaign: Option<String>,
        #[command(flatten)]
        terms: TermsArgs,
        #[arg(long)]
        allow_duplicate: bool,
        /// A JSON file with the collab.create parameters (see docs/admin-protocol.md).
        #[arg(long, conflicts_with_all = ["creator", "campaign"])]
        from_file: Option<PathBuf>,
    },
    List {
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        creator: Option<String>,
    },
    Show {
        id: i64,
    },
    /// Replace the terms.
    Update {
        id: i64,
        #[command(flatten)]
        terms: TermsArgs,
        #[arg(long)]
        reason: Option<String>,
    },
    /// pending → negotiating → fulfilling → completed.
    Advance {
        id: i64,
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: Option<String>,
    },
    Cancel {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum InboxCmd {
    Unmatched,
    /// Turn an unmatched message into a collaboration and remember its sender.
    Assign {
        message: i64,
        #[arg(long)]
        creator: String,
        #[arg(long)]
        campaign: String,
    },
    /// Undo a decline, opt-out or complaint: subscribe the creator again and open the
    /// collaboration the message would have opened as a reply.
    Undecline {
        message: i64,
        #[arg(long)]
        reason: String,
    },
    /// Match unmatched messages again against the creators and outreach known now.
    Rematch {
        /// Only messages received since this date (YYYY-MM-DD) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
    },
}

/// A connection to the daemon.
struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

impl Client {
    fn connect(path: &PathBuf) -> anyhow::Result<Client> {
        let stream = UnixStream::connect(path).with_context(|| {
            format!("cannot connect to {} (is collabd running?)", path.display())
        })?;
        stream.set_read_timeout(Some(Duration::from_secs(120)))?;
        Ok(Client { reader: BufReader::new(stream.try_clone()?), writer: stream, next_id: 1 })
    }

    /// One call; a protocol error becomes an `Err` with the server's code and message.
    fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let req = Request { id: json!(self.next_id), method: method.into(), params };
        self.next_id += 1;
        let mut line = serde_json::to_string(&req)?;
        line.push('\n');
        // A refused connection is answered before the request is read: still read the
        // answer when the write fails.
        let written = self.writer.write_all(line.as_bytes());
        let mut answer = String::new();
        let read = self.reader.read_line(&mut answer);
        if answer.is_empty() {
            written?;
            read?;
            bail!("collabd closed the connection");
        }
        let resp: Response = serde_json::from_str(&answer).context("bad response from collabd")?;
        match (resp.result, resp.error) {
            (_, Some(e)) => match e.field {
                Some(f) => bail!("{} ({f}): {}", e.code, e.message),
                None => bail!("{}: {}", e.code, e.message),
            },
            (Some(v), None) => Ok(v),
            (None, None) => bail!("empty response"),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collabctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if let Command::Mailbox(MailboxCmd::Authorize { name, smtp, flow, redirect_port, wait }) =
        &cli.command
    {
        let login = json!({ "mailbox": name, "smtp": smtp });
        return authorize(cli, login, flow, *redirect_port, Duration::from_secs(*wait));
    }
    let mut c = Client::connect(&cli.socket)?;
    let (result, view) = match &cli.command {
        Command::Status => (c.call("status", json!({}))?, View::Status),
        Command::Campaign(cmd) => match cmd {
            CampaignCmd::Create { name } => {
                (c.call("campaign.create", json!({ "name": name }))?, View::Campaigns)
            }
            CampaignCmd::List => (c.call("campaign.list", json!({}))?, View::Campaigns),
            CampaignCmd::Archive { campaign } => {
                (c.call("campaign.archive", json!({ "campaign": campaign }))?, View::Campaigns)
            }
        },
        Command::Creator(cmd) => match cmd {
            CreatorCmd::Add { name, platform, handle, email, manager_email, tag } => (
                c.call(
                    "creator.add",
                    json!({ "name": name, "platform": platform, "handle": handle, "emails": email,
                            "manager_emails": manager_email, "tags": tag }),
                )?,
                View::Creators,
            ),
            CreatorCmd::List { search } => {
                (c.call("creator.list", json!({ "search": search }))?, View::Creators)
            }
            CreatorCmd::Show { creator } => {
                (c.call("creator.show", json!({ "creator": creator }))?, View::Creators)
            }
            CreatorCmd::Import { file } => {
                (import(&mut c, "creator.import", file, creator_row)?, View::Report)
            }
        },
        Command::Outreach(cmd) => match cmd {
            OutreachCmd::Record { message_id, campaign, creator, to, subject, sent_at } => (
                c.call(
                    "outreach.record",
                    json!({ "message_id": message_id, "campaign": campaign, "creator": creator,
                            "to": to, "subject": subject, "sent_at": sent_at }),
                )?,
                View::Report,
            ),
            OutreachCmd::Import { file } => {
                (import(&mut c, "outreach.import", file, outreach_row)?, View::Report)
            }
            OutreachCmd::Send { campaign, creator, subject, body_file, dry_run } => {
                let body = std::fs::read_to_string(body_file)
                    .with_context(|| format!("cannot read {}", body_file.display()))?;
                let params = json!({ "campaign": campaign, "creator": creator, "subject": subject,
                                     "body": body, "dry_run": dry_run });
                (c.call("outreach.send", params)?, View::Report)
            }
        },
        Command::Collab(cmd) => match cmd {
            CollabCmd::Create { creator, campaign, terms, allow_duplicate, from_file } => {
                let params = match from_file {
                    Some(f) => serde_json::from_str(
                        &std::fs::read_to_string(f)
                            .with_context(|| format!("cannot read {}", f.display()))?,
                    )
                    .with_context(|| format!("{} is not JSON", f.display()))?,
                    None => json!({ "creator": creator, "campaign": campaign,
                                    "terms": terms_json(terms)?, "allow_duplicate": allow_duplicate }),
                };
                (c.call("collab.create", params)?, View::Collab)
            }
            CollabCmd::List { campaign, status, creator } => (
                c.call(
                    "collab.list",
                    json!({ "campaign": campaign, "status": status, "creator": creator }),
                )?,
                View::Collabs,
            ),
            CollabCmd::Show { id } => (c.call("collab.show", json!({ "id": id }))?, View::Collab),
            CollabCmd::Update { id, terms, reason } => (
                c.call(
                    "collab.update",
                    json!({ "id": id, "terms": terms_json(terms)?, "reason": reason }),
                )?,
                View::Collab,
            ),
            CollabCmd::Advance { id, to, reason } => (
                c.call("collab.advance", json!({ "id": id, "to": to, "reason": reason }))?,
                View::Collab,
            ),
            CollabCmd::Cancel { id, reason } => {
                (c.call("collab.cancel", json!({ "id": id, "reason": reason }))?, View::Collab)
            }
        },
        Command::Mailbox(_) => unreachable!("handled above"),
        Command::Inbox(cmd) => match cmd {
            InboxCmd::Unmatched => (c.call("inbox.unmatched", json!({}))?, View::Inbox),
            InboxCmd::Assign { message, creator, campaign } => (
                c.call(
                    "inbox.assign",
                    json!({ "message": message, "creator": creator, "campaign": campaign }),
                )?,
                View::Collab,
            ),
            InboxCmd::Undecline { message, reason } => (
                c.call("inbox.undecline", json!({ "message": message, "reason": reason }))?,
                View::Collab,
            ),
            InboxCmd::Rematch { since } => {
                (c.call("inbox.rematch", json!({ "since": since }))?, View::Report)
            }
        },
    };
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print!("{}", view.render(&result));
    }
    Ok(())
}

/// Builds `terms` from flags; talking points, hashtags and keywords apply to every
/// deliverable.
fn terms_json(t: &TermsArgs) -> anyhow::Result<Value> {
    let mut deliverables = Vec::new();
    for d in &t.deliverable {
        let (qty, kind) = d
            .split_once(['x', 'X', '×'])
            .map(|(q, k)| (q.trim(), k.trim()))
            .unwrap_or(("1", d.trim()));
        let quantity: i64 =
            qty.parse().with_context(|| format!("--deliverable {d:?}: quantity"))?;
        deliverables.push(json!({ "post_type": kind, "quantity": quantity,
            "talking_points": t.talking_points, "hashtags": t.hashtags,
            "attribution_keywords": t.attribution_keywords }));
    }
    let mut compensation = serde_json::Map::new();
    if let Some(fee) = t.fixed_fee {
        compensation.insert("fixed_fee".into(), json!({ "amount": fee, "currency": t.currency }));
    }
    if let Some(p) = t.commission_percent {
        compensation.insert("commission_percent".into(), json!(p));
    }
    if let Some(p) = &t.product {
        compensation.insert("product".into(), json!(p));
    }
    let deadlines: Vec<Value> = t
        .deadline
        .iter()
        .map(|d| match d.split_once('=') {
            Some((what, date)) => json!({ "what": what, "date": date }),
            None => json!({ "date": d }),
        })
        .collect();
    Ok(json!({ "deliverables": deliverables, "compensation": compensation,
               "timeline": { "deadlines": deadlines }, "additional_terms": t.terms }))
}

/// Rows per request when importing, well under the 1 MiB request limit.
const IMPORT_CHUNK: usize = 1000;

/// Streams a CSV file to the daemon in chunks and adds up the reports.
fn import(
    c: &mut Client,
    method: &str,
    file: &PathBuf,
    to_row: fn(&csv::StringRecord, &csv::StringRecord) -> Result<Value, String>,
) -> anyhow::Result<Value> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers = rdr.headers()?.clone();
    let mut totals = serde_json::Map::new();
    let mut invalid = Vec::new();
    let mut chunk = Vec::new();
    let mut flush = |chunk: &mut Vec<Value>,
                     totals: &mut serde_json::Map<String, Value>,
                     invalid: &mut Vec<Value>|
     -> anyhow::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let r = c.call(method, json!({ "rows": std::mem::take(chunk) }))?;
        for (k, v) in r.as_object().into_iter().flatten() {
            match v {
                Value::Array(a) => invalid.extend(a.iter().cloned()),
                Value::Number(n) => {
                    let sum = totals.get(k).and_then(Value::as_u64).unwrap_or(0)
                        + n.as_u64().unwrap_or(0);
                    totals.insert(k.clone(), json!(sum));
                }
                _ => {}
            }
        }
        Ok(())
    };
    for rec in rdr.records() {
        match rec {
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                invalid.push(json!({ "line": line, "reason": e.to_string() }));
            }
            Ok(rec) => {
                let line = rec.position().map(|p| p.line()).unwrap_or(0);
                match to_row(&headers, &rec) {
                    Ok(mut row) => {
                        row["line"] = json!(line);
                        chunk.push(row);
                    }
                    Err(reason) => invalid.push(json!({ "line": line, "reason": reason })),
                }
            }
        }
        if chunk.len() >= IMPORT_CHUNK {
            flush(&mut chunk, &mut totals, &mut invalid)?;
        }
    }
    flush(&mut chunk, &mut totals, &mut invalid)?;
    invalid.sort_by_key(|v| v["line"].as_u64());
    totals.insert("invalid".into(), Value::Array(invalid));
    Ok(Value::Object(totals))
}

fn column<'a>(h: &csv::StringRecord, r: &'a csv::StringRecord, name: &str) -> Option<&'a str> {
    h.iter()
        .position(|c| c.eq_ignore_ascii_case(name))
        .and_then(|i| r.get(i))
        .filter(|v| !v.is_empty())
}

fn required<'a>(
    h: &csv::StringRecord,
    r: &'a csv::StringRecord,
    name: &str,
) -> Result<&'a str, String> {
    column(h, r, name).ok_or_else(|| format!("column {name} is empty or missing"))
}

fn creator_row(h: &csv::StringRecord, r: &csv::StringRecord) -> Result<Value, String> {
    let list = |name: &str| -> Vec<&str> {
        column(h, r, name).map(|v| v.split(';').map(str::trim).collect()).unwrap_or_default()
    };
    Ok(json!({
        "name": required(h, r, "name")?,
        "platform": required(h, r, "platform")?,
        "handle": required(h, r, "handle")?,
        "emails": list("email"),
        "manager_emails": list("manager_email"),
        "tags": list("tags"),
    }))
}

fn outreach_row(h: &csv::StringRecord, r: &csv::StringRecord) -> Result<Value, String> {
    let sent_at = match column(h, r, "sent_at") {
        None => None,
        Some(s) => Some(
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.to_rfc3339())
                .or_else(|_| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .map(|d| format!("{d}T00:00:00Z"))
                })
                .map_err(|_| format!("sent_at {s:?} is not a date"))?,
        ),
    };
    Ok(json!({
        "message_id": required(h, r, "message_id")?,
        "campaign": required(h, r, "campaign")?,
        "creator": format!("{}:{}", required(h, r, "platform")?, required(h, r, "handle")?),
        "to": required(h, r, "to")?,
        "subject": column(h, r, "subject").unwrap_or_default(),
        "sent_at": sent_at,
    }))
}

/// How a result is shown to people.
enum View {
    Status,
    Campaigns,
    Creators,
    Collabs,
    Collab,
    Inbox,
    Report,
}

impl View {
    fn render(&self, v: &Value) -> String {
        let rows: Vec<Value> = match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let s = |v: &Value| match v {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self {
            View::Status => {
                let mut out = format!(
                    "collabd {}  up {}s  database {}\n",
                    s(&v["version"]),
                    s(&v["uptime_secs"]),
                    if v["database"] == json!(true) { "ok" } else { "UNREACHABLE" }
                );
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
                        "LAST ERROR",
                    ],
                    v["mailboxes"].as_array().into_iter().flatten().map(|m| {
                        [
                            "name",
                            "connected",
                            "last_sync",
                            "secs_since_poll",
                            "last_commit",
                            "uidvalidity",
                            "highest_uid",
                            "processed",
                            "last_error",
                        ]
                        .iter()
                        .map(|k| s(&m[*k]))
                        .collect()
                    }),
                );
                out
            }
            View::Campaigns => table(
                &["ID", "NAME", "ARCHIVED"],
                rows.iter().map(|r| vec![s(&r["id"]), s(&r["name"]), s(&r["archived_at"])]),
            ),
            View::Creators => table(
                &["ID", "NAME", "PLATFORM", "HANDLE", "EMAILS"],
                rows.iter().map(|r| {
                    let emails: Vec<String> = r["emails"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|e| format!("{} ({})", s(&e["address"]), s(&e["role"])))
                        .collect();
                    vec![
                        s(&r["id"]),
                        s(&r["name"]),
                        s(&r["platform"]),
                        s(&r["handle"]),
                        emails.join(", "),
                    ]
                }),
            ),
            View::Collabs => table(
                &["ID", "STATUS", "SOURCE", "CREATOR", "CAMPAIGN", "CREATED"],
                rows.iter().map(|r| {
                    vec![
                        s(&r["id"]),
                        s(&r["status"]),
                        s(&r["source"]),
                        format!(
                            "{} ({}:{})",
                            s(&r["creator"]["name"]),
                            s(&r["creator"]["platform"]),
                            s(&r["creator"]["handle"])
                        ),
                        s(&r["campaign"]["name"]),
                        s(&r["created_at"]),
                    ]
                }),
            ),
            View::Collab => {
                let mut out = View::Collabs.render(v);
                out += &format!(
                    "\ndeliverables: {}\ncompensation: {}\ntimeline: {}\nterms: {}\n",
                    v["deliverables"],
                    v["compensation"],
                    v["timeline"],
                    s(&v["additional_terms"])
                );
                out += "\nEVENTS\n";
                out += &table(
                    &["AT", "KIND", "FROM", "TO", "ACTOR", "REASON"],
                    v["events"].as_array().into_iter().flatten().map(|e| {
                        ["at", "kind", "from_status", "to_status", "actor", "reason"]
                            .iter()
                            .map(|k| s(&e[*k]))
                            .collect()
                    }),
                );
                out
            }
            View::Inbox => table(
                &["ID", "MAILBOX", "FROM", "SUBJECT", "RECEIVED"],
                rows.iter().map(|r| {
                    vec![
                        s(&r["id"]),
                        s(&r["mailbox"]),
                        s(&r["from_address"]),
                        s(&r["subject"]),
                        s(&r["received_at"]),
                    ]
                }),
            ),
            View::Report => {
                let mut out = String::new();
                for (k, val) in v.as_object().into_iter().flatten() {
                    match val {
                        Value::Array(items) if k == "invalid" => {
                            out += &format!("invalid: {}\n", items.len());
                            for i in items {
                                out += &format!(
                                    "  line {}: {} {}\n",
                                    s(&i["line"]),
                                    s(&i["field"]),
                                    s(&i["reason"])
                                );
                            }
                        }
                        other => out += &format!("{k}: {}\n", s(other)),
                    }
                }
                out
            }
        }
    }
}

/// Left-aligned columns sized to their widest cell.
fn table(headers: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> =
            cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out += &line(r);
    }
    out
}

/// Runs an OAuth2 authorization with the daemon: shows the operator where to go, then waits
/// for the device approval or for the browser's redirect to a loopback listener.
fn authorize(
    cli: &Cli,
    mut login: Value,
    flow: &str,
    redirect_port: u16,
    wait: Duration,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", redirect_port))
        .context("cannot listen for the redirect on 127.0.0.1")?;
    let redirect_uri = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let mut params = login.clone();
    params["flow"] = json!(flow);
    params["redirect_uri"] = json!(redirect_uri);
    let mut c = Client::connect(&cli.socket)?;
    let start = c.call("mailbox.authorize", params)?;
    let deadline = std::time::Instant::now() + wait;
    if start["flow"] == "device" {
        println!(
            "To authorize, open {} and enter the code {}",
            start["verification_uri"].as_str().unwrap_or_default(),
            start["user_code"].as_str().unwrap_or_default()
        );
        std::io::stdout().flush()?;
        let interval = Duration::from_secs(start["interval"].as_u64().unwrap_or(5).max(1));
        loop {
            std::thread::sleep(interval);
            let state = c.call("mailbox.authorize_status", login.clone())?;
            match state["state"].as_str() {
                Some("authorized") => break,
                Some("failed") => bail!("authorization failed: {}", state["error"]),
                _ if std::time::Instant::now() > deadline => bail!("gave up waiting"),
                _ => {}
            }
        }
    } else {
        drop(c);
        println!(
            "To authorize, open this address in a browser:\n{}",
            start["authorize_url"].as_str().unwrap_or_default()
        );
        std::io::stdout().flush()?;
        let (code, state) = await_redirect(&listener, deadline)?;
        login["code"] = json!(code);
        login["state"] = json!(state);
        Client::connect(&cli.socket)?.call("mailbox.authorize_finish", login)?;
    }
    println!("authorized: the refresh token is stored and the login retried");
    Ok(())
}

/// Accepts the browser's redirect and reads `code` and `state` from it.
fn await_redirect(
    listener: &std::net::TcpListener,
    deadline: std::time::Instant,
) -> anyhow::Result<(String, String)> {
    listener.set_nonblocking(true)?;
    loop {
        let (mut stream, _) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    bail!("gave up waiting for the redirect");
                }
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut first = String::new();
        BufReader::new(&stream).read_line(&mut first)?;
        // "GET /?code=…&state=… HTTP/1.1"
        let target = first.split_whitespace().nth(1).unwrap_or_default();
        let url = url::Url::parse(&format!("http://127.0.0.1{target}"))?;
        let get = |k: &str| url.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
        let (body, found) = match (get("code"), get("state"), get("error")) {
            (Some(code), Some(state), _) => {
                ("collabd: authorized. You may close this tab.", Some((code, state)))
            }
            (_, _, Some(error)) => {
                let _ = write!(
                    stream,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\ncollabd: {error}"
                );
                bail!("the provider refused: {error}");
            }
            _ => ("collabd: waiting for the authorization redirect.", None),
        };
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}"
        );
        if let Some(found) = found {
            return Ok(found);
        }
    }
}
