//! Tells human answers apart from automatic mail. Every decision carries its reason, so an
//! operator can see why a message did or did not become a collaboration.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

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

/// Phrases that ask for no more mail at all: a decline that is also a global opt-out.
static OPT_OUT_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bremove\s+(?:me|us|my\s+(?:e-?mail|address))\b",
        r"(?i)\bunsubscribe\b",
        r"(?i)\bplease\s+(?:stop|don(?:'|’)?t)\s+(?:e-?mailing|contacting|writing)\b",
        r"(?i)\bstop\s+(?:e-?mailing|contacting)\s+me\b",
        r"(?i)\b(?:désinscri|desinscri|abmelden|austragen|darme\s+de\s+baja)",
    ])
    .expect("valid opt-out patterns")
});

/// Phrases that say "no" in the new text of a reply. A table: English first, then German,
/// French, Spanish, Italian, Portuguese, Dutch.
static DECLINE_PATTERNS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        r"(?i)\bnot\s+(?:really\s+)?interested\b",
        r"(?i)\bno,?\s+thanks?\b",
        r"(?i)\bno\s+thank\s+you\b",
        r"(?i)\bi(?:'|’)?ll\s+(?:have\s+to\s+)?pass\b",
        r"(?i)\bi\s+will\s+(?:have\s+to\s+)?pass\b",
        r"(?i)\b(?:going\s+to|gonna|have\s+to|must|will)\s+decline\b",
        r"(?i)\bnot\s+(?:a\s+)?(?:good\s+|great\s+|right\s+)?fit\b",
        r"(?i)\bnot\s+(?:taking|accepting)\s+(?:on\s+)?(?:any\s+)?(?:new\s+)?(?:brand\s+)?(?:deals|collaborations|collabs|partnerships|sponsorships)\b",
        r"(?i)\bkein\s+interesse\b",
        r"(?i)\bnein,?\s+danke\b",
        r"(?i)\bpas\s+intéressée?s?\b",
        r"(?i)\bnon,?\s+merci\b",
        r"(?i)\bno\s+(?:me\s+)?interesa\b",
        r"(?i)\bno\s+estoy\s+interesad[oa]\b",
        r"(?i)\bnon\s+(?:sono\s+)?interessat[oa]\b",
        r"(?i)\bnão\s+(?:tenho\s+)?interess(?:e|ad[oa])\b",
        r"(?i)\bgeen\s+interesse\b",
    ])
    .expect("valid decline patterns")
});

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

    if let Some(i) = OPT_OUT_PATTERNS.matches(&mail.reply_text).iter().next() {
        return Classification {
            kind: Kind::Decline,
            reason: format!("new text asks to opt out: {:?}", OPT_OUT_PATTERNS.patterns()[i]),
            opt_out: true,
        };
    }
    if let Some(i) = DECLINE_PATTERNS.matches(&mail.reply_text).iter().next() {
        return Classification::new(
            Kind::Decline,
            format!("new text matches decline pattern {:?}", DECLINE_PATTERNS.patterns()[i]),
        );
    }
    Classification::new(Kind::Reply, "human message")
}

fn is_auto_subject(subject: Option<&str>) -> bool {
    let Some(subject) = subject else { return false };
    let lower = subject.trim_start().to_lowercase();
    AUTO_SUBJECT_PREFIXES.iter().any(|p| lower.starts_with(p))
}
