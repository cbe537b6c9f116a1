//! Hard or soft: what enhanced status codes (RFC 3463) and SMTP reply codes say by
//! themselves, and, when they are generic or missing, the diagnostic's and the notice's
//! words.

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::{Gathered, Record, Severity, ascii_word, ascii_words};

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

pub(super) static ENHANCED_STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}").expect("valid regex"));
pub(super) static REPLY_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^A-Za-z0-9_.#-])[245][0-5][0-9](?:[ -]|$)").expect("valid regex")
});

/// A status found in text: an enhanced code (`5.1.1`) not part of a longer dotted number.
pub(super) fn enhanced_codes(text: &str) -> Vec<String> {
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
pub(super) fn severity(g: &Gathered, delayed_subject: bool) -> (Severity, String) {
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
