//! Mail understanding: parse raw RFC 5322 bytes, classify them, keep the new text only.

mod attachments;
pub mod bounce;
pub mod classify;
mod decline;
mod parse;
mod quote;
mod quote_html;

pub use bounce::Severity;
pub use classify::{Classification, ClassifyRules, Kind};
pub use parse::{ParsedMail, parse};
pub use quote::{NewText, new_text};

/// Normalises an address for exact lookups: trimmed, lower case, `+tag` removed from the
/// local part. Returns `None` for anything without a local part and a domain, and for
/// control characters (a NUL would make Postgres refuse the whole batch).
pub fn normalize_address(raw: &str) -> Option<String> {
    let raw = raw.trim().trim_start_matches('<').trim_end_matches('>');
    if raw.contains(char::is_control) {
        return None;
    }
    let (local, domain) = raw.rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or(local);
    if local.is_empty() || domain.is_empty() || domain.contains(char::is_whitespace) {
        return None;
    }
    Some(format!("{}@{}", local.to_lowercase(), domain.to_lowercase()))
}

/// The `+tag` of an address's local part, used as a reply token (`partners+tok@brand`).
pub fn plus_tag(raw: &str) -> Option<&str> {
    let (local, _) = raw.trim().rsplit_once('@')?;
    local.split_once('+').map(|(_, tag)| tag).filter(|t| !t.is_empty())
}

/// Normalises a Message-ID to the form stored in the database: no angle brackets, trimmed.
/// `None` when empty or holding control characters, which no real Message-ID has (and a
/// NUL would make Postgres refuse the whole batch).
pub fn normalize_message_id(raw: &str) -> Option<String> {
    let id = raw.trim().trim_start_matches('<').trim_end_matches('>').trim();
    (!id.is_empty() && !id.contains(char::is_control)).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised() {
        assert_eq!(normalize_address(" Ana+yt@Example.COM ").as_deref(), Some("ana@example.com"));
        assert_eq!(normalize_address("<ana@example.com>").as_deref(), Some("ana@example.com"));
        assert_eq!(normalize_address("no-at-sign"), None);
        assert_eq!(normalize_address("@example.com"), None);
        assert_eq!(normalize_address("ana\0@example.com"), None);
        assert_eq!(plus_tag("partners+abc123@brand.example"), Some("abc123"));
        assert_eq!(plus_tag("partners@brand.example"), None);
    }

    #[test]
    fn message_ids_lose_brackets() {
        assert_eq!(normalize_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(normalize_message_id("<>"), None);
        assert_eq!(normalize_message_id("<a\0b@c>"), None);
    }
}
