//! Store rules subtle enough to pin down below the admin API.

use crate::harness::*;
use collabd::store::creators::NewCreator;

fn creator(platform: &str, handle: &str, email: &str) -> NewCreator {
    NewCreator {
        name: handle.to_string(),
        platform: platform.to_string(),
        handle: handle.to_string(),
        tags: vec![],
        emails: vec![email.to_string()],
        manager_emails: vec![],
    }
}

#[tokio::test]
async fn creator_keys_resolve_the_same_alone_and_in_a_batch() {
    let db = TestDb::new().await;
    db.store
        .upsert_creators(&[
            creator("tiktok", "ana.makes", "ana@creators.example"),
            creator("youtube", "twin", "twin-yt@creators.example"),
            creator("tiktok", "twin", "twin-tt@creators.example"),
        ])
        .await
        .unwrap();
    let id = "SELECT id FROM creators WHERE handle = 'twin' AND platform = ";
    let ana = db.count("SELECT id FROM creators WHERE handle = 'ana.makes'").await;
    let twin_yt = db.count(&format!("{id}'youtube'")).await;
    let twin_tt = db.count(&format!("{id}'tiktok'")).await;

    let ana_id = ana.to_string();
    let cases: Vec<(&str, Option<i64>)> = vec![
        (&ana_id, Some(ana)),
        ("TikTok:ANA.makes", Some(ana)),
        ("@ana.makes", Some(ana)),
        ("ana.makes", Some(ana)),
        ("<Ana+promo@Creators.example>", Some(ana)),
        ("youtube:twin", Some(twin_yt)),
        ("twin-tt@creators.example", Some(twin_tt)),
        ("twin", None), // on two platforms: ambiguous, refused
        ("instagram:ana.makes", None),
        ("nobody", None),
        ("999999", None),
        ("", None),
    ];
    let keys: Vec<&str> = cases.iter().map(|(k, _)| *k).collect();
    let expected: Vec<Option<i64>> = cases.iter().map(|(_, id)| *id).collect();
    assert_eq!(db.store.creator_ids(&keys).await.unwrap(), expected);
    for (key, id) in cases {
        let found = db.store.find_creator(key).await.unwrap().map(|c| c.id);
        assert_eq!(found, id, "{key:?}");
    }
}
