//! Parsing of real-looking message shapes: what collabd stores as subject and new text.

use collabd::mail::parse;

fn fixture(name: &str) -> collabd::mail::ParsedMail {
    let path = format!("{}/tests/fixtures/mail/{name}", env!("CARGO_MANIFEST_DIR"));
    parse(&std::fs::read(path).unwrap())
}

#[test]
fn each_shape_yields_its_subject_and_new_text() {
    for name in [
        "reply_base64_ben.eml",
        "reply_iso8859_de_manager_ana.eml",
        "reply_pt_utf8_b_subject_ana.eml",
        "reply_apple_mail_chloe.eml",
    ] {
        let m = fixture(name);
        let subject = m.subject.as_deref().unwrap_or_default();
        assert!(!subject.is_empty() && !subject.contains("=?"), "{name}: {subject:?}");
        assert!(!m.reply_text.is_empty(), "{name}: has new text");
        assert!(!m.reply_text.lines().any(|l| l.starts_with('>')), "{name}: {:?}", m.reply_text);
        assert!(m.text_body.len() > m.reply_text.len(), "{name}: history was stripped");
        assert!(m.message_id.is_some(), "{name}");
    }
}

#[test]
fn iso_8859_1_and_encoded_words_decode_to_utf8() {
    let m = fixture("reply_iso8859_de_manager_ana.eml");
    let all = format!("{} {}", m.subject.clone().unwrap_or_default(), m.text_body);
    assert!(all.chars().any(|c| "äöüÄÖÜß".contains(c)), "{all}");
    assert!(!all.contains('\u{FFFD}'), "{all}");
    let m = fixture("reply_pt_utf8_b_subject_ana.eml");
    let subject = m.subject.unwrap();
    assert!(!subject.is_ascii(), "{subject}");
}

#[test]
fn html_only_mail_becomes_text() {
    let html_only = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mail"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("reply_"))
        .find(|p| {
            let raw = String::from_utf8_lossy(&std::fs::read(p).unwrap()).to_lowercase();
            raw.contains("content-type: text/html") && !raw.contains("text/plain")
        })
        .expect("an HTML-only reply fixture");
    let m = parse(&std::fs::read(&html_only).unwrap());
    assert!(!m.reply_text.is_empty(), "{html_only:?}");
    assert!(!m.reply_text.contains("<div") && !m.reply_text.contains("</"), "{:?}", m.reply_text);
}

#[test]
fn mail_without_message_id_gets_a_stable_digest_key() {
    let raw = b"From: a@b.example\r\nSubject: hi\r\n\r\nbody";
    let (a, b) = (parse(raw), parse(raw));
    assert!(a.message_id.is_none());
    assert!(a.dedupe_key.starts_with("sha256:") && a.dedupe_key == b.dedupe_key);
}
