//! The structured parts of a report: the per-recipient records of a delivery-status part
//! (RFC 3464, RFC 6533), the fields of a feedback-report part (RFC 5965), and the To and
//! From of the original's headers, attached or copied inline.

use mail_parser::{Message, MimeHeaders};

use super::{ADDRESS, Gathered, MAX_PARTS, Record};
use crate::mail::normalize_address;

/// Whether the first parts hold a delivery-status and a feedback-report part.
pub(super) fn report_parts(msg: &Message<'_>) -> (bool, bool) {
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

pub(super) fn original_headers(text: &str, g: &mut Gathered) {
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
pub(super) fn fields(text: &str) -> Vec<(String, String)> {
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
pub(super) fn records(text: &str) -> Vec<Record> {
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
