//! `collabctl campaign …`: campaigns and their mailbox bindings.

use crate::*;

#[derive(Subcommand)]
pub(crate) enum CampaignCmd {
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

/// Runs `collabctl campaign …`.
pub(crate) fn run(cli: &Cli, c: &mut Client, cmd: &CampaignCmd) -> anyhow::Result<()> {
    match cmd {
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
            let params = CampaignBind { campaign: campaign.clone(), mailboxes: mailboxes.clone() };
            show(cli, c, params, |x| render_campaigns(slice(x)))
        }
    }
}
