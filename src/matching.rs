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
    /// The sender is in the Creator Pool; their most recent open outreach of the mailbox
    /// the message arrived in (or of an unknown mailbox) is the thread.
    SenderAddress,
    /// As `SenderAddress`, but the arrival mailbox has no open outreach to the sender:
    /// another mailbox's most recent is the thread.
    SenderAddressOtherMailbox,
    /// The sender is in the Creator Pool and none of their outreach is open, but one
    /// bounced: the message proves the address works, so it answers that outreach.
    SenderAfterBounce,
    /// As `SenderAfterBounce`, with another mailbox's bounced outreach.
    SenderAfterBounceOtherMailbox,
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
            Rule::SenderAddressOtherMailbox => "sender_address_other_mailbox",
            Rule::SenderAfterBounce => "sender_after_bounce",
            Rule::SenderAfterBounceOtherMailbox => "sender_after_bounce_other_mailbox",
            Rule::ReportedMessageId => "reported_message_id",
            Rule::FinalRecipient => "final_recipient",
        }
    }

    /// Whether the thread, not the sender, decided: then an unknown sender is someone
    /// answering on the creator's behalf.
    pub fn is_thread(self) -> bool {
        matches!(self, Rule::InReplyTo | Rule::References | Rule::ReplyToken)
    }

    /// Whether the match revives a bounced outreach.
    pub fn is_after_bounce(self) -> bool {
        matches!(self, Rule::SenderAfterBounce | Rule::SenderAfterBounceOtherMailbox)
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

    /// The first of `ids` that names a known outreach a message in `mailbox` may match
    /// (one of a campaign bound to other mailboxes counts as unknown).
    fn first<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a String>,
        mailbox: &str,
    ) -> Option<OutreachRef> {
        ids.into_iter()
            .find_map(|id| self.outreach.get(id).filter(|o| o.allowed_in(mailbox)))
            .cloned()
    }
}

/// The match of `rule`, when an outreach was found.
fn found(rule: Rule, o: Option<OutreachRef>) -> Option<Match> {
    o.map(|outreach| Match { outreach, rule })
}

/// Finds the outreach a message that arrived in `mailbox` is about. Bounces and
/// complaints are matched by what they report; everything else by threading headers, then
/// reply token, then sender address. Outreach of a campaign bound to other mailboxes is
/// never the answer: each rule treats it as not found, so the next rule is tried.
pub async fn resolve(
    tx: &mut Tx,
    mail: &ParsedMail,
    kind: Kind,
    mailbox: &str,
    lookups: &Lookups,
) -> Result<Option<Match>, StoreError> {
    if matches!(kind, Kind::Bounce | Kind::Complaint) {
        return by_report(tx, mail, kind, mailbox, lookups).await;
    }
    if let Some(m) = by_thread(tx, mail, mailbox, lookups).await? {
        return Ok(Some(m));
    }
    match mail.from_address.as_ref().and_then(|f| lookups.creators_by_address.get(f)) {
        Some(&creator) => by_sender(tx, creator, kind, mailbox).await,
        None => Ok(None),
    }
}

/// A bounce or complaint: the outreach it quotes, else (bounces only) the latest sent to
/// the failed recipient.
async fn by_report(
    tx: &mut Tx,
    mail: &ParsedMail,
    kind: Kind,
    mailbox: &str,
    lookups: &Lookups,
) -> Result<Option<Match>, StoreError> {
    let quoted = lookups.first(&mail.signals.reported_message_ids, mailbox);
    if let Some(m) = found(Rule::ReportedMessageId, quoted) {
        return Ok(Some(m));
    }
    // A complaint is about one message: its recipient alone (often redacted) could name
    // an outreach the complaint is not about, and it unsubscribes.
    if kind == Kind::Complaint {
        return Ok(None);
    }
    for addr in &mail.signals.reported_recipients {
        let to = outreach::latest_to_address(tx, addr, mailbox).await?;
        if let Some(m) = found(Rule::FinalRecipient, to) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// The thread's signals: In-Reply-To, then References (newest first), then a recipient's
/// reply token.
async fn by_thread(
    tx: &mut Tx,
    mail: &ParsedMail,
    mailbox: &str,
    lookups: &Lookups,
) -> Result<Option<Match>, StoreError> {
    if let Some(m) = found(Rule::InReplyTo, lookups.first(&mail.in_reply_to, mailbox)) {
        return Ok(Some(m));
    }
    let referenced = lookups.first(mail.references.iter().rev(), mailbox);
    if let Some(m) = found(Rule::References, referenced) {
        return Ok(Some(m));
    }
    for token in mail.recipients.iter().filter_map(|r| plus_tag(r)) {
        let o = outreach::by_token(tx, token).await?.filter(|o| o.allowed_in(mailbox));
        if let Some(m) = found(Rule::ReplyToken, o) {
            return Ok(Some(m));
        }
    }
    Ok(None)
}

/// A Creator Pool sender's most recent open outreach, the arrival mailbox's own first;
/// for a human message when none is open, their most recent bounced one, likewise.
async fn by_sender(
    tx: &mut Tx,
    creator: i64,
    kind: Kind,
    mailbox: &str,
) -> Result<Option<Match>, StoreError> {
    let pick = |c: Option<outreach::SenderCandidate>, own: Rule, other: Rule| {
        c.map(|c| Match { rule: if c.own_mailbox { own } else { other }, outreach: c.outreach })
    };
    let open = outreach::latest_for_creator(tx, creator, OPEN, mailbox).await?;
    if let Some(m) = pick(open, Rule::SenderAddress, Rule::SenderAddressOtherMailbox) {
        return Ok(Some(m));
    }
    // Only human messages get here: an auto-reply proves nothing about the address.
    if !kind.is_human() {
        return Ok(None);
    }
    let bounced = outreach::latest_for_creator(tx, creator, &["bounced"], mailbox).await?;
    Ok(pick(bounced, Rule::SenderAfterBounce, Rule::SenderAfterBounceOtherMailbox))
}
