//! Attachment bodies are dropped before parsing. collabd reads a mail's headers and text
//! only, and mail-parser decoding every base64 attachment (PDFs, images, media kits) was
//! half of ingest's CPU time and the largest allocation of a big mail.

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::{MessageParser, MimeHeaders};
use memchr::{memchr, memmem, memrchr};

/// Longest part header looked at; real ones are a few hundred bytes, and a longer one
/// only means its part is parsed as it is.
const MAX_PART_HEADER: usize = 16 * 1024;

/// Multipart boundaries followed; real mail nests a handful. Past this, or past reading
/// headers worth the mail's own size again, the rest is parsed as it is: hostile shapes
/// (millions of delimiter lines) cost a bounded scan, never quadratic time.
const MAX_BOUNDARIES: usize = 64;

/// `raw` without the bodies of its base64 attachments, or `raw` itself when it has none.
///
/// Parts are found as the parse finds them: the mail's header, then a header after every
/// delimiter line of a multipart boundary declared before it, and the header of an
/// attached message. A part is an attachment when its header says base64 and a type that
/// is neither text nor a container (multipart, message). Its header and the MIME structure
/// stay, so the parse sees the same parts with empty contents. Only bytes up to the first
/// `-` are cut: base64 has none and every delimiter starts with `--`, so no boundary can
/// be lost, however malformed the mail.
pub fn without_attachment_bodies(raw: &[u8]) -> Cow<'_, [u8]> {
    let delimiter = memmem::Finder::new(b"\n--");
    let mut boundaries: Vec<Vec<u8>> = Vec::new();
    let mut cut: Vec<Range<usize>> = Vec::new();
    let (mut header, mut from) = (Some(0), 0);
    let mut budget = raw.len() + MAX_PART_HEADER;
    loop {
        if let Some(start) = header.take() {
            from = start;
            let (part, read) = part_at(raw, start);
            budget = budget.saturating_sub(read);
            if budget == 0 {
                break;
            }
            match part {
                Part::Attachment { body } => {
                    from = base64_end(raw, body);
                    if from > body {
                        cut.push(body..from);
                    }
                }
                Part::Multipart { boundary, body } => {
                    if boundaries.len() == MAX_BOUNDARIES {
                        break;
                    }
                    boundaries.push(boundary);
                    from = body;
                }
                Part::Message { body } => {
                    header = Some(body);
                    continue;
                }
                Part::Other { body } => from = body,
                Part::Unknown => {}
            }
        }
        // From the line break before `from`: a delimiter may open a body.
        let search = from.saturating_sub(1);
        let Some(at) = delimiter.find(&raw[search..]) else { break };
        let line = search + at + 1;
        let Some(eol) = memchr(b'\n', &raw[line..]) else { break };
        let name = &raw[line + 2..line + eol];
        let opens = |b: &Vec<u8>| name.starts_with(b) && !name[b.len()..].starts_with(b"--");
        from = line + eol + 1;
        if boundaries.iter().any(opens) {
            header = Some(from);
        }
    }
    if cut.is_empty() {
        return Cow::Borrowed(raw);
    }
    let removed: usize = cut.iter().map(Range::len).sum();
    let mut out = Vec::with_capacity(raw.len() - removed);
    let mut kept_from = 0;
    for r in cut {
        out.extend_from_slice(&raw[kept_from..r.start]);
        kept_from = r.end;
    }
    out.extend_from_slice(&raw[kept_from..]);
    Cow::Owned(out)
}

/// What a part header says about the body after it (an offset into the mail).
enum Part {
    Attachment {
        body: usize,
    },
    Multipart {
        boundary: Vec<u8>,
        body: usize,
    },
    /// An attached message: its own header starts the body.
    Message {
        body: usize,
    },
    Other {
        body: usize,
    },
    /// No header could be read there.
    Unknown,
}

/// Reads the part header starting at `start`; also returns how many bytes that took.
fn part_at(raw: &[u8], start: usize) -> (Part, usize) {
    let window = &raw[start..raw.len().min(start + MAX_PART_HEADER)];
    match header_len(window) {
        Some(len) => (read_header(&window[..len], start + len), len),
        None => (Part::Unknown, window.len()),
    }
}

/// What a complete part header (blank line included) says; its body starts at `body`.
fn read_header(header: &[u8], body: usize) -> Part {
    // Most headers declare nothing of interest; they are not parsed twice.
    let mentions = |word: &[u8]| header.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
    if ![&b"base64"[..], b"multipart", b"message"].into_iter().any(mentions) {
        return Part::Other { body };
    }
    let Some(parsed) = MessageParser::new().parse_headers(header) else { return Part::Unknown };
    let base64 =
        parsed.content_transfer_encoding().is_some_and(|e| e.trim().eq_ignore_ascii_case("base64"));
    // No Content-Type means text/plain.
    let Some(ctype) = parsed.content_type() else { return Part::Other { body } };
    let is = |t: &str| ctype.ctype().eq_ignore_ascii_case(t);
    match ctype.attribute("boundary") {
        Some(b) if is("multipart") && !b.is_empty() => {
            Part::Multipart { boundary: b.as_bytes().to_vec(), body }
        }
        _ if is("message") && !base64 => Part::Message { body },
        _ if base64 && !is("text") && !is("multipart") && !is("message") => {
            Part::Attachment { body }
        }
        _ => Part::Other { body },
    }
}

/// Length of the header block at the start of `bytes`, blank line included.
fn header_len(bytes: &[u8]) -> Option<usize> {
    if bytes.starts_with(b"\r\n") {
        return Some(2);
    }
    if bytes.starts_with(b"\n") {
        return Some(1);
    }
    let lf = memmem::find(bytes, b"\n\n").map(|i| i + 2);
    let crlf = memmem::find(bytes, b"\n\r\n").map(|i| i + 3);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The end of a base64 body starting at `body`: the line break before its first `-`, or
/// the end of the mail.
fn base64_end(raw: &[u8], body: usize) -> usize {
    let Some(dash) = memchr(b'-', &raw[body..]) else { return raw.len() };
    match memrchr(b'\n', &raw[body..body + dash]) {
        Some(nl) if nl > 0 && raw[body + nl - 1] == b'\r' => body + nl - 1,
        Some(nl) => body + nl,
        None => body,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn b64_lines(n: usize) -> String {
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n".repeat(n)
    }

    fn mixed(attachment_headers: &str, text_headers: &str) -> String {
        format!(
            "From: a@b.example\r\nSubject: s\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n\
             --b1\r\n{text_headers}\r\n\r\nSGVsbG8sIHdvcmxkIQ==\r\n\
             --b1\r\n{attachment_headers}\r\n\r\n{}--b1--\r\n",
            b64_lines(100)
        )
    }

    fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
        MessageParser::default().parse(raw).expect("parses")
    }

    #[test]
    fn attachment_bodies_go_text_and_structure_stay() {
        let raw = mixed(
            "Content-Type: application/pdf; name=kit.pdf\r\nContent-Transfer-Encoding: BASE64",
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64",
        );
        let skimmed = without_attachment_bodies(raw.as_bytes());
        assert!(skimmed.len() < raw.len() - 7000, "the attachment body was cut");
        let (before, after) = (parse(raw.as_bytes()), parse(&skimmed));
        assert_eq!(after.body_text(0).as_deref(), Some("Hello, world!"));
        assert_eq!(before.body_text(0), after.body_text(0));
        assert_eq!(before.parts.len(), after.parts.len());
        assert_eq!(before.attachment_count(), after.attachment_count());
        assert!(after.attachment(0).is_some_and(|a| a.contents().is_empty()));
        assert_eq!(after.attachment(0).and_then(|a| a.attachment_name()), Some("kit.pdf"));
    }

    #[test]
    fn text_and_messages_in_base64_are_kept() {
        for ctype in ["text/html", "message/delivery-status", "multipart/mixed; boundary=x"] {
            let raw = mixed(
                &format!("Content-Type: {ctype}\r\nContent-Transfer-Encoding: base64"),
                "Content-Type: text/plain",
            );
            assert!(
                matches!(without_attachment_bodies(raw.as_bytes()), Cow::Borrowed(_)),
                "{ctype}"
            );
        }
        let no_type = mixed("Content-Transfer-Encoding: base64", "Content-Type: text/plain");
        assert!(matches!(without_attachment_bodies(no_type.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn a_whole_mail_that_is_an_attachment_keeps_its_header() {
        let raw = format!(
            "From: a@b.example\nMessage-ID: <x@y>\nContent-Type: image/png\n\
             Content-Transfer-Encoding: base64\n\n{}",
            b64_lines(10).replace("\r\n", "\n")
        );
        let skimmed = without_attachment_bodies(raw.as_bytes());
        assert!(skimmed.ends_with(b"base64\n\n"));
        assert_eq!(parse(&skimmed).message_id(), Some("x@y"));
    }

    #[test]
    fn cutting_stops_at_the_first_dash() {
        // A malformed body running into a boundary mid-line keeps that line and the rest.
        let raw = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\
                   Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n\
                   AAAA\nBBBB\nCC--b\n--b\nContent-Type: text/plain\n\nhi\n--b--\n";
        let skimmed = without_attachment_bodies(raw.as_bytes());
        assert_eq!(
            std::str::from_utf8(&skimmed).unwrap(),
            raw.replace("\n\nAAAA\nBBBB\nCC--b", "\n\n\nCC--b")
        );
        assert_eq!(parse(&skimmed).body_text(0), parse(raw.as_bytes()).body_text(0));
    }

    /// Mail-shaped bytes with attachments among text, containers and reports.
    fn mailish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just("Content-Type: multipart/mixed; boundary=\"b\"\r\n"),
            Just("Content-Type: multipart/alternative; boundary=c\r\n"),
            Just("Content-Type: message/rfc822\r\n"),
            Just("Content-Type: image/png; name=a.png\r\n"),
            Just("Content-Type: application/pdf\r\n"),
            Just("Content-Type: text/plain; charset=utf-8\r\n"),
            Just("Content-Type: text/html\r\n"),
            Just("Content-Transfer-Encoding: base64\r\n"),
            Just("Content-Transfer-Encoding: quoted-printable\r\n"),
            Just("Message-ID: <m@x>\r\nSubject: s\r\n"),
            Just("SGVsbG8sIHdvcmxkIQ==\r\nQUJD\r\n"),
            Just("\r\n--b\r\n"),
            Just("\r\n--c\r\n"),
            Just("\r\n--b--\r\n"),
            Just("\r\n\r\n"),
            Just("-"),
        ];
        prop::collection::vec(
            prop_oneof![
                4 => piece.prop_map(|p| p.as_bytes().to_vec()),
                1 => prop::collection::vec(any::<u8>(), 0..16)
            ],
            0..40,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Whatever the input, the parse reads the same text, HTML and identity from the
        /// skimmed bytes as from the whole mail.
        #[test]
        fn the_parse_reads_the_same_text(raw in mailish()) {
            let skimmed = without_attachment_bodies(&raw);
            let (whole, skim) = (MessageParser::default().parse(&raw), MessageParser::default().parse(&*skimmed));
            prop_assert_eq!(whole.is_some(), skim.is_some());
            let (Some(whole), Some(skim)) = (whole, skim) else { return Ok(()) };
            prop_assert_eq!(whole.body_text(0), skim.body_text(0));
            prop_assert_eq!(whole.body_html(0), skim.body_html(0));
            prop_assert_eq!(whole.message_id(), skim.message_id());
            prop_assert_eq!(whole.subject(), skim.subject());
            prop_assert_eq!(whole.parts.len(), skim.parts.len());
        }
    }

    #[test]
    fn hostile_shapes_end_the_cutting_not_the_parse() {
        let attachment =
            "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n";
        let mut raw = format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n{attachment}");
        raw.push_str(&"--b\r\n".repeat(100_000));
        raw.push_str(attachment);
        let skimmed = without_attachment_bodies(raw.as_bytes());
        assert_eq!(skimmed.len(), raw.len() - 4, "the first attachment only: the budget ran out");

        let nested = |levels: usize| {
            let mut mail = String::new();
            for i in 0..levels {
                mail += &format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n");
            }
            mail + "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n"
        };
        let deep = nested(MAX_BOUNDARIES);
        // The last part runs to the end of the mail, line break included.
        assert_eq!(without_attachment_bodies(deep.as_bytes()).len(), deep.len() - 6);
        let deeper = nested(MAX_BOUNDARIES + 1);
        assert!(matches!(without_attachment_bodies(deeper.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn plain_mail_is_untouched() {
        let raw = b"From: a@b.example\r\nSubject: base64 is mentioned\r\n\r\n--\r\nsig\r\n";
        assert!(matches!(without_attachment_bodies(raw), Cow::Borrowed(_)));
        assert!(matches!(without_attachment_bodies(b""), Cow::Borrowed(_)));
        assert!(matches!(without_attachment_bodies(b"--"), Cow::Borrowed(_)));
    }
}
