//! A hostile member of `[admin] group` (issue #20): a mailbox added at run time cannot make
//! the daemon read a file outside `[admin] credentials_dir`, name one of its environment
//! variables, or send a password in clear to another host. What a recording listener of
//! the test's own on 127.0.0.1 receives proves what is (not) sent. The legitimate way (the
//! password read by collabctl and sent in the request) logs in to Dovecot, with the
//! password stored sealed and shown nowhere.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use crate::harness::*;

/// An IMAP-looking server that records every byte it is sent and refuses every login.
struct Recorder {
    port: u16,
    connections: Arc<AtomicUsize>,
    got: Arc<Mutex<String>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (connections, got) =
            (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(String::new())));
        let (c, g) = (connections.clone(), got.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let g = g.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let _ = write.write_all(b"* OK [CAPABILITY IMAP4rev1] ready\r\n").await;
                    let mut lines = tokio::io::BufReader::new(read).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        g.lock().unwrap().push_str(&format!("{line}\n"));
                        let tag = line.split(' ').next().unwrap_or("*").to_owned();
                        let no = format!("{tag} NO [AUTHENTICATIONFAILED] recorded\r\n");
                        let _ = write.write_all(no.as_bytes()).await;
                    }
                });
            }
        });
        Recorder { port, connections, got }
    }

    fn heard(&self) -> (usize, String) {
        (self.connections.load(Ordering::SeqCst), self.got.lock().unwrap().clone())
    }
}

/// One raw `mailbox.add` over the socket, as a script (or socat) would send it.
fn raw_add(env: &DaemonEnv, params: Value) -> Value {
    let mut s = UnixStream::connect(env.path("admin.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let line = json!({"id": 1, "method": "mailbox.add", "params": params}).to_string();
    s.write_all(line.as_bytes()).and_then(|_| s.write_all(b"\n")).unwrap();
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
}

/// `params` plus `extra`'s keys.
fn with(mut params: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        params[k] = v.clone();
    }
    params
}

fn write_secret(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

const VICTIM: &str = "victim-imap-password-7";
const DAEMON_ENV_SECRET: &str = "daemon-env-secret-9";
const SMTP_PASSWORD: &str = "smtp-s3cret-77";

/// Another mailbox's password and the key file: what the daemon can read and the operator
/// must not get.
fn victim_file(env: &DaemonEnv) -> std::path::PathBuf {
    let victim = env.path("other-mailbox.pass");
    write_secret(&victim, &format!("{VICTIM}\n"), 0o600);
    victim
}

/// The default config (no `credentials_dir`, no env prefix): every way of pointing the
/// daemon's secrets at the recorder is refused naming the key, and the recorder hears
/// nothing; the legitimate `mailbox add` logs in, its passwords shown nowhere.
#[tokio::test]
async fn an_admin_member_cannot_make_the_daemon_send_its_secrets_anywhere() {
    let (db, seed, imap) = seeded_mailbox(1).await;
    let recorder = Recorder::start().await;
    let options = AppOptions::on(db, imap)
        .mailboxes(Vec::new())
        .setup(|env| drop(victim_file(env)))
        .env(&[("HOSTILE_DAEMON_ONLY_SECRET", DAEMON_ENV_SECRET)]);
    let app = spawn_app(options).await;
    let (db, env, daemon, imap) = (&app.db, &app.env, &app.daemon, app.imap());
    let victim = env.path("other-mailbox.pass");
    let key = env.path("secret.key");

    let evil = json!({"name": "evil", "host": "127.0.0.1", "port": recorder.port, "tls": "none",
        "username": "x@evil.example", "poll_interval": "500ms"});
    let smtp = |extra: Value| {
        let base = json!({"host": "127.0.0.1", "port": recorder.port, "tls": "none",
            "username": "x@evil.example", "from": "x@evil.example"});
        json!({"password": "mine", "smtp": with(base, extra)})
    };
    let refusals = [
        (json!({"password_file": victim}), "password_file"),
        (json!({"password_file": key}), "password_file"),
        (json!({"password_file": "other-mailbox.pass"}), "password_file"),
        (json!({"password_file": "/proc/self/environ"}), "password_file"),
        (json!({"password_env": "HOSTILE_DAEMON_ONLY_SECRET"}), "password_env"),
        (json!({"password_env": "PATH"}), "password_env"),
        (smtp(json!({"password_file": victim})), "smtp.password_file"),
        (smtp(json!({"password_env": "HOSTILE_DAEMON_ONLY_SECRET"})), "smtp.password_env"),
        // In clear only to this machine: never connected to, refused at validation.
        (json!({"host": "192.0.2.1", "password": "mine"}), "tls"),
        (smtp(json!({"host": "192.0.2.1", "password": "mine"})), "smtp.tls"),
    ];
    for (extra, field) in refusals {
        let answer = raw_add(env, with(evil.clone(), extra.clone()));
        let heard = recorder.heard();
        assert_eq!(answer["error"]["code"], "forbidden", "{extra}: {answer}\nrecorder: {heard:?}");
        assert_eq!(answer["error"]["field"], field, "{extra}: {answer}");
    }
    // collabctl's own flags too: --daemon-password-file, tls none to another host.
    let port = recorder.port.to_string();
    let local = ["mailbox", "add", "evil", "--host", "127.0.0.1", "--port", &port, "--tls", "none"];
    let mut args = local.to_vec();
    args.extend(["--username", "x", "--daemon-password-file", victim.to_str().unwrap()]);
    let (ok, _, err) = collabctl(env, &args);
    assert!(!ok && err.contains("forbidden") && err.contains("password_file"), "{err}");
    let pass = env.path("imap.pass");
    let remote = ["mailbox", "add", "evil", "--host", "192.0.2.1", "--tls", "none", "--username"];
    let mut args = remote.to_vec();
    args.extend(["x", "--password-file", pass.to_str().unwrap()]);
    let (ok, _, err) = collabctl(env, &args);
    assert!(!ok && err.contains("forbidden") && err.contains("tls"), "{err}");

    // A row that got into the table anyway (written before these rules, or by hand) is
    // held to them when the daemon loads it: left out, naming the key.
    let sneaky = json!({"name": "sneaky", "host": "127.0.0.1", "port": recorder.port,
        "tls": "none", "username": "x", "password_file": victim});
    sqlx::query("INSERT INTO mailboxes (name, settings) VALUES ('sneaky', $1)")
        .bind(&sneaky)
        .execute(&db.pool)
        .await
        .unwrap();
    let left_out = eventually(Duration::from_secs(5), || {
        let l = daemon.logs();
        async move {
            l.lines().any(|l| {
                l.contains("database mailbox left out") && l.contains("\"sneaky\".password_file")
            })
        }
    })
    .await;
    assert!(left_out, "{}", daemon.logs());
    sqlx::query("DELETE FROM mailboxes").execute(&db.pool).await.unwrap();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (connections, heard) = recorder.heard();
    assert_eq!((connections, heard.as_str()), (0, ""), "the recorder heard from the daemon");

    // The legitimate way: collabctl reads the password (and the --smtp table's
    // password_file, relative to the table) and sends it; it logs in and ingests.
    write_secret(&env.path("smtp.pass"), &format!("{SMTP_PASSWORD}\n"), 0o600);
    let smtp_toml = env.path("smtp.toml");
    std::fs::write(
        &smtp_toml,
        "[smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nusername = \"u\"\n\
         password_file = \"smtp.pass\"\nfrom = \"Live <live@brand.example>\"\n",
    )
    .unwrap();
    let login = ["--password-file", pass.to_str().unwrap()];
    let extra = ["--json", "--poll-interval", "500ms", "--smtp", smtp_toml.to_str().unwrap()];
    let (ok, out, err) = add_mailbox(env, "live", imap.port, BRAND, &login, &extra);
    assert!(ok, "{err}");
    let entry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(entry["stored_passwords"], json!(["imap", "smtp"]), "{entry}");
    imap.append(reply_to_outreach(&seed, 0, 1)).await;
    wait_for_rows(db, "collaborations", 1, Duration::from_secs(15), daemon).await;

    // Stored sealed: not in the rows, not in any answer, not in the log.
    let sealed: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT nonce || ciphertext FROM mailbox_passwords WHERE mailbox = 'live'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(sealed.len(), 2);
    let settings: String =
        sqlx::query_scalar("SELECT string_agg(settings::text, ' ') FROM mailboxes")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let mut seen = vec![settings];
    seen.extend(sealed.iter().map(|s| String::from_utf8_lossy(s).into_owned()));
    for args in [&["mailbox", "show", "live"][..], &["mailbox", "list"], &["status"]] {
        seen.push(collabctl_json(env, args).to_string());
        seen.push(collabctl(env, args).1);
    }
    seen.push(daemon.logs());
    for text in &seen {
        for secret in [PASSWORD, SMTP_PASSWORD, VICTIM, DAEMON_ENV_SECRET] {
            assert!(!text.contains(secret), "{secret} shown in: {text}");
        }
    }
    let (ok, shown, _) = collabctl(env, &["mailbox", "show", "live"]);
    assert!(ok && shown.contains("stored passwords (encrypted): imap, smtp"), "{shown}");
    assert_eq!(recorder.heard().0, 0, "the recorder heard from the daemon");
}

/// With `[admin] credentials_dir` and `password_env_prefix`, a file inside the directory
/// and a prefixed variable are the daemon's to read (both log in to Dovecot), while `..`
/// and a symlink out of the directory are refused; a group-readable file in it is warned
/// about at start, with its mode.
#[tokio::test]
async fn credentials_dir_files_and_prefixed_variables_only() {
    let options = AppOptions::default().mailboxes(Vec::new()).setup(|env| {
        let victim = victim_file(env);
        let creds = env.path("creds");
        std::fs::create_dir(&creds).unwrap();
        write_secret(&creds.join("partners.pass"), &format!("{PASSWORD}\n"), 0o644);
        std::os::unix::fs::symlink(&victim, creds.join("escape")).unwrap();
    });
    let app = spawn_app(options.env(&[
        ("COLLABD__ADMIN__CREDENTIALS_DIR", "{dir}/creds"),
        ("COLLABD__ADMIN__PASSWORD_ENV_PREFIX", "COLLABD_MAILBOX_"),
        ("COLLABD_MAILBOX_PARTNERS", PASSWORD),
    ]))
    .await;
    let (env, daemon, imap) = (&app.env, &app.daemon, app.imap());
    let victim = env.path("other-mailbox.pass");
    let warned = daemon.logs();
    assert!(
        warned.contains("readable by group or others")
            && warned.contains("partners.pass")
            && warned.contains("0644"),
        "{warned}"
    );
    let mailbox = |name: &str, extra: Value| {
        with(
            json!({"name": name, "host": "127.0.0.1", "port": imap.port, "tls": "none",
                "username": BRAND, "poll_interval": "500ms"}),
            extra,
        )
    };
    for (extra, field) in [
        (json!({"password_file": "../other-mailbox.pass"}), "password_file"),
        (json!({"password_file": "escape"}), "password_file"),
        (json!({"password_file": victim}), "password_file"),
        (json!({"password_env": "PATH"}), "password_env"),
    ] {
        let answer = raw_add(env, mailbox("evil", extra.clone()));
        assert_eq!(answer["error"]["code"], "forbidden", "{extra}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{extra}: {answer}");
    }
    for (name, extra) in [
        ("from-dir", json!({"password_file": "partners.pass"})),
        ("from-env", json!({"password_env": "COLLABD_MAILBOX_PARTNERS"})),
    ] {
        let answer = raw_add(env, mailbox(name, extra));
        assert!(answer["error"].is_null(), "{answer}");
    }
    let connected = || {
        let st = collabctl_json(env, &["status"]);
        st["mailboxes"].as_array().unwrap().iter().filter(|m| m["connected"] == true).count()
    };
    let ok = eventually(Duration::from_secs(15), || {
        let n = connected();
        async move { n == 2 }
    })
    .await;
    assert!(ok, "{}", daemon.logs());
    assert!(!daemon.logs().contains(VICTIM));
}
