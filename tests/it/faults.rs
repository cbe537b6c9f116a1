//! Survival of every fault: outages, kills, silent servers, bad passwords, hostile mail,
//! reloads. Each ends by checking the exact expected rows, with no duplicates.

use std::time::Duration;

use crate::harness::*;
use nix::sys::signal::Signal;

const WAIT: Duration = Duration::from_secs(60);

/// A mailbox setting: reconnect after at most 2 s, so that outages end quickly.
const BACKOFF_2S: &str = "max_backoff = \"2s\"";

/// Exactly `n` inbound rows (distinct UIDs) and `collabs` collaborations with one
/// `created` event each.
async fn assert_exact(db: &TestDb, n: i64, collabs: i64) {
    assert_eq!(db.rows("inbound_messages").await, n);
    assert_eq!(db.count("SELECT count(DISTINCT dedupe_key) FROM inbound_messages").await, n);
    assert_eq!(db.rows("collaborations").await, collabs);
    assert_eq!(
        db.count("SELECT count(*) FROM collaboration_events WHERE kind = 'created'").await,
        collabs
    );
}

#[tokio::test]
async fn dovecot_down_for_20_seconds_while_mail_keeps_arriving() {
    let (db, seed, imap) = seeded_mailbox(10).await;
    let app = spawn_app(AppOptions::on(db, imap).brand(|mb| mb.extra = BACKOFF_2S.into())).await;
    let imap = app.imap();
    imap.append_all("INBOX", &(0..5).map(|i| reply_to_outreach(&seed, i, 0)).collect::<Vec<_>>())
        .await;
    app.wait_for_rows("inbound_messages", 5, WAIT).await;

    imap.stop();
    for i in 5..10 {
        imap.deliver_to_maildir(&format!("{i}.outage.local"), &reply_to_outreach(&seed, i, 0));
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
    assert!(app.logs().contains("mailbox session failed"), "{}", app.logs());
    imap.restart();
    app.wait_for_rows("inbound_messages", 10, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_exact(&app.db, 10, 10).await;
}

#[tokio::test]
async fn postgres_restarted_mid_batch() {
    let pg = PrivatePg::start();
    let db = pg.db().await;
    let seed = seed(&db, 100).await;
    let imap = Dovecot::start();
    let messages: Vec<Vec<u8>> =
        (0..1000).map(|k| reply_to_outreach(&seed, k % 100, k as u32)).collect();
    imap.append_all("INBOX", &messages[..100]).await;
    let options = AppOptions::on(db, imap).brand(|mb| mb.extra = BACKOFF_2S.into());
    let mut app = spawn_app(options.config("[ingest]\nbatch_size = 20\n")).await;
    app.wait_for_rows("inbound_messages", 100, WAIT).await;

    // The daemon's next batch is in flight, waiting inside its transaction, when the
    // server dies.
    let lock = hold_inbound(&app.db).await;
    app.imap().append_all("INBOX", &messages[100..]).await;
    wait_until_daemon_blocks(&app.db, &app.daemon).await;
    pg.stop_immediate();
    drop(lock);
    app.db.pool.close().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.start_server();
    app.db = pg.db().await;
    app.wait_for_rows("inbound_messages", 1000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_exact(&app.db, 1000, 100).await;
    let logs = app.logs();
    assert!(logs.contains("mailbox session failed"), "the outage was not noticed:\n{logs}");
}

#[tokio::test]
async fn sigkill_at_random_points_across_20_runs() {
    let (db, _seed, imap) = loaded_mailbox(100, 1000).await;
    // Not waiting for the socket: the first kill may come before it is up.
    let options = AppOptions::on(db, imap).config("[ingest]\nbatch_size = 25\n");
    let mut app = spawn_app(options.no_wait()).await;
    for run in 0..20 {
        if run > 0 {
            app.respawn();
        }
        let after = Duration::from_millis(150 + rand::random::<u64>() % 600);
        tokio::time::sleep(after).await;
        app.daemon.kill();
        let n = app.db.rows("inbound_messages").await;
        println!("run {run}: killed after {after:?} with {n} rows");
    }
    app.respawn();
    app.wait_for_rows("inbound_messages", 1000, Duration::from_secs(120)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_exact(&app.db, 1000, 100).await;
}

#[tokio::test]
async fn a_large_message_gets_through_a_slow_link() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    // 1.2 MiB at 200 KB/s: about 6 s, three times the mailbox's 2 s timeout.
    let mut reply = reply_to_outreach(&seed, 0, 1);
    reply.extend(
        std::iter::repeat_n(b"a slow but healthy line of text\r\n".as_slice(), 40_000).flatten(),
    );
    imap.append(reply).await;
    let port = slow_link(imap.port, 200_000).await;
    let app = spawn_app(AppOptions::on(db, imap).brand(move |mb| {
        mb.port = port;
        mb.timeout = "2s".into();
        mb.extra = BACKOFF_2S.into();
    }))
    .await;
    app.wait_for_rows("collaborations", 1, WAIT).await;
    assert!(!app.logs().contains("mailbox session failed"), "{}", app.logs());
}

#[tokio::test]
async fn a_silent_server_times_out_and_the_other_mailbox_keeps_going() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    // Accepts TCP, never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let mut dead = MailboxCfg::new("silent", silent_port);
    dead.extra = BACKOFF_2S.into();
    let brand = MailboxCfg::new("brand", imap.port);
    let app = spawn_app(AppOptions::on(db, imap).mailboxes(vec![dead, brand])).await;
    app.imap().append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("collaborations", 1, WAIT).await;
    assert!(
        eventually(WAIT, || async { app.logs().contains("did not answer greeting") }).await,
        "{}",
        app.logs()
    );
    drop(silent);
}

#[tokio::test]
async fn a_wrong_password_is_reported_and_fixed_by_sighup() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    let app = spawn_app(AppOptions::on(db, imap).file("imap.pass", "wrong\n")).await;
    app.imap().append(reply_to_outreach(&seed, 0, 1)).await;
    assert!(
        eventually(WAIT, || async {
            app.logs().contains("login refused for partners@brand.example")
        })
        .await,
        "{}",
        app.logs()
    );
    assert!(app.logs().contains("retry_in=300s"), "auth failures wait the slow cap");
    assert_eq!(app.db.rows("inbound_messages").await, 0);

    std::fs::write(app.env.path("imap.pass"), format!("{PASSWORD}\n")).unwrap();
    app.daemon.signal(Signal::SIGHUP);
    app.wait_for_rows("collaborations", 1, WAIT).await;
    assert!(!app.logs().contains(PASSWORD), "no password in logs");
}

#[tokio::test]
async fn hostile_mail_is_recorded_and_never_stops_the_mailbox() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    let app = spawn_app(AppOptions::on(db, imap)).await;
    let (db, imap) = (&app.db, app.imap());

    let header = |id: &str| {
        format!(
            "From: x@spam.example\r\nTo: {BRAND}\r\nSubject: hostile\r\nMessage-ID: <{id}@spam.example>\r\n"
        )
    };
    let mut hostile = Vec::new();
    // 50 MiB: over the 25 MiB limit, recorded as skipped from its header.
    let mut big = header("big").into_bytes();
    big.extend_from_slice(b"Content-Type: text/plain\r\n\r\n");
    big.extend(
        std::iter::repeat_n(b"0123456789abcdef\r\n".as_slice(), 50 * 1024 * 1024 / 18).flatten(),
    );
    hostile.push(big);
    // 10,000 MIME parts.
    let mut parts = header("parts") + "Content-Type: multipart/mixed; boundary=b\r\n\r\n";
    for i in 0..10_000 {
        parts += &format!("--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n");
    }
    parts += "--b--\r\n";
    hostile.push(parts.into_bytes());
    // A header line of 1 MiB.
    let mut long = header("long");
    long += &format!("X-Long: {}\r\n\r\nbody\r\n", "a".repeat(1024 * 1024));
    hostile.push(long.into_bytes());
    // Invalid UTF-8 everywhere, and a NUL byte.
    let mut bad = b"From: \xff\xfe@bad.example\r\nSubject: \xc3\x28\r\nMessage-ID: <utf8@spam.example>\r\n\r\n\xff\xfe body \x00 nul\r\n".to_vec();
    bad.extend_from_slice(b"\xed\xa0\x80\r\n");
    hostile.push(bad);
    imap.append_all("INBOX", &hostile).await;
    // A genuine reply after all of that still becomes a collaboration.
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("inbound_messages", 5, Duration::from_secs(120)).await;
    assert_eq!(db.rows("collaborations").await, 1);
    let skipped: (String, i64) = sqlx::query_as(
        "SELECT kind, size FROM inbound_messages WHERE message_id = 'big@spam.example'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(skipped.0, "skipped");
    assert!(skipped.1 > 50_000_000);
    assert!(app.logs().contains("over the size limit"), "{}", app.logs());
}

#[tokio::test]
async fn sighup_adds_and_removes_mailboxes_and_rejects_a_bad_config() {
    let db = TestDb::new().await;
    let seed = seed(&db, 3).await;
    let first = Dovecot::start();
    let second = Dovecot::start();
    let only_first = MailboxCfg::new("first", first.port);
    let app = spawn_app(AppOptions::on(db, first).mailboxes(vec![only_first])).await;
    let (db, env, daemon, first) = (&app.db, &app.env, &app.daemon, app.imap());
    first.append(reply_to_outreach(&seed, 0, 1)).await;
    wait_for_rows(db, "collaborations", 1, WAIT, daemon).await;

    // A broken file is rejected and the running mailbox keeps working.
    let good = std::fs::read_to_string(env.path("collabd.toml")).unwrap();
    std::fs::write(env.path("collabd.toml"), "[[mailboxes]\nbroken").unwrap();
    daemon.signal(Signal::SIGHUP);
    assert!(
        eventually(WAIT, || async { daemon.logs().contains("new configuration rejected") }).await
    );
    first.append(reply_to_outreach(&seed, 1, 1)).await;
    wait_for_rows(db, "collaborations", 2, WAIT, daemon).await;
    std::fs::write(env.path("collabd.toml"), good).unwrap();

    // Adding a mailbox starts it without touching the first.
    env.write_config(&[env.mailbox("first", first.port), env.mailbox("second", second.port)], "");
    daemon.signal(Signal::SIGHUP);
    second.append(reply_to_outreach(&seed, 2, 1)).await;
    wait_for_rows(db, "collaborations", 3, WAIT, daemon).await;
    assert!(daemon.logs().contains("started=[\"second\"]"), "{}", daemon.logs());
    assert!(daemon.logs().contains("stopped=[]"), "first kept running");

    // Removing it stops it.
    env.write_config(&[env.mailbox("first", first.port)], "");
    daemon.signal(Signal::SIGHUP);
    assert!(
        eventually(WAIT, || async { daemon.logs().contains("stopped=[\"second\"]") }).await,
        "{}",
        daemon.logs()
    );
    let (ok, out, _) = app.collabctl(&["--json", "status"]);
    assert!(ok && !out.contains("\"second\""), "{out}");

    // What a reload cannot apply is said, section by section, not silently dropped.
    let file = std::fs::read_to_string(env.path("collabd.toml")).unwrap();
    let changed = file
        .replace("[database]\n", "[database]\nstatement_timeout = \"5s\"\n")
        .replace("[admin]\n", "[admin]\nread_timeout = \"10s\"\n");
    std::fs::write(env.path("collabd.toml"), changed).unwrap();
    daemon.signal(Signal::SIGHUP);
    let restart_needed = |section: &str| {
        let line = format!("this section changes only on restart section=\"{section}\"");
        daemon.logs().contains(&line)
    };
    assert!(eventually(WAIT, || async { restart_needed("admin") }).await, "{}", daemon.logs());
    assert!(restart_needed("database") && !restart_needed("smtp"), "{}", daemon.logs());
}

#[tokio::test]
async fn committed_messages_are_moved_even_when_the_first_move_failed() {
    let (db, seed, imap) = seeded_mailbox(2).await;
    let app = spawn_app(
        AppOptions::on(db, imap)
            .brand(|mb| mb.extra = format!("post_process = \"move\"\n{BACKOFF_2S}")),
    )
    .await;
    let (db, daemon, imap) = (&app.db, &app.daemon, app.imap());
    imap.append_all("INBOX", &[reply_to_outreach(&seed, 0, 1), reply_to_outreach(&seed, 1, 1)])
        .await;
    wait_for_rows(db, "collaborations", 2, WAIT, daemon).await;
    // The target folder is missing: the move fails after the commit...
    assert!(
        eventually(WAIT, || async { daemon.logs().contains("post-processing failed") }).await,
        "{}",
        daemon.logs()
    );
    // ...and once it exists, the next session moves what was committed.
    imap.create_folder("Processed").await;
    let moved = eventually(WAIT, || async {
        let mut s = imap.session().await;
        let inbox = s.examine("INBOX").await.unwrap().exists;
        let processed = s.examine("Processed").await.unwrap().exists;
        s.logout().await.unwrap();
        inbox == 0 && processed == 2
    })
    .await;
    assert!(moved, "{}", daemon.logs());
    // Nothing is processed twice after the move.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_exact(db, 2, 2).await;
}

/// The mailbox's entry in `collabctl --json status`.
fn mailbox_status(env: &DaemonEnv, name: &str) -> serde_json::Value {
    let status = collabctl_json(env, &["status"]);
    let list = status["mailboxes"].as_array().unwrap();
    list.iter().find(|m| m["name"] == name).cloned().unwrap_or_else(|| panic!("{status}"))
}

#[tokio::test]
async fn status_keeps_the_committed_figures_across_a_reload() {
    let (db, seed, imap) = seeded_mailbox(3).await;
    let app = spawn_app(AppOptions::on(db, imap)).await;
    let (env, daemon, imap) = (&app.env, &app.daemon, app.imap());
    imap.append_all("INBOX", &(0..3).map(|i| reply_to_outreach(&seed, i, 1)).collect::<Vec<_>>())
        .await;
    app.wait_for_rows("inbound_messages", 3, WAIT).await;
    let committed = |s: &serde_json::Value| s["processed"] == 3 && s["highest_uid"] == 3;
    assert!(eventually(WAIT, || async { committed(&mailbox_status(env, "brand")) }).await);
    let before = mailbox_status(env, "brand");

    // A changed mailbox setting replaces its worker (and its in-memory health).
    let mut mb = env.mailbox("brand", imap.port);
    mb.poll_interval = "700ms".into();
    env.write_config(&[mb], "");
    daemon.signal(Signal::SIGHUP);
    assert!(
        eventually(WAIT, || async { daemon.logs().contains("stopped=[\"brand\"]") }).await,
        "{}",
        daemon.logs()
    );
    // Right away, and once the new worker has connected and polled (with nothing new).
    for _ in 0..2 {
        let after = mailbox_status(env, "brand");
        assert!(committed(&after), "{after}");
        assert!(after["last_commit"].is_string(), "{after}");
        assert_eq!(after["last_commit"], before["last_commit"], "{after}");
        assert!(
            eventually(WAIT, || async {
                let s = mailbox_status(env, "brand");
                s["connected"] == true && s["secs_since_poll"].as_u64().is_some_and(|p| p < 5)
            })
            .await
        );
    }
}

#[tokio::test]
async fn a_successful_login_clears_the_last_error() {
    let app = spawn_app(AppOptions::default().brand(|mb| mb.extra = BACKOFF_2S.into())).await;
    let (env, imap) = (&app.env, app.imap());
    assert!(eventually(WAIT, || async { mailbox_status(env, "brand")["connected"] == true }).await);

    imap.stop();
    assert!(
        eventually(WAIT, || async { mailbox_status(env, "brand")["last_error"].is_string() }).await,
        "{}",
        app.logs()
    );
    // No mail arrives, so nothing is committed: only the login can clear it.
    imap.restart();
    let cleared = eventually(WAIT, || async {
        let s = mailbox_status(env, "brand");
        s["connected"] == true && s["last_error"].is_null()
    })
    .await;
    assert!(cleared, "{}\n{}", mailbox_status(env, "brand"), app.logs());
    assert_eq!(app.db.rows("inbound_messages").await, 0);
}
