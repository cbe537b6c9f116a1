//! Ties an inbound message to the outreach thread it answers, strongest signal first.
//! The rule that decided is recorded with the message, so every match can be explained.

use std::collections::HashMap;

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
    /// The sender is in the Creator Pool and none of their outreach is open, but one
    /// bounced: the message proves the address works, so it answers that outreach.
    SenderAfterBounce,
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
            Rule::SenderAfterBounce => "sender_after_bounce",
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

/// Outreach statuses that still wait for an answer.
const OPEN: &[&str] = &["sent", "replied"];

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

/// What a batch's matching needs from the database, fetched in two queries for the whole
/// batch instead of several per message.
#[derive(Debug, Default)]
pub struct Lookups {
    outreach: HashMap<String, OutreachRef>,
    /// Creator Pool addresses among the batch's senders.
    pub creators_by_address: HashMap<String, i64>,
}

impl Lookups {
    /// Loads every outreach named by the mails' threading headers or bounce reports, and
    /// every pool address among their senders.
    pub async fn load<'a>(
        tx: &mut Tx,
        mails: impl Iterator<Item = &'a ParsedMail>,
    ) -> Result<Lookups, StoreError> {
        let (mut ids, mut senders) = (Vec::new(), Vec::new());
        for m in mails {
            ids.extend(m.in_reply_to.iter().chain(&m.references).cloned());
            ids.extend(m.signals.reported_message_ids.iter().cloned());
            senders.extend(m.from_address.clone());
        }
        ids.sort();
        ids.dedup();
        senders.sort();
        senders.dedup();
        Ok(Lookups {
            outreach: outreach::by_message_ids(tx, &ids).await?,
            creators_by_address: creators::by_addresses(tx, &senders).await?,
        })
    }

    /// The first of `ids` that names a known outreach.
    fn first<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> Option<OutreachRef> {
        ids.into_iter().find_map(|id| self.outreach.get(id)).cloned()
    }
}

/// Finds the outreach a message is about. Bounces and complaints are matched by what they
/// report;
/// everything else by threading headers, then reply token, then sender address.
pub async fn resolve(
    tx: &mut Tx,
    mail: &ParsedMail,
    kind: Kind,
    lookups: &Lookups,
) -> Result<Option<Match>, StoreError> {
    let found = |rule| move |o: Option<OutreachRef>| o.map(|outreach| Match { outreach, rule });
    if matches!(kind, Kind::Bounce | Kind::Complaint) {
        if let Some(m) =
            found(Rule::ReportedMessageId)(lookups.first(&mail.signals.reported_message_ids))
        {
            return Ok(Some(m));
        }
        // A complaint is about one message: its recipient alone (often redacted) could name
        // an outreach the complaint is not about, and it unsubscribes.
        if kind == Kind::Complaint {
            return Ok(None);
        }
        for addr in &mail.signals.reported_recipients {
            let to = outreach::latest_to_address(tx, addr).await?;
            if let Some(m) = found(Rule::FinalRecipient)(to) {
                return Ok(Some(m));
            }
        }
        return Ok(None);
    }
    if let Some(m) = found(Rule::InReplyTo)(lookups.first(&mail.in_reply_to)) {
        return Ok(Some(m));
    }
    if let Some(m) = found(Rule::References)(lookups.first(mail.references.iter().rev())) {
        return Ok(Some(m));
    }
    for token in mail.recipients.iter().filter_map(|r| plus_tag(r)) {
        if let Some(m) = found(Rule::ReplyToken)(outreach::by_token(tx, token).await?) {
            return Ok(Some(m));
        }
    }
    if let Some(creator) =
        mail.from_address.as_ref().and_then(|f| lookups.creators_by_address.get(f))
    {
        if let Some(m) =
            found(Rule::SenderAddress)(outreach::latest_for_creator(tx, *creator, OPEN).await?)
        {
            return Ok(Some(m));
        }
        // Only human messages get here: an auto-reply proves nothing about the address.
        if kind.is_human() {
            let bounced = outreach::latest_for_creator(tx, *creator, &["bounced"]).await?;
            return Ok(found(Rule::SenderAfterBounce)(bounced));
        }
    }
    Ok(None)
}
