//! Tells human answers apart from automatic mail. Every decision carries its reason, so an
//! operator can see why a message did or did not become a collaboration.

use super::ParsedMail;
use super::bounce::{self, Severity};

/// What an inbound message is. Stored as text in `inbound_messages.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A human answer from the creator or someone on their behalf.
    Reply,
    /// Out-of-office and other automatic answers (RFC 3834 and vendor headers).
    AutoReply,
    /// A delivery-status notification about an outreach message.
    Bounce,
    /// A feedback-loop report (ARF): the recipient marked the outreach as spam.
    Complaint,
    /// A human answer that says no.
    Decline,
    /// Newsletters and list mail.
    Bulk,
    /// A human message that maps to no creator or outreach.
    Unmatched,
    /// Sent by the brand itself; ignored, which also prevents loops.
    Own,
    /// Not downloaded: over the size limit.
    Skipped,
}

impl Kind {
    /// The database spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Reply => "reply",
            Kind::AutoReply => "auto_reply",
            Kind::Bounce => "bounce",
            Kind::Complaint => "complaint",
            Kind::Decline => "decline",
            Kind::Bulk => "bulk",
            Kind::Unmatched => "unmatched",
            Kind::Own => "own",
            Kind::Skipped => "skipped",
        }
    }

    /// Whether a person wrote it, so it is worth matching to a creator.
    pub fn is_human(self) -> bool {
        matches!(self, Kind::Reply | Kind::Decline)
    }
}

/// A kind with the reason that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    pub reason: String,
    /// A decline that asks for no more mail at all ("remove me", "unsubscribe").
    pub opt_out: bool,
    /// How dead the address is; set for every `Kind::Bounce` and only for it.
    pub bounce: Option<Severity>,
}

impl Classification {
    /// A bounce that says the address does not work; only these mark outreach bounced.
    pub fn is_hard_bounce(&self) -> bool {
        self.kind == Kind::Bounce && self.bounce == Some(Severity::Hard)
    }

    /// A classification that is not an opt-out.
    pub fn new(kind: Kind, reason: impl Into<String>) -> Self {
        Classification { kind, reason: reason.into(), opt_out: false, bounce: None }
    }
}

/// Deployment facts the classifier needs.
#[derive(Debug, Clone, Default)]
pub struct ClassifyRules {
    /// The brand's own addresses, normalised.
    pub own_addresses: Vec<String>,
}

/// Subject prefixes of automatic answers. A table: add a language by adding a line.
const AUTO_SUBJECT_PREFIXES: &[&str] = &[
    "auto:",
    "automatic reply:",
    "autoreply:",
    "auto-reply:",
    "auto reply:",
    "out of office:",
    "out of office reply:",
    "out of the office:",
    "abwesenheitsnotiz:",
    "automatische antwort:",
    "réponse automatique :",
    "réponse automatique:",
    "absence :",
    "fuera de la oficina:",
    "respuesta automática:",
    "risposta automatica:",
    "fuori sede:",
    "resposta automática:",
    "automatisch antwoord:",
    "afwezig:",
];

/// Classifies a parsed mail. `Unmatched` is decided later, by matching; a human message
/// comes out of here as `Reply` or `Decline`.
pub fn classify(mail: &ParsedMail, rules: &ClassifyRules) -> Classification {
    let s = &mail.signals;
    if let Some(from) = &mail.from_address
        && rules.own_addresses.iter().any(|a| a == from)
    {
        return Classification::new(Kind::Own, format!("sent from the brand's own address {from}"));
    }

    // Bounces and complaints first: a DSN may also carry Auto-Submitted. `bounce::read`
    // decided while parsing; a vacation with a null Return-Path is not one.
    if let Some(verdict) = &s.verdict {
        return bounce::classification(verdict);
    }

    // A list's or platform's own automatic mail (auto-generated, with list headers) is bulk;
    // an answer to the brand's mail (auto-replied) is an auto reply even when sent as bulk.
    let listed = s.header("List-Id").is_some()
        || s.header("List-Unsubscribe").is_some()
        || s.header("Precedence").is_some_and(|p| p.trim().eq_ignore_ascii_case("list"));
    if let Some(v) = s.header("Auto-Submitted")
        && !v.trim().eq_ignore_ascii_case("no")
        && (!listed || v.trim().to_ascii_lowercase().starts_with("auto-replied"))
    {
        return Classification::new(Kind::AutoReply, format!("Auto-Submitted: {v}"));
    }
    for h in ["X-Autoreply", "X-Autorespond", "X-Autoresponder"] {
        if s.header(h).is_some() {
            return Classification::new(Kind::AutoReply, format!("{h} header"));
        }
    }
    if let Some(v) = s.header("X-Auto-Response-Suppress") {
        return Classification::new(Kind::AutoReply, format!("X-Auto-Response-Suppress: {v}"));
    }
    if let Some(v) = s.header("Precedence") {
        let p = v.trim().to_ascii_lowercase();
        if p == "auto_reply" {
            return Classification::new(Kind::AutoReply, "Precedence: auto_reply");
        }
        if p == "bulk" || p == "junk" || p == "list" {
            return Classification::new(Kind::Bulk, format!("Precedence: {p}"));
        }
    }
    if is_auto_subject(mail.subject.as_deref()) {
        return Classification::new(
            Kind::AutoReply,
            format!("subject {:?}", mail.subject.as_deref().unwrap_or_default()),
        );
    }
    for h in ["List-Id", "List-Unsubscribe"] {
        if s.header(h).is_some() {
            return Classification::new(Kind::Bulk, format!("{h} header"));
        }
    }

    human(mail)
}

/// The reading of a message already known to be human: a decline (or opt-out) when its
/// new text says no, a reply otherwise. Ingest and the re-match of stored messages
/// (`ingest::rematch`) both decide here.
pub fn human(mail: &ParsedMail) -> Classification {
    if let Some(decline) = super::decline::read(&mail.reply_text, mail.reply_unsure.as_deref()) {
        return decline;
    }
    Classification::new(Kind::Reply, "human message")
}

fn is_auto_subject(subject: Option<&str>) -> bool {
    let Some(subject) = subject else { return false };
    let lower = subject.trim_start().to_lowercase();
    AUTO_SUBJECT_PREFIXES.iter().any(|p| lower.starts_with(p))
}
