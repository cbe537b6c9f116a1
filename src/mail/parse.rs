//! Parsing with `mail-parser` into the fields collabd stores and reasons about.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use super::attachments::without_attachment_bodies;
use super::bounce::{self, Verdict};
use super::headers::Headers;
use super::quote::NO_NEW_TEXT;
use super::{NewText, new_text, normalize_address, normalize_message_id, quote_html};

/// What collabd keeps of a mail. Every string is free of NUL bytes (Postgres rejects them).
#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    pub message_id: Option<String>,
    /// Stable identity for dedupe: the Message-ID, or a digest of the raw bytes.
    pub dedupe_key: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Normalised sender address.
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    /// Every To and Cc address as written (not normalised, so `+tokens` survive).
    pub recipients: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub text_body: String,
    /// The new text only: quoted history and signature removed.
    pub reply_text: String,
    /// Set when the stripper is not sure `reply_text` holds only new text; says why.
    pub reply_unsure: Option<String>,
    pub size: u64,
    /// Header signals the classifier reads, gathered while the parsed message is alive.
    pub signals: Signals,
}

/// Raw header facts for classification; see `classify`.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub headers: Headers,
    pub report_type: Option<String>,
    /// Message-IDs and recipients quoted inside a delivery-status report.
    pub reported_message_ids: Vec<String>,
    pub reported_recipients: Vec<String>,
    /// Set when the message is a bounce or a complaint; see `bounce::read`.
    pub verdict: Option<Verdict>,
}

impl Signals {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// Parses raw bytes. Never fails: unparseable input yields empty fields and a digest key.
pub fn parse(raw: &[u8]) -> ParsedMail {
    let digest = || format!("sha256:{:x}", Sha256::digest(raw));
    let skimmed = without_attachment_bodies(raw);
    let Some(msg) = MessageParser::default().parse(&*skimmed) else {
        return ParsedMail { dedupe_key: digest(), size: raw.len() as u64, ..Default::default() };
    };
    let message_id = msg.message_id().and_then(normalize_message_id);
    let from = msg.from().and_then(|a| a.first());
    let (text_body, new) = body_text(&msg);
    ParsedMail {
        dedupe_key: message_id.clone().unwrap_or_else(digest),
        message_id,
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        from_address: from.and_then(|a| a.address.as_deref()).and_then(normalize_address),
        from_name: from.and_then(|a| a.name.as_deref()).map(clean),
        recipients: msg
            .to()
            .into_iter()
            .chain(msg.cc())
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address.as_deref())
            .map(clean)
            .collect(),
        subject: msg.subject().map(clean),
        date: msg.date().and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        reply_text: new.text,
        reply_unsure: new.unsure,
        text_body,
        size: raw.len() as u64,
        signals: signals(&msg),
    }
}

/// Text of the message (the text parts, or the HTML ones converted when there is no text)
/// and its new text. HTML loses its quote markers in conversion, so its history is cut
/// before (see `quote_html`); the whole text is stripped when that cut leaves nothing.
fn body_text(msg: &Message<'_>) -> (String, NewText) {
    if msg.text_body_count() > 0 && msg.text_bodies().any(|p| !p.is_text_html()) {
        let text = clean(msg.body_text(0).unwrap_or_default());
        let new = new_text(&text);
        return (text, new);
    }
    let Some(html) = msg.body_html(0) else { return Default::default() };
    let to_text = |h: &str| clean(html2text::from_read(h.as_bytes(), 100).unwrap_or_default());
    let text = to_text(&html);
    let cut = quote_html::cut(&html);
    let new = match cut {
        Cow::Owned(cut) => Some(new_text(&to_text(&cut)))
            .filter(|n| !n.text.is_empty() && n.unsure.as_deref() != Some(NO_NEW_TEXT)),
        Cow::Borrowed(_) => None,
    };
    let new = new.unwrap_or_else(|| new_text(&text));
    (text, new)
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(l) => l.iter().map(|c| c.as_ref()).collect(),
        _ => Vec::new(),
    };
    list.into_iter().flat_map(|s| s.split_whitespace()).filter_map(normalize_message_id).collect()
}

fn signals(msg: &Message<'_>) -> Signals {
    let headers = Headers(
        msg.headers_raw().take(200).map(|(n, v)| (n.to_owned(), clean(v.trim()))).collect(),
    );
    let report_type = msg
        .root_part()
        .headers()
        .iter()
        .find_map(|h| h.value().as_content_type())
        .filter(|ct| ct.ctype().eq_ignore_ascii_case("multipart"))
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let mut s = Signals { headers, report_type, ..Default::default() };
    // Not only formal DSNs: MAILER-DAEMON notices in multipart/mixed quote the original too.
    collect_report(msg, &mut s);
    if let Some(report) = bounce::read(msg, &s.headers, s.report_type.as_deref()) {
        s.reported_recipients = report.recipients;
        s.verdict = Some(report.verdict);
    }
    if s.verdict.is_some()
        && let Some(own) = msg.message_id().and_then(normalize_message_id)
    {
        s.reported_message_ids.retain(|id| *id != own);
    }
    s
}

/// Bytes of one part read for report fields: delivery-status parts and quoted headers are
/// small, and reading whole attachments cost more than the rest of parsing.
const REPORT_SCAN_BYTES: usize = 64 * 1024;

/// Reads the original's Message-ID from a report: an attached message, a headers part,
/// or an inline copy of its headers in the text. Recipients are `bounce::read`'s.
fn collect_report(msg: &Message<'_>, s: &mut Signals) {
    for part in msg.parts.iter().take(50) {
        if let Some(inner) = part.message() {
            s.reported_message_ids.extend(inner.message_id().and_then(normalize_message_id));
            continue;
        }
        // Attachments (PDFs, images) cannot hold report fields; message/delivery-status is
        // binary to mail-parser, so it is let through by its type.
        if part.is_binary()
            && !part.content_type().is_some_and(|ct| ct.ctype().eq_ignore_ascii_case("message"))
        {
            continue;
        }
        let contents = part.contents();
        let text = String::from_utf8_lossy(&contents[..contents.len().min(REPORT_SCAN_BYTES)]);
        let mut lines = text.lines().take(2000).peekable();
        while let Some(line) = lines.next() {
            let Some((name, value)) = line.split_once(':') else { continue };
            if !name.trim().eq_ignore_ascii_case("message-id") {
                continue;
            }
            // A folded header puts the id on the next line.
            let value = match value.trim() {
                "" => lines.peek().filter(|l| l.starts_with([' ', '\t'])).copied().unwrap_or(""),
                v => v,
            };
            s.reported_message_ids.extend(normalize_message_id(value));
        }
    }
    s.reported_message_ids.dedup();
}

/// Postgres text cannot hold NUL; everything else is kept.
fn clean(s: impl AsRef<str>) -> String {
    s.as_ref().replace('\0', "\u{FFFD}")
}
