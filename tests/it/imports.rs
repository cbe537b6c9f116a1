//! Imports as a hostile (or just careless) operator drives them, against the real daemon
//! and Postgres: an import is all or nothing however many chunks it takes, repeats and
//! taken addresses are reported by line, and one cell carries one address.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::harness::*;
use collabd::admin::protocol::CreatorList;
use serde_json::{Value, json};

/// A daemon under test and a directory for the CSV files given to collabctl.
struct App {
    app: TestApp,
    dir: tempfile::TempDir,
}

async fn start() -> App {
    App { app: spawn_app(AppOptions::default()).await, dir: tempfile::tempdir().unwrap() }
}

impl std::ops::Deref for App {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl App {
    fn file(&self, name: &str, body: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// `collabctl --json ARGS`: (exit status, report, stderr).
    fn import(&self, args: &[&str]) -> (Option<i32>, Value, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_collabctl"))
            .arg("--socket")
            .arg(self.env.path("admin.sock"))
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        (out.status.code(), report, stderr)
    }

    /// A connection of its own to the admin socket, for requests collabctl never sends.
    fn socket(&self) -> (UnixStream, BufReader<UnixStream>) {
        let s = UnixStream::connect(self.env.path("admin.sock")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    }
}

fn ask(s: &mut UnixStream, r: &mut BufReader<UnixStream>, request: Value) -> Value {
    s.write_all(format!("{request}\n").as_bytes()).unwrap();
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

fn lines(r: &Value) -> Vec<u64> {
    r["invalid"]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(|i| i["line"].as_u64()).collect())
}

fn creators_csv(rows: impl IntoIterator<Item = String>) -> String {
    let mut body = String::from("name,platform,handle,email,manager_email,tags\n");
    for r in rows {
        body += &r;
        body += "\n";
    }
    body
}

/// The file: 19 creators exist; 1,500 rows come, and row 1,202 (line 1,203)
/// repeats row 2's handle under another name. On the old code 1,000 creators were written
/// and collabctl said "internal".
#[tokio::test]
async fn a_late_repeat_in_a_big_file_writes_nothing_and_names_both_lines() {
    let app = start().await;
    let existing =
        creators_csv((0..19).map(|i| format!("Old {i},tiktok,old_{i},old{i}@x.example,,")));
    let (code, r, err) = app.import(&["creator", "import", &app.file("old.csv", &existing)]);
    assert_eq!((code, r["created"].as_u64()), (Some(0), Some(19)), "{r} {err}");

    let rows = (1..=1500).map(|i| match i {
        1202 => "Someone Else,tiktok,new_2,else@x.example,,".to_owned(),
        i => format!("New {i},tiktok,new_{i},new{i}@x.example,,"),
    });
    let file = app.file("new.csv", &creators_csv(rows));
    let (code, r, err) = app.import(&["creator", "import", &file]);
    assert_eq!((code, lines(&r)), (Some(1), vec![1203]), "{r}");
    assert_eq!(r["invalid"][0]["reason"], "tiktok:new_2 is on line 3 already", "{r}");
    assert!(err.contains("nothing imported"), "{err}");
    assert_eq!(app.db.rows("creators").await, 19, "nothing of the import was written");

    // The dry run says the same, by the same checks.
    let (code, r, _) = app.import(&["creator", "import", "--dry-run", &file]);
    assert_eq!((code, lines(&r), r["valid"].as_u64()), (Some(1), vec![1203], Some(1499)), "{r}");
    assert_eq!(app.db.rows("creators").await, 19);

    // --skip-invalid writes the rest in one go, and says what it left out.
    let (code, r, err) = app.import(&["creator", "import", "--skip-invalid", &file]);
    assert_eq!((code, r["created"].as_u64(), lines(&r)), (Some(2), Some(1499), vec![1203]));
    assert!(err.contains("skipped, on line(s) 1203"), "{err}");
    assert_eq!(app.db.rows("creators").await, 19 + 1499);
    let name = "SELECT count(*) FROM creators WHERE handle = 'new_2' AND name = 'New 2'";
    assert_eq!(app.db.count(name).await, 1, "the first row of the handle was kept");
}

/// Renaming a creator that has no tags failed in the upsert (the merged tags came out
/// NULL), while the dry run said the file was valid.
#[tokio::test]
async fn renaming_a_creator_without_tags_imports_and_the_dry_run_agrees() {
    let app = start().await;
    app.ok(creator("Ana", "tiktok", "ana.makes")).await;
    let file = app.file("rename.csv", &creators_csv(["Ana Souza,tiktok,ana.makes,,,".to_owned()]));
    let (code, r, err) = app.import(&["creator", "import", "--dry-run", &file]);
    assert_eq!((code, r["valid"].as_u64()), (Some(0), Some(1)), "{r} {err}");
    let (code, r, err) = app.import(&["creator", "import", &file]);
    assert_eq!((code, r["updated"].as_u64()), (Some(0), Some(1)), "{r} {err}");
    let sql = "SELECT count(*) FROM creators WHERE name = 'Ana Souza' AND tags = '{}'";
    assert_eq!(app.db.count(sql).await, 1);
}

/// 1,000 rows of about 1.2 KB: chunks are cut by bytes too, so no request is too large.
#[tokio::test]
async fn wide_rows_travel_in_chunks_cut_by_size() {
    let app = start().await;
    let tags = (0..60).map(|t| format!("tag-number-long-{t:04}")).collect::<Vec<_>>().join(";");
    let rows = (0..1000).map(|i| format!("Creator {i},tiktok,wide_{i},w{i}@x.example,,{tags}"));
    let body = creators_csv(rows);
    assert!(body.len() > 1_100_000, "{} bytes", body.len());
    let (code, r, err) = app.import(&["creator", "import", &app.file("wide.csv", &body)]);
    assert_eq!((code, r["created"].as_u64()), (Some(0), Some(1000)), "{r} {err}");

    // A single row over the limit is refused by its line, not by the socket.
    let huge = format!("Huge,tiktok,huge,h@x.example,,{}", "t;".repeat(200_000));
    let file = app.file("huge.csv", &creators_csv([huge, "Fine,tiktok,fine,,,".to_owned()]));
    let (code, r, _) = app.import(&["creator", "import", &file]);
    assert_eq!((code, lines(&r)), (Some(1), vec![2]), "{r}");
    assert!(r["invalid"][0]["reason"].as_str().unwrap().contains("bytes"), "{r}");
}

/// An address that is another creator's, or that comes twice in the file, is an invalid
/// row naming who has it; it is never dropped with a silent "skipped".
#[tokio::test]
async fn taken_and_repeated_addresses_are_reported_by_line() {
    let app = start().await;
    let first =
        creators_csv(["Ben,youtube,benbuilds,ben@x.example,mgr@agency.example,".to_owned()]);
    let (code, _, err) = app.import(&["creator", "import", &app.file("a.csv", &first)]);
    assert_eq!(code, Some(0), "{err}");
    let file = app.file(
        "b.csv",
        &creators_csv([
            "Ana,tiktok,ana.makes,ana@x.example,mgr@agency.example,".to_owned(),
            "Chloe,instagram,chloe.m,chloe@x.example,,".to_owned(),
            "Dan,tiktok,dan.cooks,CHLOE@x.example,,".to_owned(),
            "Ben Again,youtube,benbuilds,ben@x.example,,".to_owned(),
        ]),
    );
    let (code, r, _) = app.import(&["creator", "import", &file]);
    assert_eq!((code, lines(&r)), (Some(1), vec![2, 4]), "{r}");
    assert_eq!(r["invalid"][0]["field"], "manager_email", "{r}");
    let reason = r["invalid"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("belongs to creator youtube:benbuilds"), "{reason}");
    assert_eq!(r["invalid"][1]["reason"], "chloe@x.example is on line 3 already", "{r}");
    assert_eq!(app.db.rows("creators").await, 1);

    let (code, r, _) = app.import(&["creator", "import", "--skip-invalid", &file]);
    // Chloe is created; line 5 renames Ben (his own address is no conflict).
    let counts = (r["created"].as_u64(), r["updated"].as_u64(), r["skipped"].as_u64());
    assert_eq!((code, counts), (Some(2), (Some(1), Some(1), Some(0))), "{r}");
    let owner = "SELECT count(*) FROM creator_emails e JOIN creators c ON c.id = e.creator_id \
                 WHERE e.address = 'mgr@agency.example' AND c.handle = 'benbuilds'";
    assert_eq!(app.db.count(owner).await, 1, "the address stays with its owner");
}

/// One cell, one address: what would smuggle a second one in is refused, at import and
/// at `creator add`, and by `outreach record`'s `--to`.
#[tokio::test]
async fn an_email_must_be_one_plain_address() {
    let app = start().await;
    for bad in ["a@b@c", "x@y>, <evil@z", "Ana <ana@x.example>", "ana@x.example; bcc@evil.example"]
    {
        let (ok, _, err) = app.collabctl(
            &["creator", "add", "--name", "Ana", "--platform", "tiktok", "--handle", "ana"]
                .into_iter()
                .chain(["--email", bad])
                .collect::<Vec<_>>(),
        );
        assert!(!ok && err.contains("invalid_params") && err.contains("email"), "{bad}: {err}");
    }
    let csv =
        "name,platform,handle,email\nAna,tiktok,ana,a@b@c\nBen,tiktok,ben,\"x@y>, <evil@z\"\n";
    let (code, r, _) = app.import(&["creator", "import", &app.file("bad.csv", csv)]);
    assert_eq!((code, lines(&r)), (Some(1), vec![2, 3]), "{r}");
    assert_eq!(app.db.rows("creators").await, 0);
    assert_eq!(app.db.rows("creator_emails").await, 0);
}

/// A connection that goes away mid-import, or sends something else, writes nothing of it.
#[tokio::test]
async fn an_import_cut_short_writes_nothing() {
    let app = start().await;
    let row = |i: u64| {
        json!({"line": i + 1, "name": format!("C{i}"), "platform": "tiktok",
               "handle": format!("c{i}"), "emails": [format!("c{i}@x.example")]})
    };
    let chunk = |from: u64, more: bool| {
        json!({"id": from, "method": "creator.import",
               "params": {"rows": (from..from + 10).map(row).collect::<Vec<_>>(), "more": more}})
    };
    {
        let (mut s, mut r) = app.socket();
        let a = ask(&mut s, &mut r, chunk(1, true));
        assert_eq!(
            (a["result"]["created"].as_u64(), &a["result"]["committed"]),
            (Some(10), &json!(false)),
            "{a}"
        );
        // The client dies here.
    }
    let (mut s, mut r) = app.socket();
    let a = ask(&mut s, &mut r, chunk(11, true));
    assert_eq!(a["result"]["created"], 10, "{a}");
    let a = ask(&mut s, &mut r, json!({"id": 99, "method": "campaign.list"}));
    assert_eq!(a["error"]["code"], "invalid_request", "{a}");
    assert!(a["error"]["message"].as_str().unwrap().contains("rolled back"), "{a}");
    // The next chunk starts a new import, which commits alone.
    let a = ask(&mut s, &mut r, chunk(21, false));
    assert_eq!(
        (&a["result"]["created"], &a["result"]["committed"]),
        (&json!(10), &json!(true)),
        "{a}"
    );
    eventually(Duration::from_secs(5), || async { app.db.rows("creators").await == 10 }).await;
    assert_eq!(app.db.rows("creators").await, 10, "only the import that finished");
    let sql = "SELECT count(*) FROM creators WHERE handle IN ('c1', 'c11')";
    assert_eq!(app.db.count(sql).await, 0);
}

/// NUL in a cell names its line and column, in the file and on the socket.
#[tokio::test]
async fn nul_in_an_import_names_the_line_and_field() {
    let app = start().await;
    let csv = "name,platform,handle,email\nAna,tiktok,ana,ana@x.example\nB\0en,tiktok,ben,ben@x.example\n";
    let path = app.dir.path().join("nul.csv");
    std::fs::write(&path, csv.as_bytes()).unwrap();
    let (code, r, _) = app.import(&["creator", "import", path.to_str().unwrap()]);
    assert_eq!((code, lines(&r)), (Some(1), vec![3]), "{r}");
    assert_eq!(r["invalid"][0]["field"], "name", "{r}");

    let (mut s, mut rd) = app.socket();
    let rows = json!([{"line": 7, "name": "Ana", "platform": "tiktok", "handle": "ana",
                       "emails": ["ana@x.example", "b\u{0}@x.example"]}]);
    let a = ask(
        &mut s,
        &mut rd,
        json!({"id": 1, "method": "creator.import", "params": {"rows": rows}}),
    );
    let invalid = &a["result"]["invalid"][0];
    assert_eq!((&invalid["line"], &invalid["field"]), (&json!(7), &json!("emails[1]")), "{a}");
    assert_eq!(app.db.rows("creators").await, 0);
}

/// `creator list --search` takes `%` and `_` as themselves.
#[tokio::test]
async fn search_wildcards_are_literal() {
    let app = start().await;
    let csv = creators_csv([
        "Ana_Souza,tiktok,ana_s,,,".to_owned(),
        "AnaXSouza,tiktok,anaxs,,,".to_owned(),
        "100% Ben,tiktok,ben100,,,".to_owned(),
    ]);
    let (code, _, err) = app.import(&["creator", "import", &app.file("c.csv", &csv)]);
    assert_eq!(code, Some(0), "{err}");
    for (search, want) in
        [("a_s", vec!["ana_s"]), ("%", vec!["ben100"]), ("ana", vec!["ana_s", "anaxs"])]
    {
        let list = CreatorList { search: Some(search.into()), ..CreatorList::default() };
        let (items, _) = app.ok(list).await.into_parts();
        let handles: Vec<String> = items.into_iter().map(|c| c.handle).collect();
        assert_eq!(handles, want, "--search {search}");
    }
}
