//! Tells human answers apart from automatic mail. Every decision carries its reason, so an
//! operator can see why a message did or did not become a collaboration.

use std::sync::LazyLock;

use regex::Regex;

use super::ParsedMail;

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
}

impl Classification {
    /// A bounce that says the address does not work; only these mark outreach bounced.
    pub fn is_hard_bounce(&self) -> bool {
        self.kind == Kind::Bounce // TODO(bounce branch): severity
    }

    /// A classification that is not an opt-out.
    pub fn new(kind: Kind, reason: impl Into<String>) -> Self {
        Classification { kind, reason: reason.into(), opt_out: false }
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

static MAILER_DAEMON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@").expect("valid regex")
});

/// Classifies a parsed mail. `Unmatched` is decided later, by matching; a human message
/// comes out of here as `Reply` or `Decline`.
pub fn classify(mail: &ParsedMail, rules: &ClassifyRules) -> Classification {
    let s = &mail.signals;
    if let Some(from) = &mail.from_address
        && rules.own_addresses.iter().any(|a| a == from)
    {
        return Classification::new(Kind::Own, format!("sent from the brand's own address {from}"));
    }

    // Bounces first: a DSN may also carry Auto-Submitted.
    if s.report_type.as_deref() == Some("delivery-status") {
        return Classification::new(Kind::Bounce, "multipart/report; report-type=delivery-status");
    }
    if let Some(from) = &mail.from_address
        && MAILER_DAEMON.is_match(from)
    {
        return Classification::new(Kind::Bounce, format!("sender {from}"));
    }
    if s.header("Return-Path").is_some_and(|v| v.trim() == "<>")
        && s.header("Auto-Submitted").is_some()
    {
        return Classification::new(Kind::Bounce, "null Return-Path <> with Auto-Submitted");
    }

    if let Some(v) = s.header("Auto-Submitted")
        && !v.trim().eq_ignore_ascii_case("no")
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
