//! Mailboxes managed at run time (`collabctl mailbox …`), against the real daemon,
//! Postgres and Dovecot: added, paused, resumed and removed without a restart.

use std::time::Duration;

use crate::harness::*;
use serde_json::Value;

fn status_names(env: &DaemonEnv) -> Vec<(String, bool)> {
    let st = collabctl_json(env, &["status"]);
    st["mailboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap().to_owned(), m["paused"].as_bool().unwrap_or(false)))
        .collect()
}

async fn until(limit: Duration, daemon: &DaemonProc, what: &str, check: impl Fn() -> bool) {
    let ok = eventually(limit, || {
        let r = check();
        async move { r }
    })
    .await;
    assert!(ok, "{what}\n{}", daemon.logs());
}

#[tokio::test]
async fn a_mailbox_added_paused_resumed_and_removed_at_run_time() {
    let (db, seed, imap) = seeded_mailbox(3).await;
    let app = spawn_app(AppOptions::on(db, imap).mailboxes(Vec::new())).await;
    let (db, env, daemon, imap) = (&app.db, &app.env, &app.daemon, app.imap());
    assert!(status_names(env).is_empty());

    let pass = env.path("imap.pass").display().to_string();
    let login = ["--password-file", pass.as_str()];
    let add = |name: &str| {
        add_mailbox(env, name, imap.port, BRAND, &login, &["--json", "--poll-interval", "500ms"])
    };
    let (ok, out, err) = add("live");
    assert!(ok, "{err}");
    let entry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entry["source"], "database");
    assert_eq!(entry["paused"], false);
    assert_eq!(entry["settings"]["folder"], "INBOX");

    // Picked up without a restart: a reply becomes a collaboration within seconds.
    until(Duration::from_secs(5), daemon, "the worker never started", || {
        status_names(env) == [("live".to_owned(), false)]
    })
    .await;
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    wait_for_rows(db, "collaborations", 1, Duration::from_secs(10), daemon).await;

    // Paused: listed as such, and a new reply is not ingested.
    let p = collabctl_json(env, &["mailbox", "pause", "live"]);
    assert_eq!(p["paused"], true);
    until(Duration::from_secs(5), daemon, "status never showed it paused", || {
        status_names(env) == [("live".to_owned(), true)]
    })
    .await;
    let (ok, table, _) = collabctl(env, &["status"]);
    assert!(ok && table.contains("PAUSED"), "{table}");
    imap.append(reply_to_outreach(&seed, 1, 1)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.rows("collaborations").await, 1, "{}", daemon.logs());

    // Resumed: the waiting reply is ingested.
    collabctl_json(env, &["mailbox", "resume", "live"]);
    wait_for_rows(db, "collaborations", 2, Duration::from_secs(10), daemon).await;

    // list and show render, as tables and as JSON.
    let list = collabctl_json(env, &["mailbox", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (ok, table, err) = collabctl(env, &["mailbox", "list"]);
    assert!(ok && table.contains("live") && table.contains("database"), "{table}{err}");
    let (ok, shown, err) = collabctl(env, &["mailbox", "show", "live"]);
    assert!(ok && shown.contains("stored passwords") && shown.contains("500ms"), "{shown}{err}");
    let (ok, _, err) = collabctl(env, &["mailbox", "show", "nope"]);
    assert!(!ok && err.contains("not_found"), "{err}");

    // A name taken in the database, and a bad setting, are refused.
    let (ok, _, err) = add("live");
    assert!(!ok && err.contains("conflict"), "{err}");

    // Removed: the worker stops.
    collabctl_json(env, &["mailbox", "remove", "live"]);
    until(Duration::from_secs(5), daemon, "the worker never stopped", || {
        status_names(env).is_empty()
    })
    .await;
    assert_eq!(db.count("SELECT count(*) FROM mailboxes").await, 0);
}

#[tokio::test]
async fn a_database_mailbox_may_not_take_a_name_the_file_uses() {
    // No [secrets] key_file yet.
    let app = spawn_app(AppOptions::default().config("[secrets]\n")).await;
    let (db, env, daemon, imap) = (&app.db, &app.env, &app.daemon, app.imap());
    let (ok, _, err) = collabctl(
        env,
        &[
            "mailbox",
            "add",
            "brand",
            "--host",
            "127.0.0.1",
            "--username",
            BRAND,
            "--password-env",
            "HOME",
        ],
    );
    assert!(!ok && err.contains("conflict"), "{err}");
    assert!(err.contains("config file (mailboxes[0])") && err.contains("database"), "{err}");
    // The file's mailbox is listed, and cannot be paused from here.
    let list = collabctl_json(env, &["mailbox", "list"]);
    assert_eq!(list[0]["source"], "file");
    let (ok, _, err) = collabctl(env, &["mailbox", "pause", "brand"]);
    assert!(!ok && err.contains("config file"), "{err}");
    // Validation is the file's: no login is refused naming the key.
    let (ok, _, err) = collabctl(
        env,
        &[
            "mailbox",
            "add",
            "other",
            "--host",
            "h",
            "--username",
            "u",
            "--password-env",
            "COLLABD_NO_SUCH_VAR",
        ],
    );
    // collabctl reads --password-env in its own environment.
    assert!(!ok && err.contains("password-env") && err.contains("COLLABD_NO_SUCH_VAR"), "{err}");
    // A password needs the key that seals it.
    let (ok, _, err) = collabctl(
        env,
        &["mailbox", "add", "other", "--host", "h", "--username", "u", "--password-env", "HOME"],
    );
    assert!(!ok && err.contains("not_configured") && err.contains("secrets.key_file"), "{err}");

    // --oauth2 takes the oauth2 table from a TOML (or JSON) file; auth becomes xoauth2.
    let oauth = env.path("oauth2.toml");
    std::fs::write(&oauth, "[oauth2]\nprovider = \"google\"\nclient_id = \"abc\"\n").unwrap();
    let oauth = oauth.display().to_string();
    let gmail = [
        "mailbox",
        "add",
        "gmail",
        "--host",
        "imap.gmail.com",
        "--username",
        "u@x.example",
        "--oauth2",
        &oauth,
    ];
    // Not without the key that encrypts refresh tokens; a reload that adds it is seen.
    let (ok, _, err) = collabctl(env, &gmail);
    assert!(!ok && err.contains("key_file"), "{err}");
    std::fs::write(env.path("secret.key"), "ab".repeat(32)).unwrap();
    let key = format!("[secrets]\nkey_file = \"{}\"\n", env.path("secret.key").display());
    env.write_config(&[env.mailbox("brand", imap.port)], &key);
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let ok = eventually(Duration::from_secs(5), || {
        let done = collabctl(env, &gmail).0;
        async move { done }
    })
    .await;
    assert!(ok, "{}", daemon.logs());
    let entry = collabctl_json(env, &["mailbox", "show", "gmail"]);
    assert_eq!(entry["settings"]["auth"], "xoauth2");
    assert_eq!(entry["settings"]["oauth2"]["provider"], "google");
    assert_eq!(entry["settings"]["oauth2"]["client_id"], "abc");
    collabctl_json(env, &["mailbox", "remove", "gmail"]);

    // A clashing row that got there anyway is a config error naming both; the file's runs.
    sqlx::query("INSERT INTO mailboxes (name, settings) VALUES ('brand', '{}')")
        .execute(&db.pool)
        .await
        .unwrap();
    let logs = || daemon.logs();
    let ok =
        eventually(Duration::from_secs(5), || {
            let l = logs();
            async move {
                l.contains("defined both in the config file (mailboxes[0]) and in the database")
            }
        })
        .await;
    assert!(ok, "{}", daemon.logs());
    assert_eq!(collabctl_json(env, &["status"])["mailboxes"].as_array().unwrap().len(), 1);
}

/// A platform adds a brand inbox a day: the new mailbox's address must count as the
/// brand's own at once, without restarting the mailboxes already running (with 2,000 of
/// them, a restart of every worker was a reconnect storm of about 16 s).
#[tokio::test]
async fn a_new_mailbox_address_restarts_no_running_worker() {
    let (db, _seed, imap) = seeded_mailbox(1).await;
    let app = spawn_app(AppOptions::on(db, imap)).await;
    let (db, env, daemon, imap) = (&app.db, &app.env, &app.daemon, app.imap());
    let sessions = || {
        daemon.logs().matches("mailbox{mailbox=brand}: collabd::imap::session: connected").count()
    };
    until(Duration::from_secs(10), daemon, "brand never connected", || sessions() == 1).await;

    // A second brand address, on a server that refuses it: only its own worker suffers.
    let (ok, _, err) = add_mailbox(
        env,
        "press",
        imap.port,
        "press@brand.example",
        &["--password-env", "HOME"],
        &[],
    );
    assert!(ok, "{err}");
    until(Duration::from_secs(5), daemon, "press never started", || {
        daemon.logs().contains("mailbox{mailbox=press}")
    })
    .await;
    // Mail from the new address into the old mailbox is the brand's own.
    imap.append(reply("press@brand.example", "own-1@brand.example", None, &[], "Forwarding."))
        .await;
    wait_for_rows(db, "inbound_messages", 1, Duration::from_secs(10), daemon).await;
    let kind: String =
        sqlx::query_scalar("SELECT kind FROM inbound_messages").fetch_one(&db.pool).await.unwrap();
    assert_eq!(kind, "own", "{}", daemon.logs());
    assert_eq!(sessions(), 1, "brand's worker was restarted:\n{}", daemon.logs());
}
