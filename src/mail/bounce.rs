//! Bounces and feedback-loop complaints: recognised from the report parts (RFC 3464 and
//! RFC 6533 delivery-status, RFC 5965 feedback-report) or, for the many MTAs that write
//! their own notices, from sender, subject and body together. Each verdict says how sure
//! the address is dead (hard) or only failed this time (soft), and why.
//!
//! `read` runs while the parsed message is alive (from `parse::signals`) and fills the
//! reported recipients and Message-IDs matching uses; `classify` turns its verdict into a
//! `Classification`. The work is bounded: the first parts, the first KBs of each.

use std::borrow::Cow;
use std::sync::LazyLock;

use mail_parser::{Message, MessagePart, MimeHeaders};
use regex::{Regex, RegexSet};

use super::normalize_address;
use super::parse::Signals;

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

/// Senders that are delivery systems by their local part.
static DAEMON_LOCAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:mailer-daemon|mailer_daemon|mailerdaemon|mail-daemon|postmaster|mdaemon|double-bounce|bounces?|bounce[-+.][^@]*|mail-?delivery[^@]*|mailadmin|ndr|dsn|undeliverable|nobody)@",
    )
    .expect("valid regex")
});

/// Display names delivery systems and gateways use.
static DAEMON_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&ascii_word(
        r"(?i)\b(?:mail(?:er)?[- ]?daemon|mail delivery (?:system|subsystem|service|agent)|mail administrator|mail system|postmaster|microsoft outlook|delivery status notification|mail ?gateway|mailer)\b|メール配信|システム管理者",
    ))
    .expect("valid regex")
});

/// Subjects of bounces, anchored at the start (after optional brackets), in the languages
/// the MTAs and carriers use. A table: add a line for a new style.
static BOUNCE_SUBJECT: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(ascii_words(&[
        r"(?i)^\W*undeliver(?:able|ed)\b",
        r"(?i)^\W*undelivered mail\b",
        r"(?i)^\W*returned mail\b",
        r"(?i)^\W*return(?:ed)? to sender\b",
        r"(?i)^\W*mail delivery (?:failed|failure|error|problem|notification)",
        r"(?i)^\W*(?:message )?delivery (?:status notification|failure|failed|error|notification|report|problem|delayed|has failed)",
        r"(?i)^\W*delivery status",
        r"(?i)^\W*failure notice\b",
        r"(?i)^\W*(?:message|mail) (?:not delivered|could not be delivered|undeliverable|delivery failed|status - undeliverable)",
        r"(?i)^\W*(?:non[- ]?delivery|ndr)\b",
        r"(?i)^\W*delayed mail\b",
        r"(?i)^\W*warning: (?:could not send|message .*delayed|delayed)",
        r"(?i)^\W*(?:mail )?system error\b",
        r"(?i)^\W*could not send message",
        r"(?i)^\W*(?:delivery )?notification: delivery has failed",
        r"(?i)^\W*error sending (?:mail|message)",
        r"(?i)^\W*dsn\b",
        r"(?i)^\W*bounced? (?:e-?mail|mail|message)",
        r"(?i)^\W*(?:hard|soft) bounce\b",
        r"(?i)^\W*your (?:message|mail|e-?mail) to [ -~]{1,200}? (?:was not|wasn't|could not be|couldn't be|has not been) delivered",
        r"(?i)^\W*fml (?:system error|status report)",
        r"(?i)^\W*(?:unzustellbar|nicht zustellbar)",
        r"(?i)^\W*non remis\b",
        r"(?i)^\W*no se puede entregar",
        r"(?i)^\W*non recapitabile",
        r"(?i)^\W*onbestelbaar",
        r"(?i)^\W*(?:não é possível entregar|nao e possivel entregar|não entregue)",
        r"(?i)^\W*(?:olevererbart|kan ikke leveres|ikke leveret|toimittamaton|niedostarczalne|nedoručitelné|nedoručiteľné|kézbesíthetetlen|teslim edilemedi|недоставляем|не доставлено|無法傳遞|无法投递|전달되지 않음|배달되지 않음)",
        r"^\W*(?:配信不能|配信エラー|配送エラー|不達|未配達|送信エラー|返送|エラーメール|メール(?:配信|送信|配送)(?:エラー|失敗|不能)|メールを配信できません|送信できませんでした|宛先不明)",
    ]))
    .expect("valid bounce subjects")
});

/// Subject prefixes a person adds when answering or forwarding.
static REPLY_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:re|fw|fwd|aw|wg|tr|sv|vs|rv|ref|antw|odp|r)\s*(?:\[\d+\])?\s*[:：]")
        .expect("valid regex")
});

/// Complaint subjects of feedback loops that do not send ARF (Outlook.com JMRP style).
static COMPLAINT_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(?:complaint about message|abuse report|spam report|feedback report|email feedback report)")
        .expect("valid regex")
});

/// Wording of delivery notices: any one, with an automatic sender or a bounce subject,
/// makes a bounce.
static NOTICE_WORDS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(ascii_words(&[
        r"(?i)\b(?:could ?n[o']t|was ?n[o']t|can ?n[o']t|has ?n[o']t|cannot|not) (?:yet )?be(?:en)? delivered\b",
        r"(?i)\b(?:couldn't|could not|was not|wasn't) (?:be )?deliver",
        r"(?i)\bundeliverable\b",
        r"(?i)\bdelivery (?:has |to [ -~]{1,200}? )?(?:failed|been delayed)\b",
        r"(?i)\bdelivery to the following recipients? (?:failed|has been delayed)",
        r"(?i)\bpermanent(?:ly)? (?:error|fatal|failure|failed)",
        r"(?i)\btranscript of (?:the )?session follows",
        r"(?i)\bremote host said\b",
        r"(?i)\bthis is the mail system at\b",
        r"(?i)\bqmail-send program\b",
        r"(?i)\b(?:unable|failed) to deliver\b",
        r"(?i)\bcould not deliver\b",
        r"(?i)\bfollowing (?:address(?:\(es\)|es)?|recipients?) (?:failed|had permanent fatal errors|could not be reached|cannot be reached)",
        r"(?i)\bmail delivery (?:failed|software|subsystem|system)\b",
        r"(?i)\bnon-?delivery (?:report|notification)\b",
        r"(?i)\bdiagnostic information for administrators\b",
        r"(?i)\b(?:will (?:be )?retr(?:y|ied)|still (?:trying|being retried))\b",
        r"(?i)\bnot yet been delivered\b",
        r"(?i)\b(?:message|mail) (?:was|has been) (?:rejected|blocked|returned|bounced|not distributed)\b",
        r"(?i)\b(?:message|mail|e-?mail)(?: you sent)?(?: [A-Za-z0-9_ ,.()\x22-]{0,80})? bounced\b",
        r"(?i)\breturned to sender\b",
        r"(?i)\b(?:konnte nicht zugestellt|nicht zugestellt werden)",
        r"(?i)\bn'a pas pu être (?:remis|distribué)",
        r"(?i)\bno (?:se )?pud[oe] (?:ser )?entregar",
        r"(?i)\bnon è stato (?:possibile )?recapitat",
        r"(?i)\bnão (?:pôde|foi possível) (?:ser )?entreg",
        r"配信(?:でき|され)(?:ません|なかった)|送信(?:でき|され)(?:ません|なかった)|届(?:きません|けられません|かなかった)|配送(?:でき|され)(?:ません|なかった)|宛先不明|エラーにより",
    ]))
    .expect("valid notice words")
});

/// Words saying the address itself is dead. Strong: they decide against a generic status.
static HARD_WORDS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(ascii_words(&[
        r"(?i)\b(?:user|recipient|mailbox|address|account|addressee)(?: name)? (?:is )?(?:unknown|not found|not known|invalid|does ?n[o']t exist|doesn't exist|not exist)",
        r"(?i)\bunknown (?:user|recipient|mailbox|address|account|local[- ]part|e-?mail)",
        r"(?i)\bno such (?:user|recipient|mailbox|address|account|person|local user|domain|host)",
        r"(?i)\b(?:does ?n[o']t|doesn't|did not|didn't) exist\b",
        r"(?i)\bno mailbox (?:here )?by that name\b",
        r"(?i)\bwas ?n[o']t found at\b",
        r"(?i)\b(?:couldn't|could not|can ?not) be found\b",
        r"(?i)\b(?:address|recipient|user)(?: address)? rejected: (?:user unknown|undeliverable address|unknown|not found)",
        r"(?i)\b(?:account|mailbox|address|user)(?: has been| is| was)? (?:disabled|deactivated|suspended|closed|terminated|inactive|expired|discontinued|deleted|locked)",
        r"(?i)\b(?:disabled|deactivated|suspended|closed|inactive|expired) (?:account|mailbox|user)",
        r"(?i)\bhost (?:or domain name )?not found\b",
        r"(?i)\b(?:domain|host) (?:name )?(?:does ?n[o']t exist|not found|unknown|is unknown)",
        r"(?i)\bunknown (?:domain|host)\b",
        r"(?i)\bnxdomain\b",
        r"(?i)\bunrout(?:e)?able (?:address|domain)\b",
        r"(?i)\bnot listed in (?:domino directory|the directory|public name & address book)",
        r"(?i)\bno longer (?:active|valid|available|exists|in use|at this address|with)",
        r"(?i)\b(?:user|recipient|mailbox) (?:has )?moved\b",
        r"(?i)\bnot our customer\b",
        r"(?i)\bbad destination (?:mailbox|system) address\b",
        r"(?i)\binvalid (?:recipient|address|mailbox|user)\b",
        r"(?i)\brecipientnotfound\b",
        r"(?i)\bdestination address (?:was )?unknown\b",
        r"(?i)\bnot a valid (?:user|recipient|mailbox|address)\b",
        r"(?i)\b(?:does ?n[o']t|doesn't|does not) have an? (?:[\w.-]+ )?account\b",
        r"(?i)\bno valid recipients?\b",
        r"(?i)\bno longer accepts?\b",
        r"(?i)\bfollowing recipients did not receive this message\b",
        r"存在しない|存在しません|見つかりません|見つかりませんでした|見つからなかった|宛先不明|宛先(?:が|の)?(?:誤り|間違)|該当(?:する)?(?:ユーザ|アドレス)(?:ー)?(?:が|は)?(?:ありません|いません|存在)|無効(?:な|の)?(?:アドレス|アカウント|ユーザ)|(?:アカウント|アドレス)(?:は|が)?(?:無効|停止|削除|廃止|解約)|登録されていません",
    ]))
    .expect("valid hard words")
});

/// "mailbox unavailable" is hard only beside a 550 (a 450 says it is busy).
static WEAK_HARD_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&ascii_word(r"(?i)\b550\b[ -~]{0,120}?\bmailbox (?:is )?unavailable|\bmailbox (?:is )?unavailable\b[ -~]{0,40}?\b550\b"))
        .expect("valid regex")
});

/// Words of passing or policy failures: a full mailbox, a size limit, a block.
static SOFT_WORDS: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(ascii_words(&[
        r"(?i)\b(?:mailbox|inbox|mail ?box|account|storage|disk|user)(?: is)? (?:full|over quota|overquota)",
        r"(?i)\b(?:over|exceeded|exceeds|exceeding) (?:the |their |his |her |its )?(?:storage |disk |mailbox |mail )?(?:quota|storage|allocation|size limit)",
        r"(?i)\bquota\b",
        r"(?i)\binsufficient (?:system )?storage\b",
        r"(?i)\b(?:message|mail) (?:is )?too (?:large|big)\b",
        r"(?i)\b(?:size|length) (?:limit|exceeded)|exceeds? (?:the )?(?:maximum|max|size)",
        r"(?i)\b(?:spam|junk|blacklist|blocklist|blocked|block list|spamhaus|rbl|dnsbl|reputation|policy|not authorized|unauthenticated|dmarc|spf|dkim|content rejected|refused|(?:sender|spam|content|domain|receiver.s|recipient.s) filter|filtered|only members|not a member|members only)",
        r"(?i)\bgrey ?list|\bgray ?list|\btry (?:again )?later\b|\btemporar(?:y|ily)\b|\bdeferred\b|\bdelayed\b",
        r"(?i)\btime(?:d)? ?out\b|\bconnection (?:refused|reset|lost)\b|\brate limit|\btoo many\b",
        r"容量|いっぱい|一杯|満杯|サイズ(?:が|を)?(?:超|制限)|迷惑メール|拒否",
    ]))
    .expect("valid soft words")
});

static ENHANCED_STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}").expect("valid regex"));
static REPLY_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^A-Za-z0-9_.#-])[245][0-5][0-9](?:[ -]|$)").expect("valid regex")
});
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9][A-Za-z0-9._%+=&'-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
        .expect("valid regex")
});
/// A header line of an inline copy of the original.
static HEADER_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9-]{1,40}:(?:\s|$)").expect("valid regex"));

/// Headers every copy of a mail has, to tell a copy from a notice's `Name: value` lines.
static TYPICAL_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(?:received|return-path|from|to|subject|date|message-id|mime-version|dkim-signature|content-type|reply-to|x-mailer):")
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

/// Reads report facts into `s` and decides whether the message is a bounce or complaint.
/// Fills `s.reported_recipients`; `s.reported_message_ids` is filled by the caller.
pub fn read(msg: &Message<'_>, s: &mut Signals) -> Option<Verdict> {
    let from = msg.from().and_then(|a| a.first());
    let from_addr = from.and_then(|a| a.address.as_deref()).and_then(normalize_address);
    let from_name = from.and_then(|a| a.name.as_deref()).unwrap_or_default();
    let subject = msg.subject().unwrap_or_default();
    let header = |n: &str| s.header(n).map(str::to_owned);

    let report_type = s.report_type.as_deref();
    let x_failed = header("X-Failed-Recipients");
    let auto_sub = header("Auto-Submitted")
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty() && v != "no");
    let null_rp = header("Return-Path").is_some_and(|v| v.trim() == "<>" || v.trim().is_empty());
    let daemon_sender = from_addr.as_deref().is_some_and(|a| DAEMON_LOCAL.is_match(a));
    let daemon_name = DAEMON_NAME.is_match(from_name);
    let reply_subject = REPLY_SUBJECT.is_match(subject);
    let bounce_subject = !reply_subject && BOUNCE_SUBJECT.is_match(subject.trim());
    let ndr_header = header("X-MS-Exchange-Message-Is-Ndr").is_some();
    let ml_server = ["X-MLServer", "X-ML-Server"]
        .iter()
        .any(|h| header(h).is_some_and(|v| v.to_ascii_lowercase().contains("fml")));
    let automatic_sender = daemon_sender
        || daemon_name
        || null_rp
        || x_failed.is_some()
        || ndr_header
        || ml_server
        || auto_sub.as_deref().is_some_and(|v| !v.starts_with("auto-replied"));
    // A person answering on a thread, or forwarding: what they paste is not their bounce.
    let mailer_daemon = from_addr.as_deref().is_some_and(|a| {
        let a = a.to_ascii_lowercase();
        a.starts_with("mailer-daemon@") || a.starts_with("mailer_daemon@")
    });
    let human = (reply_subject && !mailer_daemon)
        || (!automatic_sender && (!msg.in_reply_to().is_empty() || !msg.references().is_empty()));

    // Most mail is neither: only the part types and headers are looked at for it.
    let (status_part, feedback_part) = report_parts(msg);
    let candidate = report_type.is_some()
        || feedback_part
        || (!human
            && (status_part
                || automatic_sender
                || auto_sub.is_some()
                || bounce_subject
                || COMPLAINT_SUBJECT.is_match(subject)));
    if !candidate {
        return None;
    }
    let g = gather(msg);

    // The brand's side: the bounce's addressees and the original's sender. Their domains
    // are the brand's, never where its mail failed.
    let own: Vec<String> = address_list(msg.to())
        .into_iter()
        .chain(address_list(msg.cc()))
        .chain(
            ["Delivered-To", "X-Original-To"]
                .iter()
                .filter_map(|h| header(h).and_then(|v| normalize_address(&v))),
        )
        .chain(g.original_from.iter().cloned())
        .filter(|a| from_addr.as_ref() != Some(a))
        .collect();
    let own_domains: Vec<&str> =
        own.iter().filter_map(|a| a.rsplit_once('@').map(|(_, d)| d)).collect();
    let exclude: Vec<String> = from_addr
        .iter()
        .cloned()
        .chain(header("Return-Path").and_then(|v| normalize_address(&v)))
        .chain(own.iter().cloned())
        .collect();

    // Complaints: ARF, or a feedback loop's own shape with the original attached.
    let arf = report_type == Some("feedback-report") || !g.feedback.is_empty();
    let jmrp = g.original && COMPLAINT_SUBJECT.is_match(subject) && !reply_subject;
    if arf || jmrp {
        let feedback = &g.feedback;
        let field = |n: &'static str| {
            feedback.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v)
        };
        let mut rcpts: Vec<String> = field("Original-Rcpt-To")
            .chain(field("Removal-Recipient"))
            .filter_map(|v| normalize_address(v.rsplit(';').next().unwrap_or(v)))
            .collect();
        rcpts.extend(g.original_to.iter().cloned());
        push_recipients(s, rcpts, &exclude, &own_domains);
        let feedback_type = field("Feedback-Type")
            .next()
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_else(|| if arf { "arf" } else { "jmrp" }.to_owned());
        return Some(Verdict::Complaint { feedback_type: clean_token(&feedback_type) });
    }

    let formal = report_type == Some("delivery-status") || (g.status_part.is_some() && !human);
    // An RFC 3834 answer (a vacation) may have a null Return-Path too: it takes a bounce
    // subject or a status code beside its words to be a bounce.
    let vacation = auto_sub.as_deref().is_some_and(|v| v.starts_with("auto-replied"))
        && !daemon_sender
        && x_failed.is_none()
        && !ndr_header;
    let listed = header("List-Id").is_some() || header("List-Unsubscribe").is_some();
    let words = || NOTICE_WORDS.is_match(&g.notice);
    let structure = || has_status_structure(&g.notice);

    let is_bounce = formal
        || (!human
            && if daemon_sender || x_failed.is_some() || ndr_header {
                true
            } else if vacation {
                bounce_subject || (structure() && words())
            } else if listed {
                // Newsletters and platform mail ("your parcel could not be delivered").
                false
            } else {
                (automatic_sender || bounce_subject)
                    && (bounce_subject || (words() && (daemon_name || ml_server || structure())))
            });
    if !is_bounce {
        return None;
    }

    let style = style(msg, s, &g, formal);
    let delayed_subject = subject.to_ascii_lowercase().contains("delay")
        || subject.to_ascii_lowercase().contains("warning");
    let (severity, status) = severity(&g, delayed_subject);

    // Failed recipients: the report's own fields first, then the notice's words.
    let mut rcpts: Vec<String> = Vec::new();
    for r in g.records.iter().filter(|r| !r.action.eq_ignore_ascii_case("delivered")) {
        rcpts.extend(r.final_recipient.iter().cloned());
        rcpts.extend(r.original_recipient.iter().cloned());
    }
    if let Some(v) = &x_failed {
        rcpts.extend(v.split(',').filter_map(normalize_address));
    }
    push_recipients(s, rcpts, &exclude, &own_domains);
    // The notice's addresses only when the report's fields named none.
    if s.reported_recipients.is_empty() {
        let mut rcpts = notice_recipients(&g.notice);
        rcpts.extend(g.original_to.iter().cloned());
        push_recipients(s, rcpts, &exclude, &own_domains);
    }

    Some(Verdict::Bounce { severity, status, style })
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

/// Adds failed recipients, leaving out delivery systems, the addresses in `exclude` and
/// every address at the brand's own domains (the bounce's addressee's and the original's
/// sender's): a bounce reports where the brand's mail failed, never the brand.
fn push_recipients(s: &mut Signals, found: Vec<String>, exclude: &[String], own: &[&str]) {
    for r in found {
        if r.rsplit_once('@').is_some_and(|(_, d)| own.contains(&d)) {
            continue;
        }
        if s.reported_recipients.len() >= MAX_RECIPIENTS {
            break;
        }
        let daemon = DAEMON_LOCAL.is_match(&r);
        if !daemon && !exclude.contains(&r) && !s.reported_recipients.contains(&r) {
            s.reported_recipients.push(r);
        }
    }
}

/// Letters, digits and a few marks only: reasons are shown and stored.
fn clean_token(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).take(40).collect()
}

/// Whether the first parts hold a delivery-status and a feedback-report part.
fn report_parts(msg: &Message<'_>) -> (bool, bool) {
    let (mut status, mut feedback) = (false, false);
    for part in msg.parts.iter().take(MAX_PARTS) {
        let Some(ct) = part.content_type() else { continue };
        if !ct.ctype().eq_ignore_ascii_case("message") {
            continue;
        }
        let sub = ct.subtype().unwrap_or_default();
        status |= sub.eq_ignore_ascii_case("delivery-status")
            || sub.eq_ignore_ascii_case("global-delivery-status");
        feedback |= sub.eq_ignore_ascii_case("feedback-report");
    }
    (status, feedback)
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

/// Adds text to the notice up to the first inline copy of the original's headers, whose
/// To and From are kept.
fn add_notice(g: &mut Gathered, text: &str) {
    // Only lines the notice can still take, and a few beyond for a header block.
    let mut budget = (NOTICE_BYTES + 4096).saturating_sub(g.notice.len());
    let lines: Vec<&str> = text
        .lines()
        .take(2000)
        .take_while(|l| {
            let keep = budget > 0;
            budget = budget.saturating_sub(l.len() + 1);
            keep
        })
        .collect();
    let mut cut = lines.len();
    let mut i = 0;
    while i < lines.len() {
        // Three header lines in a row (continuations allowed) start a copy of headers.
        let mut j = i;
        let (mut named, mut typical) = (0, 0);
        while j < lines.len()
            && (HEADER_LINE.is_match(lines[j].trim_start_matches('>').trim_start())
                && !lines[j].starts_with(' ')
                || (named > 0 && lines[j].starts_with([' ', '\t']) && !lines[j].trim().is_empty()))
        {
            if !lines[j].starts_with([' ', '\t']) {
                named += 1;
                typical += usize::from(TYPICAL_HEADER.is_match(lines[j]));
            }
            j += 1;
        }
        if named >= 3 && typical >= 2 {
            cut = i;
            original_headers(&lines[i..j].join("\n"), g);
            g.original = true;
            break;
        }
        i = j.max(i + 1);
    }
    for line in &lines[..cut] {
        if g.notice.len() >= NOTICE_BYTES {
            break;
        }
        g.notice.push_str(line);
        g.notice.push('\n');
    }
}

fn original_headers(text: &str, g: &mut Gathered) {
    for (name, value) in fields(text) {
        let addrs = || ADDRESS.find_iter(&value).filter_map(|m| normalize_address(m.as_str()));
        if name.eq_ignore_ascii_case("to") || name.eq_ignore_ascii_case("cc") {
            g.original_to.extend(addrs());
        } else if ["from", "return-path", "sender"].iter().any(|n| name.eq_ignore_ascii_case(n)) {
            g.original_from.extend(addrs());
        }
    }
}

/// `Name: value` fields, folded lines unfolded; names without spaces only.
fn fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines().take(2000) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.is_empty() || name.contains(char::is_whitespace) {
            continue;
        }
        out.push((name.to_owned(), value.trim().to_owned()));
    }
    out
}

/// The per-recipient records of a delivery-status part.
fn records(text: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut cur: Option<Record> = None;
    let addr = |v: &str| {
        let v = v.rsplit_once(';').map_or(v, |(_, a)| a);
        normalize_address(v)
    };
    for (name, value) in fields(text) {
        let name = name.to_ascii_lowercase();
        let starts = matches!(name.as_str(), "final-recipient" | "original-recipient");
        let r = match &mut cur {
            // A second Final-Recipient starts the next recipient's record.
            Some(r) if name == "final-recipient" && r.final_recipient.is_some() => {
                out.push(std::mem::take(r));
                r
            }
            Some(r) => r,
            None if starts || matches!(name.as_str(), "action" | "status" | "diagnostic-code") => {
                cur.insert(Record::default())
            }
            None => continue,
        };
        match name.as_str() {
            "final-recipient" => r.final_recipient = addr(&value),
            "original-recipient" => r.original_recipient = addr(&value),
            "action" => r.action = value.to_ascii_lowercase(),
            "status" => r.status = value,
            "diagnostic-code" => r.diagnostic = value,
            _ => {}
        }
    }
    out.extend(cur);
    out
}

/// Addresses in the notice, those on lines with a status or a recipient word first.
fn notice_recipients(notice: &str) -> Vec<String> {
    let mut near = Vec::new();
    let mut other = Vec::new();
    for line in notice.lines() {
        let lower = line.to_ascii_lowercase();
        if lower.contains("message-id") || lower.contains("sender") || lower.starts_with("from:") {
            continue;
        }
        let strong = ENHANCED_STATUS.is_match(line)
            || REPLY_CODE.is_match(line)
            || lower.contains("recipient")
            || lower.contains("deliver")
            || lower.trim_start().starts_with('<');
        for m in ADDRESS.find_iter(line) {
            // A Message-ID in angle brackets looks like an address; skip obvious ones.
            if m.as_str().contains("..") {
                continue;
            }
            if let Some(a) = normalize_address(m.as_str()) {
                if strong { near.push(a) } else { other.push(a) }
            }
        }
    }
    near.extend(other);
    near
}

/// A status in the notice that reads like an SMTP answer: an enhanced code, or a reply
/// code at the start of a line or after a label.
fn has_status_structure(notice: &str) -> bool {
    static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?im)^[\s>]*(?:[\w ]{0,30}:\s*)?(?:smtp;\s*)?[45][0-5]\d[\s:-]")
            .expect("valid regex")
    });
    enhanced_codes(notice).iter().any(|c| !c.starts_with('2')) || LABELLED.is_match(notice)
}

/// A status found in text: an enhanced code (`5.1.1`) not part of a longer dotted number.
fn enhanced_codes(text: &str) -> Vec<String> {
    ENHANCED_STATUS
        .find_iter(text)
        .filter(|m| {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            let after2 = text[m.end()..].chars().nth(1);
            let glued = before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.')
                || after.is_some_and(|c| c.is_ascii_digit())
                || (after == Some('.') && after2.is_some_and(|c| c.is_ascii_digit()));
            !glued
        })
        .map(|m| m.as_str().to_owned())
        .collect()
}

fn reply_code(text: &str) -> Option<String> {
    // Matches, not captures: captures take the slow engine on a long notice.
    REPLY_CODE
        .find_iter(text)
        .map(|m| m.as_str().trim_matches(|c: char| !c.is_ascii_digit()).to_owned())
        .find(|c| !c.starts_with('2'))
}

/// What a status says by itself: `Some(hard)` / `Some(soft)` when it is specific, `None`
/// when only the words can tell (x.0.0, 5.5.x, and other generic ones).
fn status_says(code: &str) -> Option<Severity> {
    let mut it = code.split('.');
    let (class, subject, detail) = (it.next()?, it.next()?, it.next()?);
    if class == "4" {
        return Some(Severity::Soft);
    }
    if class != "5" {
        return None;
    }
    match (subject, detail) {
        ("1", "7" | "8") => Some(Severity::Soft), // the sender's address is the problem
        ("1", "0") => None,
        ("1", _) => Some(Severity::Hard),
        ("2", "1") => Some(Severity::Hard),
        ("2", "0") => None,
        ("2", _) => Some(Severity::Soft),
        ("4", "4" | "310") => Some(Severity::Hard),
        ("3" | "4" | "6" | "7", "0") => Some(Severity::Soft),
        ("3" | "4" | "6" | "7", _) => Some(Severity::Soft),
        _ => None,
    }
}

/// Hard or soft, with the status that decided.
fn severity(g: &Gathered, delayed_subject: bool) -> (Severity, String) {
    let failed: Vec<&Record> = g
        .records
        .iter()
        .filter(|r| !matches!(r.action.as_str(), "delivered" | "relayed" | "expanded"))
        .collect();
    // Each failed recipient's codes and words: the record's, else the notice's.
    let mut texts: Vec<(String, String, bool)> = failed
        .iter()
        .map(|r| {
            let delayed = r.action == "delayed";
            (r.status.clone(), r.diagnostic.clone(), delayed)
        })
        .collect();
    if texts.is_empty() {
        texts.push((String::new(), String::new(), false));
    }
    let mut best: Option<(Severity, String)> = None;
    for (status, diagnostic, delayed) in texts {
        let words = [diagnostic.as_str(), g.notice.as_str()];
        let mut codes = enhanced_codes(&status);
        codes.extend(enhanced_codes(&diagnostic));
        if codes.is_empty() || diagnostic.is_empty() {
            codes.extend(enhanced_codes(&g.notice));
        }
        let basic = reply_code(&diagnostic).or_else(|| reply_code(&g.notice));
        let one = judge(
            &codes,
            basic.as_deref(),
            &words,
            delayed || (codes.is_empty() && delayed_subject),
        );
        match (&best, one.0) {
            (None, _) | (Some((Severity::Soft, _)), Severity::Hard) => best = Some(one),
            _ => {}
        }
    }
    best.unwrap_or((Severity::Soft, String::new()))
}

fn judge(
    codes: &[String],
    basic: Option<&str>,
    words: &[&str],
    delayed: bool,
) -> (Severity, String) {
    let first = codes.iter().find(|c| !c.starts_with('2')).or(codes.first()).cloned();
    let label = first.clone().or(basic.map(str::to_owned)).unwrap_or_default();
    if delayed
        || codes.iter().any(|c| c.starts_with('4')) && !codes.iter().any(|c| c.starts_with('5'))
    {
        return (Severity::Soft, label);
    }
    // A specific status decides: the first that says something.
    if let Some(c) = codes.iter().find(|c| status_says(c).is_some()) {
        return (status_says(c).unwrap_or(Severity::Soft), c.clone());
    }
    if basic.is_some_and(|b| b.starts_with('4') || b == "552") {
        return (Severity::Soft, label);
    }
    // The diagnostic's words first; when they say nothing either way, the notice's.
    for text in words {
        let soft = SOFT_WORDS.is_match(text);
        let hard = HARD_WORDS.is_match(text);
        if hard && !(soft && soft_is_specific(text)) {
            return (Severity::Hard, label);
        }
        if !soft && WEAK_HARD_WORDS.is_match(text) {
            return (Severity::Hard, label);
        }
        if soft {
            break;
        }
    }
    (Severity::Soft, label)
}

/// Full mailboxes and size limits beat "unknown" words written next to them.
fn soft_is_specific(words: &str) -> bool {
    let m = SOFT_WORDS.matches(words);
    [0, 1, 2, 3, 4, 5, 6, 9].iter().any(|&i| m.matched(i))
}

/// Telltales of report styles, looked for in the sender, the X-Mailer and the headers'
/// names, then in the notice (all lower case). First match wins; for the reason only.
const STYLES: &[(&str, &str)] = &[
    ("amazonses", "amazon ses"),
    ("sendgrid", "sendgrid"),
    ("mailgun", "mailgun"),
    ("postmark", "postmark"),
    ("x-zohomail", "zoho"),
    ("zoho", "zoho"),
    ("barracuda", "barracuda"),
    ("mcafee", "mcafee"),
    ("m-filter", "m-filter"),
    ("groupwise", "groupwise"),
    ("domino", "domino"),
    ("lotus notes", "domino"),
    ("apache james", "apache james"),
    ("dragonfly", "dragonfly mail agent"),
    ("opensmtpd", "opensmtpd"),
    ("courier", "courier"),
    ("x-mlserver", "fml"),
    ("docomo.ne.jp", "docomo"),
    ("ezweb.ne.jp", "kddi"),
    ("au.com", "kddi"),
    ("vtext.com", "verizon"),
    ("vzwpix.com", "verizon"),
    ("verizon", "verizon"),
    ("yahoo.com", "yahoo"),
    ("x-yahoo", "yahoo"),
    ("googlemail.com", "gmail"),
    ("google.com", "gmail"),
    ("outlook.com", "outlook.com"),
    ("hotmail.com", "outlook.com"),
];

/// The report style, for the reason.
fn style(msg: &Message<'_>, s: &Signals, g: &Gathered, formal: bool) -> &'static str {
    let notice = g.notice.as_str();
    let has = |needle: &str| notice.contains(needle);
    if s.header("X-MS-Exchange-Message-Is-Ndr").is_some()
        || has("Diagnostic information for administrators")
    {
        return "exchange ndr";
    }
    let from = msg.from().and_then(|a| a.first());
    let mut sender = [
        from.and_then(|a| a.name.as_deref()).unwrap_or_default(),
        from.and_then(|a| a.address.as_deref()).unwrap_or_default(),
        s.header("X-Mailer").unwrap_or_default(),
    ]
    .join(" ");
    for (name, _) in s.headers.iter().filter(|(n, _)| n.starts_with(['X', 'x'])) {
        sender.push(' ');
        sender.push_str(name);
    }
    let sender = sender.to_lowercase();
    if let Some((_, name)) = STYLES.iter().find(|(needle, _)| sender.contains(needle)) {
        return name;
    }
    let head = notice[..floor_char(notice, 4096)].to_lowercase();
    if let Some((_, name)) = STYLES.iter().take(17).find(|(needle, _)| head.contains(needle)) {
        return name;
    }
    if s.header("X-Failed-Recipients").is_some()
        || has("This message was created automatically by mail delivery software")
    {
        return "exim";
    }
    if has("qmail-send program") || has("Remote host said:") && !formal {
        return "qmail";
    }
    if has("Transcript of session follows") || has("Transcript of Session Follows") {
        return "sendmail";
    }
    if has("This is the mail system at host") {
        return "postfix";
    }
    if let Some(kind) = g.status_part {
        return kind;
    }
    if s.report_type.as_deref() == Some("delivery-status") {
        return "delivery-status report";
    }
    "delivery notice"
}

/// The largest char boundary at or below `at`.
fn floor_char(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Text of an HTML notice, cheaply: tags dropped, line breaks kept.
fn strip_tags(html: &str) -> String {
    static TAG: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(&ascii_word(r"(?is)<(?:script|style)[^>]*>.*?</(?:script|style)>|<br\s*/?>|</?(?:p|div|tr|li|h\d)\b[^>]*>|<[^>]*>")).expect("valid regex")
    });
    let text = TAG.replace_all(html, |c: &regex::Captures<'_>| {
        let t = c[0].to_ascii_lowercase();
        if t.starts_with("<br")
            || t.starts_with("<p")
            || t.starts_with("</p")
            || t.starts_with("<div")
            || t.starts_with("</div")
            || t.starts_with("<tr")
            || t.starts_with("<li")
            || t.starts_with("<h")
            || t.starts_with("</h")
        {
            "\n".to_owned()
        } else {
            String::new()
        }
    });
    text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
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
