//! Keeps the new text of a reply: quoted history and signatures go.

use std::sync::LazyLock;

use regex::Regex;

/// Lines that start quoted history in the common clients, in several languages.
static HISTORY_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)^\s*(?:
            (?:on|am|le|el|il|op|em)\s.{0,200}(?:wrote|schrieb|a\sécrit|escribió|ha\sscritto|schreef|escreveu)(?:\s.{0,120})?:\s*$
          | -{2,}\s*(?:original\smessage|ursprüngliche\snachricht|message\sd'origine|mensaje\soriginal|forwarded\smessage)\s*-{2,}
          | _{10,}\s*$
          | (?:from|von|de|da):\s.+$
        )",
    )
    .expect("valid regex")
});

/// Outlook's header block ("From: … / Sent: …") needs a second header line to count, so a
/// sentence starting with "From:" in the reply itself is kept.
static OUTLOOK_NEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:sent|date|gesendet|envoyé|enviado|to|an|à|para|subject|betreff|objet|asunto):",
    )
    .expect("valid regex")
});

/// The new text of a reply, and whether the stripper is sure where it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewText {
    pub text: String,
    /// Why the stripper is not sure the text holds only the sender's own words (a header
    /// block or a quote marker is still inside it). Declines are not read from such text.
    pub unsure: Option<String>,
}

/// The new text of a plain-text body.
pub fn new_text(body: &str) -> NewText {
    NewText { text: strip_quoted(body), unsure: None }
}

/// Returns the reply's own text: stops at quoted history or a `-- ` signature, drops `>`
/// lines, trims blank edges.
pub fn strip_quoted(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_end();
        if trimmed == "--" || trimmed == "-- " || line.starts_with("-- \u{a0}") {
            break;
        }
        if HISTORY_START.is_match(trimmed) {
            let is_from =
                trimmed.trim_start().split(':').next().is_some_and(|w| {
                    ["from", "von", "de", "da"].contains(&w.to_lowercase().as_str())
                });
            let confirmed =
                !is_from || lines.iter().skip(i + 1).take(3).any(|l| OUTLOOK_NEXT.is_match(l));
            if confirmed {
                break;
            }
        }
        if trimmed.trim_start().starts_with('>') {
            continue;
        }
        // Any attribution line ("…<brand@example>:", in any language) directly above quoted
        // text starts the history.
        let next = lines.iter().skip(i + 1).find(|l| !l.trim().is_empty());
        if trimmed.ends_with(':') && next.is_some_and(|l| l.trim_start().starts_with('>')) {
            break;
        }
        kept.push(trimmed);
    }
    // Gmail wraps "On … wrote:" over two lines; drop a dangling "On …" opener.
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    if kept
        .last()
        .is_some_and(|l| l.trim_start().to_lowercase().starts_with("on ") && l.contains(','))
    {
        kept.pop();
    }
    let start = kept.iter().position(|l| !l.trim().is_empty()).unwrap_or(kept.len());
    kept[start..].join("\n").trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::strip_quoted;

    #[test]
    fn gmail_history_is_removed() {
        let body = "Sounds great, count me in!\n\nOn Mon, 2 Nov 2026 at 10:00, Brand <p@b.example> wrote:\n> Hi Ana,\n> would you like to...";
        assert_eq!(strip_quoted(body), "Sounds great, count me in!");
    }

    #[test]
    fn outlook_block_is_removed_but_a_from_sentence_is_kept() {
        let body = "Yes please.\r\n\r\nFrom: Brand <p@b.example>\r\nSent: Monday\r\nTo: Ana\r\nSubject: Collab\r\n\r\nHi";
        assert_eq!(strip_quoted(body), "Yes please.");
        assert_eq!(strip_quoted("From: my side, yes.\nThanks"), "From: my side, yes.\nThanks");
    }

    #[test]
    fn signature_and_quote_marks_go() {
        let body = "Deal.\n> old text\n-- \nAna\nhttps://ana.example";
        assert_eq!(strip_quoted(body), "Deal.");
    }

    #[test]
    fn attribution_lines_in_other_languages() {
        let de = "Gerne!\n\nAm 23.11.26 um 11:02 schrieb Brand Partnerships:\n> Hallo";
        assert_eq!(strip_quoted(de), "Gerne!");
        let ja = "ぜひ!\n\n2026年11月23日(月) 10:02 Brand <p@b.example>:\n\n> こんにちは";
        assert_eq!(strip_quoted(ja), "ぜひ!");
        let wrapped = "Yes!\n\nOn Mon, Nov 23, 2026 at 10:02 AM Brand Partnerships <\np@b.example> wrote:\n> Hi";
        assert_eq!(strip_quoted(wrapped), "Yes!");
    }

    #[test]
    fn original_message_separator() {
        let body = "Interested!\n-----Original Message-----\nFrom: x";
        assert_eq!(strip_quoted(body), "Interested!");
    }
}
