//! Bounces and feedback-loop complaints: recognised from the report parts (RFC 3464 and
//! RFC 6533 delivery-status, RFC 5965 feedback-report) or, for the many MTAs that write
//! their own notices, from sender, subject and body together. Each verdict says how sure
//! the address is dead (hard) or only failed this time (soft), and why.
//!
//! `read` runs while the parsed message is alive (from `parse::signals`) and reports the
//! recipients matching uses (the reported Message-IDs are parsing's); `classify` turns its verdict into a
//! `Classification`. The work is bounded: the first parts, the first KBs of each.
//!
//! How `read` reads a message, cheapest first:
//! 1. Headers, sender and subject only (the tables in `notices`) and the parts' types
//!    (`dsn::report_parts`): most mail is no report and stops here.
//! 2. One pass over the first parts (`gather`): the structured report parts (`dsn`:
//!    delivery-status records, feedback-report fields, the original's headers) and the
//!    notice text (`notices`: plain text, else HTML stripped, cut before an inline copy
//!    of the original).
//! 3. A complaint (ARF, or a feedback loop's own shape), else a bounce (a delivery-status
//!    report; or, unless a person wrote or forwarded it, a notice from a delivery system,
//!    under a bounce subject, or from an automatic sender with delivery wording; `read`
//!    has the exceptions for vacations and list mail), else none.
//! 4. For a bounce: hard or soft and the status that decided (`severity`), the report's
//!    style (`style`), and the failed recipients (the report's fields first, the notice's
//!    addresses only when those name none).

mod dsn;
mod notices;
mod severity;
mod style;

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::{Message, MessagePart, MimeHeaders};
use regex::Regex;

use self::dsn::{fields, original_headers, records, report_parts};
use self::notices::{
    BOUNCE_SUBJECT, COMPLAINT_SUBJECT, DAEMON_LOCAL, DAEMON_NAME, NOTICE_WORDS, REPLY_SUBJECT,
    add_notice, has_status_structure, notice_recipients, strip_tags,
};
use self::severity::severity;
use self::style::style;
use super::headers::Headers;
use super::normalize_address;

/// Whether the address itself is dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The address does not work: unknown user or domain, disabled or moved mailbox.
    Hard,
    /// Anything else: delays, full mailboxes, size and policy blocks, unsure cases.
    Soft,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hard => "hard",
            Severity::Soft => "soft",
        }
    }
}

/// What `read` decided about a message that is a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Bounce {
        severity: Severity,
        /// The status that decided, e.g. `5.1.1` or `550`; empty when only words did.
        status: String,
        /// The report style recognised, e.g. `delivery-status report`, `exim`.
        style: &'static str,
    },
    Complaint {
        /// The Feedback-Type, or the style for reports without one.
        feedback_type: String,
    },
}

/// One per-recipient block of a delivery-status report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub action: String,
    pub status: String,
    pub final_recipient: Option<String>,
    pub original_recipient: Option<String>,
    pub diagnostic: String,
}

/// Bytes of notice text (the human-readable part of a report) looked at for wording.
const NOTICE_BYTES: usize = 16 * 1024;
/// Parts of a message looked at; reports have three or four.
const MAX_PARTS: usize = 50;
/// Addresses reported; matching looks each one up.
const MAX_RECIPIENTS: usize = 10;

/// Word boundaries in ASCII: a Unicode `\b` keeps the regex engine off its fast path on
/// any non-ASCII text (a Japanese notice, a name with accents), at several times the cost.
/// The phrases bounded are all ASCII.
fn ascii_word(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

fn ascii_words(patterns: &[&str]) -> Vec<String> {
    patterns.iter().map(|p| ascii_word(p)).collect()
}

/// An address in free text: a notice's line or a header value.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+=&'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
        .expect("valid regex")
});

/// What one pass over a message's parts gathered.
#[derive(Default)]
struct Gathered {
    records: Vec<Record>,
    /// A message/delivery-status or message/global-delivery-status part was seen.
    status_part: Option<&'static str>,
    feedback: Vec<(String, String)>,
    /// Human-readable notice text, without any inline copy of the original.
    notice: String,
    /// Headers of the original: attached, as a headers part, or inline after the notice.
    original_to: Vec<String>,
    original_from: Vec<String>,
    original: bool,
}

/// What `read` found: the verdict and the failed (or complained-about) recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub verdict: Verdict,
    pub recipients: Vec<String>,
}

/// What the headers, sender and subject say before any part is read.
struct Envelope {
    from_addr: Option<String>,
    subject: String,
    x_failed: Option<String>,
    auto_sub: Option<String>,
    daemon_sender: bool,
    daemon_name: bool,
    ndr_header: bool,
    ml_server: bool,
    reply_subject: bool,
    bounce_subject: bool,
    automatic_sender: bool,
    /// A person answering on a thread, or forwarding: what they paste is not their bounce.
    human: bool,
}

impl Envelope {
    fn read(msg: &Message<'_>, headers: &Headers) -> Envelope {
        let from = msg.from().and_then(|a| a.first());
        let from_addr = from.and_then(|a| a.address.as_deref()).and_then(normalize_address);
        let from_name = from.and_then(|a| a.name.as_deref()).unwrap_or_default();
        let subject = msg.subject().unwrap_or_default().to_owned();
        let x_failed = headers.get("X-Failed-Recipients").map(str::to_owned);
        let auto_sub = headers
            .get("Auto-Submitted")
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty() && v != "no");
        let null_rp =
            headers.get("Return-Path").is_some_and(|v| v.trim() == "<>" || v.trim().is_empty());
        let daemon_sender = from_addr.as_deref().is_some_and(|a| DAEMON_LOCAL.is_match(a));
        let daemon_name = DAEMON_NAME.is_match(from_name);
        let reply_subject = REPLY_SUBJECT.is_match(&subject);
        let bounce_subject = !reply_subject && BOUNCE_SUBJECT.is_match(subject.trim());
        let ndr_header = headers.get("X-MS-Exchange-Message-Is-Ndr").is_some();
        let ml_server = ["X-MLServer", "X-ML-Server"]
            .iter()
            .any(|h| headers.get(h).is_some_and(|v| v.to_ascii_lowercase().contains("fml")));
        let automatic_sender = daemon_sender
            || daemon_name
            || null_rp
            || x_failed.is_some()
            || ndr_header
            || ml_server
            || auto_sub.as_deref().is_some_and(|v| !v.starts_with("auto-replied"));
        let mailer_daemon = from_addr.as_deref().is_some_and(|a| {
            let a = a.to_ascii_lowercase();
            a.starts_with("mailer-daemon@") || a.starts_with("mailer_daemon@")
        });
        let human = (reply_subject && !mailer_daemon)
            || (!automatic_sender
                && (!msg.in_reply_to().is_empty() || !msg.references().is_empty()));
        Envelope {
            from_addr,
            subject,
            x_failed,
            auto_sub,
            daemon_sender,
            daemon_name,
            ndr_header,
            ml_server,
            reply_subject,
            bounce_subject,
            automatic_sender,
            human,
        }
    }

    /// Whether the message may be a report at all; most mail is not, and only the part
    /// types and headers are looked at for it.
    fn candidate(&self, msg: &Message<'_>, report_type: Option<&str>) -> bool {
        let (status_part, feedback_part) = report_parts(msg);
        report_type.is_some()
            || feedback_part
            || (!self.human
                && (status_part
                    || self.automatic_sender
                    || self.auto_sub.is_some()
                    || self.bounce_subject
                    || COMPLAINT_SUBJECT.is_match(&self.subject)))
    }

    /// Whether a report that is no complaint is a bounce. An RFC 3834 answer (a vacation)
    /// may have a null Return-Path too: it takes a bounce subject or a status code beside
    /// its words to be a bounce.
    fn is_bounce(&self, g: &Gathered, headers: &Headers, formal: bool) -> bool {
        let vacation = self.auto_sub.as_deref().is_some_and(|v| v.starts_with("auto-replied"))
            && !self.daemon_sender
            && self.x_failed.is_none()
            && !self.ndr_header;
        let listed = headers.get("List-Id").is_some() || headers.get("List-Unsubscribe").is_some();
        let words = || NOTICE_WORDS.is_match(&g.notice);
        let structure = || has_status_structure(&g.notice);
        formal
            || (!self.human
                && if self.daemon_sender || self.x_failed.is_some() || self.ndr_header {
                    true
                } else if vacation {
                    self.bounce_subject || (structure() && words())
                } else if listed {
                    // Newsletters and platform mail ("your parcel could not be delivered").
                    false
                } else {
                    (self.automatic_sender || self.bounce_subject)
                        && (self.bounce_subject
                            || (words() && (self.daemon_name || self.ml_server || structure())))
                })
    }
}

/// The brand's side of a report: the bounce's addressees and the original's sender. Their
/// addresses and domains are never where its mail failed.
struct Exclusions {
    addresses: Vec<String>,
    own: Vec<String>,
}

impl Exclusions {
    fn new(msg: &Message<'_>, headers: &Headers, e: &Envelope, g: &Gathered) -> Exclusions {
        let own: Vec<String> = address_list(msg.to())
            .into_iter()
            .chain(address_list(msg.cc()))
            .chain(
                ["Delivered-To", "X-Original-To"]
                    .iter()
                    .filter_map(|h| headers.get(h).and_then(normalize_address)),
            )
            .chain(g.original_from.iter().cloned())
            .filter(|a| e.from_addr.as_ref() != Some(a))
            .collect();
        let addresses = e
            .from_addr
            .iter()
            .cloned()
            .chain(headers.get("Return-Path").and_then(normalize_address))
            .chain(own.iter().cloned())
            .collect();
        Exclusions { addresses, own }
    }

    /// Adds failed recipients to `to`, leaving out delivery systems, the excluded
    /// addresses and every address at the brand's own domains: a bounce reports where the
    /// brand's mail failed, never the brand.
    fn push(&self, to: &mut Vec<String>, found: Vec<String>) {
        let own: Vec<&str> =
            self.own.iter().filter_map(|a| a.rsplit_once('@').map(|(_, d)| d)).collect();
        for r in found {
            if r.rsplit_once('@').is_some_and(|(_, d)| own.contains(&d)) {
                continue;
            }
            if to.len() >= MAX_RECIPIENTS {
                break;
            }
            let daemon = DAEMON_LOCAL.is_match(&r);
            if !daemon && !self.addresses.contains(&r) && !to.contains(&r) {
                to.push(r);
            }
        }
    }
}

/// Decides whether the message is a bounce or a complaint, and whom it reports.
/// `report_type` is the `multipart/report` type of the root part, if any.
pub fn read(msg: &Message<'_>, headers: &Headers, report_type: Option<&str>) -> Option<Report> {
    let e = Envelope::read(msg, headers);
    if !e.candidate(msg, report_type) {
        return None;
    }
    let g = gather(msg);
    let exclusions = Exclusions::new(msg, headers, &e, &g);
    let mut recipients = Vec::new();

    // Complaints: ARF, or a feedback loop's own shape with the original attached.
    let arf = report_type == Some("feedback-report") || !g.feedback.is_empty();
    let jmrp = g.original && COMPLAINT_SUBJECT.is_match(&e.subject) && !e.reply_subject;
    if arf || jmrp {
        let field = |n: &'static str| {
            g.feedback.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v)
        };
        let mut rcpts: Vec<String> = field("Original-Rcpt-To")
            .chain(field("Removal-Recipient"))
            .filter_map(|v| normalize_address(v.rsplit(';').next().unwrap_or(v)))
            .collect();
        rcpts.extend(g.original_to.iter().cloned());
        exclusions.push(&mut recipients, rcpts);
        let feedback_type = field("Feedback-Type")
            .next()
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| if arf { "arf" } else { "jmrp" }.to_owned());
        let verdict = Verdict::Complaint { feedback_type: clean_token(&feedback_type) };
        return Some(Report { verdict, recipients });
    }

    let formal = report_type == Some("delivery-status") || (g.status_part.is_some() && !e.human);
    if !e.is_bounce(&g, headers, formal) {
        return None;
    }
    let style = style(msg, headers, report_type, &g, formal);
    let lower_subject = e.subject.to_ascii_lowercase();
    let delayed_subject = lower_subject.contains("delay") || lower_subject.contains("warning");
    let (severity, status) = severity(&g, delayed_subject);

    // Failed recipients: the report's own fields first, then the notice's words.
    let mut rcpts: Vec<String> = Vec::new();
    for r in g.records.iter().filter(|r| !r.action.eq_ignore_ascii_case("delivered")) {
        rcpts.extend(r.final_recipient.iter().cloned());
        rcpts.extend(r.original_recipient.iter().cloned());
    }
    if let Some(v) = &e.x_failed {
        rcpts.extend(v.split(',').filter_map(normalize_address));
    }
    exclusions.push(&mut recipients, rcpts);
    // The notice's addresses only when the report's fields named none.
    if recipients.is_empty() {
        let mut rcpts = notice_recipients(&g.notice);
        rcpts.extend(g.original_to.iter().cloned());
        exclusions.push(&mut recipients, rcpts);
    }
    Some(Report { verdict: Verdict::Bounce { severity, status, style }, recipients })
}

/// The classification a verdict makes.
pub fn classification(v: &Verdict) -> super::Classification {
    match v {
        Verdict::Bounce { severity, status, style } => {
            let code = if status.is_empty() { String::new() } else { format!(" {status}") };
            super::Classification {
                kind: super::Kind::Bounce,
                reason: format!("bounce ({}{code}): {style}", severity.as_str()),
                opt_out: false,
                bounce: Some(*severity),
            }
        }
        Verdict::Complaint { feedback_type } => super::Classification::new(
            super::Kind::Complaint,
            format!("complaint ({feedback_type}): feedback report"),
        ),
    }
}

fn address_list(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address.as_deref())
        .filter_map(normalize_address)
        .collect()
}

/// Letters, digits and a few marks only: reasons are shown and stored.
fn clean_token(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(40).collect()
}

/// Walks the first parts once: report fields, notice text, the original's headers.
fn gather(msg: &Message<'_>) -> Gathered {
    let mut g = Gathered::default();
    let mut html = String::new();
    for part in msg.parts.iter().take(MAX_PARTS) {
        let (ctype, subtype) = part
            .content_type()
            .map(|ct| {
                (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                g.status_part.get_or_insert(if subtype == "delivery-status" {
                    "delivery-status report"
                } else {
                    "global delivery-status report"
                });
                g.records.extend(records(&head(part)));
            }
            ("message", "feedback-report") => g.feedback.extend(fields(&head(part))),
            ("message", "rfc822" | "global")
            | ("text", "rfc822-headers")
            | ("message", "global-headers") => {
                g.original = true;
                match part.message() {
                    Some(inner) => {
                        g.original_to.extend(address_list(inner.to()));
                        g.original_from.extend(
                            address_list(inner.from())
                                .into_iter()
                                .chain(inner.return_address().and_then(normalize_address)),
                        );
                    }
                    None => original_headers(&head(part), &mut g),
                }
            }
            ("text", "plain") if g.notice.len() < NOTICE_BYTES && part.is_text() => {
                add_notice(&mut g, &head(part));
            }
            ("text", "html") if html.len() < NOTICE_BYTES => html.push_str(&head(part)),
            _ => {}
        }
    }
    if g.notice.trim().is_empty() && !html.is_empty() {
        let text = strip_tags(&html);
        add_notice(&mut g, &text);
    }
    g
}

/// The first bytes of a part, as text; borrowed when the part is text already.
fn head<'a>(part: &'a MessagePart<'_>) -> Cow<'a, str> {
    const PART_BYTES: usize = NOTICE_BYTES * 4;
    match part.text_contents() {
        Some(text) => Cow::Borrowed(&text[..floor_char(text, PART_BYTES)]),
        None => {
            let c = part.contents();
            String::from_utf8_lossy(&c[..c.len().min(PART_BYTES)])
        }
    }
}

/// The largest char boundary at or below `at`.
fn floor_char(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::Severity::{self, Hard, Soft};
    use crate::mail::{ClassifyRules, Kind, classify::classify, parse};

    fn rules() -> ClassifyRules {
        ClassifyRules { own_addresses: vec!["partners@brand.example".into()] }
    }

    /// Kind, severity, reported ids and recipients of a message written with `\n` endings.
    fn read(raw: &str) -> (Kind, Option<Severity>, Vec<String>, Vec<String>) {
        let mail = parse(raw.replace('\n', "\r\n").as_bytes());
        let c = classify(&mail, &rules());
        assert_eq!(c.kind == Kind::Bounce, c.bounce.is_some(), "{}", c.reason);
        let s = mail.signals;
        (c.kind, c.bounce, s.reported_message_ids, s.reported_recipients)
    }

    const ORIGINAL: &str = "From: Brand <partners@brand.example>
To: kim@shop.example
Subject: Hello Kim
Message-ID: <pitch-17@brand.example>
Date: Mon, 2 Nov 2026 09:00:00 +0000

Hi Kim, a short pitch.
";

    fn dsn(status: &str, action: &str, diagnostic: &str) -> String {
        format!(
            "Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.shop.example>
To: partners@brand.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.shop.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"

--b1
Content-Type: text/plain

We were not able to hand your mail to one of its recipients.

--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.shop.example

Final-Recipient: rfc822; Kim@Shop.example
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--b1
Content-Type: message/rfc822

{ORIGINAL}
--b1--
"
        )
    }

    #[test]
    fn rfc3464_reports_per_recipient() {
        let ids = vec!["pitch-17@brand.example".to_owned()];
        let kim = vec!["kim@shop.example".to_owned()];
        let r = read(&dsn("5.1.1", "failed", "550 5.1.1 <kim@shop.example>: unknown user"));
        assert_eq!(r, (Kind::Bounce, Some(Hard), ids.clone(), kim.clone()));
        // Generic status, the diagnostic decides.
        let r = read(&dsn("5.0.0", "failed", "550 sorry, that account has been disabled"));
        assert_eq!(r.1, Some(Hard));
        let r = read(&dsn("4.4.1", "delayed", "connect to mx.shop.example: timed out"));
        assert_eq!((r.0, r.1), (Kind::Bounce, Some(Soft)));
        let r = read(&dsn("5.2.2", "failed", "552 5.2.2 mailbox full"));
        assert_eq!(r.1, Some(Soft));
        let r =
            read(&dsn("5.0.0", "failed", "552 user is over quota, user unknown is not the case"));
        assert_eq!(r.1, Some(Soft));
        let r = read(&dsn("5.7.1", "failed", "554 5.7.1 listed at a block list"));
        assert_eq!(r.1, Some(Soft));
        let r = read(&dsn("5.4.4", "failed", "Host or domain name not found"));
        assert_eq!(r, (Kind::Bounce, Some(Hard), ids, kim));
    }

    #[test]
    fn rfc6533_global_report_with_global_headers() {
        let raw = "From: postmaster@mx.example.jp
To: partners@brand.example
Subject: Delivery Status Notification (Failure)
Content-Type: multipart/report; report-type=delivery-status; boundary=g

--g
Content-Type: text/plain; charset=utf-8

配信できませんでした。

--g
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.jp

Original-Recipient: utf-8; ユキ@example.jp
Final-Recipient: utf-8; yuki@example.jp
Action: failed
Status: 5.1.1

--g
Content-Type: message/global-headers

From: partners@brand.example
To: yuki@example.jp
Message-ID: <pitch-jp@brand.example>

--g--
";
        let (kind, sev, ids, rcpts) = read(raw);
        assert_eq!((kind, sev), (Kind::Bounce, Some(Hard)));
        assert_eq!(ids, ["pitch-jp@brand.example"]);
        assert_eq!(rcpts[0], "yuki@example.jp");
        assert!(!rcpts.iter().any(|r| r.contains("brand.example")));
    }

    #[test]
    fn exim_text_with_inline_copy() {
        let raw = format!(
            "Return-path: <>
X-Failed-Recipients: kim@shop.example
Auto-Submitted: auto-replied
From: Mail Delivery System <Mailer-Daemon@relay.example>
To: partners@brand.example
Subject: Mail delivery failed: returning message to sender

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  kim@shop.example
    host mx.shop.example said: 550 No such user here

------ This is a copy of the message, including all the headers. ------

{ORIGINAL}"
        );
        let (kind, sev, ids, rcpts) = read(&raw);
        assert_eq!((kind, sev), (Kind::Bounce, Some(Hard)));
        assert_eq!(ids, ["pitch-17@brand.example"]);
        assert_eq!(rcpts, ["kim@shop.example"]);
    }

    #[test]
    fn qmail_and_exchange_notices() {
        let qmail = "From: MAILER-DAEMON@mail.shop.example
To: partners@brand.example
Subject: failure notice

Hi. This is the qmail-send program at mail.shop.example.
I'm afraid I wasn't able to deliver your message to the following addresses.

<kim@shop.example>:
Remote host said: 552 sorry, mailbox is over its storage limit
";
        let (kind, sev, _, rcpts) = read(qmail);
        assert_eq!((kind, sev), (Kind::Bounce, Some(Soft)));
        assert_eq!(rcpts, ["kim@shop.example"]);

        let exchange = "From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@shop.example>
To: partners@brand.example
Subject: Undeliverable: Hello Kim
Auto-Submitted: auto-replied

Delivery has failed to these recipients or groups:

kim@shop.example
The e-mail address you entered couldn't be found.

Diagnostic information for administrators:

Generating server: EX01.shop.example
kim@shop.example
Remote Server returned '550 5.1.10 RESOLVER.ADR.RecipientNotFound; not found'
";
        let (kind, sev, _, rcpts) = read(exchange);
        assert_eq!((kind, sev), (Kind::Bounce, Some(Hard)));
        assert_eq!(rcpts, ["kim@shop.example"]);
    }

    #[test]
    fn japanese_carrier_wording_without_a_code() {
        let raw = "From: MAILER-DAEMON@ezweb.example
To: partners@brand.example
Subject: 送信エラー
Content-Type: text/plain; charset=utf-8

次の宛先は存在しないため、お届けできませんでした。
  宛先: <taro@ezweb.example>
";
        let (kind, sev, _, rcpts) = read(raw);
        assert_eq!((kind, sev), (Kind::Bounce, Some(Hard)));
        assert_eq!(rcpts, ["taro@ezweb.example"]);
        let full = raw.replace("存在しないため", "メールボックスの容量がいっぱいのため");
        assert_eq!(read(&full).1, Some(Soft));
    }

    #[test]
    fn arf_is_a_complaint() {
        let raw = format!(
            "From: feedback@fbl.mailbox.example
To: partners@brand.example
Subject: Abuse report
Content-Type: multipart/report; report-type=feedback-report; boundary=f

--f
Content-Type: text/plain

A user marked this message as spam.

--f
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: <kim@shop.example>

--f
Content-Type: message/rfc822

{ORIGINAL}
--f--
"
        );
        let (kind, sev, ids, rcpts) = read(&raw);
        assert_eq!((kind, sev), (Kind::Complaint, None));
        assert_eq!(ids, ["pitch-17@brand.example"]);
        assert_eq!(rcpts, ["kim@shop.example"]);
    }

    #[test]
    fn vacations_with_a_null_return_path_are_auto_replies() {
        let sieve = "Return-Path: <>
From: Kim <kim@shop.example>
To: partners@brand.example
Subject: Away
In-Reply-To: <pitch-17@brand.example>
Auto-Submitted: auto-replied (vacation)

I am away until the 9th; mail will not be delivered to my phone and
cannot be delivered to my assistant either. Back soon.
";
        assert_eq!(read(sieve).0, Kind::AutoReply);
        // No thread, a subject that names a failure, a vendor header: still a vacation.
        let vendor = "Return-Path: <>
From: kim@shop.example
To: partners@brand.example
Subject: Automatic reply: Hello Kim
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All

Thanks for your message. I could not reply in person: I am out of office
and your mail could not be delivered to my team while I am away.
";
        assert_eq!(read(vendor).0, Kind::AutoReply);
    }

    #[test]
    fn a_person_quoting_a_bounce_is_a_reply() {
        let pasted = "From: Kim <kim@shop.example>
To: partners@brand.example
Subject: Re: Hello Kim
In-Reply-To: <pitch-17@brand.example>

Your first mail did not reach my old address, here is what I got back:

> Delivery to the following recipient failed permanently:
>     kim@old.example
> 550 5.1.1 The email account that you tried to reach does not exist.

Anyway, I am interested!
";
        assert_eq!(read(pasted).0, Kind::Reply);
        let forwarded = "From: Kim <kim@shop.example>
To: partners@brand.example
Subject: Fwd: Undelivered Mail Returned to Sender

FYI, see below.

---------- Forwarded message ---------
From: MAILER-DAEMON@mx.shop.example
Subject: Undelivered Mail Returned to Sender

This is the mail system at host mx.shop.example.
<kim@old.example>: host said: 550 5.1.1 user unknown
";
        assert_eq!(read(forwarded).0, Kind::Reply);
    }

    #[test]
    fn automatic_mail_that_is_no_report() {
        let parcel = "From: Parcels <noreply@parcels.example>
To: partners@brand.example
Subject: Your parcel is on its way
Auto-Submitted: auto-generated

We tried today, but your parcel could not be delivered. We will retry tomorrow.
";
        assert_eq!(read(parcel).0, Kind::AutoReply);
        let digest = "From: Platform <noreply@platform.example>
To: partners@brand.example
Subject: Delivery report for your campaign
List-Unsubscribe: <mailto:unsub@platform.example>

3 messages could not be delivered this week: 550 5.1.1 for one address.
";
        assert_eq!(read(digest).0, Kind::Bulk);
    }
}
