//! Free-text notices, which many MTAs and providers write instead of (or beside) a
//! delivery-status part: the senders, subjects and wording that make one, the notice text
//! itself (cut before an inline copy of the original), the addresses it names and whether
//! it carries an SMTP status.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::dsn::original_headers;
use super::severity::{ENHANCED_STATUS, REPLY_CODE, enhanced_codes};
use super::{ADDRESS, Gathered, NOTICE_BYTES, ascii_word, ascii_words};
use crate::mail::normalize_address;

/// Senders that are delivery systems by their local part.
pub(super) static DAEMON_LOCAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(?:mailer-daemon|mailer_daemon|mailerdaemon|mail-daemon|postmaster|mdaemon|double-bounce|bounces?|bounce[-+.][^@]*|mail-?delivery[^@]*|mailadmin|ndr|dsn|undeliverable|nobody)@",
    )
    .expect("valid regex")
});

/// Display names delivery systems and gateways use.
pub(super) static DAEMON_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&ascii_word(
        r"(?i)\b(?:mail(?:er)?[- ]?daemon|mail delivery (?:system|subsystem|service|agent)|mail administrator|mail system|postmaster|microsoft outlook|delivery status notification|mail ?gateway|mailer)\b|メール配信|システム管理者",
    ))
    .expect("valid regex")
});

/// Subjects of bounces, anchored at the start (after optional brackets), in the languages
/// the MTAs and carriers use. A table: add a line for a new style.
pub(super) static BOUNCE_SUBJECT: LazyLock<RegexSet> = LazyLock::new(|| {
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
pub(super) static REPLY_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:re|fw|fwd|aw|wg|tr|sv|vs|rv|ref|antw|odp|r)\s*(?:\[\d+\])?\s*[:：]")
        .expect("valid regex")
});

/// Complaint subjects of feedback loops that do not send ARF (Outlook.com JMRP style).
pub(super) static COMPLAINT_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(?:complaint about message|abuse report|spam report|feedback report|email feedback report)")
        .expect("valid regex")
});

/// Wording of delivery notices: any one, with an automatic sender or a bounce subject,
/// makes a bounce.
pub(super) static NOTICE_WORDS: LazyLock<RegexSet> = LazyLock::new(|| {
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

/// A header line of an inline copy of the original.
static HEADER_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z0-9-]{1,40}:(?:\s|$)").expect("valid regex"));

/// Headers every copy of a mail has, to tell a copy from a notice's `Name: value` lines.
static TYPICAL_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(?:received|return-path|from|to|subject|date|message-id|mime-version|dkim-signature|content-type|reply-to|x-mailer):")
        .expect("valid regex")
});

/// Adds text to the notice up to the first inline copy of the original's headers, whose
/// To and From are kept.
pub(super) fn add_notice(g: &mut Gathered, text: &str) {
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

/// Addresses in the notice, those on lines with a status or a recipient word first.
pub(super) fn notice_recipients(notice: &str) -> Vec<String> {
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
pub(super) fn has_status_structure(notice: &str) -> bool {
    static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?im)^[\s>]*(?:[\w ]{0,30}:\s*)?(?:smtp;\s*)?[45][0-5]\d[\s:-]")
            .expect("valid regex")
    });
    enhanced_codes(notice).iter().any(|c| !c.starts_with('2')) || LABELLED.is_match(notice)
}

/// Text of an HTML notice, cheaply: tags dropped, line breaks kept.
pub(super) fn strip_tags(html: &str) -> String {
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
