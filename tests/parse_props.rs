//! Arbitrary bytes through parse + classify never panic, and what comes out is storable.

use collabd::mail::{ClassifyRules, classify::classify, parse};
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mail = parse(&raw);
        let _ = classify(&mail, &rules());
        prop_assert!(!mail.dedupe_key.is_empty());
        prop_assert!(!mail.text_body.contains('\0'));
    }

    #[test]
    fn mail_shaped_bytes_never_panic(raw in mailish()) {
        let mail = parse(&raw);
        let _ = classify(&mail, &rules());
        prop_assert!(!mail.reply_text.contains('\0'));
        prop_assert!(mail.subject.as_deref().is_none_or(|s| !s.contains('\0')));
    }
}
