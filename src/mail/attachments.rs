//! Attachment bodies are dropped before parsing. collabd reads a mail's headers and text
//! only, and mail-parser decoding every base64 attachment (PDFs, images, media kits) was
//! half of ingest's CPU time and the largest allocation of a big mail.

use std::borrow::Cow;
use std::ops::Range;

use mail_parser::{MessageParser, MimeHeaders};
use memchr::{memchr, memchr_iter, memmem, memrchr};

/// Longest part header looked at; real ones are a few hundred bytes, and a longer one
/// only means its part is parsed as it is.
const MAX_PART_HEADER: usize = 16 * 1024;

/// Multipart nesting followed; real mail nests a handful, and deeper is parsed as it is.
/// Every other step moves forward through the mail, so the scan is linear in its size.
const MAX_DEPTH: usize = 64;

/// `raw` without the bodies of its base64 attachments, or `raw` itself when it has none.
///
/// Parts are found the way mail-parser finds them: the mail's header; inside a multipart,
/// a header after each `--boundary` of the innermost open multipart (anywhere, as the
/// parser looks for it), until its `--boundary--`; and the header of an attached message.
/// A part is an attachment when its own header says base64 and a type that is neither
/// text nor a container. Its header and the MIME structure stay, so the parse sees the
/// same parts with empty contents. Only bytes before the first `-` are cut: base64 has
/// none and every delimiter starts with `--`, so no boundary can be lost. Wherever the
/// mail leaves this model (an unreadable header, a delimiter followed by anything but a
/// line break), the rest is left as it is.
pub fn without_attachment_bodies(raw: &[u8]) -> Cow<'_, [u8]> {
    // Open multiparts, innermost last: boundary, and whether it is a digest (whose parts
    // without a Content-Type are attached messages).
    let mut open: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut cut: Vec<Range<usize>> = Vec::new();
    // Where the next header starts, and whether it belongs to a digest's part.
    let mut header = Some((0, false));
    let mut pos = 0;
    // The parser reads a header after a multipart's first delimiter whatever follows it,
    // even `--`; only later ones can close the multipart.
    let mut first = false;
    loop {
        if let Some((start, in_digest)) = header.take() {
            match part_at(raw, start, in_digest, !open.is_empty()) {
                Part::Attachment { body } => {
                    let cuttable = base64_cut(raw, body, open.last().map(|(b, _)| b.as_slice()));
                    pos = cuttable.as_ref().map_or(body, |r| r.end);
                    cut.extend(cuttable.filter(|r| !r.is_empty()));
                }
                Part::Multipart { .. } if open.len() == MAX_DEPTH => break,
                Part::Multipart { boundary, digest, body } => {
                    open.push((boundary, digest));
                    pos = body;
                    first = true;
                }
                Part::Message { body } => {
                    header = Some((body, false));
                    continue;
                }
                Part::Other { body } => pos = body,
                Part::Unknown => break,
            }
        }
        // The next delimiter of the innermost open multipart.
        let Some((boundary, digest)) = open.last() else { break };
        let mut delimiter = Vec::with_capacity(boundary.len() + 2);
        delimiter.extend_from_slice(b"--");
        delimiter.extend_from_slice(boundary);
        let Some(at) = memmem::find(&raw[pos..], &delimiter) else { break };
        let after = pos + at + delimiter.len();
        match (&raw[after..], std::mem::take(&mut first)) {
            ([b'-', b'-', ..], false) => {
                open.pop();
                pos = after + 2;
            }
            ([b'\r', b'\n', ..], _) => header = Some((after + 2, *digest)),
            ([b'\n', ..], _) => header = Some((after + 1, *digest)),
            _ => break,
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
        digest: bool,
        body: usize,
    },
    /// An attached message (rfc822, global): its own header starts the body.
    Message {
        body: usize,
    },
    Other {
        body: usize,
    },
    /// No header could be read there.
    Unknown,
}

/// Reads the part header starting at `start`; `in_multipart` when a delimiter is looked
/// for after its body.
fn part_at(raw: &[u8], start: usize, in_digest: bool, in_multipart: bool) -> Part {
    let window = &raw[start..raw.len().min(start + MAX_PART_HEADER)];
    let Some(len) = header_len(window) else { return Part::Unknown };
    let (header, body) = (&window[..len], start + len);
    let mentions = |word: &[u8]| header.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word));
    // Most headers declare nothing of interest; they are not parsed twice. Inside a
    // multipart a date is parsed whatever: the parser's date reading can run past a line
    // break, and then the body, where the next delimiter is looked for, starts later for it
    // than here. A mail's own header, outside any multipart, needs no such care.
    let words: [&[u8]; 3] = [b"base64", b"multipart", b"message"];
    let date_matters = in_multipart && mentions(b"date");
    if !in_digest && !date_matters && !words.into_iter().any(mentions) {
        return Part::Other { body };
    }
    let Some(parsed) = MessageParser::new().parse_headers(window) else { return Part::Unknown };
    if parser_header_len(&parsed, window) != Some(len) {
        return Part::Unknown;
    }
    read_header(&parsed, body, in_digest)
}

/// Where the parser ended the header it read: after the last field, at the first line
/// break past only spaces, tabs, carriage returns and form feeds.
fn parser_header_len(parsed: &mail_parser::Message<'_>, window: &[u8]) -> Option<usize> {
    let last = parsed.root_part().headers().last()?.offset_end() as usize;
    let rest = window.get(last..)?;
    let blank = rest.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\x0c'))?;
    (rest[blank] == b'\n').then_some(last + blank + 1)
}

/// What a part header says; its body starts at `body`.
fn read_header(parsed: &mail_parser::Message<'_>, body: usize, in_digest: bool) -> Part {
    // As the parser compares them: the field's text, case aside.
    let encoding = |name: &str| {
        parsed.content_transfer_encoding().is_some_and(|e| e.eq_ignore_ascii_case(name))
    };
    let base64 = encoding("base64");
    let nested = !base64 && !encoding("quoted-printable");
    // No Content-Type means text/plain, or an attached message in a digest.
    let Some(ctype) = parsed.content_type() else {
        return if in_digest && nested { Part::Message { body } } else { Part::Other { body } };
    };
    let is = |t: &str| ctype.ctype().eq_ignore_ascii_case(t);
    let subtype_is = |t: &str| ctype.subtype().is_some_and(|s| s.eq_ignore_ascii_case(t));
    match ctype.attribute("boundary") {
        Some(b) if is("multipart") && !b.is_empty() => {
            let boundary = b.as_bytes().to_vec();
            Part::Multipart { boundary, digest: subtype_is("digest"), body }
        }
        // Encoded, it is decoded first and parsed apart; its bytes stay as they are.
        _ if is("message") && (subtype_is("rfc822") || subtype_is("global")) && nested => {
            Part::Message { body }
        }
        _ if base64 && !is("text") && !is("multipart") && !is("message") => {
            Part::Attachment { body }
        }
        _ => Part::Other { body },
    }
}

/// Length of the header block at the start of `bytes`, blank line included; reads no
/// further than that line. The parser ends a header at any line of only spaces, tabs and
/// carriage returns; a header where such a line is not plainly empty is left alone.
fn header_len(bytes: &[u8]) -> Option<usize> {
    let mut start = 0;
    for nl in memchr_iter(b'\n', bytes) {
        let line = &bytes[start..nl];
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\x0c')) {
            return matches!(line, [] | [b'\r']).then_some(nl + 1);
        }
        start = nl + 1;
    }
    None
}

/// The bytes of a base64 body starting at `body` that can go: up to the line break before
/// its first `-`, or to the end of the mail outside any multipart. `None` when the parser
/// would not decode the body cleanly (a byte outside base64, no delimiter of `boundary`
/// where the body ends): it then keeps the bytes as text, and so must the cut.
fn base64_cut(raw: &[u8], body: usize, boundary: Option<&[u8]>) -> Option<Range<usize>> {
    let dash = memchr(b'-', &raw[body..]).map_or(raw.len(), |d| body + d);
    let ends_well = match boundary {
        Some(b) => raw[dash..].strip_prefix(b"--").is_some_and(|rest| rest.starts_with(b)),
        None => dash == raw.len(),
    };
    if !ends_well || !is_base64_text(&raw[body..dash]) {
        return None;
    }
    if dash == raw.len() {
        return Some(body..dash);
    }
    let end = match memrchr(b'\n', &raw[body..dash]) {
        Some(nl) if nl > 0 && raw[body + nl - 1] == b'\r' => body + nl - 1,
        Some(nl) => body + nl,
        None => body,
    };
    Some(body..end)
}

/// Base64 as mail carries it: the alphabet, padding and whitespace.
fn is_base64_text(bytes: &[u8]) -> bool {
    let ok = |b: u8| {
        b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n' | b' ' | b'\t')
    };
    // Whole chunks without an early exit, which the compiler turns into vector code.
    bytes.chunks(64).all(|c| c.iter().fold(true, |all, &b| all & ok(b)))
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
    fn bodies_the_parser_would_show_as_text_are_kept() {
        // mail-parser turns a base64 body it cannot decode into text: a stray byte, or no
        // delimiter where the body ends. Those stay whole.
        for body in ["QUJD{\r\nREVG\r\n--b--\r\n", "QUJD\r\nREVG\r\n"] {
            let raw = format!(
                "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                 Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n{body}"
            );
            assert!(
                matches!(without_attachment_bodies(raw.as_bytes()), Cow::Borrowed(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn the_parse_and_the_cut_agree_on_dates_digests_and_encodings() {
        let same = |raw: &str| {
            let (whole, skim) = (parse(raw.as_bytes()), without_attachment_bodies(raw.as_bytes()));
            let skim = parse(&skim);
            assert_eq!(whole.parts.len(), skim.parts.len(), "{raw}");
            assert_eq!(whole.attachment_count(), skim.attachment_count(), "{raw}");
            assert_eq!(whole.body_text(0), skim.body_text(0), "{raw}");
            let inner = |m: &mail_parser::Message<'_>| {
                m.attachment(0)
                    .and_then(|a| a.message())
                    .and_then(|n| n.body_text(0))
                    .map(|t| t.into_owned())
            };
            assert_eq!(inner(&whole), inner(&skim), "{raw}");
        };
        // A zone after a sign makes the parser's date read two more bytes, line break or not.
        same(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf\n\
              Content-Transfer-Encoding: base64\nDate: -X\n\nQUJD\n\n--b\n\
              Content-Type: text/plain\n\nhello\n--b--\n",
        );
        // In a digest, a part without Content-Type is an attached message.
        same(
            "Content-Type: multipart/digest; boundary=b\n\n--b\n\n\
              Content-Type: multipart/mixed; boundary=c\n\n--c\nContent-Type: text/plain\n\nhi\n\
              --b\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\nQUJD\n\
              --b\n\n--c--\n--b--\n",
        );
        // The parser compares the encoding as written: "base64\x0b" is not base64 to it.
        same(
            "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\
              Content-Transfer-Encoding: base64\x0b\n\nContent-Type: multipart/mixed; boundary=c\n\n\
              --c\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\nQUJD\n--c--\n--b--\n",
        );
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
            Just("\r\n--c--\r\n"),
            Just("--b"),
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

    /// Well-formed MIME trees (text, base64 text, attachments, attached messages, nested
    /// multiparts sharing few boundary names), then damaged by one splice of `mailish` bytes
    /// at a random place.
    fn structured() -> impl Strategy<Value = Vec<u8>> {
        let leaf = prop_oneof![
            Just("Content-Type: text/plain\r\n\r\nHello --b and --c\r\n".to_owned()),
            Just("Content-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n".to_owned()),
            Just("Content-Type: image/png; name=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\nREVG\r\n".to_owned()),
            Just("Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n".to_owned()),
            Just("Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; a@b\r\n".to_owned()),
            Just("Date: -X\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n".to_owned()),
            Just("\r\nSubject: digest entry\r\n\r\nhello\r\n".to_owned()),
        ];
        let tree = leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                (
                    prop::sample::select(vec!["b", "c", "d"]),
                    prop::sample::select(vec!["mixed", "digest"]),
                    prop::collection::vec(inner.clone(), 1..4)
                )
                    .prop_map(|(b, sub, parts)| {
                        let mut m =
                            format!("Content-Type: multipart/{sub}; boundary=\"{b}\"\r\n\r\n");
                        for p in parts {
                            m += &format!("--{b}\r\n{p}");
                        }
                        m + &format!("--{b}--\r\n")
                    }),
                inner.prop_map(|p| format!(
                    "Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n{p}"
                )),
            ]
        });
        (tree, mailish(), any::<prop::sample::Index>()).prop_map(|(tree, splice, at)| {
            let mut mail = format!("From: a@b.example\r\nMessage-ID: <m@x>\r\n{tree}").into_bytes();
            let at = at.index(mail.len() + 1);
            mail.splice(at..at, splice);
            mail
        })
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

        /// Whatever the input, the parse reads the same text, HTML and identity from the
        /// skimmed bytes as from the whole mail.
        #[test]
        fn the_parse_reads_the_same_text(raw in prop_oneof![mailish(), structured()]) {
            let skimmed = without_attachment_bodies(&raw);
            let (whole, skim) = (MessageParser::default().parse(&raw), MessageParser::default().parse(&*skimmed));
            prop_assert_eq!(whole.is_some(), skim.is_some());
            let (Some(whole), Some(skim)) = (whole, skim) else { return Ok(()) };
            prop_assert_eq!(whole.body_text(0), skim.body_text(0));
            prop_assert_eq!(whole.body_html(0), skim.body_html(0));
            prop_assert_eq!(whole.message_id(), skim.message_id());
            prop_assert_eq!(whole.subject(), skim.subject());
            prop_assert_eq!(whole.parts.len(), skim.parts.len());
            prop_assert_eq!(whole.text_body_count(), skim.text_body_count());
            prop_assert_eq!(whole.html_body_count(), skim.html_body_count());
            prop_assert_eq!(whole.attachment_count(), skim.attachment_count());
            let texts = |m: &mail_parser::Message<'_>| {
                (0..m.text_body_count()).map(|i| m.body_text(i).map(|t| t.into_owned())).collect::<Vec<_>>()
            };
            prop_assert_eq!(texts(&whole), texts(&skim));
        }
    }

    #[test]
    fn shapes_outside_the_model_end_the_cutting_not_the_parse() {
        let attachment =
            "--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n";
        // A part whose header never ends (a million delimiter lines): nothing after it is cut.
        let mut raw = format!("Content-Type: multipart/mixed; boundary=b\r\n\r\n{attachment}");
        raw.push_str(&"--b\r\n".repeat(1_000_000));
        raw.push_str(attachment);
        let skimmed = without_attachment_bodies(raw.as_bytes());
        assert_eq!(skimmed.len(), raw.len() - 4, "only the first attachment");

        let nested = |levels: usize| {
            let mut mail = String::new();
            for i in 0..levels {
                mail += &format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n");
            }
            let last = levels - 1;
            mail + &format!(
                "Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n--b{last}--\r\n"
            )
        };
        let deep = nested(MAX_DEPTH);
        assert_eq!(without_attachment_bodies(deep.as_bytes()).len(), deep.len() - 4);
        let deeper = nested(MAX_DEPTH + 1);
        assert!(matches!(without_attachment_bodies(deeper.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn only_the_innermost_boundary_opens_a_part() {
        // Inside multipart c, a text part quotes "--b" and an attachment header: mail-parser
        // reads all of it as that part's text, and so must the cut.
        let raw = "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
                   Content-Type: multipart/alternative; boundary=c\r\n\r\n--c\r\n\
                   Content-Type: text/plain\r\n\r\nquoted:\r\n--b\r\n\
                   Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\nQUJD\r\n\
                   --c--\r\n--b--\r\n";
        assert!(matches!(without_attachment_bodies(raw.as_bytes()), Cow::Borrowed(_)));
        let text = parse(raw.as_bytes()).body_text(0).map(|t| t.into_owned());
        assert!(text.is_some_and(|t| t.contains("QUJD")));
    }

    #[test]
    fn plain_mail_is_untouched() {
        let raw = b"From: a@b.example\r\nSubject: base64 is mentioned\r\n\r\n--\r\nsig\r\n";
        assert!(matches!(without_attachment_bodies(raw), Cow::Borrowed(_)));
        assert!(matches!(without_attachment_bodies(b""), Cow::Borrowed(_)));
        assert!(matches!(without_attachment_bodies(b"--"), Cow::Borrowed(_)));
    }
}
