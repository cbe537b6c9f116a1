//! The admin socket and collabctl, against the real daemon, Postgres, Dovecot and SMTP.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::harness::*;
use collabd::admin::protocol::OutreachFields;
use serde_json::{Value, json};

/// One raw request line; returns the parsed response line.
fn raw(env: &DaemonEnv, line: &[u8]) -> Value {
    let mut s = UnixStream::connect(env.path("admin.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close mid-write (oversized lines); its answer is still readable.
    let _ = s.write_all(line).and_then(|_| s.write_all(b"\n"));
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn campaigns_creators_collaborations_and_lifecycle_through_collabctl() {
    let s = spawn_app(AppOptions::default()).await;
    let env = &s.env;

    let c = collabctl_json(env, &["campaign", "create", "Winter Glow"]);
    assert_eq!(c["name"], "Winter Glow");
    let (ok, _, err) = collabctl(env, &["campaign", "create", "winter glow"]);
    assert!(!ok && err.contains("conflict"), "{err}");

    let ana = collabctl_json(
        env,
        &[
            "creator",
            "add",
            "--name",
            "Ana Souza",
            "--platform",
            "TikTok",
            "--handle",
            "@ana.makes",
            "--email",
            "Ana@Creators.example",
            "--manager-email",
            "mgr@talent.example",
        ],
    );
    assert_eq!(ana["platform"], "tiktok");
    assert_eq!(ana["handle"], "ana.makes");
    assert_eq!(ana["emails"].as_array().unwrap().len(), 2);
    let (ok, _, err) = collabctl(
        env,
        &["creator", "add", "--name", "Dup", "--platform", "tiktok", "--handle", "ANA.MAKES"],
    );
    assert!(!ok && err.contains("conflict"), "{err}");
    let (ok, _, err) = collabctl(
        env,
        &[
            "creator",
            "add",
            "--name",
            "X",
            "--platform",
            "tiktok",
            "--handle",
            "x",
            "--email",
            "not-an-address",
        ],
    );
    assert!(!ok && err.contains("email"), "{err}");
    let listed = collabctl_json(env, &["creator", "list", "--search", "ana"]);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let shown = collabctl_json(env, &["creator", "show", "mgr@talent.example"]);
    assert_eq!(shown["id"], ana["id"]);

    // Manual collaboration with every kind of term.
    let collab = collabctl_json(
        env,
        &[
            "collab",
            "create",
            "--creator",
            "tiktok:ana.makes",
            "--campaign",
            "Winter Glow",
            "--deliverable",
            "2 x tiktok_video",
            "--deliverable",
            "1 x instagram_story",
            "--hashtags",
            "#winterglow",
            "--talking-points",
            "vegan formula",
            "--fixed-fee",
            "500",
            "--currency",
            "USD",
            "--commission-percent",
            "10",
            "--product",
            "Glow kit",
            "--deadline",
            "publish=2026-12-01",
            "--terms",
            "exclusivity 30 days; usage rights 6 months",
        ],
    );
    let id = collab["id"].as_i64().unwrap();
    assert_eq!(collab["status"], "pending");
    assert_eq!(collab["source"], "manual");
    assert_eq!(collab["creator"]["handle"], "ana.makes");
    assert_eq!(collab["campaign"]["name"], "Winter Glow");
    assert_eq!(
        collab["deliverables"][0],
        json!({"post_type": "tiktok_video", "quantity": 2,
        "talking_points": ["vegan formula"], "hashtags": ["#winterglow"]})
    );
    // Money is a decimal string in the currency's minor units, never a float.
    assert_eq!(collab["compensation"]["fixed_fee"], json!({"amount": "500.00", "currency": "USD"}));
    assert_eq!(collab["compensation"]["commission_percent"], "10", "{collab}");
    assert_eq!(
        collab["timeline"]["deadlines"][0],
        json!({"what": "publish", "date": "2026-12-01"})
    );
    assert_eq!(collab["additional_terms"], "exclusivity 30 days; usage rights 6 months");
    for key in [
        "id",
        "status",
        "source",
        "creator",
        "campaign",
        "deliverables",
        "compensation",
        "timeline",
        "additional_terms",
        "created_at",
        "updated_at",
    ] {
        assert!(collab.get(key).is_some(), "--json shape lacks {key}");
    }

    // No duplicate open collaboration, unless asked for.
    let create = ["collab", "create", "--creator", "ana.makes", "--campaign", "Winter Glow"];
    let kit = [&create[..], &["--product", "kit"]].concat();
    let (ok, _, err) = collabctl(env, &kit);
    assert!(!ok && err.contains("duplicate") && err.contains(&id.to_string()), "{err}");
    let dup = collabctl_json(env, &[&kit[..], &["--allow-duplicate"]].concat());
    assert_ne!(dup["id"].as_i64().unwrap(), id);
    // The same request from a JSON file, as docs/admin-protocol.md shows it.
    let request = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        request.path(),
        r#"{"creator": "ana.makes", "campaign": "Winter Glow", "allow_duplicate": true,
            "terms": {"deliverables": [{"post_type": "tiktok_video", "quantity": 2}],
                      "compensation": {"product": "Glow kit"},
                      "additional_terms": "exclusivity 30 days"}}"#,
    )
    .unwrap();
    let from_file =
        collabctl_json(env, &["collab", "create", "--from-file", request.path().to_str().unwrap()]);
    assert_eq!(from_file["deliverables"][0]["quantity"], 2, "{from_file}");
    assert_eq!(from_file["additional_terms"], "exclusivity 30 days");

    // Validation errors name the field.
    for (args, field) in [
        (vec!["--deliverable", "2 x tiktok_dance", "--product", "kit"], "post_type"),
        (vec!["--deliverable", "0 x tiktok_video", "--product", "kit"], "quantity"),
        (vec!["--deliverable", "1 x tiktok_video"], "compensation"),
        (vec!["--fixed-fee", "-5", "--currency", "USD"], "amount"),
        (vec!["--fixed-fee", "5", "--currency", "DOLLARS"], "currency"),
        (vec!["--product", "kit", "--deadline", "next week"], "date"),
    ] {
        let all = [&create[..], &["--allow-duplicate"], &args].concat();
        let (ok, _, err) = collabctl(env, &all);
        assert!(!ok && err.contains(field), "{all:?}: {err}");
    }
    let (ok, _, err) = collabctl(
        env,
        &[
            "collab",
            "create",
            "--creator",
            "nobody",
            "--campaign",
            "Winter Glow",
            "--product",
            "kit",
        ],
    );
    assert!(!ok && err.contains("not_found"), "{err}");

    // Lifecycle: illegal moves name the allowed next states.
    let (ok, _, err) = collabctl(env, &["collab", "advance", &id.to_string(), "--to", "completed"]);
    assert!(
        !ok && err.contains("invalid_transition") && err.contains("negotiating, cancelled"),
        "{err}"
    );
    for to in ["negotiating", "fulfilling", "completed"] {
        let v = collabctl_json(
            env,
            &["collab", "advance", &id.to_string(), "--to", to, "--reason", "call went well"],
        );
        assert_eq!(v["status"], to);
    }
    let (ok, _, err) = collabctl(env, &["collab", "cancel", &id.to_string(), "--reason", "late"]);
    assert!(!ok && err.contains("none (final)"), "{err}");
    let cancelled = collabctl_json(
        env,
        &["collab", "cancel", &dup["id"].to_string(), "--reason", "created by mistake"],
    );
    assert_eq!(cancelled["status"], "cancelled");

    // Every change is recorded with who, when and why.
    let shown = collabctl_json(env, &["collab", "show", &id.to_string()]);
    let events = shown["events"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["to_status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("created", "pending"),
            ("status", "negotiating"),
            ("status", "fulfilling"),
            ("status", "completed")
        ]
    );
    assert!(events.iter().all(|e| e["actor"].as_str().unwrap().contains("uid 0")), "{events:?}");
    assert_eq!(events[1]["reason"], "call went well");
    // A completed collaboration frees its creator and campaign's one open slot.
    let next = collabctl_json(env, &kit);
    assert_eq!(next["status"], "pending");

    let updated = collabctl_json(
        env,
        &[
            "collab",
            "update",
            &dup["id"].to_string(),
            "--product",
            "bigger kit",
            "--reason",
            "renegotiated",
        ],
    );
    assert_eq!(updated["compensation"]["product"], "bigger kit");
    let list = collabctl_json(env, &["collab", "list", "--status", "completed"]);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // The human table output is readable.
    let (ok, table, _) = collabctl(env, &["collab", "list", "--campaign", "Winter Glow"]);
    assert!(
        ok && table.starts_with("ID") && table.contains("Ana Souza (tiktok:ana.makes)"),
        "{table}"
    );
    let archived = collabctl_json(env, &["campaign", "archive", "Winter Glow"]);
    assert!(archived["archived_at"].is_string());
    let (ok, status, _) = collabctl(env, &["status"]);
    assert!(ok && status.contains("database ok") && status.contains("brand"), "{status}");
    assert!(s.logs().contains("admin change requested"));
}

#[tokio::test]
async fn imports_report_created_updated_skipped_and_invalid_lines() {
    let s = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("creators.csv");
    std::fs::write(
        &csv,
        "name,platform,handle,email,manager_email,tags,ignored\n\
         Ana Souza,tiktok,ana.makes,ana@creators.example,,beauty;vegan,x\n\
         Ben Okafor,youtube,benbuilds,ben@creators.example,mgr@agency.example,,\n\
         ,youtube,nameless,n@creators.example,,,\n\
         Ana Again,TikTok,ANA.MAKES,ana@creators.example,,,\n\
         Chloé,instagram,chloe.m,not-an-email,,,\n",
    )
    .unwrap();
    // Invalid rows: nothing is imported unless --skip-invalid, which exits 2. Line 5
    // repeats line 2's creator: listed with the line it repeats, never skipped silently.
    let (code, r, _) = import(&s.env, &["creator", "import", csv.to_str().unwrap()]);
    assert_eq!((code, invalid_lines(&r)), (Some(1), vec![4, 5, 6]), "{r}");
    assert_eq!(r["invalid"][1]["reason"], "tiktok:ana.makes is on line 2 already", "{r}");
    assert_eq!(s.db.rows("creators").await, 0);
    let (code, r, _) =
        import(&s.env, &["creator", "import", "--skip-invalid", csv.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{r}");
    assert_eq!(r["created"], 2, "{r}");
    assert_eq!(r["skipped"], 0, "{r}");
    assert_eq!(invalid_lines(&r), vec![4, 5, 6]);

    // Importing again updates what changed and skips the rest.
    std::fs::write(&csv, "name,platform,handle,email\nAna S.,tiktok,ana.makes,ana@creators.example\nBen Okafor,youtube,benbuilds,ben@creators.example\n").unwrap();
    let r = s.collabctl_json(&["creator", "import", csv.to_str().unwrap()]);
    assert_eq!(
        (r["created"].as_u64(), r["updated"].as_u64(), r["skipped"].as_u64()),
        (Some(0), Some(1), Some(1)),
        "{r}"
    );

    s.create_campaign("Winter Glow").await;
    let out = dir.path().join("outreach.csv");
    std::fs::write(
        &out,
        "message_id,campaign,platform,handle,to,subject,sent_at\n\
         <o-1@crm.example>,Winter Glow,tiktok,ana.makes,ana@creators.example,Hi Ana,2026-11-20\n\
         <o-2@crm.example>,Winter Glow,youtube,nobody,x@y.example,Hi,2026-11-20\n\
         <o-1@crm.example>,Winter Glow,tiktok,ana.makes,ana@creators.example,Hi Ana,2026-11-20\n",
    )
    .unwrap();
    let (code, r, _) =
        import(&s.env, &["outreach", "import", "--skip-invalid", out.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{r}");
    assert_eq!((r["recorded"].as_u64(), r["skipped"].as_u64()), (Some(1), Some(0)), "{r}");
    // Line 3 names nobody; line 4 repeats line 2's Message-ID.
    assert_eq!(invalid_lines(&r), vec![3, 4], "{r}");
    assert_eq!(r["invalid"][1]["field"], "message_id", "{r}");

    // One row by hand, keyed by any form of creator key; known Message-IDs are skipped.
    let record = |creator: &'static str| {
        let args = [
            "outreach",
            "record",
            "--message-id",
            "<o-9@crm.example>",
            "--campaign",
            "Winter Glow",
            "--creator",
            creator,
            "--to",
            "ben@creators.example",
            "--sent-at",
            "2026-11-21T10:00:00Z",
        ];
        s.collabctl(&args)
    };
    let (ok, out, _) = record("ben@creators.example");
    assert!(ok && out.contains("recorded: 1"), "{out}");
    let (ok, out, _) = record("youtube:benbuilds");
    assert!(ok && out.contains("skipped: 1"), "{out}");
    let (ok, _, err) = record("nobody");
    assert!(!ok && err.contains("not_found"), "{err}");
    let sql = "SELECT count(*) FROM outreach_messages o JOIN creators c ON c.id = o.creator_id \
               WHERE o.message_id = 'o-9@crm.example' AND c.handle = 'benbuilds' \
                 AND o.sent_at = '2026-11-21T10:00:00Z'";
    assert_eq!(s.db.count(sql).await, 1);

    // A reply to imported outreach matches it.
    s.imap()
        .append(reply(
            "ana@creators.example",
            "r1@creators.example",
            Some("o-1@crm.example"),
            &[],
            "Yes!",
        ))
        .await;
    s.wait_for_rows("collaborations", 1, Duration::from_secs(20)).await;
}

/// `collabctl --json …` for imports, which may fail on purpose: (exit status, the
/// report, stderr).
fn import(env: &DaemonEnv, args: &[&str]) -> (Option<i32>, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_collabctl"))
        .arg("--socket")
        .arg(env.path("admin.sock"))
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("collabctl {args:?}: {e}: {stdout:?} {stderr}"));
    (out.status.code(), report, stderr)
}

fn invalid_lines(r: &Value) -> Vec<u64> {
    r["invalid"].as_array().unwrap().iter().map(|i| i["line"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn outreach_import_takes_mail_dates_and_is_all_or_nothing_and_idempotent() {
    let s = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let creators = dir.path().join("creators.csv");
    std::fs::write(
        &creators,
        "name,platform,handle,email\n\
         Ana Souza,tiktok,ana.makes,ana@creators.example\n\
         Ben Okafor,youtube,benbuilds,ben@creators.example\n",
    )
    .unwrap();
    let creators = creators.to_str().unwrap();
    let (code, r, err) = import(&s.env, &["creator", "import", creators]);
    assert_eq!((code, r["created"].as_u64()), (Some(0), Some(2)), "{r} {err}");
    // Nothing extra on a pipe: no progress, no summary.
    assert_eq!(err, "");
    // The same creators again: nothing changes, nothing is an error.
    let (code, r, _) = import(&s.env, &["creator", "import", creators]);
    assert_eq!(code, Some(0), "{r}");
    assert_eq!((r["created"].as_u64(), r["skipped"].as_u64()), (Some(0), Some(2)), "{r}");
    assert_eq!(s.db.rows("creators").await, 2);
    s.create_campaign("Winter Glow").await;

    let header = "message_id,campaign,platform,handle,to,subject,sent_at\n";
    let good = [
        "<o-1@crm.example>,Winter Glow,tiktok,ana.makes,ana@creators.example,Hi,\"Sun, 15 Nov 2026 16:59:12 GMT\"",
        "<o-2@crm.example>,Winter Glow,youtube,benbuilds,ben@creators.example,Hi,\"15 Nov 2026 17:59:12 +0100\"",
        "<o-3@crm.example>,Winter Glow,tiktok,ana.makes,ana@creators.example,Hi,\"Sun, 15 Nov 2026 08:59:12 PST\"",
        "<o-4@crm.example>,Winter Glow,youtube,benbuilds,ben@creators.example,Hi,\"Sun, 15 Nov 2026 16:59:12 UTC\"",
        "<o-5@crm.example>,Winter Glow,tiktok,ana.makes,ana@creators.example,Hi,2026-11-15 16:59:12",
        "<o-6@crm.example>,Winter Glow,youtube,benbuilds,ben@creators.example,Hi,2026-11-15T16:59:12Z",
    ];
    // Line 3: a date in no known shape (found by collabctl); line 7: an unknown creator
    // (found by the daemon).
    let bad3 = "<o-7@crm.example>,Winter Glow,tiktok,ana.makes,ana@creators.example,Hi,15/11/2026";
    let bad7 = "<o-8@crm.example>,Winter Glow,tiktok,nobody,x@creators.example,Hi,2026-11-15";
    let mut body = String::from(header);
    for l in [good[0], bad3, good[1], good[2], good[3], bad7, good[4], good[5]] {
        body += l;
        body += "\n";
    }
    let file = dir.path().join("outreach.csv");
    std::fs::write(&file, body).unwrap();
    let file = file.to_str().unwrap();

    let (code, r, err) = import(&s.env, &["outreach", "import", file]);
    assert_eq!((code, invalid_lines(&r)), (Some(1), vec![3, 7]), "{r}");
    assert_eq!(r["invalid"][0]["field"], "sent_at", "{r}");
    assert_eq!(r["invalid"][1]["field"], "creator", "{r}");
    assert!(err.contains("line(s) 3, 7") && err.contains("nothing imported"), "{err}");
    assert_eq!(s.db.rows("outreach_messages").await, 0);

    let (code, r, _) = import(&s.env, &["outreach", "import", "--dry-run", file]);
    assert_eq!((code, invalid_lines(&r), r["valid"].as_u64()), (Some(1), vec![3, 7], Some(6)));
    assert_eq!(s.db.rows("outreach_messages").await, 0);

    // The human report names the lines too.
    let (ok, out, _) = s.collabctl(&["outreach", "import", file]);
    assert!(!ok && out.contains("line 3: sent_at") && out.contains("line 7: creator"), "{out}");

    let (code, r, err) = import(&s.env, &["outreach", "import", "--skip-invalid", file]);
    assert_eq!((code, r["recorded"].as_u64()), (Some(2), Some(6)), "{r}");
    assert_eq!(invalid_lines(&r), vec![3, 7]);
    assert!(err.contains("skipped, on line(s) 3, 7"), "{err}");
    let sql = "SELECT count(*) FROM outreach_messages WHERE sent_at = '2026-11-15T16:59:12Z'";
    assert_eq!(s.db.count(sql).await, 6, "every shape of date is the same instant");

    // Again: nothing changes; the rows are reported as skipped, not as errors.
    let (code, r, _) = import(&s.env, &["outreach", "import", "--skip-invalid", file]);
    assert_eq!((code, r["recorded"].as_u64(), r["skipped"].as_u64()), (Some(2), Some(0), Some(6)));
    assert_eq!(s.db.rows("outreach_messages").await, 6);

    // The fixed file: the dry run passes, the import adds nothing new and succeeds.
    let mut fixed = String::from(header);
    for l in good {
        fixed += l;
        fixed += "\n";
    }
    std::fs::write(file, fixed).unwrap();
    let (code, r, err) = import(&s.env, &["outreach", "import", "--dry-run", file]);
    assert_eq!((code, r["valid"].as_u64(), err.as_str()), (Some(0), Some(6), ""), "{r}");
    let (code, r, _) = import(&s.env, &["outreach", "import", file]);
    assert_eq!((code, r["recorded"].as_u64(), r["skipped"].as_u64()), (Some(0), Some(0), Some(6)));
    assert_eq!(s.db.rows("outreach_messages").await, 6);
}

#[tokio::test]
async fn an_invalid_row_in_a_late_chunk_stops_the_whole_import() {
    let s = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    let mut body = String::from("name,platform,handle,email\n");
    for i in 0..2_500 {
        // Line 2,402 (row 2,401, in the third chunk of 1,000) has a bad address, which only
        // the daemon checks.
        let email = if i == 2_400 { "not-an-email".to_owned() } else { format!("c{i}@x.example") };
        body.push_str(&format!("Creator {i},tiktok,creator_{i},{email}\n"));
    }
    std::fs::write(&csv, body).unwrap();
    let (code, r, _) = import(&s.env, &["creator", "import", csv.to_str().unwrap()]);
    assert_eq!((code, invalid_lines(&r)), (Some(1), vec![2_402]), "{r}");
    assert_eq!(s.db.rows("creators").await, 0);
}

#[tokio::test]
async fn fifty_thousand_creator_rows_import() {
    let s = spawn_app(AppOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("big.csv");
    let mut body = String::from("name,platform,handle,email\n");
    for i in 0..50_000 {
        body.push_str(&format!("Creator {i},tiktok,creator_{i},c{i}@creators.example\n"));
    }
    std::fs::write(&csv, body).unwrap();
    let started = std::time::Instant::now();
    let r = s.collabctl_json(&["creator", "import", csv.to_str().unwrap()]);
    println!("imported 50,000 creators in {:?}", started.elapsed());
    assert_eq!(r["created"], 50_000);
    assert_eq!(s.db.rows("creator_emails").await, 50_000);
}

#[tokio::test]
async fn unmatched_messages_can_be_assigned_by_hand() {
    let s = spawn_app(AppOptions::default()).await;
    s.create_campaign("Winter Glow").await;
    s.ok(creator("Eve", "youtube", "evecooks")).await;
    s.imap()
        .append(reply(
            "eve.private@icloud.example",
            "eve1@icloud.example",
            None,
            &[],
            "Hi, saw your campaign!",
        ))
        .await;
    s.wait_for_rows("inbound_messages", 1, Duration::from_secs(20)).await;
    let inbox = s.collabctl_json(&["inbox", "unmatched"]);
    let msg = inbox[0]["id"].as_i64().unwrap();
    assert_eq!(inbox[0]["from_address"], "eve.private@icloud.example");
    let collab = collabctl_json(
        &s.env,
        &[
            "inbox",
            "assign",
            &msg.to_string(),
            "--creator",
            "evecooks",
            "--campaign",
            "Winter Glow",
        ],
    );
    assert_eq!(collab["status"], "pending");
    assert_eq!(collab["source"], "email");
    assert_eq!(collab["messages"][0]["id"], msg);
    assert_eq!(s.collabctl_json(&["inbox", "unmatched"]).as_array().unwrap().len(), 0);
    // The sender is remembered: her next mail matches by address.
    let eve = s.collabctl_json(&["creator", "show", "evecooks"]);
    assert!(eve["emails"].to_string().contains("eve.private@icloud.example"));
    let (ok, _, err) = collabctl(
        &s.env,
        &[
            "inbox",
            "assign",
            &msg.to_string(),
            "--creator",
            "evecooks",
            "--campaign",
            "Winter Glow",
        ],
    );
    assert!(!ok && err.contains("not_found"), "{err}");
}

#[tokio::test]
async fn outreach_send_then_reply_becomes_a_pending_collaboration() {
    let smtp = SmtpSink::start();
    let s = spawn_app(AppOptions::default().config(&format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Brand Partnerships <{BRAND}>\"\nreply_to = \"{BRAND}\"\n",
        smtp.port
    )))
    .await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    s.add_creator("Ana", "tiktok", "ana", "ana@creators.example").await;
    s.add_creator("Out", "tiktok", "out", "out@creators.example").await;
    let body = env.path("body.txt");
    std::fs::write(&body, "Hi Ana,\nwould you like to join Winter Glow?\n").unwrap();
    let body = body.to_str().unwrap();

    let send = [
        "outreach",
        "send",
        "--campaign",
        "Winter Glow",
        "--creator",
        "ana",
        "--subject",
        "Winter Glow x Ana",
        "--body-file",
        body,
    ];
    let dry = collabctl_json(env, &[&send[..], &["--dry-run"]].concat());
    assert!(dry["message"].as_str().unwrap().contains("Subject: Winter Glow x Ana"));
    assert_eq!(s.db.rows("outreach_messages").await, 0);
    assert!(smtp.received().is_empty());

    let sent = collabctl_json(env, &send);
    let mid = sent["message_id"].as_str().unwrap().to_owned();
    let reply_to = sent["reply_to"].as_str().unwrap().to_owned();
    assert!(reply_to.starts_with("partners+"), "{reply_to}");
    assert!(
        eventually(Duration::from_secs(10), || async { smtp.received().contains(&mid) }).await,
        "SMTP server got: {}\n{}",
        smtp.received(),
        s.logs()
    );
    let received = smtp.received();
    assert!(received.contains(&format!("Message-ID: <{mid}>")), "{received}");
    assert!(received.contains(&reply_to), "{received}");
    let status: String =
        sqlx::query_scalar("SELECT status FROM outreach_messages WHERE message_id = $1")
            .bind(&mid)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "sent");

    // The creator replies to the message as received: the full product loop.
    s.imap()
        .append(reply(
            "ana@creators.example",
            "ana-reply@creators.example",
            Some(&mid),
            &[&mid],
            "I'm in!",
        ))
        .await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            s.db.count(
                "SELECT count(*) FROM collaborations WHERE status = 'pending' AND source = 'email'",
            )
            .await
                == 1
        })
        .await,
        "{}",
        s.logs()
    );

    // Opted-out creators are refused.
    sqlx::query("UPDATE creators SET unsubscribed_at = now() WHERE handle = 'out'")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let (ok, _, err) = collabctl(
        env,
        &[
            "outreach",
            "send",
            "--campaign",
            "Winter Glow",
            "--creator",
            "out",
            "--subject",
            "x",
            "--body-file",
            body,
        ],
    );
    assert!(!ok && err.contains("unsubscribed"), "{err}");
}

#[tokio::test]
async fn hostile_input_gets_structured_errors() {
    // The read timeout comes from an environment override, as operators would set it.
    let s = spawn_app(AppOptions::default().env(&[("COLLABD__ADMIN__READ_TIMEOUT", "1s")])).await;
    let env = &s.env;
    assert_eq!(code(&raw(env, b"this is not json")), "invalid_request");
    assert_eq!(code(&raw(env, br#"{"id":1,"method":"collab.explode"}"#)), "unknown_method");
    let v = raw(env, br#"{"id":7,"method":"collab.show","params":{"id":"seven"}}"#);
    assert_eq!((code(&v), v["id"].as_i64()), ("invalid_params", Some(7)));
    let v = raw(env, br#"{"id":2,"method":"collab.create","params":{"campaign":"x"}}"#);
    assert_eq!((code(&v), v["error"]["field"].as_str()), ("invalid_params", Some("creator")));
    let v = raw(env, br#"{"id":3,"method":"campaign.create","params":{"name":"a","evil":1}}"#);
    assert_eq!((code(&v), v["error"]["field"].as_str()), ("invalid_params", Some("evil")));
    assert_eq!(code(&raw(env, &[0xff, 0xfe, b'{'])), "invalid_request");
    let v = raw(env, br#"{"id":4,"method":"campaign.create","params":{"name":"a\u0000b"}}"#);
    assert_eq!(code(&v), "invalid_params", "{v}");

    let huge = vec![b'a'; 2 * 1024 * 1024];
    assert_eq!(code(&raw(env, &huge)), "too_large");

    // A slow client is disconnected with a timeout error.
    let sock = UnixStream::connect(env.path("admin.sock")).unwrap();
    let mut line = String::new();
    BufReader::new(sock).read_line(&mut line).unwrap();
    assert!(line.contains("timeout"), "{line}");

    // The daemon still serves.
    assert!(raw(env, br#"{"id":9,"method":"status"}"#)["result"]["database"].as_bool().unwrap());
}

#[tokio::test]
async fn a_non_admin_uid_is_refused_and_the_socket_is_0660() {
    use std::os::unix::fs::PermissionsExt;
    let mut s = spawn_app(AppOptions::default()).await;
    let sock = s.env.path("admin.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    // Make the path reachable for uid nobody; group root (gid 0) passes the file mode,
    // so only the peer-credential check stands in the way.
    std::fs::set_permissions(s.env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // uid nobody may not reach the build tree (a clone under a 0700 folder): run a copy.
    let ctl = s.env.path("collabctl");
    std::fs::copy(env!("CARGO_BIN_EXE_collabctl"), &ctl).unwrap();
    let mut ctl_cmd = std::process::Command::new(&ctl);
    ctl_cmd.current_dir("/").arg("--socket").arg(&sock).arg("status").uid(65534).gid(0);
    // Another test forking at the moment of the copy holds its write descriptor until that
    // child execs: ETXTBSY ("text file busy") then passes in a moment.
    let mut tries = 0;
    let out = loop {
        match ctl_cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 250 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("forbidden") && err.contains("65534"), "{err}");
    assert!(s.logs().contains("admin connection refused"));

    // Clean shutdown removes the socket; a stale one from a crash is replaced.
    assert!(s.daemon.terminate().0.success());
    assert!(!sock.exists());
    let _stale = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(_stale);
    assert!(sock.exists());
    let daemon = s.env.spawn();
    wait_for_socket(&s.env, &daemon).await;
    assert!(raw(&s.env, br#"{"id":1,"method":"status"}"#)["result"].is_object());
}

#[tokio::test]
async fn two_hundred_concurrent_clients_and_garbage_while_ingesting() {
    let s = spawn_app(AppOptions::default()).await;
    let seed = seed(&s.db, 50).await;
    let messages: Vec<Vec<u8>> =
        (0..300).map(|k| reply_to_outreach(&seed, k % 50, k as u32)).collect();
    s.imap().append_all("INBOX", &messages).await;

    let sock = s.env.path("admin.sock");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let sock = sock.clone();
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut st = UnixStream::connect(&sock).unwrap();
            st.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let garbage: &[u8] = if i % 2 == 0 { b"{{{ garbage" } else { b"\x00\x01\x02" };
            st.write_all(garbage).unwrap();
            st.write_all(b"\n{\"id\":1,\"method\":\"collab.list\"}\n").unwrap();
            let mut r = BufReader::new(st);
            let (mut a, mut b) = (String::new(), String::new());
            r.read_line(&mut a).unwrap();
            r.read_line(&mut b).unwrap();
            (a, b)
        }));
    }
    let mut answered = 0;
    for t in tasks {
        let (a, b) = t.await.unwrap();
        assert!(a.contains("\"error\""), "{a}");
        if b.contains("\"result\"") {
            answered += 1;
        }
    }
    assert_eq!(answered, 200, "every client gets its answer after the garbage line");
    s.wait_for_rows("inbound_messages", 300, Duration::from_secs(60)).await;
    assert_eq!(s.db.rows("collaborations").await, 50);
}

#[tokio::test]
async fn a_decline_and_its_opt_out_can_be_undone() {
    let s = spawn_app(AppOptions::default()).await;
    s.create_campaign("Winter Glow").await;
    s.add_creator("Ana", "tiktok", "ana.makes", "ana@creators.example").await;
    s.ok(OutreachFields {
        subject: "Winter Glow x Ana".into(),
        sent_at: Some(at("2026-11-20T10:00:00Z")),
        ..outreach("<o-ana@brand.example>", "Winter Glow", "ana.makes", "ana@creators.example")
    })
    .await;
    s.imap()
        .append(reply(
            "ana@creators.example",
            "ana-no@creators.example",
            Some("o-ana@brand.example"),
            &[],
            "Please remove me from your list.",
        ))
        .await;
    s.wait_for_rows("inbound_messages", 1, Duration::from_secs(20)).await;
    let ana = s.collabctl_json(&["creator", "show", "ana.makes"]);
    assert!(!ana["unsubscribed_at"].is_null(), "the decline opted Ana out: {ana}");
    let msg: i64 = s.db.count("SELECT id FROM inbound_messages WHERE kind = 'decline'").await;

    let (ok, _, err) = s.collabctl(&["inbox", "undecline", &msg.to_string(), "--reason", " "]);
    assert!(!ok && err.contains("invalid_params"), "{err}");
    let collab = collabctl_json(
        &s.env,
        &["inbox", "undecline", &msg.to_string(), "--reason", "she said yes on the phone"],
    );
    assert_eq!(collab["status"], "pending");
    assert_eq!(collab["messages"][0]["id"], msg);
    let ana = s.collabctl_json(&["creator", "show", "ana.makes"]);
    assert!(ana["unsubscribed_at"].is_null(), "Ana is subscribed again: {ana}");
    assert_eq!(
        s.db.count("SELECT count(*) FROM outreach_messages WHERE status = 'replied'").await,
        1
    );
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, actor FROM creator_events ORDER BY id")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(events[0], ("opted_out".to_string(), "collabd".to_string()));
    assert_eq!(events[1].0, "undeclined");
    let (ok, _, err) = s.collabctl(&["inbox", "undecline", &msg.to_string(), "--reason", "again"]);
    assert!(!ok && err.contains("not_found"), "{err}");
}

#[tokio::test]
async fn lists_page_by_id_and_all_fetches_every_page() {
    let s = spawn_app(AppOptions::default()).await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    for (name, handle) in [("Ana Souza", "ana.makes"), ("Ben Okafor", "benbuilds")] {
        s.ok(creator(name, "tiktok", handle)).await;
    }
    for i in 0..250 {
        let line = json!({"id": i, "method": "collab.create", "params": {
            "creator": "ana.makes", "campaign": "Winter Glow", "allow_duplicate": true,
            "terms": {"compensation": {"product": "kit"}}}});
        let v = raw(env, line.to_string().as_bytes());
        assert!(v["result"]["id"].is_i64(), "{v}");
    }

    // Pages of 100, newest first, each saying where the next starts; the last says nothing.
    let mut seen = std::collections::BTreeSet::new();
    let mut after: Option<i64> = None;
    let mut sizes = Vec::new();
    loop {
        let mut args = vec!["collab", "list", "--limit", "100"];
        let after_s = after.map(|a| a.to_string());
        if let Some(a) = &after_s {
            args.extend(["--after", a]);
        }
        let page = collabctl_json(env, &args);
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{page}"));
        let ids: Vec<i64> = items.iter().map(|c| c["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        sizes.push(ids.len());
        seen.extend(ids.iter().copied());
        match page["next_after"].as_i64() {
            Some(n) => {
                assert_eq!(Some(&n), ids.last(), "{page}");
                after = Some(n);
            }
            None => {
                assert!(page.get("next_after").is_none(), "{page}");
                break;
            }
        }
    }
    assert_eq!(sizes, [100, 100, 50]);
    assert_eq!(seen.len(), 250, "no row skipped or repeated");

    // --all fetches every page; --json without paging flags is the whole list, as before.
    let all = collabctl_json(env, &["collab", "list", "--all", "--limit", "40"]);
    assert_eq!(all.as_array().unwrap().len(), 250);
    assert_eq!(collabctl_json(env, &["collab", "list"]).as_array().unwrap().len(), 250);
    let (ok, table, err) = collabctl(env, &["collab", "list", "--all"]);
    assert!(ok && table.lines().count() == 251, "{err}");
    // Streamed page by page: the header once, every row once.
    let (ok, table, err) = collabctl(env, &["collab", "list", "--all", "--limit", "40"]);
    assert!(ok && table.lines().count() == 251, "{err}");
    assert_eq!(table.lines().filter(|l| l.starts_with("ID")).count(), 1, "{table}");

    // A table shows 100 rows and says how to get the rest.
    let (ok, table, err) = collabctl(env, &["collab", "list"]);
    assert!(ok && table.starts_with("ID") && table.lines().count() == 101, "{table}");
    assert!(err.contains("--after"), "{err}");

    // Creators page in the order they were added; unmatched pages even when empty.
    let first = collabctl_json(env, &["creator", "list", "--limit", "1"]);
    assert_eq!(first["items"][0]["handle"], "ana.makes", "{first}");
    let next = first["next_after"].as_i64().unwrap().to_string();
    let second = collabctl_json(env, &["creator", "list", "--limit", "1", "--after", &next]);
    assert_eq!(second["items"][0]["handle"], "benbuilds", "{second}");
    assert!(second.get("next_after").is_none(), "{second}");
    let inbox = collabctl_json(env, &["inbox", "unmatched", "--limit", "10"]);
    assert_eq!(inbox, json!({"items": []}));

    // A page size out of range is refused, naming the field.
    let v = raw(env, br#"{"id":1,"method":"collab.list","params":{"limit":0}}"#);
    assert_eq!((code(&v), v["error"]["field"].as_str()), ("invalid_params", Some("limit")));
    let v = raw(env, br#"{"id":1,"method":"collab.list","params":{"after":"x"}}"#);
    assert_eq!((code(&v), v["error"]["field"].as_str()), ("invalid_params", Some("after")), "{v}");
}

#[tokio::test]
async fn collab_export_streams_csv_and_jsonl_with_filters() {
    let s = spawn_app(AppOptions::default()).await;
    let env = &s.env;
    for c in ["Winter Glow", "Spring Launch"] {
        s.create_campaign(c).await;
    }
    s.ok(creator("Ana, \"the\" maker", "tiktok", "ana.makes")).await;
    // More than one export page (5,000 rows), straight into the table.
    sqlx::raw_sql(
        "INSERT INTO collaborations (creator_id, campaign_id, source, compensation, allow_duplicate, created_at)
         SELECT (SELECT id FROM creators), (SELECT id FROM campaigns WHERE name = 'Winter Glow'),
                'manual', '{\"product\": \"kit\"}', true, '2026-11-01'::timestamptz + g * interval '1 minute'
         FROM generate_series(1, 6000) g",
    )
    .execute(&s.db.pool)
    .await
    .unwrap();
    let ctl = |args: &[&str]| {
        let (ok, out, err) = collabctl(env, args);
        assert!(ok, "{err}");
        out
    };
    let csv_out = ctl(&["collab", "export", "--format", "csv"]);
    let mut rdr = csv::Reader::from_reader(csv_out.as_bytes());
    let headers = rdr.headers().unwrap().clone();
    assert_eq!(&headers[0], "id");
    let rows: Vec<csv::StringRecord> = rdr.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 6000);
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids.len(), 6000, "no row repeated across pages");
    assert_eq!(rows[0].get(4).unwrap(), "Ana, \"the\" maker", "quoted as CSV");
    assert_eq!(rows[0].get(6).unwrap(), "Winter Glow");
    assert!(rows[0].get(8).unwrap().contains("kit"));

    let jsonl = ctl(&["collab", "export", "--format", "jsonl", "--since", "2026-11-04"]);
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 2026-11-04 00:00 is minute 4,320 of the series: rows 4,320 to 6,000.
    assert_eq!(lines.len(), 6000 - 4320 + 1);
    assert!(lines.iter().all(|l| l["created_at"].as_str().unwrap() >= "2026-11-04"));
    assert_eq!(ctl(&["collab", "export", "--campaign", "Spring Launch"]).lines().count(), 1);
    assert_eq!(ctl(&["collab", "export", "--status", "cancelled", "--format", "jsonl"]), "");
    let (ok, _, err) = collabctl(env, &["collab", "export", "--since", "yesterday"]);
    assert!(!ok && err.contains("--since"), "{err}");
}

#[tokio::test]
async fn watch_prints_each_collaboration_and_unmatched_message_as_committed() {
    use std::io::BufRead;
    let s = spawn_app(AppOptions::default()).await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    s.ok(creator("Ana", "tiktok", "ana.makes")).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_collabctl"))
        .arg("--socket")
        .arg(env.path("admin.sock"))
        .args(["--json", "watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async { s.logs().contains("admin watch started") })
            .await,
        "{}",
        s.logs()
    );
    // A manual collaboration, then a stranger's mail: each arrives as one line, in order.
    let collab = collabctl_json(
        env,
        &[
            "collab",
            "create",
            "--creator",
            "ana.makes",
            "--campaign",
            "Winter Glow",
            "--product",
            "kit",
        ],
    );
    s.imap().append(reply("stranger@else.example", "st-1@else.example", None, &[], "Hi!")).await;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = || -> Value {
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(20)).expect("an event")).unwrap()
    };
    let first = next();
    assert_eq!(
        (first["event"].as_str(), first["id"].as_i64()),
        (Some("collaboration"), collab["id"].as_i64())
    );
    assert_eq!(first["creator"]["handle"], "ana.makes");
    let second = next();
    assert_eq!(second["event"], "unmatched", "{second}");
    assert_eq!(second["from_address"], "stranger@else.example");
    let _ = child.kill();
    let _ = child.wait();
}

// ---- Each mailbox sends as itself (issue #15 part 3) ----

/// `outreach send` of "Winter Glow" to ana with `subject` and the body in `body`, from
/// `mailbox` (none: through `[smtp]`).
fn send_to_ana<'a>(body: &'a str, subject: &'a str, mailbox: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec!["outreach", "send", "--campaign", "Winter Glow", "--creator", "ana"];
    args.extend(["--subject", subject, "--body-file", body]);
    args.extend(mailbox.into_iter().flat_map(|m| ["--mailbox", m]));
    args
}

/// A daemon with two mailboxes on one Dovecot account: `a` reads INBOX, `b` reads folder
/// `B`. `[smtp]` goes to `default`; each mailbox given a sink sends through it as
/// `<name>-team@brand.example`.
async fn two_mailboxes(default: &SmtpSink, own: &[(&str, &SmtpSink)]) -> TestApp {
    let imap = Dovecot::start();
    imap.create_folder("B").await;
    let mailbox = |name: &str, folder: &str| {
        let mut m = MailboxCfg::new(name, imap.port);
        m.extra = format!("folder = \"{folder}\"\n");
        if let Some((_, sink)) = own.iter().find(|(n, _)| *n == name) {
            m.extra += &format!(
                "[mailboxes.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 from = \"Team {name} <{name}-team@brand.example>\"\n\
                 reply_to = \"{name}-team@brand.example\"\n",
                sink.port
            );
        }
        m
    };
    let mailboxes = vec![mailbox("a", "INBOX"), mailbox("b", "B")];
    let smtp = format!(
        "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Brand Partnerships <{BRAND}>\"\nreply_to = \"{BRAND}\"\n",
        default.port
    );
    let options = AppOptions { imap: Some(imap), ..AppOptions::default() };
    spawn_app(options.mailboxes(mailboxes).config(&smtp)).await
}

/// `tiktok:<handle>`, reached at `<handle>@creators.example`.
async fn add_creator(app: &TestApp, handle: &str) {
    app.add_creator(handle, "tiktok", handle, &format!("{handle}@creators.example")).await;
}

/// `outreach record` of `tiktok:<handle>` in `campaign`, sent from `mailbox` at `sent_at`.
async fn record(
    app: &TestApp,
    mid: &str,
    campaign: &str,
    handle: &str,
    mailbox: &str,
    sent_at: &str,
) {
    let to = format!("{handle}@creators.example");
    let creator = format!("tiktok:{handle}");
    let r = app.record_outreach(mid, campaign, &creator, &to, Some(mailbox), Some(sent_at)).await;
    assert_eq!(r.recorded, 1, "{r:?}");
}

/// Waits for the message with this Message-ID to be stored; its kind, match rule and the
/// Message-ID of the outreach it matched.
async fn decided(s: &TestApp, message_id: &str) -> (String, Option<String>, Option<String>) {
    let row = || async {
        sqlx::query_as::<_, (String, Option<String>, Option<String>)>(
            "SELECT i.kind, i.match_rule, o.message_id FROM inbound_messages i
             LEFT JOIN outreach_messages o ON o.id = i.outreach_id WHERE i.message_id = $1",
        )
        .bind(message_id)
        .fetch_optional(&s.db.pool)
        .await
        .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(20), || async { row().await.is_some() }).await,
        "{message_id} never stored\n{}",
        s.logs()
    );
    row().await.unwrap()
}

#[tokio::test]
async fn outreach_send_with_mailbox_goes_out_as_that_mailbox_and_is_recorded() {
    let (default, sink_a, sink_b) = (SmtpSink::start(), SmtpSink::start(), SmtpSink::start());
    let s = two_mailboxes(&default, &[("a", &sink_a), ("b", &sink_b)]).await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    add_creator(&s, "ana").await;
    let body = env.path("body.txt");
    std::fs::write(&body, "Hi Ana,\nwould you like to join Winter Glow?\n").unwrap();
    let body = body.to_str().unwrap();
    let send = |mailbox, subject| collabctl(env, &send_to_ana(body, subject, mailbox));
    // Mailbox b: b's server, b's From and Reply-To, and the row says b.
    let r = collabctl_json(env, &send_to_ana(body, "From b", Some("b")));
    let mid_b = r["message_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (r["mailbox"].as_str(), r["from"].as_str()),
        (Some("b"), Some("Team b <b-team@brand.example>")),
        "{r}"
    );
    assert!(
        eventually(Duration::from_secs(10), || async { sink_b.received().contains(&mid_b) }).await,
        "b's SMTP server got: {}\n{}",
        sink_b.received(),
        s.logs()
    );
    let got = sink_b.received();
    assert!(
        got.contains("From: \"Team b\" <b-team@brand.example>")
            || got.contains("From: Team b <b-team@brand.example>"),
        "{got}"
    );
    assert!(got.contains("Reply-To: b-team+"), "{got}");
    assert!(sink_a.received().is_empty() && default.received().is_empty());

    // Mailbox a: a's server.
    let r = collabctl_json(env, &send_to_ana(body, "From a", Some("a")));
    let mid_a = r["message_id"].as_str().unwrap().to_owned();
    assert!(
        eventually(Duration::from_secs(10), || async { sink_a.received().contains(&mid_a) }).await,
        "a's SMTP server got: {}",
        sink_a.received()
    );
    assert!(sink_a.received().contains("a-team@brand.example"));
    assert!(!sink_b.received().contains(&mid_a) && default.received().is_empty());

    // No mailbox: [smtp], mailbox unknown.
    let (ok, out, err) = send(None, "Default");
    assert!(ok, "{err}");
    assert!(out.contains("from: Brand Partnerships"), "{out}");
    assert!(eventually(Duration::from_secs(10), || async { !default.received().is_empty() }).await);
    assert!(default.received().contains(BRAND));

    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT subject, mailbox, status FROM outreach_messages ORDER BY id")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![
            ("From b".to_owned(), Some("b".to_owned()), "sent".to_owned()),
            ("From a".to_owned(), Some("a".to_owned()), "sent".to_owned()),
            ("Default".to_owned(), None, "sent".to_owned()),
        ]
    );

    // An unknown mailbox is a clear error, and nothing is recorded or sent.
    let (ok, _, err) = send(Some("nope"), "x");
    assert!(!ok && err.contains("not_found") && err.contains("\"nope\""), "{err}");
    assert_eq!(s.db.rows("outreach_messages").await, 3);
}

#[tokio::test]
async fn a_mailbox_without_its_own_smtp_sends_through_the_default() {
    let (default, sink_b) = (SmtpSink::start(), SmtpSink::start());
    let s = two_mailboxes(&default, &[("b", &sink_b)]).await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    add_creator(&s, "ana").await;
    let body = env.path("body.txt");
    std::fs::write(&body, "Hi\n").unwrap();
    let r = collabctl_json(env, &send_to_ana(body.to_str().unwrap(), "Hi", Some("a")));
    let mid = r["message_id"].as_str().unwrap().to_owned();
    assert!(
        eventually(Duration::from_secs(10), || async { default.received().contains(&mid) }).await,
        "{}",
        s.logs()
    );
    assert!(sink_b.received().is_empty());
    let mailbox: Option<String> =
        sqlx::query_scalar("SELECT mailbox FROM outreach_messages WHERE message_id = $1")
            .bind(&mid)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(mailbox.as_deref(), Some("a"));
}

#[tokio::test]
async fn outreach_import_takes_an_optional_mailbox_column_all_or_nothing() {
    let default = SmtpSink::start();
    let s = two_mailboxes(&default, &[]).await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    add_creator(&s, "ana").await;
    add_creator(&s, "ben").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("outreach.csv");
    let header = "message_id,campaign,platform,handle,to,subject,sent_at,mailbox\n";
    let rows = [
        "<o-1@crm.example>,Winter Glow,tiktok,ana,ana@creators.example,Hi,2026-11-15,a",
        "<o-2@crm.example>,Winter Glow,tiktok,ben,ben@creators.example,Hi,2026-11-15,b",
        "<o-3@crm.example>,Winter Glow,tiktok,ben,ben@creators.example,Hi,2026-11-15,",
    ];
    let bad = "<o-4@crm.example>,Winter Glow,tiktok,ana,ana@creators.example,Hi,2026-11-15,zz";
    std::fs::write(&file, format!("{header}{}\n{bad}\n{}\n{}\n", rows[0], rows[1], rows[2]))
        .unwrap();
    let path = file.to_str().unwrap();
    let (code, r, _) = import(env, &["outreach", "import", path]);
    assert_eq!((code, invalid_lines(&r)), (Some(1), vec![3]), "{r}");
    assert_eq!(r["invalid"][0]["field"], "mailbox", "{r}");
    assert_eq!(s.db.rows("outreach_messages").await, 0, "all or nothing");

    std::fs::write(&file, format!("{header}{}\n", rows.join("\n"))).unwrap();
    let (code, r, _) = import(env, &["outreach", "import", path]);
    assert_eq!((code, r["recorded"].as_u64()), (Some(0), Some(3)), "{r}");
    let got: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT message_id, mailbox FROM outreach_messages ORDER BY message_id")
            .fetch_all(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(
        got,
        vec![
            ("o-1@crm.example".to_owned(), Some("a".to_owned())),
            ("o-2@crm.example".to_owned(), Some("b".to_owned())),
            ("o-3@crm.example".to_owned(), None),
        ]
    );
}

#[tokio::test]
async fn a_reply_by_sender_address_prefers_the_outreach_of_its_own_mailbox() {
    let default = SmtpSink::start();
    let s = two_mailboxes(&default, &[]).await;
    s.create_campaign("Winter Glow").await;
    s.create_campaign("Spring Dew").await;
    add_creator(&s, "ana").await;
    add_creator(&s, "ben").await;
    // Ana: b's outreach is older than a's; Ben: only a's.
    record(&s, "o-ana-b@crm.example", "Spring Dew", "ana", "b", "2026-11-10T10:00:00Z").await;
    record(&s, "o-ana-a@crm.example", "Winter Glow", "ana", "a", "2026-11-20T10:00:00Z").await;
    record(&s, "o-ben-a@crm.example", "Winter Glow", "ben", "a", "2026-11-20T10:00:00Z").await;

    // No thread headers: only the sender's address can match them, both arriving in b.
    let ana = reply("ana@creators.example", "r-ana@mail.example", None, &[], "Yes please!");
    let ben = reply("ben@creators.example", "r-ben@mail.example", None, &[], "Count me in!");
    s.imap().append_all("B", &[ana, ben]).await;

    let (kind, rule, outreach) = decided(&s, "r-ana@mail.example").await;
    assert_eq!(
        (kind.as_str(), rule.as_deref(), outreach.as_deref()),
        ("reply", Some("sender_address"), Some("o-ana-b@crm.example")),
        "b's own outreach wins though a's is newer"
    );
    let (kind, rule, outreach) = decided(&s, "r-ben@mail.example").await;
    assert_eq!(
        (kind.as_str(), rule.as_deref(), outreach.as_deref()),
        ("reply", Some("sender_address_other_mailbox"), Some("o-ben-a@crm.example")),
        "with none of b's own, a's matches under its own rule"
    );
    let campaigns: Vec<String> = sqlx::query_scalar(
        "SELECT k.name FROM collaborations c JOIN campaigns k ON k.id = c.campaign_id
         JOIN creators p ON p.id = c.creator_id ORDER BY p.handle",
    )
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(campaigns, ["Spring Dew", "Winter Glow"]);
}

#[tokio::test]
async fn a_campaign_bound_to_a_mailbox_is_never_matched_by_mail_in_another() {
    let default = SmtpSink::start();
    let s = two_mailboxes(&default, &[]).await;
    let env = &s.env;
    let c = collabctl_json(env, &["campaign", "create", "Bound", "--mailbox", "a"]);
    assert_eq!(c["mailboxes"], json!(["a"]), "{c}");
    let (ok, out, _) = collabctl(env, &["campaign", "list"]);
    assert!(
        ok && out.contains("MAILBOXES")
            && out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["1", "Bound", "a"]),
        "{out}"
    );
    let (ok, _, err) = collabctl(env, &["campaign", "create", "Nowhere", "--mailbox", "zz"]);
    assert!(!ok && err.contains("mailboxes[0]"), "{err}");
    add_creator(&s, "ana").await;
    add_creator(&s, "ben").await;
    record(&s, "o-ana@crm.example", "Bound", "ana", "a", "2026-11-20T10:00:00Z").await;
    record(&s, "o-ben@crm.example", "Bound", "ben", "a", "2026-11-20T10:00:00Z").await;
    // Recording the bound campaign's outreach as sent from b is refused.
    let (ok, _, err) = collabctl(
        env,
        &[
            "outreach",
            "record",
            "--message-id",
            "o-x@crm.example",
            "--campaign",
            "Bound",
            "--creator",
            "tiktok:ana",
            "--to",
            "ana@creators.example",
            "--mailbox",
            "b",
        ],
    );
    assert!(!ok && err.contains("bound"), "{err}");

    // Into b: even In-Reply-To (and the sender's address) of a bound outreach match
    // nothing there.
    let in_b = reply(
        "ana@creators.example",
        "r-ana-b@mail.example",
        Some("o-ana@crm.example"),
        &["o-ana@crm.example"],
        "Yes!",
    );
    let by_sender_b = reply("ben@creators.example", "r-ben-b@mail.example", None, &[], "Yes!");
    s.imap().append_all("B", &[in_b, by_sender_b]).await;
    for mid in ["r-ana-b@mail.example", "r-ben-b@mail.example"] {
        let (kind, rule, outreach) = decided(&s, mid).await;
        assert_eq!((kind.as_str(), rule, outreach), ("unmatched", None, None), "{mid}");
    }
    // Into a, the same reply matches.
    let in_a = reply(
        "ana@creators.example",
        "r-ana-a@mail.example",
        Some("o-ana@crm.example"),
        &["o-ana@crm.example"],
        "Yes!",
    );
    s.imap().append(in_a).await;
    let (kind, rule, outreach) = decided(&s, "r-ana-a@mail.example").await;
    assert_eq!(
        (kind.as_str(), rule.as_deref(), outreach.as_deref()),
        ("reply", Some("in_reply_to"), Some("o-ana@crm.example"))
    );
    // A rematch keeps the bound campaign out of b's mail too.
    let r = collabctl_json(env, &["inbox", "rematch"]);
    assert_eq!(r["matched"], 0, "{r}");

    // Bound to b as well: the waiting mail in b is matched at once, as it arrived.
    let (ok, _, err) = collabctl(env, &["campaign", "bind", "Bound", "--mailbox", "zz"]);
    assert!(!ok && err.contains("mailboxes[0]"), "{err}");
    let c = collabctl_json(env, &["campaign", "bind", "Bound", "--mailbox", "a", "--mailbox", "b"]);
    assert_eq!(c["mailboxes"], json!(["a", "b"]), "{c}");
    let (kind, rule, outreach) = decided(&s, "r-ana-b@mail.example").await;
    assert_eq!(
        (kind.as_str(), rule.as_deref(), outreach.as_deref()),
        ("reply", Some("in_reply_to"), Some("o-ana@crm.example"))
    );
    let (kind, _, outreach) = decided(&s, "r-ben-b@mail.example").await;
    assert_eq!((kind.as_str(), outreach.as_deref()), ("reply", Some("o-ben@crm.example")));
    // No --mailbox unbinds.
    let c = collabctl_json(env, &["campaign", "bind", "Bound"]);
    assert_eq!(c["mailboxes"], json!([]), "{c}");
}

#[tokio::test]
async fn a_database_mailbox_added_at_run_time_sends_as_itself() {
    let (default, sink_c) = (SmtpSink::start(), SmtpSink::start());
    let s = two_mailboxes(&default, &[]).await;
    let env = &s.env;
    s.create_campaign("Winter Glow").await;
    add_creator(&s, "ana").await;
    let smtp = env.path("c-smtp.toml");
    std::fs::write(
        &smtp,
        format!(
            "[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nfrom = \"Team c <c-team@brand.example>\"\n",
            sink_c.port
        ),
    )
    .unwrap();
    let pass = env.path("imap.pass").display().to_string();
    let login = ["--password-file", pass.as_str()];
    // A bad SMTP table is refused naming its key, as the file's are.
    let bad = env.path("bad-smtp.toml");
    std::fs::write(&bad, "host = \"127.0.0.1\"\nfrom = \"not an address\"\n").unwrap();
    let bad = bad.to_str().unwrap();
    let (ok, _, err) = add_mailbox(env, "c", s.imap().port, BRAND, &login, &["--smtp", bad]);
    assert!(!ok && err.contains("smtp.from"), "{err}");
    let extra = ["--json", "--smtp", smtp.to_str().unwrap()];
    let (ok, out, err) = add_mailbox(env, "c", s.imap().port, BRAND, &login, &extra);
    assert!(ok, "{err}");
    let entry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entry["settings"]["smtp"]["from"], "Team c <c-team@brand.example>", "{entry}");

    let body = env.path("body.txt");
    std::fs::write(&body, "Hi\n").unwrap();
    let send = send_to_ana(body.to_str().unwrap(), "Hi", Some("c"));
    // The daemon applies the new mailbox within a second or so.
    assert!(
        eventually(Duration::from_secs(10), || async { collabctl(env, &send).0 }).await,
        "{}",
        s.logs()
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            sink_c.received().contains("c-team@brand.example")
        })
        .await,
        "c's SMTP server got: {}",
        sink_c.received()
    );
    assert!(default.received().is_empty());
}
