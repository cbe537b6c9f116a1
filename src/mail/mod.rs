//! Mail understanding: parse raw RFC 5322 bytes, classify them, keep the new text only.

mod attachments;
pub mod bounce;
pub mod classify;
mod decline;
pub mod headers;
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

/// An address an operator typed or imported, as [`normalize_address`] keeps it, but only
/// when it is one plain address: `local@domain` with a single `@`, no angle brackets,
/// commas, quotes, spaces or other punctuation that would let one cell carry a second
/// address (`a@b@c`, `x@y>, <evil@z`), and a domain of non-empty dot-separated labels.
pub fn normalize_input_address(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let bare = match trimmed.strip_prefix('<') {
        Some(inner) => inner.strip_suffix('>')?,
        None => trimmed,
    };
    let forbidden = |c: char| {
        c.is_whitespace() || c.is_control() || "<>,;:\"()[]\\".contains(c) || c == '\u{fffd}'
    };
    let (local, domain) = bare.split_once('@')?;
    if local.is_empty() || local.contains(forbidden) || domain.contains(forbidden) {
        return None;
    }
    let labels_ok = domain.split('.').all(|l| {
        !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && !l.contains(['@', '/', '!'])
    });
    if !labels_ok || local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return None;
    }
    normalize_address(bare)
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
    }

    #[test]
    fn typed_addresses_are_one_plain_address() {
        let ok = |a: &str| normalize_input_address(a);
        assert_eq!(ok(" Ana+yt@Example.COM ").as_deref(), Some("ana@example.com"));
        assert_eq!(ok("<ana@example.com>").as_deref(), Some("ana@example.com"));
        assert_eq!(ok("o'brien@mail.example.ie").as_deref(), Some("o'brien@mail.example.ie"));
        assert_eq!(ok("ana@bücher.example").as_deref(), Some("ana@bücher.example"));
        for bad in [
            "a@b@c",
            "x@y>, <evil@z",
            "x@y, evil@z",
            "Ana <ana@example.com>",
            "ana@example.com>",
            "<ana@example.com",
            "ana @example.com",
            "ana@exa mple.com",
            "ana@example..com",
            "ana@.example.com",
            "ana@example.com.",
            "ana@-example.com",
            "\"ana\"@example.com",
            ".ana@example.com",
            "an..a@example.com",
            "ana@",
            "@example.com",
            "ana\n@example.com",
            "ana;bcc@example.com",
        ] {
            assert_eq!(normalize_input_address(bad), None, "{bad:?}");
        }
        assert_eq!(plus_tag("partners@brand.example"), None);
    }

    #[test]
    fn message_ids_lose_brackets() {
        assert_eq!(normalize_message_id(" <a.b@c> ").as_deref(), Some("a.b@c"));
        assert_eq!(normalize_message_id("<>"), None);
        assert_eq!(normalize_message_id("<a\0b@c>"), None);
    }
}
