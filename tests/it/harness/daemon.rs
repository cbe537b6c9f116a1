//! The real `collabd` as a child process: its config directory ([`DaemonEnv`]), the
//! running process ([`DaemonProc`]), `collabctl` against its socket, and the lease events
//! of its log. The lower layer of [`super::spawn_app`], for tests with several daemons.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{BRAND, PASSWORD, TestDb, eventually};

/// Waits until `table` holds exactly `n` rows; past `limit` the test fails with the
/// daemon's log.
pub async fn wait_for_rows(db: &TestDb, table: &str, n: i64, limit: Duration, daemon: &DaemonProc) {
    assert!(
        eventually(limit, || async { db.rows(table).await == n }).await,
        "{table} never held {n} rows\n{}",
        daemon.logs()
    );
}
/// Settings for one mailbox in a test config.
pub struct MailboxCfg {
    pub name: String,
    pub port: u16,
    /// `None` for a mailbox that logs in with OAuth2 (its `extra` carries `auth`).
    pub password_file: Option<PathBuf>,
    pub poll_interval: String,
    pub timeout: String,
    pub extra: String,
}

/// A config directory (config file, password file, admin socket path) for one daemon.
pub struct DaemonEnv {
    pub dir: tempfile::TempDir,
    pub db_url: String,
}

impl DaemonEnv {
    pub fn new(db_url: &str) -> DaemonEnv {
        let dir = tempfile::Builder::new().prefix("collabd-test").tempdir().unwrap();
        std::fs::write(dir.path().join("imap.pass"), format!("{PASSWORD}\n")).unwrap();
        DaemonEnv { dir, db_url: db_url.to_owned() }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn mailbox(&self, name: &str, port: u16) -> MailboxCfg {
        MailboxCfg {
            name: name.into(),
            port,
            password_file: Some(self.path("imap.pass")),
            poll_interval: "500ms".into(),
            timeout: "5s".into(),
            extra: String::new(),
        }
    }

    /// Writes `collabd.toml` with the given mailboxes and extra top-level TOML. Unless
    /// `extra` has its own `[secrets]`, `[secrets] key_file` is `secret.key` (0600, made
    /// here): mailboxes added at run time need it for their stored passwords.
    pub fn write_config(&self, mailboxes: &[MailboxCfg], extra: &str) -> PathBuf {
        let mut toml = format!(
            "{extra}\n[database]\nurl = \"{}\"\n\n[admin]\nsocket = \"{}\"\n\n[log]\nlevel = \"info,collabd=debug\"\n",
            self.db_url,
            self.path("admin.sock").display()
        );
        if !extra.contains("[secrets]") {
            use std::os::unix::fs::PermissionsExt;
            let key = self.path("secret.key");
            std::fs::write(&key, "5e".repeat(32)).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            toml.push_str(&format!("\n[secrets]\nkey_file = \"{}\"\n", key.display()));
        }
        for m in mailboxes {
            let password = m
                .password_file
                .as_ref()
                .map(|p| format!("password_file = \"{}\"\n", self.dir.path().join(p).display()))
                .unwrap_or_default();
            toml.push_str(&format!(
                "\n[[mailboxes]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 username = \"{BRAND}\"\n{password}poll_interval = \"{}\"\ntimeout = \"{}\"\n{}\n",
                m.name, m.port, m.poll_interval, m.timeout, m.extra
            ));
        }
        let path = self.path("collabd.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// Starts the real daemon binary with this environment's config.
    pub fn spawn(&self) -> DaemonProc {
        self.spawn_with_env(&[])
    }

    /// Starts the daemon with extra environment variables (e.g. `COLLABD__…` overrides).
    pub fn spawn_with_env(&self, vars: &[(&str, &str)]) -> DaemonProc {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("collabd.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_collabd"))
            .arg("--config")
            .arg(self.path("collabd.toml"))
            .env_remove("DATABASE_URL")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .envs(vars.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        DaemonProc { child: Some(child), log: self.path("collabd.log") }
    }
}

/// A running `collabd`; killed on drop.
pub struct DaemonProc {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl DaemonProc {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Sends SIGTERM and returns the exit status and how long the exit took.
    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let start = Instant::now();
        self.signal(nix::sys::signal::Signal::SIGTERM);
        let status = self.wait(Duration::from_secs(15));
        (status, start.elapsed())
    }

    pub fn kill(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.wait(Duration::from_secs(10));
    }

    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "collabd did not exit; log:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
/// Runs the real `collabctl` against a daemon's socket; returns (success, stdout, stderr).
pub fn collabctl(env: &DaemonEnv, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_collabctl"))
        .arg("--socket")
        .arg(env.path("admin.sock"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `collabctl mailbox add NAME` for a server on this machine without TLS, logging in as
/// `username` with `login` (`["--password-file", F]`, `["--oauth2", F]`, …), then `extra`
/// (`--folder`, `--poll-interval`, `--json`, …); returns what [`collabctl`] does.
pub fn add_mailbox(
    env: &DaemonEnv,
    name: &str,
    port: u16,
    username: &str,
    login: &[&str],
    extra: &[&str],
) -> (bool, String, String) {
    let port = port.to_string();
    let mut args =
        vec!["mailbox", "add", name, "--host", "127.0.0.1", "--port", &port, "--tls", "none"];
    args.extend(["--username", username]);
    args.extend(login);
    args.extend(extra);
    collabctl(env, &args)
}

/// `collabctl --json …` that must succeed; returns the parsed result.
pub fn collabctl_json(env: &DaemonEnv, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (ok, out, err) = collabctl(env, &all);
    assert!(ok, "collabctl {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap()
}

/// Waits until the daemon's admin socket answers.
pub async fn wait_for_socket(env: &DaemonEnv, daemon: &DaemonProc) {
    let sock = env.path("admin.sock");
    let ok = eventually(Duration::from_secs(20), || {
        let sock = sock.clone();
        async move { tokio::net::UnixStream::connect(&sock).await.is_ok() }
    })
    .await;
    assert!(ok, "admin socket never came up:\n{}", daemon.logs());
}
/// What an instance logged about one mailbox lease (`crate::cluster`'s events).
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseEvent {
    pub at: chrono::DateTime<chrono::Utc>,
    pub kind: String,
    pub instance: String,
    pub mailbox: String,
}

/// The lease events in a daemon's text log (`lease_acquired`, `lease_released`,
/// `lease_lost`), in order.
pub fn lease_events(log: &str) -> Vec<LeaseEvent> {
    let field = |line: &str, key: &str| -> Option<String> {
        let start = line.find(&format!(" {key}="))? + key.len() + 2;
        let rest = &line[start..];
        let value = rest.split(' ').next()?;
        Some(value.trim_matches('"').to_owned())
    };
    log.lines()
        .filter(|l| l.contains("event=\"lease_"))
        .filter_map(|l| {
            let at = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
            Some(LeaseEvent {
                at: at.with_timezone(&chrono::Utc),
                kind: field(l, "event")?,
                instance: field(l, "instance")?,
                mailbox: field(l, "mailbox")?,
            })
        })
        .collect()
}

/// One instance's hold on a mailbox: from, to, instance.
type Holding = (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>, String);

/// Checks that no mailbox was ever held by two instances at once, from every instance's
/// lease events: each holding runs from `lease_acquired` to `lease_released` or
/// `lease_lost`, or to the instance's death (`deaths`: instance pid → when it was
/// SIGKILLed), or on to the end. Returns how many holdings there were.
pub fn assert_never_held_twice(
    events: &[LeaseEvent],
    deaths: &std::collections::HashMap<i32, chrono::DateTime<chrono::Utc>>,
) -> usize {
    use std::collections::HashMap;
    let pid_of = |instance: &str| -> i32 {
        instance.rsplit('-').nth(1).and_then(|p| p.parse().ok()).unwrap()
    };
    let far = chrono::DateTime::<chrono::Utc>::MAX_UTC;
    // (mailbox) → [(from, to, instance)]
    let mut open: HashMap<(String, String), chrono::DateTime<chrono::Utc>> = HashMap::new();
    let mut spans: HashMap<String, Vec<Holding>> = HashMap::new();
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|e| e.at);
    for e in &sorted {
        let key = (e.mailbox.clone(), e.instance.clone());
        match e.kind.as_str() {
            "lease_acquired" => {
                assert!(
                    open.insert(key, e.at).is_none(),
                    "acquired twice without a release: {e:?}"
                );
            }
            _ => {
                if let Some(from) = open.remove(&key) {
                    spans.entry(e.mailbox.clone()).or_default().push((
                        from,
                        e.at,
                        e.instance.clone(),
                    ));
                }
            }
        }
    }
    for ((mailbox, instance), from) in open {
        let to = deaths.get(&pid_of(&instance)).copied().unwrap_or(far);
        spans.entry(mailbox).or_default().push((from, to, instance));
    }
    let mut total = 0;
    for (mailbox, mut list) in spans {
        list.sort_by_key(|s| s.0);
        total += list.len();
        for pair in list.windows(2) {
            assert!(
                pair[0].1 <= pair[1].0,
                "mailbox {mailbox} held twice: {} from {} to {}, and {} from {}",
                pair[0].2,
                pair[0].0,
                pair[0].1,
                pair[1].2,
                pair[1].0
            );
        }
    }
    total
}
