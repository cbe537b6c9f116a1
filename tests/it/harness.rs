//! Shared test harness: a fresh Postgres database per test, a private Dovecot per test on
//! a free port, and the real `collabd` binary run as a child process.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use collabd::store::Store;
use futures::TryStreamExt;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

pub const BRAND: &str = "partners@brand.example";
pub const PASSWORD: &str = "s3cret-pass";

/// The admin URL of the test cluster (`scripts/test` starts one and exports it).
/// Held by the tests that load the machine most (several daemons, dozens of sessions) and
/// by those that measure a latency: no two of them run at once, whatever the test threads.
/// Before the tests were one crate, each file was its own binary and such tests never met.
pub async fn one_heavy_test_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    HEAVY.lock().await
}

pub fn admin_url() -> String {
    std::env::var("COLLABD_TEST_PG").or_else(|_| std::env::var("DATABASE_URL")).expect(
        "COLLABD_TEST_PG (or DATABASE_URL) must point at a Postgres superuser; run ./scripts/test",
    )
}

/// A database of its own for one test.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    pub store: Store,
}

impl TestDb {
    pub async fn new() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "collabd_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand::random::<u32>()
        );
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin).await.expect("connect to test Postgres");
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
        let url = format!("{base}/{name}");
        let pool = PgPoolOptions::new().max_connections(5).connect(&url).await.unwrap();
        let store = Store::from_pool(pool.clone());
        store.migrate().await.expect("migrations");
        TestDb { url, pool, store }
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Rows in `table`.
    pub async fn rows(&self, table: &str) -> i64 {
        self.count(&format!("SELECT count(*) FROM {table}")).await
    }
}

/// Waits until `table` holds exactly `n` rows; past `limit` the test fails with the
/// daemon's log.
pub async fn wait_for_rows(db: &TestDb, table: &str, n: i64, limit: Duration, daemon: &DaemonProc) {
    assert!(
        eventually(limit, || async { db.rows(table).await == n }).await,
        "{table} never held {n} rows\n{}",
        daemon.logs()
    );
}

/// Seeded campaign, creators and outreach, the shape every ingest test starts from.
pub struct Seed {
    pub campaign_id: i64,
    pub creators: Vec<SeedCreator>,
}

pub struct SeedCreator {
    pub id: i64,
    pub email: String,
    pub outreach_message_id: String,
}

/// Creates one campaign and `n` creators, each with one outreach message.
pub async fn seed(db: &TestDb, n: usize) -> Seed {
    let campaign_id: i64 =
        sqlx::query_scalar("INSERT INTO campaigns (name) VALUES ('Winter Glow') RETURNING id")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    let mut creators = Vec::new();
    for i in 0..n {
        let email = format!("creator{i}@mail.example");
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO creators (name, platform, handle) VALUES ($1, 'tiktok', $2) RETURNING id",
        )
        .bind(format!("Creator {i}"))
        .bind(format!("creator_{i}"))
        .fetch_one(&db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO creator_emails (creator_id, address, role) VALUES ($1, $2, 'creator')",
        )
        .bind(id)
        .bind(&email)
        .execute(&db.pool)
        .await
        .unwrap();
        let mid = format!("outreach-{i}.{}@brand.example", rand::random::<u32>());
        sqlx::query(
            "INSERT INTO outreach_messages (message_id, creator_id, campaign_id, to_address, subject)
             VALUES ($1, $2, $3, $4, 'Winter Glow x you')",
        )
        .bind(&mid)
        .bind(id)
        .bind(campaign_id)
        .bind(&email)
        .execute(&db.pool)
        .await
        .unwrap();
        creators.push(SeedCreator { id, email, outreach_message_id: mid });
    }
    Seed { campaign_id, creators }
}

/// A plain-text reply, shaped like what Gmail sends.
pub fn reply(
    from: &str,
    message_id: &str,
    in_reply_to: Option<&str>,
    references: &[&str],
    body: &str,
) -> Vec<u8> {
    let mut m = format!(
        "From: Creator <{from}>\r\nTo: Brand <{BRAND}>\r\nSubject: Re: Winter Glow x you\r\n\
         Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
    );
    if let Some(irt) = in_reply_to {
        m.push_str(&format!("In-Reply-To: <{irt}>\r\n"));
    }
    if !references.is_empty() {
        let refs: Vec<String> = references.iter().map(|r| format!("<{r}>")).collect();
        m.push_str(&format!("References: {}\r\n", refs.join(" ")));
    }
    m.push_str("Content-Type: text/plain; charset=UTF-8\r\n\r\n");
    m.push_str(body);
    m.push_str("\r\n\r\nOn Sun, 22 Nov 2026 at 09:00, Brand <partners@brand.example> wrote:\r\n> Would you like to work with us?\r\n");
    m.into_bytes()
}

/// Reply to seeded creator `i`'s outreach with In-Reply-To and References set.
pub fn reply_to_outreach(seed: &Seed, i: usize, n: u32) -> Vec<u8> {
    let c = &seed.creators[i];
    reply(
        &c.email,
        &format!("reply-{i}-{n}@mail.example"),
        Some(&c.outreach_message_id),
        &[&c.outreach_message_id],
        "Hi! Yes, I'd love to do this. What are the next steps?",
    )
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP relay to `127.0.0.1:target` that sends the server's bytes on at most
/// `bytes_per_sec`: a throttled IMAP server or a slow link, for as long as the test runs.
/// Returns the port to dial.
pub async fn slow_link(target: u16, bytes_per_sec: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                continue;
            };
            let (mut client_rd, mut client_wr) = client.into_split();
            let (mut server_rd, mut server_wr) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut client_rd, &mut server_wr).await });
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n @ 1..) = server_rd.read(&mut buf).await {
                    if client_wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    let pause = Duration::from_secs_f64(n as f64 / bytes_per_sec as f64);
                    tokio::time::sleep(pause).await;
                }
            });
        }
    });
    port
}

/// A private Dovecot IMAP server with its own maildir, for one test.
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Dovecot {
    /// Starts Dovecot with the brand mailbox user.
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// Starts Dovecot with extra lines in its configuration.
    pub fn start_with(extra_conf: &str) -> Dovecot {
        let dir = tempfile::Builder::new().prefix("collabd-dovecot").tempdir().unwrap();
        Dovecot::start_in(dir, extra_conf)
    }

    /// Starts Dovecot in `dir`, which may already hold files `extra_conf` names.
    fn start_in(dir: tempfile::TempDir, extra_conf: &str) -> Dovecot {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let port = free_port();
        let d = Dovecot { dir, port };
        std::fs::write(d.path("passwd"), format!("{BRAND}:{{PLAIN}}{PASSWORD}\n")).unwrap();
        std::fs::create_dir_all(d.path("mail")).unwrap();
        std::fs::create_dir_all(d.path("run")).unwrap();
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(d.path("mail"))
            .status()
            .unwrap();
        assert!(status.success());
        let root = d.dir.path().display();
        std::fs::write(
            d.path("dovecot.conf"),
            format!(
                r#"base_dir = {root}/run
log_path = {root}/dovecot.log
instance_name = collabd-test-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
mail_location = maildir:{root}/mail/%u/maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
{extra_conf}
"#
            ),
        )
        .unwrap();
        d.launch();
        d
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn launch(&self) {
        let status = Command::new("/usr/sbin/dovecot")
            .arg("-c")
            .arg(self.path("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("dovecot binary (apt-get install dovecot-imapd)");
        assert!(status.success(), "dovecot failed to start");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "dovecot did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server (SIGTERM to its master process) and waits until it is gone.
    pub fn stop(&self) {
        // A master whose pid file is gone (or not yet written) is found by its config.
        let conf = self.path("dovecot.conf");
        let _ = Command::new("pkill")
            .args(["-TERM", "-f", &format!("dovecot -c {}", conf.display())])
            .status();
        let pid = std::fs::read_to_string(self.path("run/master.pid")).unwrap_or_default();
        let Ok(pid) = pid.trim().parse::<i32>() else { return };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while nix::sys::signal::kill(pid, None).is_ok() {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Client sessions outlive the master; an outage takes them down too.
        let _ = Command::new("pkill")
            .args(["-KILL", "-f", &format!("collabd-test-{}/", self.port)])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&self) {
        self.launch();
    }

    /// Opens an IMAP session as the brand user.
    pub async fn session(&self) -> async_imap::Session<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        client.login(BRAND, PASSWORD).await.map_err(|(e, _)| e).unwrap()
    }

    /// APPENDs messages to a folder over IMAP, as a mail delivery would.
    pub async fn append_all(&self, folder: &str, messages: &[Vec<u8>]) {
        let mut s = self.session().await;
        for m in messages {
            s.append(folder, None, None, m).await.unwrap();
        }
        s.logout().await.unwrap();
    }

    pub async fn append(&self, message: Vec<u8>) {
        self.append_all("INBOX", &[message]).await;
    }

    /// Creates a folder over IMAP.
    pub async fn create_folder(&self, name: &str) {
        let mut s = self.session().await;
        s.create(name).await.unwrap();
        s.logout().await.unwrap();
    }

    /// Deletes and recreates a folder: it comes back empty, with a new UIDVALIDITY.
    pub async fn recreate_folder(&self, name: &str) {
        let mut s = self.session().await;
        s.delete(name).await.unwrap();
        s.create(name).await.unwrap();
        s.logout().await.unwrap();
    }

    /// UIDVALIDITY of a folder as the server reports it.
    pub async fn uidvalidity(&self, folder: &str) -> u32 {
        let mut s = self.session().await;
        let mb = s.examine(folder).await.unwrap();
        s.logout().await.unwrap();
        mb.uid_validity.unwrap()
    }

    /// The flags of every message, to prove collabd never marks mail as read.
    pub async fn seen_count(&self) -> usize {
        let mut s = self.session().await;
        s.examine("INBOX").await.unwrap();
        let fetches: Vec<_> =
            s.fetch("1:*", "FLAGS").await.unwrap().try_collect().await.unwrap_or_default();
        let seen = fetches
            .iter()
            .filter(|f| f.flags().any(|fl| matches!(fl, async_imap::types::Flag::Seen)))
            .count();
        s.logout().await.unwrap();
        seen
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
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
                .map(|p| format!("password_file = \"{}\"\n", p.display()))
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

/// Polls `check` until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
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

/// A real SMTP server (Python's aiosmtpd) that stores what it receives in a Maildir.
pub struct SmtpSink {
    pub port: u16,
    pub mbox: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
    auth_log: PathBuf,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mbox = dir.path().join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&mbox)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let auth_log = dir.path().join("auth.log");
        SmtpSink { port, mbox, child, _dir: dir, auth_log }
    }

    /// Every message received so far, concatenated.
    pub fn received(&self) -> String {
        let mut all = String::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.mbox.join(sub)).into_iter().flatten().flatten() {
                all.push_str(&read(&entry.path()));
            }
        }
        all
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dovecot {
    /// Delivers a message by dropping it into the brand user's maildir, as a local
    /// delivery agent would: works while the IMAP server is down.
    pub fn deliver_to_maildir(&self, name: &str, message: &[u8]) {
        let dir = self.path(&format!("mail/{BRAND}/maildir"));
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let tmp = dir.join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        let new = dir.join("new").join(name);
        std::fs::rename(&tmp, &new).unwrap();
        let status =
            Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&dir).status().unwrap();
        assert!(status.success());
    }
}

/// A PostgreSQL server of the test's own, for tests that restart it.
pub struct PrivatePg {
    dir: tempfile::TempDir,
    pub port: u16,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl PrivatePg {
    pub fn start() -> PrivatePg {
        let dir = tempfile::Builder::new().prefix("collabd-pg").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        Command::new("chown").args(["postgres:postgres"]).arg(&data).status().unwrap();
        let pg = PrivatePg { dir, port: free_port() };
        let ok = pg
            .as_postgres(
                &format!("{PG_BIN}/initdb"),
                &["-D", &pg.data(), "-U", "postgres", "--auth=trust", "--no-sync"],
            )
            .success();
        assert!(ok, "initdb failed");
        pg.start_server();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, bin: &str, args: &[&str]) -> std::process::ExitStatus {
        Command::new("runuser")
            .args(["-u", "postgres", "--", bin])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    pub fn start_server(&self) {
        let data = self.data();
        let opts = format!("-c listen_addresses=127.0.0.1 -p {} -k {data} -c fsync=off", self.port);
        let log = format!("{data}/server.log");
        let ok = self
            .as_postgres(
                &format!("{PG_BIN}/pg_ctl"),
                &["-D", &data, "-l", &log, "-w", "-o", &opts, "start"],
            )
            .success();
        assert!(ok, "pg_ctl start failed");
    }

    /// Stops the server the hard way (like a crash or `kill -9` of the postmaster's work).
    pub fn stop_immediate(&self) {
        self.as_postgres(
            &format!("{PG_BIN}/pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A migrated store on this server.
    pub async fn db(&self) -> TestDb {
        let pool = PgPoolOptions::new().max_connections(5).connect(&self.url()).await.unwrap();
        let store = Store::from_pool(pool.clone());
        store.migrate().await.unwrap();
        TestDb { url: self.url(), pool, store }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        self.stop_immediate();
    }
}

/// A fresh database seeded with `creators` creators and their outreach, and an empty
/// private Dovecot: where most tests start.
pub async fn seeded_mailbox(creators: usize) -> (TestDb, Seed, Dovecot) {
    seeded_mailbox_with(creators, "").await
}

/// [`seeded_mailbox`] with extra Dovecot configuration.
pub async fn seeded_mailbox_with(creators: usize, dovecot_conf: &str) -> (TestDb, Seed, Dovecot) {
    let db = TestDb::new().await;
    let seed = seed(&db, creators).await;
    (db, seed, Dovecot::start_with(dovecot_conf))
}

/// Holds `inbound_messages` against inserts until the returned transaction ends. With
/// [`wait_until_daemon_blocks`] it is the one way to be sure that a batch is in flight,
/// whatever the speed of the machine, when a test then kills something.
pub async fn hold_inbound(db: &TestDb) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE inbound_messages IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}

/// Waits until the daemon's insert is queued behind [`hold_inbound`].
pub async fn wait_until_daemon_blocks(db: &TestDb, daemon: &DaemonProc) {
    // This test's database only: other tests hold and wait on their own tables meanwhile.
    let waiting = "SELECT count(*) FROM pg_stat_activity \
                   WHERE datname = current_database() AND wait_event_type = 'Lock' \
                     AND query ILIKE '%inbound_messages%'";
    assert!(
        eventually(Duration::from_secs(60), || async { db.count(waiting).await >= 1 }).await,
        "the daemon never reached the held table: {}",
        daemon.logs()
    );
}

/// A seeded database and a Dovecot INBOX holding `messages` replies spread over
/// `creators` creators (message k comes from creator k % creators).
pub async fn loaded_mailbox(creators: usize, messages: usize) -> (TestDb, Seed, Dovecot) {
    let (db, seed, imap) = seeded_mailbox(creators).await;
    let all: Vec<Vec<u8>> =
        (0..messages).map(|k| reply_to_outreach(&seed, k % creators, k as u32)).collect();
    imap.append_all("INBOX", &all).await;
    (db, seed, imap)
}

// ---------------------------------------------------------------------------------------
// OAuth2: the fake token server (tests/support/oauth_server.py), Dovecot checking bearer
// tokens against it, and an SMTP sink that takes AUTH XOAUTH2.

/// The client the fake token server knows.
pub const OAUTH_CLIENT_ID: &str = "collabd-test";
pub const OAUTH_CLIENT_SECRET: &str = "test-secret";

/// A script under `tests/support/`.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support").join(name)
}

/// Starts a support script that prints `PORT n` as its first line; returns it and `n`.
/// Its stderr goes to `log`.
fn spawn_reporting_port(cmd: &mut Command, log: &Path) -> (Child, u16) {
    let err = std::fs::File::create(log).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err)
        .spawn()
        .expect("python3 (3.11) with aiosmtpd");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(stdout);
        let mut first = String::new();
        let _ = lines.read_line(&mut first);
        let _ = tx.send(first);
        // Keep draining so that a later print never fails on a closed pipe.
        let _ = std::io::copy(&mut lines, &mut std::io::sink());
    });
    let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
    let Some(port) = first.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{cmd:?} did not report its port (got {first:?}):\n{}", read(log));
    };
    (child, port)
}

/// One HTTP answer.
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A blocking HTTP/1.1 request to `127.0.0.1:port`, one connection per request.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpReply {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).unwrap();
    tcp.write_all(body).unwrap();
    let mut raw = Vec::new();
    tcp.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP header");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok());
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    HttpReply { status: status.expect("an HTTP status"), headers, body: raw[split + 4..].to_vec() }
}

/// `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// Standard base64 with padding (HTTP Basic auth, SASL payloads).
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The fake OAuth2 token server: refresh, device and PKCE code grants, introspection,
/// and `/control/*` endpoints for tests. Killed on drop.
pub struct OAuthServer {
    pub port: u16,
    child: Child,
    /// Holds the server's log (`oauth.log`) for as long as it runs.
    _dir: tempfile::TempDir,
}

impl OAuthServer {
    /// Starts the server with its defaults: access tokens live an hour, refresh tokens
    /// do not rotate, device and code grants belong to [`BRAND`].
    pub fn start() -> OAuthServer {
        let dir = tempfile::Builder::new().prefix("collabd-oauth").tempdir().unwrap();
        let (child, port) = spawn_reporting_port(
            Command::new("python3").arg(support_script("oauth_server.py")).args([
                "--port",
                "0",
                "--verbose",
                "--default-user",
                BRAND,
            ]),
            &dir.path().join("oauth.log"),
        );
        OAuthServer { port, child, _dir: dir }
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpReply {
        http_request(self.port, method, path, headers, body)
    }

    /// POSTs a form, without client credentials unless `form` carries them.
    pub fn post_form(&self, path: &str, form: &[(&str, &str)]) -> HttpReply {
        let ct = ("Content-Type", "application/x-www-form-urlencoded");
        self.request("POST", path, &[ct], form_encode(form).as_bytes())
    }

    /// POSTs a form to `/token` with the client's credentials as HTTP Basic auth, as the
    /// `oauth2` crate does.
    pub fn token_request(&self, form: &[(&str, &str)]) -> HttpReply {
        let basic = format!(
            "Basic {}",
            base64(format!("{OAUTH_CLIENT_ID}:{OAUTH_CLIENT_SECRET}").as_bytes())
        );
        let headers =
            [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &basic)];
        self.request("POST", "/token", &headers, form_encode(form).as_bytes())
    }

    /// A `/control/*` call that must succeed.
    pub fn control(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let reply = self.request(
            "POST",
            &format!("/control/{path}"),
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        );
        assert_eq!(reply.status, 200, "/control/{path}: {}", reply.text());
        reply.json()
    }

    /// A new grant for `user`; returns its refresh token.
    pub fn grant(&self, user: &str) -> String {
        let v = self.control("grant", serde_json::json!({ "username": user }));
        v["refresh_token"].as_str().unwrap().to_owned()
    }

    /// Redeems a refresh token; the token answer, which must be a success.
    pub fn refresh(&self, refresh_token: &str) -> serde_json::Value {
        let reply = self
            .token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)]);
        assert_eq!(reply.status, 200, "refresh: {}", reply.text());
        reply.json()
    }

    /// A live access token for `user` (a new grant, refreshed once).
    pub fn access_token(&self, user: &str) -> String {
        let grant = self.grant(user);
        self.refresh(&grant)["access_token"].as_str().unwrap().to_owned()
    }

    /// Approves a pending device authorization, as the user would in a browser.
    pub fn approve(&self, user_code: &str) {
        self.control("approve", serde_json::json!({ "user_code": user_code }));
    }

    /// Revokes every refresh and access token of `user`.
    pub fn revoke(&self, user: &str) {
        self.control("revoke", serde_json::json!({ "username": user }));
    }

    /// Ends the life of `user`'s access tokens now; refresh tokens keep working.
    pub fn expire(&self, user: &str) {
        self.control("expire", serde_json::json!({ "username": user }));
    }

    /// Lifetime of access tokens issued from now on, and whether a refresh replaces the
    /// refresh token (Microsoft) or keeps it (Google).
    pub fn config(&self, access_ttl_secs: u64, rotate: bool) {
        self.control(
            "config",
            serde_json::json!({ "access_ttl": access_ttl_secs, "rotate": rotate }),
        );
    }

    /// Counters and live refresh tokens: `refreshes`, `failed_refreshes`,
    /// `introspections`, `device_polls`, `code_exchanges`, `token_requests`,
    /// `live_refresh_tokens` {user: [token]}, `live_access_tokens` {user: n}, `config`.
    pub fn stats(&self) -> serde_json::Value {
        let reply = self.request("GET", "/control/stats", &[], b"");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }
}

impl Drop for OAuthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SASL XOAUTH2's client response (before base64).
pub fn xoauth2_payload(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// SASL OAUTHBEARER's client response (RFC 7628, before base64).
pub fn oauthbearer_payload(user: &str, host: &str, port: u16, token: &str) -> String {
    format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
}

/// Answers the first continuation with the SASL response and any later one (a server's
/// error challenge) with an empty line, which ends the exchange.
pub struct SaslResponse(pub Option<String>);

impl async_imap::Authenticator for SaslResponse {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        self.0.take().unwrap_or_default()
    }
}

impl Dovecot {
    /// Dovecot that also takes SASL XOAUTH2 and OAUTHBEARER, checking each bearer token
    /// with `oauth`'s /introspect at login (PLAIN with [`PASSWORD`] keeps working).
    /// Failed logins are answered at once: no failure delay, no per-IP penalty.
    pub fn start_oauth(oauth: &OAuthServer) -> Dovecot {
        let dir = tempfile::Builder::new().prefix("collabd-dovecot").tempdir().unwrap();
        let args = dir.path().join("oauth2.conf");
        std::fs::write(
            &args,
            format!(
                "introspection_url = {}\nintrospection_mode = post\nforce_introspection = yes\n\
                 username_attribute = username\nactive_attribute = active\nactive_value = true\n",
                oauth.url("/introspect")
            ),
        )
        .unwrap();
        std::fs::set_permissions(&args, std::fs::Permissions::from_mode(0o644)).unwrap();
        let extra = format!(
            r#"auth_mechanisms = plain xoauth2 oauthbearer
auth_failure_delay = 0
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"#,
            args.display()
        );
        Dovecot::start_in(dir, &extra)
    }

    /// Ends every IMAP session of `user` (`doveadm kick`), as a server does when it
    /// re-checks a token; the client must log in again.
    pub fn kick(&self, user: &str) {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.path("dovecot.conf"))
            .args(["kick", user])
            .output()
            .expect("doveadm");
        // doveadm exits non-zero when there was no session to kick: that is fine here.
        assert!(
            out.status.success() || out.status.code() == Some(68),
            "doveadm kick {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Logs in with SASL `mechanism` ("XOAUTH2" or "OAUTHBEARER") and a bearer token.
    pub async fn oauth_session(
        &self,
        mechanism: &str,
        user: &str,
        token: &str,
    ) -> Result<async_imap::Session<tokio::net::TcpStream>, async_imap::error::Error> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.unwrap().unwrap();
        let payload = match mechanism {
            "XOAUTH2" => xoauth2_payload(user, token),
            "OAUTHBEARER" => oauthbearer_payload(user, "127.0.0.1", self.port, token),
            other => panic!("no SASL mechanism {other}"),
        };
        client.authenticate(mechanism, SaslResponse(Some(payload))).await.map_err(|(e, _)| e)
    }
}

impl SmtpSink {
    /// An SMTP sink that requires AUTH: XOAUTH2 with a token `oauth` calls active for
    /// that user, or PLAIN as [`BRAND`] / [`PASSWORD`]. Each attempt is a line of
    /// [`SmtpSink::auth_log`]; messages carry `X-Auth-User`.
    pub fn start_oauth(oauth: &OAuthServer) -> SmtpSink {
        SmtpSink::start_oauth_with(oauth, &[])
    }

    /// As [`SmtpSink::start_oauth`], with more flags for the script:
    /// `--google-errors` (a 334 JSON challenge before the 535, as Gmail does) or
    /// `--no-require-auth`.
    pub fn start_oauth_with(oauth: &OAuthServer, flags: &[&str]) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let mbox = dir.path().join("maildir");
        let auth_log = dir.path().join("auth.log");
        let (child, port) = spawn_reporting_port(
            Command::new("python3")
                .arg(support_script("smtp_auth_sink.py"))
                .args(["--port", "0", "--maildir"])
                .arg(&mbox)
                .arg("--auth-log")
                .arg(&auth_log)
                .args(["--introspect", &oauth.url("/introspect")])
                .args(["--user", BRAND, "--password", PASSWORD])
                .args(flags),
            &dir.path().join("smtp.log"),
        );
        SmtpSink { port, mbox, child, _dir: dir, auth_log }
    }

    /// One line per AUTH attempt: `XOAUTH2 user=U accepted` or
    /// `PLAIN user=U rejected: REASON`.
    pub fn auth_log(&self) -> String {
        read(&self.auth_log)
    }
}

/// A scripted IMAP server that announces new mail the way the issue describes (GreenMail,
/// and Dovecot for mail that arrives during a command): once, as `* N EXISTS` on the
/// completion of whatever command runs when it arrives, or just before IDLE's `+`. A test
/// can make mail arrive in the middle of the next body FETCH or the next IDLE command.
pub struct ScriptedImap {
    pub port: u16,
    state: std::sync::Arc<std::sync::Mutex<ScriptedState>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct ScriptedState {
    messages: Vec<Vec<u8>>,
    /// Messages the session has been told of (EXISTS); later ones are news.
    announced: usize,
    during_fetch: Vec<Vec<u8>>,
    before_idle_continuation: Vec<Vec<u8>>,
}

impl ScriptedImap {
    pub async fn start() -> ScriptedImap {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = std::sync::Arc::<std::sync::Mutex<ScriptedState>>::default();
        let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
        let (st, ar) = (state.clone(), arrived.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(scripted_session(tcp, st.clone(), ar.clone()));
            }
        });
        ScriptedImap { port, state, arrived }
    }

    /// New mail, announced to a session in IDLE at once (else on its next command).
    pub fn deliver(&self, message: Vec<u8>) {
        self.state.lock().unwrap().messages.push(message);
        self.arrived.notify_waiters();
    }

    /// Mail that arrives while the next body FETCH runs.
    pub fn deliver_during_next_fetch(&self, message: Vec<u8>) {
        self.state.lock().unwrap().during_fetch.push(message);
    }

    /// Mail that arrives while the next IDLE command starts (announced before its `+`).
    pub fn deliver_before_next_idle_continuation(&self, message: Vec<u8>) {
        self.state.lock().unwrap().before_idle_continuation.push(message);
    }
}

async fn scripted_session(
    tcp: tokio::net::TcpStream,
    state: std::sync::Arc<std::sync::Mutex<ScriptedState>>,
    arrived: std::sync::Arc<tokio::sync::Notify>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (r, mut w) = tcp.into_split();
    let mut lines = BufReader::new(r).lines();
    w.write_all(b"* OK [CAPABILITY IMAP4rev1 IDLE] scripted ready\r\n").await.unwrap();
    // Announces what the session was not told of yet.
    let news = |out: &mut Vec<u8>| {
        let mut s = state.lock().unwrap();
        if s.messages.len() > s.announced {
            s.announced = s.messages.len();
            out.extend_from_slice(format!("* {} EXISTS\r\n", s.announced).as_bytes());
        }
    };
    while let Ok(Some(line)) = lines.next_line().await {
        let mut words = line.splitn(3, ' ');
        let (tag, cmd) = (words.next().unwrap_or(""), words.next().unwrap_or("").to_uppercase());
        let rest = words.next().unwrap_or("").to_owned();
        let mut out = Vec::new();
        match cmd.as_str() {
            "LOGIN" => {}
            "CAPABILITY" => out.extend_from_slice(b"* CAPABILITY IMAP4rev1 IDLE\r\n"),
            "EXAMINE" | "SELECT" => {
                let n = {
                    let mut s = state.lock().unwrap();
                    s.announced = s.messages.len();
                    s.announced
                };
                out.extend_from_slice(
                    format!(
                        "* FLAGS (\\Seen)\r\n* {n} EXISTS\r\n* 0 RECENT\r\n\
                         * OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT {}] ok\r\n",
                        n + 1
                    )
                    .as_bytes(),
                );
            }
            "UID" => {
                let mut args = rest.splitn(3, ' ');
                let sub = args.next().unwrap_or("").to_uppercase();
                let set = args.next().unwrap_or("").to_owned();
                let items = args.next().unwrap_or("").to_uppercase();
                let s = state.lock().unwrap().announced;
                if sub == "SEARCH" {
                    // "UID SEARCH UID n:*": the known messages from n, else the highest.
                    let from: usize = items
                        .trim_start_matches("UID ")
                        .split(':')
                        .next()
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    let mut found: Vec<usize> = (from..=s).collect();
                    if found.is_empty() && s > 0 {
                        found.push(s);
                    }
                    let list: Vec<String> = found.iter().map(|u| u.to_string()).collect();
                    out.extend_from_slice(format!("* SEARCH {}\r\n", list.join(" ")).as_bytes());
                } else if sub == "FETCH" {
                    let body = items.contains("BODY.PEEK[]");
                    if body {
                        let mut st = state.lock().unwrap();
                        let late = std::mem::take(&mut st.during_fetch);
                        st.messages.extend(late);
                    }
                    for uid in parse_uid_set(&set, s) {
                        let m = state.lock().unwrap().messages[uid - 1].clone();
                        out.extend_from_slice(
                            format!("* {uid} FETCH (UID {uid} RFC822.SIZE {}", m.len()).as_bytes(),
                        );
                        if body {
                            out.extend_from_slice(
                                format!(" BODY[] {{{}}}\r\n", m.len()).as_bytes(),
                            );
                            out.extend_from_slice(&m);
                        }
                        out.extend_from_slice(b")\r\n");
                    }
                }
            }
            "IDLE" => {
                {
                    let mut st = state.lock().unwrap();
                    let early = std::mem::take(&mut st.before_idle_continuation);
                    st.messages.extend(early);
                }
                news(&mut out);
                out.extend_from_slice(b"+ idling\r\n");
                w.write_all(&out).await.unwrap();
                out.clear();
                loop {
                    tokio::select! {
                        l = lines.next_line() => {
                            if !matches!(l, Ok(Some(ref d)) if d.eq_ignore_ascii_case("DONE")) {
                                return;
                            }
                            break;
                        }
                        _ = arrived.notified() => {
                            let mut o = Vec::new();
                            news(&mut o);
                            w.write_all(&o).await.unwrap();
                        }
                    }
                }
            }
            "NOOP" => {}
            "LOGOUT" => {
                let _ = w.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes()).await;
                return;
            }
            _ => {
                let _ = w.write_all(format!("{tag} BAD unknown\r\n").as_bytes()).await;
                continue;
            }
        }
        // Mail that arrived during the command is announced on its completion.
        news(&mut out);
        out.extend_from_slice(format!("{tag} OK done\r\n").as_bytes());
        if w.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// UIDs of an IMAP set such as `1:3,5` (here UIDs are sequence numbers), up to `max`.
fn parse_uid_set(set: &str, max: usize) -> Vec<usize> {
    let mut out = Vec::new();
    for part in set.split(',') {
        let bound = |s: &str| if s == "*" { max } else { s.parse().unwrap_or(0) };
        let (a, b) =
            part.split_once(':').map_or((bound(part), bound(part)), |(a, b)| (bound(a), bound(b)));
        out.extend((a.min(b)..=a.max(b)).filter(|u| *u >= 1 && *u <= max));
    }
    out
}

/// Dovecot settings for many sessions of the one test user: one collabd mailbox per
/// folder, several instances, and the sessions of killed instances not yet noticed.
pub const MANY_SESSIONS: &str = "default_process_limit = 500\ndefault_client_limit = 2000\n\
    protocol imap {\n  mail_max_userip_connections = 1000\n}\n";

impl Dovecot {
    /// Creates `folder` (a Maildir++ folder of the brand user) on disk.
    pub fn create_maildir_folder(&self, folder: &str) {
        let dir = self.path(&format!("mail/{BRAND}/maildir/.{folder}"));
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("maildirfolder"), b"").unwrap();
        let status = Command::new("chown")
            .args(["-R", "nobody:nogroup"])
            .arg(self.path(&format!("mail/{BRAND}")))
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Delivers into a folder made by [`Dovecot::create_maildir_folder`], as a local
    /// delivery agent would (tmp/, then a rename into new/). Readable by Dovecot without a
    /// chown: the file is world-readable and the folder's new/ is nobody's and writable.
    pub fn deliver_to_folder(&self, folder: &str, name: &str, message: &[u8]) {
        let dir = self.path(&format!("mail/{BRAND}/maildir/.{folder}"));
        let tmp = dir.join("tmp").join(name);
        std::fs::write(&tmp, message).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        std::fs::rename(&tmp, dir.join("new").join(name)).unwrap();
    }
}

/// A TCP relay to `127.0.0.1:target` that can be cut: while cut, nothing passes either
/// way and new connections hang, as when a network drops packets; healed, what waited
/// passes on. Lives as long as the test's runtime.
pub struct CuttableLink {
    pub port: u16,
    cut: tokio::sync::watch::Sender<bool>,
}

impl CuttableLink {
    pub async fn start(target: u16) -> CuttableLink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watch) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut w = watch.clone();
                tokio::spawn(async move {
                    let _ = w.wait_for(|cut| !cut).await;
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (client_rd, client_wr) = client.into_split();
                    let (server_rd, server_wr) = server.into_split();
                    tokio::spawn(pass_while_open(client_rd, server_wr, w.clone()));
                    tokio::spawn(pass_while_open(server_rd, client_wr, w));
                });
            }
        });
        CuttableLink { port, cut }
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

/// Copies one direction of a [`CuttableLink`], holding each chunk while the link is cut.
async fn pass_while_open(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut link: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16384];
    while let Ok(n @ 1..) = from.read(&mut buf).await {
        if link.wait_for(|cut| !cut).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// `url` with its port replaced: the same database through a relay.
pub fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth_host, path) = rest.split_once('/').unwrap();
    let (before_port, _) = auth_host.rsplit_once(':').unwrap();
    format!("{scheme}://{before_port}:{port}/{path}")
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
