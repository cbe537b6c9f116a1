//! Cuts quoted history out of an HTML body before it is turned into text: the clients mark
//! their quotes and signatures with classes, ids and styles that the text no longer shows.
//!
//! A light linear scan over the tags, no DOM: an element that holds a quote or a signature
//! (`blockquote`, Gmail's `gmail_quote`, Yahoo's `yahoo_quoted`, …) is skipped up to its
//! matching end tag, so text written below it (bottom posting) stays; a marker that only
//! starts the history (Outlook's `divRplyFwdMsg` or its bordered header div, an `<hr>`
//! followed by a header block, Zimbra's divider) truncates the rest. Unclosed tags are left
//! unclosed; html2text copes.

use std::borrow::Cow;

use super::quote::starts_with_header_block;

/// How much HTML after an `<hr>` is read to find a header block.
const HR_LOOKAHEAD: usize = 4096;

/// What a start tag means for the quote cut.
#[derive(Debug, PartialEq, Eq)]
enum Marker {
    /// The element is quoted history or a signature: skip it, keep what follows.
    Skip,
    /// History starts here and runs to the end.
    Truncate,
}

/// The HTML without its quoted history and signature elements; the input when it has none.
pub fn cut(html: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0; // bytes of `html` already copied or skipped
    let mut pos = 0;
    while let Some(rel) = html[pos..].find('<') {
        let start = pos + rel;
        if html[start..].starts_with("<!--") {
            pos = html[start..].find("-->").map_or(html.len(), |e| start + e + 3);
            continue;
        }
        let Some(end) = html[start..].find('>').map(|e| start + e + 1) else { break };
        let tag = &html[start..end];
        pos = end;
        let Some(marker) = marker(tag, &html[end..]) else { continue };
        out.push_str(&html[copied..start]);
        match marker {
            Marker::Truncate => {
                return Cow::Owned(out);
            }
            Marker::Skip => {
                let name = tag_name(tag);
                pos = if is_void(&name) || tag.ends_with("/>") {
                    end
                } else {
                    element_end(html, end, &name)
                };
                copied = pos;
            }
        }
    }
    if copied == 0 {
        return Cow::Borrowed(html);
    }
    out.push_str(&html[copied..]);
    Cow::Owned(out)
}

/// The marker a start tag is, judged by its name and attributes (and, for `<hr>`, by the
/// text after it).
fn marker(tag: &str, after: &str) -> Option<Marker> {
    if tag.starts_with("</") || tag.starts_with("<!") || tag.starts_with("<?") {
        return None;
    }
    let lower = tag.to_ascii_lowercase();
    let name = tag_name(&lower);
    if name == "blockquote" {
        return Some(Marker::Skip);
    }
    if name == "hr" {
        let mut n = HR_LOOKAHEAD.min(after.len());
        while !after.is_char_boundary(n) {
            n -= 1;
        }
        return starts_with_header_block(&rough_text(&after[..n])).then_some(Marker::Truncate);
    }
    if !lower.contains('=') {
        return None;
    }
    const SKIP: [&str; 11] = [
        "gmail_quote",
        "gmail_attr",
        "yahoo_quoted",
        "protonmail_quote",
        "moz-cite-prefix",
        "moz-signature",
        "applemailsignature",
        "__quoted_text__",
        "gmail_signature",
        "ms-outlook-mobile-signature",
        "__sig_pre__",
    ];
    if SKIP.iter().any(|m| lower.contains(m)) {
        return Some(Marker::Skip);
    }
    let squeezed: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    let outlook_header = squeezed.contains("border-top:solid#e1e1e1")
        || squeezed.contains("border-top:solid#b5c4df");
    const TRUNCATE: [&str; 7] = [
        "divrplyfwdmsg",
        "__divider__",
        "mail-editor-reference-message-container",
        "olk_src_body_section",
        "messagereplysection",
        "outlookmessageheader",
        "moz-forward-container",
    ];
    if outlook_header || TRUNCATE.iter().any(|m| lower.contains(m)) {
        return Some(Marker::Truncate);
    }
    None
}

/// Lower-case name of a tag (`<div class=…>` → `div`).
fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('<')
        .trim_start_matches('/')
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn is_void(name: &str) -> bool {
    matches!(name, "br" | "hr" | "img" | "meta" | "link" | "input" | "wbr")
}

/// The offset just past the end tag matching an element of `name` opened before `from`;
/// the end of the HTML when it is never closed.
fn element_end(html: &str, from: usize, name: &str) -> usize {
    let mut depth = 1;
    let mut pos = from;
    while let Some(rel) = html[pos..].find('<') {
        let start = pos + rel;
        let Some(end) = html[start..].find('>').map(|e| start + e + 1) else { break };
        let tag = &html[start..end];
        pos = end;
        if tag_name(tag) != name {
            continue;
        }
        if tag.starts_with("</") {
            depth -= 1;
            if depth == 0 {
                return end;
            }
        } else if !tag.ends_with("/>") {
            depth += 1;
        }
    }
    html.len()
}

/// Text of an HTML fragment, good enough to recognise header lines: tags dropped, block
/// ends and `<br>` made line breaks, a few entities decoded.
fn rough_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('<') {
        text.push_str(&rest[..i]);
        let Some(e) = rest[i..].find('>') else { break };
        let name = tag_name(&rest[i..i + e + 1]);
        if matches!(name.as_str(), "br" | "p" | "div" | "tr" | "li" | "hr" | "table") {
            text.push('\n');
        }
        rest = &rest[i + e + 1..];
    }
    text.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::cut;

    #[test]
    fn untouched_without_markers() {
        let html = "<p>Hi <b>there</b></p><!-- <blockquote> -->";
        assert!(matches!(cut(html), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn blockquote_is_skipped_text_below_stays() {
        let html = "<div>Top</div><blockquote type=\"cite\"><div>a<blockquote>b</blockquote>c</div></blockquote><p>Hello</p>";
        assert_eq!(cut(html), "<div>Top</div><p>Hello</p>");
    }

    #[test]
    fn outlook_reply_div_truncates() {
        let html = "<p>Yes</p><div id=\"divRplyFwdMsg\"><b>From:</b> x</div><p>pitch</p>";
        assert_eq!(cut(html), "<p>Yes</p>");
        let html = "<p>Ja</p><div style=\"border:none; border-top:solid #E1E1E1 1.0pt\"><p>…</p></div><p>pitch</p>";
        assert_eq!(cut(html), "<p>Ja</p>");
    }

    #[test]
    fn hr_truncates_only_before_a_header_block() {
        let html = "<p>Yes</p><hr><b>Von:</b> Brand<br><b>Gesendet:</b> Montag<br>pitch";
        assert_eq!(cut(html), "<p>Yes</p>");
        let html = "<p>Yes</p><hr><p>From: my side all good</p>";
        assert_eq!(cut(html), html);
    }

    /// An HTML-only mail through the whole parser: the reply text it keeps, and its doubt.
    fn reply(html: &str) -> (String, Option<String>) {
        let raw = format!(
            "From: Dan <dan@outlook.example>\r\nSubject: RE: Winter Glow\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}"
        );
        let m = crate::mail::parse(raw.as_bytes());
        (m.reply_text.split_whitespace().collect::<Vec<_>>().join(" "), m.reply_unsure)
    }

    #[test]
    fn outlook_html_reply_keeps_only_the_answer() {
        let html = r#"<html><body><div dir="ltr"><p>Yes, I'm in! Send the kit.</p></div>
<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">
<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif"><b>From:</b> Brand Partnerships &lt;partners@brand.example&gt;<br><b>Sent:</b> Monday, November 16, 2026 10:00 AM<br><b>To:</b> Dan Weber &lt;dan@outlook.example&gt;<br><b>Subject:</b> Winter Glow x Dan</font><div>&nbsp;</div></div>
<div><p>Hi Dan, we'd love to send you our winter kit.</p><p>Not interested? Reply "no thanks". To unsubscribe from all brand mail, reply "remove me".</p></div></body></html>"#;
        assert_eq!(reply(html), ("Yes, I'm in! Send the kit.".to_owned(), None));
    }

    #[test]
    fn client_markers_in_html() {
        let shapes = [
            r#"<div dir="ltr">Sounds good!</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, Nov 16, 2026 at 10:00 AM Brand &lt;partners@brand.example&gt; wrote:<br></div><blockquote class="gmail_quote">pitch: reply no thanks</blockquote></div>"#,
            r#"<div class="WordSection1"><p class="MsoNormal">Sounds good!<o:p></o:p></p><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm"><p class="MsoNormal"><b>Von:</b> Brand<br><b>Gesendet:</b> Montag</p></div><p>pitch: reply no thanks</p></div>"#,
            r#"<div>Sounds good!<br><br><div id="AppleMailSignature">Sent from my iPhone</div><div><br>On Nov 16, 2026, at 10:00, Brand &lt;partners@brand.example&gt; wrote:<br><br></div><blockquote type="cite"><div>pitch: reply no thanks</div></blockquote></div>"#,
            r#"<p>Sounds good!</p><div class="moz-cite-prefix">On 16/11/2026 10:00, Brand wrote:<br></div><blockquote type="cite" cite="mid:x">pitch: reply no thanks</blockquote><pre class="moz-signature" cols="72">-- Ana</pre>"#,
            r#"<div>Sounds good!</div><div class="yahoo_quoted" id="yahoo_quoted_123"><div>On Monday, November 16, 2026, 10:00 AM, Brand wrote:</div><div>pitch: reply no thanks</div></div>"#,
            r#"<div>Sounds good!</div><div class="protonmail_quote">------- Original Message -------<br>On Monday, Brand wrote:<br><blockquote class="protonmail_quote">pitch</blockquote></div>"#,
            r#"<div>Sounds good!</div><hr id="zwchr" data-marker="__DIVIDER__"><div data-marker="__HEADERS__"><b>From: </b>Brand<br><b>Sent: </b>Monday</div><div data-marker="__QUOTED_TEXT__">pitch: reply no thanks</div>"#,
            r#"<p>Sounds good!</p><hr><p><b>De :</b> Brand<br><b>Envoyé :</b> lundi<br><b>À :</b> Chloé</p><p>pitch: reply no thanks</p>"#,
        ];
        for html in shapes {
            assert_eq!(reply(html), ("Sounds good!".to_owned(), None), "{html}");
        }
    }

    #[test]
    fn thunderbird_answer_below_the_quote() {
        let html = r#"<div class="moz-cite-prefix">On 16/11/2026 10:00, Brand wrote:<br></div><blockquote type="cite">Hi Ana, would you like to join?</blockquote><p>Hello</p>"#;
        assert_eq!(reply(html).0, "Hello");
        let html = r#"<blockquote type="cite">Hi Ana, would you like to join?</blockquote>"#;
        let (text, unsure) = reply(html);
        assert!(!text.is_empty() && unsure.is_some(), "{text:?}");
    }
}
