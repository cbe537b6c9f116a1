//! Arbitrary bytes through parse + classify never panic, and what comes out is storable.

use collabd::mail::{ClassifyRules, ParsedMail, classify::classify, parse};
use proptest::prelude::*;

fn rules() -> ClassifyRules {
    ClassifyRules { own_addresses: vec!["partners@brand.example".into()] }
}

/// Header-shaped input reaches deeper into the parser than uniform noise.
fn mailish() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just("Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"),
        Just("Content-Type: multipart/alternative; boundary=b\r\n"),
        Just("Content-Transfer-Encoding: base64\r\n"),
        Just("Content-Transfer-Encoding: quoted-printable\r\n"),
        Just("Subject: =?ISO-8859-1?Q?R=E9ponse_automatique_:?=\r\n"),
        Just("In-Reply-To: <a@b>\r\nReferences: <c@d> <e@f>\r\n"),
        Just("From: \"x\" <mailer-daemon@x>\r\n"),
        Just("Auto-Submitted: auto-replied\r\n"),
        Just("From: ana\0x@creators.example\r\nMessage-ID: <a\0b@c>\r\n"),
        Just("In-Reply-To: <x\0y@b>\r\nTo: p\0q@brand.example\r\n"),
        Just("\r\nFinal-Recipient: rfc822; ana\0@creators.example\r\nMessage-ID: <d\0e@f>\r\n"),
        Just("\r\n--b\r\n"),
        Just("\r\n--b--\r\n"),
        Just("\r\n\r\n"),
    ];
    prop::collection::vec(
        prop_oneof![
            header.prop_map(|h| h.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..64)
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// Every text Postgres will be given is free of NUL, which it refuses (and with it the
/// whole batch, again at every retry).
fn storable(mail: &ParsedMail) -> bool {
    let s = &mail.signals;
    [&mail.dedupe_key, &mail.text_body, &mail.reply_text]
        .into_iter()
        .chain(&mail.message_id)
        .chain(&mail.from_address)
        .chain(&mail.from_name)
        .chain(&mail.subject)
        .chain(&mail.in_reply_to)
        .chain(&mail.references)
        .chain(&mail.recipients)
        .chain(&s.reported_message_ids)
        .chain(&s.reported_recipients)
        .chain(s.headers.iter().map(|(_, v)| v))
        .all(|t| !t.contains('\0'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mail = parse(&raw);
        let _ = classify(&mail, &rules());
        prop_assert!(!mail.dedupe_key.is_empty());
        prop_assert!(storable(&mail));
    }

    #[test]
    fn mail_shaped_bytes_never_panic(raw in mailish()) {
        let mail = parse(&raw);
        let _ = classify(&mail, &rules());
        prop_assert!(storable(&mail), "{mail:?}");
    }
}
