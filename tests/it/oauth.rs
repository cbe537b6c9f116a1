//! OAuth2 logins against a real Dovecot that checks bearer tokens with the tests' own token
//! server (tests/support/oauth_server.py), and outreach over an SMTP sink that takes
//! XOAUTH2: login with both mechanisms, refresh mid-session, rotation across a restart,
//! revocation in status, and both authorization flows of `collabctl mailbox authorize`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

const WAIT: Duration = Duration::from_secs(30);

/// A daemon on `db` whose one mailbox, on `imap`, logs in with `auth` through `oauth`;
/// the grant's refresh token (if any) is in the configured file.
fn oauth_app(
    db: TestDb,
    oauth: &OAuthServer,
    imap: Dovecot,
    auth: &str,
    refresh: Option<&str>,
) -> AppOptions {
    let mut options = AppOptions::on(db, imap)
        .file("key", &"5a".repeat(32))
        .file("client.secret", OAUTH_CLIENT_SECRET)
        .config("[secrets]\nkey_file = \"{dir}/key\"\n");
    let refresh_line = match refresh {
        Some(token) => {
            options = options.file("refresh.token", &format!("{token}\n"));
            "refresh_token_file = \"{dir}/refresh.token\"\n"
        }
        None => "",
    };
    let extra = format!(
        "auth = \"{auth}\"\nmax_backoff = \"5m\"\n[mailboxes.oauth2]\nprovider = \"custom\"\n\
         token_url = \"{}\"\ndevice_url = \"{}\"\nauth_url = \"{}\"\nclient_id = \"{OAUTH_CLIENT_ID}\"\n\
         client_secret_file = \"{{dir}}/client.secret\"\n{refresh_line}",
        oauth.url("/token"),
        oauth.url("/device"),
        oauth.url("/authorize"),
    );
    options.brand(move |mb| {
        mb.password_file = None;
        mb.poll_interval = "1s".into();
        mb.extra = extra;
    })
}

fn status_of(env: &DaemonEnv) -> serde_json::Value {
    collabctl_json(env, &["status"])["mailboxes"][0].clone()
}

#[tokio::test]
async fn xoauth2_and_oauthbearer_logins_ingest_mail_and_never_log_a_token() {
    for auth in ["xoauth2", "oauthbearer"] {
        let oauth = OAuthServer::start();
        let (db, seed, _) = seeded_mailbox(1).await;
        let imap = Dovecot::start_oauth(&oauth);
        let refresh = oauth.grant(BRAND);
        let app = spawn_app(oauth_app(db, &oauth, imap, auth, Some(&refresh))).await;
        app.imap().append(reply_to_outreach(&seed, 0, 1)).await;
        app.wait_for_rows("collaborations", 1, WAIT).await;
        let status = status_of(&app.env);
        assert_eq!(status["connected"], true, "{auth}: {status}");
        assert_eq!(status["reauthorize"], false, "{auth}: {status}");
        let logs = app.logs();
        assert!(!logs.contains(&refresh), "{auth}: the refresh token is in the log");
        let access = oauth.stats()["live_access_tokens"].to_string();
        assert!(access.contains('1'), "{auth}: one access token was issued: {access}");
        assert!(!status.to_string().contains(&refresh));
    }
}

#[tokio::test]
async fn a_token_expiring_mid_session_is_refreshed_without_losing_or_repeating_mail() {
    let oauth = OAuthServer::start();
    oauth.config(3, false);
    let (db, seed, _) = seeded_mailbox(10).await;
    let imap = Dovecot::start_oauth(&oauth);
    let app = spawn_app(oauth_app(db, &oauth, imap, "xoauth2", Some(&oauth.grant(BRAND)))).await;
    let (db, imap) = (&app.db, app.imap());
    for i in 0..5 {
        imap.append(reply_to_outreach(&seed, i, 1)).await;
    }
    app.wait_for_rows("inbound_messages", 5, WAIT).await;
    let before = oauth.stats()["refreshes"].as_u64().unwrap();
    // The access token runs out; Dovecot checks it only at login, so end the session.
    tokio::time::sleep(Duration::from_secs(4)).await;
    for i in 5..8 {
        imap.append(reply_to_outreach(&seed, i, 1)).await;
    }
    imap.kick(BRAND);
    for i in 8..10 {
        imap.append(reply_to_outreach(&seed, i, 1)).await;
    }
    app.wait_for_rows("inbound_messages", 10, WAIT).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(db.rows("inbound_messages").await, 10, "nothing repeated");
    assert_eq!(db.rows("collaborations").await, 10);
    assert!(oauth.stats()["refreshes"].as_u64().unwrap() > before, "a new token was fetched");
    assert_eq!(status_of(&app.env)["connected"], true);
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_a_restart() {
    let oauth = OAuthServer::start();
    oauth.config(3600, true);
    let (db, seed, _) = seeded_mailbox(2).await;
    let imap = Dovecot::start_oauth(&oauth);
    let first = oauth.grant(BRAND);
    let mut app = spawn_app(oauth_app(db, &oauth, imap, "oauthbearer", Some(&first))).await;
    app.imap().append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("inbound_messages", 1, WAIT).await;
    // The first refresh rotated the token: the one in the file is dead now.
    let stored: (Vec<u8>, Vec<u8>) = sqlx::query_as(
        "SELECT nonce, refresh_token FROM oauth_tokens WHERE name = 'mailbox:brand'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let live = oauth.stats()["live_refresh_tokens"][BRAND].clone();
    let live = live[0].as_str().unwrap().to_owned();
    assert_ne!(live, first);
    assert!(
        !stored.1.windows(live.len().min(8)).any(|w| w == &live.as_bytes()[..w.len()]),
        "the stored refresh token is encrypted"
    );
    let again = oauth.token_request(&[("grant_type", "refresh_token"), ("refresh_token", &first)]);
    assert_eq!(again.status, 400, "the file's token was rotated away");

    app.daemon.terminate();
    app.respawn();
    app.imap().append(reply_to_outreach(&seed, 1, 1)).await;
    app.wait_for_rows("inbound_messages", 2, WAIT).await;
    assert_eq!(status_of(&app.env)["last_error"], serde_json::Value::Null);
    assert!(!app.logs().contains("reauthorize"), "{}", app.logs());
}

#[tokio::test]
async fn a_revoked_grant_shows_reauthorize_and_the_device_flow_restores_it() {
    let oauth = OAuthServer::start();
    let (db, seed, _) = seeded_mailbox(2).await;
    let imap = Dovecot::start_oauth(&oauth);
    let app = spawn_app(oauth_app(db, &oauth, imap, "xoauth2", Some(&oauth.grant(BRAND)))).await;
    let (env, imap) = (&app.env, app.imap());
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("inbound_messages", 1, WAIT).await;

    oauth.revoke(BRAND);
    imap.kick(BRAND);
    assert!(
        eventually(WAIT, || async { status_of(env)["reauthorize"] == true }).await,
        "status never said reauthorize: {}\n{}",
        status_of(env),
        app.logs()
    );
    let status = status_of(env);
    assert!(status["last_error"].as_str().unwrap().contains("mailbox authorize brand"), "{status}");
    let (_, table, _) = collabctl(env, &["status"]);
    assert!(table.contains("REAUTHORIZE"), "{table}");
    // No tight loop: with the grant gone the worker waits for a person.
    let refreshes = oauth.stats()["failed_refreshes"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(oauth.stats()["failed_refreshes"].as_u64().unwrap(), refreshes);

    // The operator authorizes again with the device flow; the worker retries at once.
    let mut ctl = Command::new(env!("CARGO_BIN_EXE_collabctl"))
        .arg("--socket")
        .arg(env.path("admin.sock"))
        .args(["mailbox", "authorize", "brand", "--flow", "device"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(ctl.stdout.as_mut().unwrap()).read_line(&mut first_line).unwrap();
    let code = first_line.split_whitespace().last().unwrap().to_owned();
    assert!(first_line.contains(&oauth.url("/activate")), "{first_line}");
    oauth.approve(&code);
    let out = ctl.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    imap.append(reply_to_outreach(&seed, 1, 1)).await;
    app.wait_for_rows("inbound_messages", 2, Duration::from_secs(15)).await;
    let status = status_of(env);
    assert_eq!(
        (status["reauthorize"].clone(), status["connected"].clone()),
        (false.into(), true.into()),
        "{status}"
    );
}

#[tokio::test]
async fn the_code_flow_with_pkce_authorizes_a_mailbox_that_had_no_token() {
    let oauth = OAuthServer::start();
    let (db, seed, _) = seeded_mailbox(1).await;
    let imap = Dovecot::start_oauth(&oauth);
    let app = spawn_app(oauth_app(db, &oauth, imap, "xoauth2", None)).await;
    let (env, imap) = (&app.env, app.imap());
    assert!(
        eventually(WAIT, || async { status_of(env)["reauthorize"] == true }).await,
        "a mailbox without any token must ask for authorization\n{}",
        app.logs()
    );
    let mut ctl = Command::new(env!("CARGO_BIN_EXE_collabctl"))
        .arg("--socket")
        .arg(env.path("admin.sock"))
        .args(["mailbox", "authorize", "brand", "--flow", "code"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(ctl.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("http") {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "collabctl printed no address");
    }
    // Play the browser: the provider redirects to collabctl's loopback listener.
    let url = line.trim().strip_prefix(&oauth.url("")).unwrap().to_owned();
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let consent = oauth.request("GET", &url, &[], b"");
    assert_eq!(consent.status, 302, "{}", consent.text());
    let location = consent.header("Location").unwrap().to_owned();
    let (port, path) =
        location.strip_prefix("http://127.0.0.1:").and_then(|rest| rest.split_once('/')).unwrap();
    let reply = http_request(port.parse().unwrap(), "GET", &format!("/{path}"), &[], b"");
    assert_eq!(reply.status, 200, "{}", reply.text());
    let out = ctl.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(oauth.stats()["code_exchanges"], 1);
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    app.wait_for_rows("collaborations", 1, Duration::from_secs(15)).await;
}

#[tokio::test]
async fn outreach_is_sent_over_smtp_with_xoauth2() {
    let oauth = OAuthServer::start();
    let smtp = SmtpSink::start_oauth(&oauth);
    let (db, _, _) = seeded_mailbox(1).await;
    let config = format!(
        "[secrets]\nkey_file = \"{{dir}}/key\"\n\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
         from = \"Brand Partnerships <{BRAND}>\"\nusername = \"{BRAND}\"\nauth = \"xoauth2\"\n\
         [smtp.oauth2]\nprovider = \"custom\"\ntoken_url = \"{}\"\nclient_id = \"{OAUTH_CLIENT_ID}\"\n\
         client_secret_env = \"OAUTH_SECRET\"\nrefresh_token_file = \"{{dir}}/refresh.token\"\n",
        smtp.port,
        oauth.url("/token"),
    );
    let no_mailbox = AppOptions { db: Some(db), dovecot: false, ..AppOptions::default() };
    let options = no_mailbox
        .file("key", &"7c".repeat(32))
        .file("refresh.token", &oauth.grant(BRAND))
        .config(&config)
        .env(&[("OAUTH_SECRET", OAUTH_CLIENT_SECRET)]);
    let app = spawn_app(options).await;
    let (db, env) = (&app.db, &app.env);
    std::fs::write(env.path("body.txt"), "Hi,\nwould you like to join Winter Glow?\n").unwrap();
    let body = env.path("body.txt");
    let sent = collabctl_json(
        env,
        &[
            "outreach",
            "send",
            "--campaign",
            "Winter Glow",
            "--creator",
            "creator_0",
            "--subject",
            "Winter Glow x you",
            "--body-file",
            body.to_str().unwrap(),
        ],
    );
    let mid = sent["message_id"].as_str().unwrap().to_owned();
    let status: String =
        sqlx::query_scalar("SELECT status FROM outreach_messages WHERE message_id = $1")
            .bind(&mid)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(status, "sent");
    let log = smtp.auth_log();
    assert!(log.contains(&format!("XOAUTH2 user={BRAND} accepted")), "{log}");
    assert!(smtp.received().contains("Subject: Winter Glow x you"));
}

/// A mailbox added at run time with `--oauth2` logs in with XOAUTH2 like a file mailbox:
/// the oauth2 table travels in the database row, the client secret and refresh token stay
/// in files the daemon reads, which must lie in `[admin] credentials_dir` (elsewhere they
/// are refused, naming the key: the daemon would send them to the token endpoint).
#[tokio::test]
async fn a_database_mailbox_logs_in_with_oauth2() {
    let oauth = OAuthServer::start();
    let (db, seed, _) = seeded_mailbox(1).await;
    let imap = Dovecot::start_oauth(&oauth);
    let refresh = oauth.grant(BRAND);
    let token_url = oauth.url("/token");
    let table = move |secret: &str| {
        format!(
            "[oauth2]\nprovider = \"custom\"\ntoken_url = \"{token_url}\"\nclient_id = \"{OAUTH_CLIENT_ID}\"\n\
             client_secret_file = \"{secret}\"\nrefresh_token_file = \"refresh.token\"\n",
        )
    };
    let token = format!("{refresh}\n");
    let options = AppOptions::on(db, imap)
        .mailboxes(Vec::new())
        .file("key", &"5a".repeat(32))
        .file("oauth2.toml", &table("client.secret"))
        .setup(move |env| {
            let creds = env.path("creds");
            std::fs::create_dir(&creds).unwrap();
            std::fs::write(creds.join("client.secret"), OAUTH_CLIENT_SECRET).unwrap();
            std::fs::write(creds.join("refresh.token"), token).unwrap();
            let outside = env.path("key").display().to_string();
            std::fs::write(env.path("outside.toml"), table(&outside)).unwrap();
        })
        .config("[secrets]\nkey_file = \"{dir}/key\"\n")
        .env(&[("COLLABD__ADMIN__CREDENTIALS_DIR", "{dir}/creds")]);
    let app = spawn_app(options).await;
    let (db, env, daemon, imap) = (&app.db, &app.env, &app.daemon, app.imap());
    let login = |table: &str| {
        let table = env.path(table).display().to_string();
        add_mailbox(
            env,
            "brand",
            imap.port,
            BRAND,
            &["--oauth2", &table],
            &["--poll-interval", "1s"],
        )
    };
    let (ok, _, err) = login("outside.toml");
    assert!(!ok && err.contains("forbidden") && err.contains("oauth2.client_secret_file"), "{err}");
    let (ok, _, err) = login("oauth2.toml");
    assert!(ok, "{err}");
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    wait_for_rows(db, "collaborations", 1, WAIT, daemon).await;
    let status = status_of(env);
    assert_eq!(status["connected"], true, "{status}");
    assert_eq!(status["name"], "brand", "{status}");
    let row = collabctl_json(env, &["mailbox", "show", "brand"]);
    assert_eq!(row["settings"]["auth"], "xoauth2", "{row}");
    assert!(!row.to_string().contains(&refresh), "the refresh token is in the row: {row}");
    assert!(!daemon.logs().contains(&refresh), "the refresh token is in the log");
}
