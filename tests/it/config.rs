//! Config errors give a non-zero exit and a one-line error naming the key.

use std::process::Command;

fn check(config: &std::path::Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_collabd"))
        .arg("--config")
        .arg(config)
        .arg("check-config")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const BASE: &str = "[database]\nurl = \"postgres://localhost/x\"\n";

fn mailbox(extra: &str) -> String {
    format!(
        "{BASE}[[mailboxes]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\npassword_env = \"COLLABD_TEST_PW\"\n{extra}\n"
    )
}

fn write(dir: &tempfile::TempDir, toml: &str) -> std::path::PathBuf {
    let p = dir.path().join("c.toml");
    std::fs::write(&p, toml).unwrap();
    p
}

#[test]
fn bad_configs_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();

    let (ok, err) = check(&dir.path().join("missing.toml"));
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");

    let (ok, err) = check(&write(&dir, "[database\nurl = 1"));
    assert!(!ok);
    assert!(err.contains("c.toml"), "{err}");

    let (ok, err) = check(&write(&dir, &mailbox("tls = \"sometimes\"")));
    assert!(!ok);
    assert!(err.contains("sometimes") && err.contains("tls"), "{err}");

    let (ok, err) = check(&write(
        &dir,
        &mailbox("")
            .replace("password_env = \"COLLABD_TEST_PW\"", "password_file = \"/nonexistent/pw\""),
    ));
    assert!(!ok);
    assert!(err.contains("mailboxes[0].password_file") && err.contains("/nonexistent/pw"), "{err}");

    let (ok, err) = check(&write(&dir, "[log]\nformat = \"text\"\n"));
    assert!(!ok);
    assert!(err.contains("database.url"), "{err}");

    let (ok, err) = check(&write(&dir, &mailbox("poll_interval = \"soon\"")));
    assert!(!ok);
    assert!(err.contains("poll_interval"), "{err}");

    let (ok, err) = check(&write(&dir, &format!("{BASE}[ingest]\nbatchsize = 3\n")));
    assert!(!ok);
    assert!(err.contains("batchsize"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn a_good_config_passes_and_env_overrides_apply() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let toml = mailbox("").replace(
        "password_env = \"COLLABD_TEST_PW\"",
        &format!("password_file = \"{}\"\npoll_interval = \"5m\"", pw.display()),
    );
    let (ok, err) = check(&write(&dir, &toml));
    assert!(ok, "{err}");

    // An environment override is applied and validated like the file.
    let out = Command::new(env!("CARGO_BIN_EXE_collabd"))
        .arg("--config")
        .arg(dir.path().join("c.toml"))
        .arg("check-config")
        .env("COLLABD__INGEST__BATCH_SIZE", "0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ingest.batch_size"));

    // COLLABD_CONFIG works in place of --config.
    let out = Command::new(env!("CARGO_BIN_EXE_collabd"))
        .arg("check-config")
        .env("COLLABD_CONFIG", dir.path().join("c.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_example_config_is_valid() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/collabd.example.toml");
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("imap-partners"), "pw\n").unwrap();
    std::fs::write(creds.path().join("smtp"), "pw\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_collabd"))
        .args(["--config", example, "check-config"])
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn defaults_apply_without_sections() {
    let dir = tempfile::tempdir().unwrap();
    let s = collabd::config::Settings::load(&write(&dir, BASE)).unwrap();
    assert_eq!(s.log.level, "info,sqlx=warn");
    assert_eq!(s.database.max_connections, 10);
    assert_eq!(s.ingest.max_message_size, 25 * 1024 * 1024);
}

/// A mailbox logging in with OAuth2: `auth`, its `oauth2` table and `[secrets] key_file`.
fn oauth_mailbox(dir: &tempfile::TempDir, auth: &str, oauth2: &str, secrets: &str) -> String {
    let key = dir.path().join("key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let secrets = secrets.replace("KEY", &key.display().to_string());
    format!(
        "{secrets}\n{BASE}[[mailboxes]]\nname = \"a\"\nhost = \"h\"\nusername = \"u\"\nauth = \"{auth}\"\n{oauth2}\n"
    )
}

#[test]
fn oauth_keys_are_checked_and_wrong_combinations_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let google = "[mailboxes.oauth2]\nprovider = \"google\"\nclient_id = \"id\"\nclient_secret_env = \"HOME\"";
    let secrets = "[secrets]\nkey_file = \"KEY\"";
    let (ok, err) = check(&write(&dir, &oauth_mailbox(&dir, "xoauth2", google, secrets)));
    assert!(ok, "{err}");
    let ms = "[mailboxes.oauth2]\nprovider = \"microsoft\"\ntenant = \"organizations\"\nclient_id = \"id\"";
    let (ok, err) = check(&write(&dir, &oauth_mailbox(&dir, "oauthbearer", ms, secrets)));
    assert!(ok, "{err}");

    for (auth, oauth2, secrets, key) in [
        ("xoauth2", "", secrets, "mailboxes[0].oauth2"),
        ("password", google, secrets, "mailboxes[0].oauth2"),
        ("xoauth2", google, "", "secrets.key_file"),
        ("xoauth2", &google.replace("google", "custom"), secrets, "mailboxes[0].oauth2.token_url"),
        ("xoauth2", &format!("{google}\ntenant = \"x\""), secrets, "mailboxes[0].oauth2.tenant"),
        (
            "xoauth2",
            &format!("{google}\nclient_secret_file = \"/x\""),
            secrets,
            "mailboxes[0].oauth2.client_secret_file",
        ),
        (
            "xoauth2",
            &format!("{google}\nrefresh_token_file = \"/nonexistent\""),
            secrets,
            "mailboxes[0].oauth2.refresh_token_file",
        ),
        (
            "xoauth2",
            &google.replace("\"google\"", "\"custom\"\ntoken_url = \"not a url\""),
            secrets,
            "mailboxes[0].oauth2.token_url",
        ),
        ("kerberos", google, secrets, "auth"),
    ] {
        let (ok, err) = check(&write(&dir, &oauth_mailbox(&dir, auth, oauth2, secrets)));
        assert!(!ok && err.contains(key), "{auth} / {oauth2:?}: want {key}, got {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // A password beside OAuth2 is refused, naming the password key.
    let both = oauth_mailbox(&dir, "xoauth2", google, secrets)
        .replace("auth = ", "password_env = \"HOME\"\nauth = ");
    let (ok, err) = check(&write(&dir, &both));
    assert!(!ok && err.contains("mailboxes[0].password_file"), "{err}");
    // A key file that is not 32 bytes of hex.
    std::fs::write(dir.path().join("bad"), "short").unwrap();
    let bad = oauth_mailbox(&dir, "xoauth2", google, "[secrets]\nkey_file = \"BAD\"")
        .replace("BAD", &dir.path().join("bad").display().to_string());
    let (ok, err) = check(&write(&dir, &bad));
    assert!(!ok && err.contains("secrets.key_file"), "{err}");
    // SMTP speaks XOAUTH2 only.
    let smtp = format!(
        "{BASE}[secrets]\nkey_file = \"{}\"\n[smtp]\nhost = \"h\"\nfrom = \"a@b.example\"\nusername = \"u\"\nauth = \"oauthbearer\"\n{}",
        dir.path().join("key").display(),
        google.replace("mailboxes.oauth2", "smtp.oauth2")
    );
    let (ok, err) = check(&write(&dir, &smtp));
    assert!(!ok && err.contains("smtp.auth"), "{err}");
}

/// Three mailboxes, the third (`mailboxes[2]`) with its own `[mailboxes.smtp]` table.
fn mailbox_smtp(dir: &tempfile::TempDir, smtp: &str, secrets: &str) -> String {
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "ab".repeat(32)).unwrap();
    let secrets = secrets.replace("KEY", &key.display().to_string());
    let entry = |name: &str| {
        format!(
            "[[mailboxes]]\nname = \"{name}\"\nhost = \"h\"\nusername = \"{name}@brand.example\"\npassword_file = \"{}\"\n",
            pw.display()
        )
    };
    format!(
        "{secrets}\n{BASE}[smtp]\nhost = \"smtp.brand.example\"\nfrom = \"partners@brand.example\"\n\n{}{}{}[mailboxes.smtp]\n{smtp}\n",
        entry("a"),
        entry("b"),
        entry("c"),
    )
}

#[test]
fn a_mailbox_smtp_table_is_checked_like_smtp_and_names_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw").display().to_string();
    let good = format!(
        "host = \"smtp.c.example\"\nport = 2525\ntls = \"none\"\nusername = \"c@brand.example\"\npassword_file = \"{pw}\"\nfrom = \"C Team <c@brand.example>\"\nreply_to = \"c@brand.example\""
    );
    let (ok, err) = check(&write(&dir, &mailbox_smtp(&dir, &good, "")));
    assert!(ok, "{err}");
    let s = collabd::config::Settings::load(&write(&dir, &mailbox_smtp(&dir, &good, ""))).unwrap();
    let own = s.mailboxes[2].smtp.as_ref().expect("mailboxes[2].smtp");
    assert_eq!((own.host.as_str(), own.effective_port()), ("smtp.c.example", 2525));
    assert!(s.mailboxes[0].smtp.is_none() && s.mailboxes[1].smtp.is_none());

    let google = "[mailboxes.smtp.oauth2]\nprovider = \"google\"\nclient_id = \"id\"";
    let secrets = "[secrets]\nkey_file = \"KEY\"";
    let oauth = format!(
        "host = \"h\"\nfrom = \"c@brand.example\"\nusername = \"c@brand.example\"\nauth = \"xoauth2\"\n{google}"
    );
    let (ok, err) = check(&write(&dir, &mailbox_smtp(&dir, &oauth, secrets)));
    assert!(ok, "{err}");

    for (smtp, secrets, key) in [
        (good.replace("C Team <c@brand.example>", "not an address"), "", "mailboxes[2].smtp.from"),
        (
            good.replace("reply_to = \"c@brand.example\"", "reply_to = \"nope\""),
            "",
            "mailboxes[2].smtp.reply_to",
        ),
        (good.replace(&pw, "/nonexistent/pw"), "", "mailboxes[2].smtp.password_file"),
        (
            good.replace("password_file", "password_env = \"HOME\"\npassword_file"),
            "",
            "mailboxes[2].smtp.password_file",
        ),
        (good.replace("from = \"C Team <c@brand.example>\"\n", ""), "", "from"),
        (good.replace("\"smtp.c.example\"", "\"\""), "", "mailboxes[2].smtp.host"),
        (format!("{good}\ntimeout = \"0s\""), "", "mailboxes[2].smtp.timeout"),
        (good.replace("port = 2525", "colour = \"blue\""), "", "colour"),
        (oauth.clone(), "", "secrets.key_file"),
        (oauth.replace(google, ""), secrets, "mailboxes[2].smtp.oauth2"),
        (oauth.replace("xoauth2", "oauthbearer"), secrets, "mailboxes[2].smtp.auth"),
        (
            oauth.replace("username = \"c@brand.example\"\n", ""),
            secrets,
            "mailboxes[2].smtp.username",
        ),
        (format!("{good}\n{google}"), "", "mailboxes[2].smtp.oauth2"),
        (oauth.replace("\"google\"", "\"custom\""), secrets, "mailboxes[2].smtp.oauth2.token_url"),
    ] {
        let (ok, err) = check(&write(&dir, &mailbox_smtp(&dir, &smtp, secrets)));
        assert!(!ok && err.contains(key), "{smtp:?}: want {key}, got {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

/// A secret file group or others can read: `check-config` names it and its mode on stderr
/// and still passes; the same file at 0600 is not mentioned. Files in `[admin]
/// credentials_dir` are checked too.
#[test]
fn secret_files_readable_by_others_are_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("imap.pass");
    std::fs::write(&pw, "pw\n").unwrap();
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    let cred = creds.join("partners");
    std::fs::write(&cred, "pw\n").unwrap();
    let toml = mailbox("")
        .replace(
            "password_env = \"COLLABD_TEST_PW\"",
            &format!("password_file = \"{}\"", pw.display()),
        )
        .replace(BASE, &format!("{BASE}[admin]\ncredentials_dir = \"{}\"\n", creds.display()));
    let config = write(&dir, &toml);
    let mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };
    mode(&pw, 0o644);
    mode(&cred, 0o640);
    let (ok, err) = check(&config);
    assert!(ok, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("mailboxes[0].password_file"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&pw.display().to_string()) && line.contains("0644"), "{line}");
    let line = err
        .lines()
        .find(|l| l.contains("admin.credentials_dir"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("partners") && line.contains("0640"), "{line}");
    mode(&pw, 0o600);
    mode(&cred, 0o400);
    let (ok, err) = check(&config);
    assert!(ok && !err.contains("readable"), "{err}");
}

/// Passwords never sit in the file; a relative `credentials_dir` is refused.
#[test]
fn inline_passwords_and_a_relative_credentials_dir_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, err) = check(&write(
        &dir,
        &mailbox("password = \"hunter2\"").replace("password_env = \"COLLABD_TEST_PW\"\n", ""),
    ));
    assert!(!ok && err.contains("mailboxes[0].password") && !err.contains("hunter2"), "{err}");
    let toml = mailbox("").replace(BASE, &format!("{BASE}[admin]\ncredentials_dir = \"creds\"\n"));
    let (ok, err) = check(&write(&dir, &toml));
    assert!(!ok && err.contains("admin.credentials_dir"), "{err}");
}
