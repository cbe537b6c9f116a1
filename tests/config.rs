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
