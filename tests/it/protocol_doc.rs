//! docs/admin-protocol.md lists exactly the methods of `Call` and the codes of `ErrorCode`.

use std::collections::BTreeSet;

use collabd::admin::protocol::{Call, ErrorCode};
use serde_json::json;

const DOC: &str = include_str!("../../docs/admin-protocol.md");

/// The names serde knows for an enum, from its "unknown variant" error.
fn variants(err: impl std::fmt::Display) -> BTreeSet<String> {
    let msg = err.to_string();
    let list = msg.split("expected one of").nth(1).unwrap_or_else(|| panic!("{msg}"));
    list.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The backticked words of `text` that look like names (`a.b_c`), not paths.
fn names(text: &str, ok: impl Fn(char) -> bool) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.chars().all(&ok))
        .map(str::to_owned)
        .collect()
}

#[test]
fn doc_lists_every_method_and_only_those() {
    let err = serde_json::from_value::<Call>(json!({"method": "?", "params": {}})).unwrap_err();
    let methods = variants(err);
    let table = DOC.split("## Methods").nth(1).expect("a Methods section");
    let documented: BTreeSet<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .flat_map(|l| {
            names(l.split('|').nth(1).unwrap(), |c| c.is_ascii_lowercase() || c == '.' || c == '_')
        })
        .collect();
    assert_eq!(documented, methods, "docs/admin-protocol.md's method table vs Call");
    for m in &methods {
        // Every variant parses by its documented name; with no params it is either
        // complete or names a missing field, never an unknown method.
        if let Err(e) = Call::parse(m, serde_json::Value::Null) {
            assert_eq!(e.code, ErrorCode::InvalidParams, "{m}: {e}");
            assert!(e.field.is_some(), "{m}: {e}");
        }
    }
}

#[test]
fn doc_lists_every_error_code_and_only_those() {
    let codes = variants(serde_json::from_value::<ErrorCode>(json!("?")).unwrap_err());
    let para = DOC.split("**Error codes.**").nth(1).expect("an Error codes paragraph");
    let para = para.split("\n\n").next().unwrap();
    let documented = names(para, |c| c.is_ascii_lowercase() || c == '_');
    assert_eq!(documented, codes, "docs/admin-protocol.md's error codes vs ErrorCode");
}

#[test]
fn unknown_methods_and_bad_params_are_told_apart() {
    let e = Call::parse("collab.explode", json!({})).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::UnknownMethod, Some("method")));
    let e = Call::parse("collab.create", json!({"campaign": "x"})).unwrap_err();
    assert_eq!((e.code, e.field.as_deref()), (ErrorCode::InvalidParams, Some("creator")));
    let e = Call::parse(
        "collab.create",
        json!({"creator": "a", "campaign": "x",
        "terms": {"timeline": {"deadlines": [{"date": "soon"}]}}}),
    )
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("terms.timeline.deadlines[0].date"), "{e}");
    let e = Call::parse("campaign.create", json!({"name": "a", "evil": 1})).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("evil"), "{e}");
    for empty in [json!(null), json!({})] {
        assert!(matches!(Call::parse("status", empty.clone()), Ok(Call::Status(_))));
        assert!(matches!(Call::parse("campaign.list", empty), Ok(Call::CampaignList(_))));
    }
    // The wire format: {"method": …, "params": {…}}.
    let v = serde_json::to_value(Call::parse("collab.show", json!({"id": 3})).unwrap()).unwrap();
    assert_eq!(v, json!({"method": "collab.show", "params": {"id": 3}}));
}

#[test]
fn a_client_request_is_one_flat_object() {
    use collabd::admin::protocol::{CollabShow, Outgoing};
    let call = Call::from(CollabShow { id: 3 });
    let v = serde_json::to_value(Outgoing { id: 7, call: &call }).unwrap();
    assert_eq!(v, json!({"id": 7, "method": "collab.show", "params": {"id": 3}}));
}
