//! `collabctl inbox …`: unmatched mail, assigned by hand; declines undone; re-matching.

use crate::*;

#[derive(Subcommand)]
pub(crate) enum InboxCmd {
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

/// Runs `collabctl inbox …`.
pub(crate) fn run(cli: &Cli, c: &mut Client, cmd: &InboxCmd) -> anyhow::Result<()> {
    match cmd {
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
    }
}
