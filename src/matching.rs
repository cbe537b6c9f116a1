//! Ties an inbound message to the outreach thread it answers, strongest signal first.
//! The rule that decided is recorded with the message, so every match can be explained.

use crate::mail::{Kind, ParsedMail, plus_tag};
use crate::store::outreach::{self, OutreachRef};
use crate::store::{StoreError, Tx, creators};

/// Which signal decided a match. Stored as text in `inbound_messages.match_rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// In-Reply-To names an outreach Message-ID.
    InReplyTo,
    /// An entry of References names an outreach Message-ID.
    References,
    /// A recipient address carries an outreach's `+token`.
    ReplyToken,
    /// The sender is in the Creator Pool; their most recent open outreach is the thread.
    SenderAddress,
    /// A bounce quotes the original's Message-ID.
    ReportedMessageId,
    /// A bounce names the failed recipient only.
    FinalRecipient,
}

impl Rule {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::InReplyTo => "in_reply_to",
            Rule::References => "references",
            Rule::ReplyToken => "reply_token",
            Rule::SenderAddress => "sender_address",
            Rule::ReportedMessageId => "reported_message_id",
            Rule::FinalRecipient => "final_recipient",
        }
    }

    /// Whether the thread, not the sender, decided: then an unknown sender is someone
    /// answering on the creator's behalf.
    pub fn is_thread(self) -> bool {
        matches!(self, Rule::InReplyTo | Rule::References | Rule::ReplyToken)
    }
}

/// A message's creator, campaign and thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub outreach: OutreachRef,
    pub rule: Rule,
}

impl Match {
    /// The creator the thread was sent to.
    pub fn creator_id(&self) -> i64 {
        self.outreach.creator_id
    }
    /// The campaign the thread belongs to.
    pub fn campaign_id(&self) -> i64 {
        self.outreach.campaign_id
    }
}

/// Finds the outreach a message is about. Bounces are matched by what they report;
/// everything else by threading headers, then reply token, then sender address.
pub async fn resolve(
    tx: &mut Tx,
    mail: &ParsedMail,
    kind: Kind,
) -> Result<Option<Match>, StoreError> {
    let found = |rule| move |o: Option<OutreachRef>| o.map(|outreach| Match { outreach, rule });
    if kind == Kind::Bounce {
        let reported = outreach::by_message_ids(tx, &mail.signals.reported_message_ids).await?;
        if let Some(m) = found(Rule::ReportedMessageId)(reported) {
            return Ok(Some(m));
        }
        for addr in &mail.signals.reported_recipients {
            let to = outreach::latest_to_address(tx, addr).await?;
            if let Some(m) = found(Rule::FinalRecipient)(to) {
                return Ok(Some(m));
            }
        }
        return Ok(None);
    }
    if let Some(m) = found(Rule::InReplyTo)(outreach::by_message_ids(tx, &mail.in_reply_to).await?)
    {
        return Ok(Some(m));
    }
    let newest_first: Vec<String> = mail.references.iter().rev().cloned().collect();
    if let Some(m) = found(Rule::References)(outreach::by_message_ids(tx, &newest_first).await?) {
        return Ok(Some(m));
    }
    for token in mail.recipients.iter().filter_map(|r| plus_tag(r)) {
        if let Some(m) = found(Rule::ReplyToken)(outreach::by_token(tx, token).await?) {
            return Ok(Some(m));
        }
    }
    if let Some(from) = &mail.from_address
        && let Some(creator) = creators::by_address(tx, from).await?
    {
        let latest = outreach::latest_open_for_creator(tx, creator).await?;
        return Ok(found(Rule::SenderAddress)(latest));
    }
    Ok(None)
}
