//! `collabctl`: the operators' client of collabd's admin socket.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use collabd::admin::client::Client;
use collabd::admin::display::{self, table};
use collabd::admin::protocol::*;
use collabd::collab::{Compensation, Deadline, Deliverable, Money, Terms, Timeline};
use collabd::dates::parse_since;
use collabd::import::{ImportOptions, Kind};
use erased::Json as _;
use serde_json::Value;

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
    /// Mailboxes: the database's (add, pause, resume, remove), the file's (list, show),
    /// and their OAuth2 logins.
    #[command(subcommand)]
    Mailbox(MailboxCmd),
    /// Print each new collaboration and each unmatched message as it is committed, until
    /// interrupted (with --json: one object a line).
    Watch,
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
        /// Authorize the [smtp] login instead of a mailbox; with a name, that mailbox's
        /// own SMTP login (`[mailboxes.smtp]`).
        #[arg(long)]
        smtp: bool,
        /// `auto` (device where the provider offers it), `device` or `code`.
        #[arg(long, value_enum, default_value = "auto")]
        flow: Flow,
        /// Port of the loopback redirect for the code flow (0: any free one). Over SSH,
        /// pick one and forward it: `ssh -L PORT:127.0.0.1:PORT host`.
        #[arg(long, default_value_t = 0)]
        redirect_port: u16,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 900)]
        wait: u64,
    },
    /// Add a mailbox to the database: the running daemon starts it within a second.
    /// Validated like a `[[mailboxes]]` entry; secrets are read by the daemon.
    Add(Box<MailboxAddArgs>),
    /// Every mailbox, from the file and from the database.
    List,
    /// One mailbox's settings.
    Show { name: String },
    /// Stop a database mailbox's worker (it stays stored).
    Pause { name: String },
    /// Start a paused mailbox again.
    Resume { name: String },
    /// Delete a database mailbox; its worker stops (mail and sync state stay).
    Remove { name: String },
}

#[derive(Args)]
#[command(group = clap::ArgGroup::new("login").required(true).args(["password_file", "password_env", "daemon_password_file", "daemon_password_env", "oauth2"]))]
struct MailboxAddArgs {
    name: String,
    #[arg(long)]
    host: String,
    #[arg(long)]
    port: Option<u16>,
    /// `implicit` (default), `starttls` or `none`.
    #[arg(long)]
    tls: Option<String>,
    #[arg(long)]
    username: String,
    /// File with the password, read here with your permissions and sent to the daemon,
    /// which stores it encrypted with `[secrets] key_file`.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Environment variable (of collabctl's environment) holding the password; sent like
    /// --password-file's.
    #[arg(long)]
    password_env: Option<String>,
    /// A file the daemon reads itself: only inside its `[admin] credentials_dir`
    /// (relative names resolve there).
    #[arg(long)]
    daemon_password_file: Option<PathBuf>,
    /// A variable of the daemon's environment: only with a name starting with its
    /// `[admin] password_env_prefix`.
    #[arg(long)]
    daemon_password_env: Option<String>,
    /// TOML or JSON file with the `oauth2` table (provider, client_id, …).
    #[arg(long)]
    oauth2: Option<PathBuf>,
    /// `xoauth2` (default with --oauth2) or `oauthbearer`.
    #[arg(long)]
    auth: Option<String>,
    #[arg(long)]
    folder: Option<String>,
    /// A duration such as `60s` or `5m`.
    #[arg(long)]
    poll_interval: Option<String>,
    /// Use IMAP IDLE (default true).
    #[arg(long)]
    idle: Option<bool>,
    /// TOML or JSON file with the mailbox's own SMTP identity: the keys of `[smtp]`
    /// (host, port, tls, username, password_file, from, reply_to, …). Without it the
    /// mailbox sends through `[smtp]`. Its `password_file` (relative: to the TOML file)
    /// and `password_env` are read here and the password sent, as for --password-file;
    /// `daemon_password_file` and `daemon_password_env` are passed to the daemon as its
    /// `password_file` and `password_env`.
    #[arg(long)]
    smtp: Option<PathBuf>,
}

/// A TOML or JSON file holding a table (`[oauth2]`, `[smtp]`) or just its keys.
fn read_table(file: &std::path::Path, name: &str) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let table: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(_) => {
            let toml = config::File::from_str(&text, config::FileFormat::Toml);
            config::Config::builder()
                .add_source(toml)
                .build()
                .and_then(|c| c.try_deserialize::<Value>())
                .with_context(|| format!("{}: neither JSON nor TOML", file.display()))?
        }
    };
    Ok(table.get(name).cloned().unwrap_or(table))
}

impl MailboxAddArgs {
    /// The mailbox as `mailbox.add` takes it; the daemon fills in defaults and validates.
    fn settings(&self) -> anyhow::Result<MailboxTable> {
        let mut v = serde_json::json!({
            "name": self.name,
            "host": self.host,
            "username": self.username,
        });
        let o = v.as_object_mut().expect("object");
        let mut set = |k: &str, x: Option<Value>| {
            if let Some(x) = x {
                o.insert(k.to_owned(), x);
            }
        };
        set("port", self.port.map(Value::from));
        set("tls", self.tls.clone().map(Value::from));
        let password = own_secret(
            "--password",
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            None,
        )?;
        set("password", password.map(Value::from));
        set(
            "password_file",
            self.daemon_password_file.as_ref().map(|p| p.display().to_string().into()),
        );
        set("password_env", self.daemon_password_env.clone().map(Value::from));
        set("folder", self.folder.clone().map(Value::from));
        set("poll_interval", self.poll_interval.clone().map(Value::from));
        set("idle", self.idle.map(Value::from));
        let auth = self.auth.clone().or_else(|| self.oauth2.as_ref().map(|_| "xoauth2".into()));
        set("auth", auth.map(Value::from));
        if let Some(file) = &self.oauth2 {
            set("oauth2", Some(read_table(file, "oauth2")?));
        }
        if let Some(file) = &self.smtp {
            set("smtp", Some(smtp_table(file)?));
        }
        match v {
            Value::Object(table) => Ok(MailboxTable(table)),
            _ => unreachable!("built as an object"),
        }
    }
}

/// A secret read by collabctl itself, with the operator's permissions: the file (its last
/// line ending dropped) or collabctl's own environment variable. `base` is the directory
/// relative files are found in (the current one when `None`). `flag` names the option.
fn own_secret(
    flag: &str,
    file: Option<&std::path::Path>,
    env: Option<&str>,
    base: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    if file.is_some() && env.is_some() {
        anyhow::bail!("{flag}_file and {flag}_env: set one, not both");
    }
    if let Some(file) = file {
        let path = match base {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_path_buf(),
        };
        let raw = std::fs::read_to_string(&path)
            .with_context(|| format!("{flag}-file: cannot read {}", path.display()))?;
        return Ok(Some(raw.trim_end_matches(['\r', '\n']).to_owned()));
    }
    match env {
        Some(var) => std::env::var(var)
            .map(Some)
            .with_context(|| format!("{flag}-env: {var} is not set in collabctl's environment")),
        None => Ok(None),
    }
}

/// The `--smtp` table: its `password_file`/`password_env` read here and sent as
/// `password`; `daemon_password_file`/`daemon_password_env` passed on as the daemon's.
fn smtp_table(file: &std::path::Path) -> anyhow::Result<Value> {
    let mut table = read_table(file, "smtp")?;
    let Some(o) = table.as_object_mut() else { return Ok(table) };
    let text = |v: Option<Value>| v.and_then(|v| v.as_str().map(str::to_owned));
    let pw_file = text(o.remove("password_file")).map(PathBuf::from);
    let pw_env = text(o.remove("password_env"));
    let base = file.parent();
    let flag = format!("{}: password", file.display());
    if let Some(pw) = own_secret(&flag, pw_file.as_deref(), pw_env.as_deref(), base)? {
        o.insert("password".into(), pw.into());
    }
    for (theirs, key) in
        [("daemon_password_file", "password_file"), ("daemon_password_env", "password_env")]
    {
        if let Some(v) = o.remove(theirs) {
            o.insert(key.into(), v);
        }
    }
    Ok(table)
}

#[derive(Subcommand)]
enum CampaignCmd {
    Create {
        name: String,
        /// Bind the campaign to this mailbox (repeatable): replies arriving in any other
        /// mailbox never match it. Without it the campaign matches in every mailbox.
        #[arg(long = "mailbox")]
        mailboxes: Vec<String>,
    },
    List,
    /// Archive by name or id.
    Archive {
        campaign: String,
    },
    /// Replace the mailboxes a campaign is bound to; with no --mailbox, unbind it (it then
    /// matches replies in every mailbox).
    Bind {
        campaign: String,
        #[arg(long = "mailbox")]
        mailboxes: Vec<String>,
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
        #[command(flatten)]
        page: PageArgs,
    },
    /// By id, platform:handle, handle or email address.
    Show { creator: String },
    /// CSV with columns name,platform,handle,email[,manager_email][,tags] (tags split on ';').
    /// All or nothing: one invalid row means nothing is imported (see --skip-invalid).
    Import {
        file: PathBuf,
        #[command(flatten)]
        opts: ImportOptions,
    },
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
        /// The mailbox it was sent from (unknown when not given).
        #[arg(long)]
        mailbox: Option<String>,
    },
    /// CSV with columns message_id,campaign,platform,handle,to,subject,sent_at (RFC 3339,
    /// RFC 2822 or YYYY-MM-DD HH:MM[:SS] UTC)[,mailbox] (the mailbox it was sent from;
    /// empty: unknown). All or nothing (see --skip-invalid).
    Import {
        file: PathBuf,
        #[command(flatten)]
        opts: ImportOptions,
    },
    /// Send outreach through the configured SMTP server: [smtp], or with --mailbox that
    /// mailbox's own SMTP identity.
    Send {
        /// Send as this mailbox (its [mailboxes.smtp], else [smtp]); recorded with the
        /// outreach so replies arriving there prefer it.
        #[arg(long)]
        mailbox: Option<String>,
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
    fixed_fee: Option<rust_decimal::Decimal>,
    /// ISO 4217 code, e.g. USD.
    #[arg(long)]
    currency: Option<String>,
    #[arg(long, allow_negative_numbers = true)]
    commission_percent: Option<rust_decimal::Decimal>,
    #[arg(long)]
    product: Option<String>,
    /// "2026-12-01" or "publish=2026-12-01" (repeatable).
    #[arg(long)]
    deadline: Vec<String>,
    #[arg(long)]
    terms: Option<String>,
}

/// Which collaborations `collab list` and `collab export` show.
#[derive(Args, Clone)]
struct CollabFilterArgs {
    #[arg(long)]
    campaign: Option<String>,
    #[arg(long)]
    status: Option<collabd::collab::CollabStatus>,
    #[arg(long)]
    creator: Option<String>,
}

impl CollabFilterArgs {
    /// The `collab.list` call for one page of these collaborations.
    fn call(&self, since: Option<chrono::DateTime<chrono::Utc>>, p: PageParams) -> CollabList {
        CollabList {
            campaign: self.campaign.clone(),
            status: self.status,
            creator: self.creator.clone(),
            since,
            after: p.after,
            limit: p.limit,
        }
    }
}

/// Paging of a list (keyset on id). A table shows 100 rows unless told otherwise and says
/// how to get the next page; `--json` without paging flags prints the whole list.
#[derive(Args, Default, Clone, Copy)]
struct PageArgs {
    /// At most this many rows (default 100 for a table).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    limit: Option<u32>,
    /// Start after this id (the `next_after` of the previous page).
    #[arg(long)]
    after: Option<i64>,
    /// Fetch every page (of --limit rows, default 1,000).
    #[arg(long, conflicts_with = "after")]
    all: bool,
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
        #[command(flatten)]
        filter: CollabFilterArgs,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Every matching collaboration to stdout, newest first, streamed page by page (for
    /// spreadsheets: csv; for scripts: jsonl, one object a line).
    ///
    /// CSV is made safe for spreadsheets: a cell starting with `=`, `+`, `-`, `@`, TAB or
    /// CR (a formula to Excel, LibreOffice and Google Sheets, e.g. `=HYPERLINK(…)`) is
    /// written with a leading `'`, as OWASP recommends; negative-looking values such as
    /// `-2` too (no column holds a bare number that can be negative). `--raw` writes every
    /// cell as stored. JSONL is always as stored.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// CSV cells exactly as stored, without the leading `'` that keeps spreadsheets
        /// from running them as formulas: for programs, not for spreadsheets.
        #[arg(long)]
        raw: bool,
        #[command(flatten)]
        filter: CollabFilterArgs,
        /// Only those created at or after this time (RFC 3339, or a date: YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
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
        to: collabd::collab::CollabStatus,
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
    Unmatched {
        #[command(flatten)]
        page: PageArgs,
    },
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
    /// Match unmatched messages again against the creators and outreach known now (imports
    /// and `creator add`/`outreach record` do this by themselves).
    Rematch {
        /// Only messages received since this time (RFC 3339, or YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Csv,
    Jsonl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("collabctl: {}", display::text(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// Runs a CSV import (see `collabd::import`), prints its report, and ends the process with
/// its status: 1 when invalid rows stopped it, 2 when `--skip-invalid` left rows out.
fn import_file(
    cli: &Cli,
    file: &std::path::Path,
    kind: Kind,
    opts: ImportOptions,
    call: &mut dyn FnMut(Vec<Value>, ImportChunk) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let outcome = collabd::import::run(file, kind, opts, call)?;
    print_report(cli, &outcome.report, |_| {
        let mut out = String::new();
        for (name, n) in &outcome.counts {
            out += &format!("{name}: {n}\n");
        }
        out + &render_invalid(&outcome.invalid)
    })?;
    if let Some(s) = &outcome.summary {
        eprintln!("collabctl: {}", display::text(s));
    }
    if outcome.exit != 0 {
        std::io::stdout().flush()?;
        std::process::exit(i32::from(outcome.exit));
    }
    Ok(())
}

/// Sends one call and prints its result: raw with `--json`, else through `render`.
fn show<P: Params>(
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
fn print_report<T: serde::Serialize>(
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

fn run(cli: &Cli) -> anyhow::Result<()> {
    if let Command::Mailbox(MailboxCmd::Authorize { name, smtp, flow, redirect_port, wait }) =
        &cli.command
    {
        let login = MailboxAuthorizeStatus { mailbox: name.clone(), smtp: *smtp };
        return authorize(cli, login, *flow, *redirect_port, Duration::from_secs(*wait));
    }
    let mut c = Client::connect(&cli.socket)?;
    let c = &mut c;
    if let Command::Watch = cli.command {
        return watch(cli, c);
    }
    match &cli.command {
        Command::Status => show(cli, c, StatusParams {}, render_status),
        Command::Campaign(cmd) => match cmd {
            CampaignCmd::Create { name, mailboxes } => {
                let params = CampaignCreate { name: name.clone(), mailboxes: mailboxes.clone() };
                show(cli, c, params, |x| render_campaigns(slice(x)))
            }
            CampaignCmd::List => show(cli, c, CampaignList {}, |x| render_campaigns(x)),
            CampaignCmd::Archive { campaign } => {
                show(cli, c, CampaignArchive { campaign: campaign.clone() }, |x| {
                    render_campaigns(slice(x))
                })
            }
            CampaignCmd::Bind { campaign, mailboxes } => {
                let params =
                    CampaignBind { campaign: campaign.clone(), mailboxes: mailboxes.clone() };
                show(cli, c, params, |x| render_campaigns(slice(x)))
            }
        },
        Command::Creator(cmd) => match cmd {
            CreatorCmd::Add { name, platform, handle, email, manager_email, tag } => {
                let fields = CreatorFields {
                    name: name.clone(),
                    platform: platform.clone(),
                    handle: handle.clone(),
                    emails: email.clone(),
                    manager_emails: manager_email.clone(),
                    tags: tag.clone(),
                };
                show(cli, c, fields, |x| render_creators(slice(x)))
            }
            CreatorCmd::List { search, page } => list(
                cli,
                c,
                *page,
                |p| CreatorList { search: search.clone(), after: p.after, limit: p.limit },
                |c: &Creator| c.id,
                render_creators,
            ),
            CreatorCmd::Show { creator } => {
                show(cli, c, CreatorShow { creator: creator.clone() }, |x| {
                    render_creators(slice(x))
                })
            }
            CreatorCmd::Import { file, opts } => {
                import_file(cli, file, Kind::Creator, *opts, &mut |rows, f| {
                    let (dry_run, skip_invalid, more) = (f.dry_run, f.skip_invalid, f.more);
                    Ok(c.call_raw(CreatorImport { rows, dry_run, skip_invalid, more }.into())?)
                })
            }
        },
        Command::Outreach(cmd) => match cmd {
            OutreachCmd::Record {
                message_id,
                campaign,
                creator,
                to,
                subject,
                sent_at,
                mailbox,
            } => {
                let sent_at = sent_at
                    .as_deref()
                    .map(|s| {
                        collabd::dates::parse_time(s)
                            .map_err(|e| anyhow::anyhow!("--sent-at {s:?}: {e}"))
                    })
                    .transpose()?;
                let fields = OutreachFields {
                    message_id: message_id.clone(),
                    campaign: campaign.clone(),
                    creator: creator.clone(),
                    to: to.clone(),
                    subject: subject.clone(),
                    sent_at,
                    mailbox: mailbox.clone(),
                };
                show(cli, c, fields, |r| {
                    format!("recorded: {}\nskipped: {}\n", r.recorded, r.skipped)
                })
            }
            OutreachCmd::Import { file, opts } => {
                import_file(cli, file, Kind::Outreach, *opts, &mut |rows, f| {
                    let (dry_run, skip_invalid, more) = (f.dry_run, f.skip_invalid, f.more);
                    Ok(c.call_raw(OutreachImport { rows, dry_run, skip_invalid, more }.into())?)
                })
            }
            OutreachCmd::Send { mailbox, campaign, creator, subject, body_file, dry_run } => {
                let body = std::fs::read_to_string(body_file)
                    .with_context(|| format!("cannot read {}", body_file.display()))?;
                let params = OutreachSend {
                    campaign: campaign.clone(),
                    creator: creator.clone(),
                    subject: subject.clone(),
                    body,
                    dry_run: *dry_run,
                    mailbox: mailbox.clone(),
                };
                show(cli, c, params, render_send)
            }
        },
        Command::Collab(cmd) => match cmd {
            CollabCmd::Create { creator, campaign, terms, allow_duplicate, from_file } => {
                let params = match from_file {
                    Some(f) => {
                        let text = std::fs::read_to_string(f)
                            .with_context(|| format!("cannot read {}", f.display()))?;
                        let de = &mut serde_json::Deserializer::from_str(&text);
                        serde_path_to_error::deserialize(de).map_err(|e| {
                            anyhow::anyhow!("{} ({}): {}", f.display(), e.path(), e.inner())
                        })?
                    }
                    None => CollabCreate {
                        creator: creator.clone().unwrap_or_default(),
                        campaign: campaign.clone().unwrap_or_default(),
                        terms: terms_from(terms)?,
                        allow_duplicate: *allow_duplicate,
                    },
                };
                show(cli, c, params, render_collab)
            }
            CollabCmd::List { filter, page } => list(
                cli,
                c,
                *page,
                |p| filter.call(None, p),
                |c: &Collaboration| c.id,
                render_collabs,
            ),
            CollabCmd::Export { format, raw, filter, since } => {
                let since =
                    since.as_deref().map(parse_since).transpose().map_err(anyhow::Error::msg)?;
                let page = |after, limit| filter.call(since, PageParams { after, limit });
                export(c, *format, *raw, page)
            }
            CollabCmd::Show { id } => show(cli, c, CollabShow { id: *id }, render_collab),
            CollabCmd::Update { id, terms, reason } => {
                let params =
                    CollabUpdate { id: *id, terms: terms_from(terms)?, reason: reason.clone() };
                show(cli, c, params, render_collab)
            }
            CollabCmd::Advance { id, to, reason } => {
                let params = CollabAdvance { id: *id, to: *to, reason: reason.clone() };
                show(cli, c, params, render_collab)
            }
            CollabCmd::Cancel { id, reason } => {
                show(cli, c, CollabCancel { id: *id, reason: reason.clone() }, render_collab)
            }
        },
        Command::Mailbox(cmd) => match cmd {
            MailboxCmd::Add(args) => show(cli, c, args.settings()?, render_mailbox),
            MailboxCmd::List => show(cli, c, MailboxList {}, |x| render_mailboxes(x)),
            MailboxCmd::Show { name } => {
                show(cli, c, MailboxShow { mailbox: name.clone() }, render_mailbox)
            }
            MailboxCmd::Pause { name } => {
                show(cli, c, MailboxPause { mailbox: name.clone() }, |x| render_mailboxes(slice(x)))
            }
            MailboxCmd::Resume { name } => {
                show(cli, c, MailboxResume { mailbox: name.clone() }, |x| {
                    render_mailboxes(slice(x))
                })
            }
            MailboxCmd::Remove { name } => {
                show(cli, c, MailboxRemove { mailbox: name.clone() }, |x| {
                    render_mailboxes(slice(x))
                })
            }
            MailboxCmd::Authorize { .. } => unreachable!("handled above"),
        },
        Command::Watch => unreachable!("handled above"),
        Command::Inbox(cmd) => match cmd {
            InboxCmd::Unmatched { page } => list(
                cli,
                c,
                *page,
                |p| InboxUnmatched { after: p.after, limit: p.limit },
                |m: &UnmatchedMessage| m.id,
                render_inbox,
            ),
            InboxCmd::Assign { message, creator, campaign } => {
                let params = InboxAssign {
                    message: *message,
                    creator: creator.clone(),
                    campaign: campaign.clone(),
                };
                show(cli, c, params, render_collab)
            }
            InboxCmd::Undecline { message, reason } => {
                let params = InboxUndecline { message: *message, reason: reason.clone() };
                show(cli, c, params, render_collab)
            }
            InboxCmd::Rematch { since } => {
                let since =
                    since.as_deref().map(parse_since).transpose().map_err(anyhow::Error::msg)?;
                show(cli, c, InboxRematch { since }, |r| {
                    format!(
                        "examined: {}\nmatched: {}\ncollaborations created: {}\n",
                        r.examined, r.matched, r.collaborations_created
                    )
                })
            }
        },
    }
}

/// Runs a list call. `--all` fetches page after page; `--json` with no paging flags asks
/// for the whole list (an array, as before paging existed); otherwise one page, with
/// `next_after` in the JSON and a note on stderr under a table when more rows exist.
fn list<P, T>(
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

fn slice<T>(x: &T) -> &[T] {
    std::slice::from_ref(x)
}

/// Builds `terms` from flags; talking points, hashtags and keywords apply to every
/// deliverable.
fn terms_from(t: &TermsArgs) -> anyhow::Result<Terms> {
    let mut deliverables = Vec::new();
    for d in &t.deliverable {
        let (qty, kind) = d
            .split_once(['x', 'X', '×'])
            .map(|(q, k)| (q.trim(), k.trim()))
            .unwrap_or(("1", d.trim()));
        let quantity: u32 =
            qty.parse().with_context(|| format!("--deliverable {d:?}: quantity"))?;
        deliverables.push(Deliverable {
            post_type: kind.to_owned(),
            quantity,
            talking_points: t.talking_points.clone(),
            hashtags: t.hashtags.clone(),
            attribution_keywords: t.attribution_keywords.clone(),
        });
    }
    let compensation = Compensation {
        fixed_fee: t
            .fixed_fee
            .map(|amount| Money { amount, currency: t.currency.clone().unwrap_or_default() }),
        commission_percent: t.commission_percent,
        product: t.product.clone(),
    };
    let deadlines = t
        .deadline
        .iter()
        .map(|d| {
            let (what, date) = d.split_once('=').unwrap_or(("deliver", d.as_str()));
            let date = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .with_context(|| format!("--deadline {d:?}: date is not YYYY-MM-DD"))?;
            Ok(Deadline { what: what.trim().to_owned(), date })
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Terms {
        deliverables,
        compensation,
        timeline: Timeline { deadlines },
        additional_terms: t.terms.clone(),
    })
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

fn render_status(st: &StatusResult) -> String {
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

fn source(m: &MailboxEntry) -> &'static str {
    match m.source {
        MailboxSource::File => "file",
        MailboxSource::Database => "database",
    }
}

fn render_mailboxes(rows: &[MailboxEntry]) -> String {
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

fn render_mailbox(m: &MailboxEntry) -> String {
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

fn render_campaigns(rows: &[Campaign]) -> String {
    table(
        &["ID", "NAME", "MAILBOXES", "ARCHIVED"],
        rows.iter().map(|r| {
            let mailboxes =
                if r.mailboxes.is_empty() { "(any)".to_owned() } else { r.mailboxes.join(", ") };
            vec![r.id.to_string(), r.name.clone(), mailboxes, opt(&r.archived_at)]
        }),
    )
}

fn render_creators(rows: &[Creator]) -> String {
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

fn render_collabs(rows: &[Collaboration]) -> String {
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

fn render_collab(d: &CollabDetail) -> String {
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

fn render_inbox(rows: &[UnmatchedMessage]) -> String {
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
fn sender(m: &UnmatchedMessage) -> String {
    match (m.from_name.as_deref().filter(|n| !n.is_empty()), m.from_address.as_deref()) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (name, address) => name.or(address).unwrap_or_default().to_owned(),
    }
}

fn render_invalid(invalid: &[InvalidRow]) -> String {
    let mut out = format!("invalid: {}\n", invalid.len());
    for i in invalid {
        let (field, reason) = (display::text(&opt(&i.field)), display::text(&i.reason));
        out += &format!("  line {}: {field} {reason}\n", i.line);
    }
    out
}

fn render_send(r: &SendResult) -> String {
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

/// Runs an OAuth2 authorization with the daemon: shows the operator where to go, then waits
/// for the device approval or for the browser's redirect to a loopback listener.
fn authorize(
    cli: &Cli,
    login: MailboxAuthorizeStatus,
    flow: Flow,
    redirect_port: u16,
    wait: Duration,
) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", redirect_port))
        .context("cannot listen for the redirect on 127.0.0.1")?;
    let redirect_uri = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    let mut c = Client::connect(&cli.socket)?;
    let start = c.call(MailboxAuthorize {
        mailbox: login.mailbox.clone(),
        smtp: login.smtp,
        flow,
        redirect_uri: Some(redirect_uri),
    })?;
    let deadline = std::time::Instant::now() + wait;
    match start {
        AuthorizeStart::Device(start) => {
            println!(
                "To authorize, open {} and enter the code {}",
                display::escape(&start.verification_uri),
                display::text(&start.user_code)
            );
            std::io::stdout().flush()?;
            let interval = Duration::from_secs(start.interval.max(1));
            loop {
                std::thread::sleep(interval);
                match c.call(login.clone())? {
                    AuthorizeState::Authorized => break,
                    AuthorizeState::Failed { error } => {
                        bail!("authorization failed: {}", Value::from(error))
                    }
                    AuthorizeState::Pending if std::time::Instant::now() > deadline => {
                        bail!("gave up waiting")
                    }
                    AuthorizeState::Pending => {}
                }
            }
        }
        AuthorizeStart::Code { authorize_url } => {
            drop(c);
            // Escaped, never cut: the operator must be able to open it.
            let url = display::escape(&authorize_url);
            println!("To authorize, open this address in a browser:\n{url}");
            std::io::stdout().flush()?;
            let (code, state) = await_redirect(&listener, deadline)?;
            Client::connect(&cli.socket)?.call(MailboxAuthorizeFinish {
                mailbox: login.mailbox,
                smtp: login.smtp,
                code,
                state,
            })?;
        }
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
/// Rows fetched per page while exporting: large pages, few round trips, bounded memory.
const EXPORT_PAGE: u32 = 5000;

/// Streams every collaboration `filter` selects to stdout, a page at a time. CSV cells go
/// through [`display::csv_cell`] unless `raw`.
fn export(
    c: &mut Client,
    format: ExportFormat,
    raw: bool,
    filter: impl Fn(Option<i64>, Option<u32>) -> CollabList,
) -> anyhow::Result<()> {
    let out = std::io::BufWriter::with_capacity(256 * 1024, std::io::stdout().lock());
    let (mut csv, mut jsonl) = match format {
        ExportFormat::Csv => (Some(csv::Writer::from_writer(out)), None),
        ExportFormat::Jsonl => (None, Some(out)),
    };
    if let Some(w) = csv.as_mut() {
        w.write_record([
            "id",
            "status",
            "source",
            "creator_handle",
            "creator_name",
            "platform",
            "campaign",
            "deliverables",
            "compensation",
            "timeline",
            "additional_terms",
            "thread_id",
            "created_at",
            "updated_at",
        ])?;
    }
    let mut after = None;
    loop {
        let (items, next) = c.call(filter(after, Some(EXPORT_PAGE)))?.into_parts();
        for l in &items {
            if let Some(w) = csv.as_mut() {
                let (id, deliverables) = (l.id.to_string(), erased::Json::json(&l.deliverables));
                let (compensation, timeline) = (l.compensation.json(), l.timeline.json());
                let (created, updated) = (l.created_at.to_rfc3339(), l.updated_at.to_rfc3339());
                let cells = [
                    id.as_str(),
                    l.status.as_str(),
                    &l.source,
                    &l.creator.handle,
                    &l.creator.name,
                    &l.creator.platform,
                    &l.campaign.name,
                    &deliverables,
                    &compensation,
                    &timeline,
                    l.additional_terms.as_deref().unwrap_or_default(),
                    l.thread_id.as_deref().unwrap_or_default(),
                    &created,
                    &updated,
                ];
                if raw {
                    w.write_record(cells)?;
                } else {
                    w.write_record(cells.map(display::csv_cell).iter().map(|c| c.as_bytes()))?;
                }
            }
            if let Some(out) = jsonl.as_mut() {
                serde_json::to_writer(&mut *out, l)?;
                out.write_all(b"\n")?;
            }
        }
        let last = items.last().map(|l| l.id);
        match next {
            Some(n) if Some(n) == last && Some(n) != after => after = Some(n),
            _ => break,
        }
    }
    if let Some(mut w) = csv {
        w.flush()?;
    }
    if let Some(mut out) = jsonl {
        out.flush()?;
    }
    Ok(())
}

/// One human line for a `watch` event; every stored value escaped and cut.
fn watch_line(event: &WatchEvent) -> String {
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
fn watch(cli: &Cli, c: &mut Client) -> anyhow::Result<()> {
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

/// Terms as the compact JSON they are shown and exported in.
mod erased {
    pub trait Json {
        fn json(&self) -> String;
    }

    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}
