//! `collabctl outreach …`: outreach recorded, imported, or sent through SMTP.

use crate::*;

#[derive(Subcommand)]
pub(crate) enum OutreachCmd {
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

/// Runs `collabctl outreach …`.
pub(crate) fn run(cli: &Cli, c: &mut Client, cmd: &OutreachCmd) -> anyhow::Result<()> {
    match cmd {
        OutreachCmd::Record { message_id, campaign, creator, to, subject, sent_at, mailbox } => {
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
            show(cli, c, fields, |r| format!("recorded: {}\nskipped: {}\n", r.recorded, r.skipped))
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
    }
}
