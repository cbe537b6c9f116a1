//! `collabctl`: the operators' client of collabd's admin socket. One module per command
//! group (`campaign`, `creator`, `outreach`, `collab`, `inbox`, `mailbox`, `watch`), each
//! with its subcommands and what they run; `render` prints results; `import` reads CSV
//! files. The typed client is the library's (`collabd::admin::client`).

mod campaign;
mod collab;
mod creator;
mod import;
mod inbox;
mod mailbox;
mod outreach;
mod render;
mod watch;

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
use render::erased::Json as _;
use serde_json::Value;

use campaign::CampaignCmd;
use collab::CollabCmd;
use creator::CreatorCmd;
use import::{ImportOptions, Kind, import_file};
use inbox::InboxCmd;
use mailbox::{MailboxCmd, authorize};
use outreach::OutreachCmd;
use render::*;
use watch::watch;

#[derive(Parser)]
#[command(version, about = "Manage collabd: collaborations, the Creator Pool, outreach")]
pub(crate) struct Cli {
    /// The daemon's admin socket.
    #[arg(long, env = "COLLABD_SOCKET", default_value = "/run/collabd/admin.sock", global = true)]
    pub(crate) socket: PathBuf,
    /// Print the raw JSON result instead of a table.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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

/// Paging of a list (keyset on id). A table shows 100 rows unless told otherwise and says
/// how to get the next page; `--json` without paging flags prints the whole list.
#[derive(Args, Default, Clone, Copy)]
pub(crate) struct PageArgs {
    /// At most this many rows (default 100 for a table).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    pub(crate) limit: Option<u32>,
    /// Start after this id (the `next_after` of the previous page).
    #[arg(long)]
    pub(crate) after: Option<i64>,
    /// Fetch every page (of --limit rows, default 1,000).
    #[arg(long, conflicts_with = "after")]
    pub(crate) all: bool,
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

fn run(cli: &Cli) -> anyhow::Result<()> {
    if let Command::Mailbox(MailboxCmd::Authorize { name, smtp, flow, redirect_port, wait }) =
        &cli.command
    {
        let login = MailboxAuthorizeStatus { mailbox: name.clone(), smtp: *smtp };
        return authorize(cli, login, *flow, *redirect_port, Duration::from_secs(*wait));
    }
    let mut c = Client::connect(&cli.socket)?;
    let c = &mut c;
    match &cli.command {
        Command::Status => show(cli, c, StatusParams {}, render_status),
        Command::Watch => watch(cli, c),
        Command::Campaign(cmd) => campaign::run(cli, c, cmd),
        Command::Creator(cmd) => creator::run(cli, c, cmd),
        Command::Outreach(cmd) => outreach::run(cli, c, cmd),
        Command::Collab(cmd) => collab::run(cli, c, cmd),
        Command::Mailbox(cmd) => mailbox::run(cli, c, cmd),
        Command::Inbox(cmd) => inbox::run(cli, c, cmd),
    }
}
