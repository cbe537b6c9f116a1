//! Ties an inbound message to the outreach thread it answers, strongest signal first.
//! The rule that decided is recorded with the message.

use crate::mail::ParsedMail;
use crate::store::outreach::{self, OutreachRef};
use crate::store::{StoreError, Tx};

/// Which signal decided a match. Stored as text in `inbound_messages.match_rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// In-Reply-To names an outreach Message-ID.
    InReplyTo,
    /// An entry of References names an outreach Message-ID.
    References,
}

impl Rule {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::InReplyTo => "in_reply_to",
            Rule::References => "references",
        }
    }
}

/// A message's creator, campaign and thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    pub outreach: OutreachRef,
    pub rule: Rule,
}

impl Match {
    pub fn creator_id(&self) -> i64 {
        self.outreach.creator_id
    }
    pub fn campaign_id(&self) -> i64 {
        self.outreach.campaign_id
    }
}

/// Finds the thread a message belongs to: In-Reply-To first, then References from the
/// newest entry back.
pub async fn resolve(tx: &mut Tx, mail: &ParsedMail) -> Result<Option<Match>, StoreError> {
    if let Some(o) = outreach::by_message_ids(tx, &mail.in_reply_to).await? {
        return Ok(Some(Match { outreach: o, rule: Rule::InReplyTo }));
    }
    let newest_first: Vec<String> = mail.references.iter().rev().cloned().collect();
    if let Some(o) = outreach::by_message_ids(tx, &newest_first).await? {
        return Ok(Some(Match { outreach: o, rule: Rule::References }));
    }
    Ok(None)
}
