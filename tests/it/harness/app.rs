//! One daemon under test, ready to use: [`spawn_app`] starts a database, a Dovecot and a
//! `collabd` configured for them, waits for its admin socket and hands back a [`TestApp`]
//! whose typed helpers (`app.call(params)`, `app.add_creator(..)`, …) talk to it through
//! the library's admin client, as `collabctl` does. Tests about the CLI itself keep the
//! argv helpers (`app.collabctl(..)`). Tests with several daemons use [`DaemonEnv`].

use std::path::PathBuf;
use std::time::Duration;

use collabd::admin::client::{Client, ClientError};
use collabd::admin::protocol::{
    Campaign, CampaignCreate, Creator, CreatorFields, OutreachFields, Params, RecordReport,
};

use super::{
    DaemonEnv, DaemonProc, Dovecot, MailboxCfg, TestDb, collabctl, collabctl_json, wait_for_rows,
    wait_for_socket,
};

/// A change to the default `brand` mailbox.
pub type MailboxEdit = Box<dyn FnOnce(&mut MailboxCfg)>;

/// Work in the config directory before the daemon starts (directories, symlinks, modes).
pub type DirSetup = Box<dyn FnOnce(&DaemonEnv)>;

/// How [`spawn_app`] sets the daemon up. `AppOptions::default()`: a fresh database, a
/// fresh Dovecot, one mailbox `brand` on it, no extra config, and a wait for the socket.
pub struct AppOptions {
    /// The database to use (one already seeded); `None`: a fresh one.
    pub db: Option<TestDb>,
    /// The Dovecot to use (one already holding mail); `None`: a fresh one when `dovecot`.
    pub imap: Option<Dovecot>,
    /// Whether to start a Dovecot when `imap` is `None`.
    pub dovecot: bool,
    /// The config's mailboxes; `None`: `brand` on the app's Dovecot (none without one).
    /// [`MailboxCfg::new`] makes one that logs in with the app's password file.
    pub mailboxes: Option<Vec<MailboxCfg>>,
    /// Changes the default `brand` mailbox (poll interval, folder, …).
    pub brand: Option<MailboxEdit>,
    /// Top-level TOML before `[database]`; `{dir}` stands for the config directory, here,
    /// in the mailboxes' `extra` and in the values of `env_vars`.
    pub extra_config: String,
    /// Files (name, contents) written into the config directory before the daemon starts.
    pub files: Vec<(String, String)>,
    /// Environment variables of the daemon (`COLLABD__…` overrides, `NOTIFY_SOCKET`, …).
    pub env_vars: Vec<(String, String)>,
    /// Whether [`spawn_app`] waits for the admin socket; `false` for tests that act on
    /// the daemon before it is up.
    pub wait: bool,
    /// Runs after `files` are written, before the config is written and the daemon starts.
    pub setup: Option<DirSetup>,
}

impl Default for AppOptions {
    fn default() -> AppOptions {
        AppOptions {
            db: None,
            imap: None,
            dovecot: true,
            mailboxes: None,
            brand: None,
            extra_config: String::new(),
            files: Vec::new(),
            env_vars: Vec::new(),
            wait: true,
            setup: None,
        }
    }
}

impl AppOptions {
    /// The default options on a database and Dovecot the test prepared.
    pub fn on(db: TestDb, imap: Dovecot) -> AppOptions {
        AppOptions { db: Some(db), imap: Some(imap), ..AppOptions::default() }
    }

    /// With extra top-level TOML (see [`AppOptions::extra_config`]).
    pub fn config(mut self, extra: &str) -> AppOptions {
        self.extra_config = extra.to_owned();
        self
    }

    /// With the default `brand` mailbox changed by `f`.
    pub fn brand(mut self, f: impl FnOnce(&mut MailboxCfg) + 'static) -> AppOptions {
        self.brand = Some(Box::new(f));
        self
    }

    /// With exactly these mailboxes in the config file.
    pub fn mailboxes(mut self, mailboxes: Vec<MailboxCfg>) -> AppOptions {
        self.mailboxes = Some(mailboxes);
        self
    }

    /// With the file `name` (in the config directory) holding `contents` before the daemon
    /// starts; `imap.pass` replaces the right password.
    pub fn file(mut self, name: &str, contents: &str) -> AppOptions {
        self.files.push((name.to_owned(), contents.to_owned()));
        self
    }

    /// With `f` run in the config directory before the daemon starts
    /// (see [`AppOptions::setup`]).
    pub fn setup(mut self, f: impl FnOnce(&DaemonEnv) + 'static) -> AppOptions {
        self.setup = Some(Box::new(f));
        self
    }

    /// Without waiting for the admin socket: for tests that act on the daemon (kill it,
    /// block its database) before it is up. [`TestApp::wait_for_socket`] waits later.
    pub fn no_wait(mut self) -> AppOptions {
        self.wait = false;
        self
    }

    /// With these environment variables for the daemon.
    pub fn env(mut self, vars: &[(&str, &str)]) -> AppOptions {
        self.env_vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self
    }
}

/// A running daemon with its database, Dovecot and config directory.
pub struct TestApp {
    pub db: TestDb,
    /// The app's Dovecot, unless it was started without one ([`TestApp::imap`]).
    pub dovecot: Option<Dovecot>,
    pub env: DaemonEnv,
    pub daemon: DaemonProc,
    env_vars: Vec<(String, String)>,
}

/// Starts a daemon as `options` say; see [`AppOptions`].
pub async fn spawn_app(options: AppOptions) -> TestApp {
    let db = match options.db {
        Some(db) => db,
        None => TestDb::new().await,
    };
    let dovecot = options.imap.or_else(|| options.dovecot.then(Dovecot::start));
    let env = DaemonEnv::new(&db.url);
    for (name, contents) in &options.files {
        std::fs::write(env.path(name), contents).unwrap();
    }
    if let Some(f) = options.setup {
        f(&env);
    }
    let dir = env.dir.path().display().to_string();
    let mut mailboxes = match (options.mailboxes, &dovecot) {
        (Some(m), _) => m,
        (None, Some(imap)) => {
            let mut brand = env.mailbox("brand", imap.port);
            if let Some(f) = options.brand {
                f(&mut brand);
            }
            vec![brand]
        }
        (None, None) => Vec::new(),
    };
    for m in &mut mailboxes {
        m.extra = m.extra.replace("{dir}", &dir);
    }
    env.write_config(&mailboxes, &options.extra_config.replace("{dir}", &dir));
    let env_vars: Vec<(String, String)> =
        options.env_vars.into_iter().map(|(k, v)| (k, v.replace("{dir}", &dir))).collect();
    let daemon = spawn_with(&env, &env_vars);
    if options.wait {
        wait_for_socket(&env, &daemon).await;
    }
    TestApp { db, dovecot, env, daemon, env_vars }
}

fn spawn_with(env: &DaemonEnv, vars: &[(String, String)]) -> DaemonProc {
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.spawn_with_env(&vars)
}

impl TestApp {
    /// The app's Dovecot.
    pub fn imap(&self) -> &Dovecot {
        self.dovecot.as_ref().expect("this app was started without a Dovecot")
    }

    /// The admin socket.
    pub fn socket(&self) -> PathBuf {
        self.env.path("admin.sock")
    }

    /// The daemon's log so far.
    pub fn logs(&self) -> String {
        self.daemon.logs()
    }

    /// Starts the daemon again in the same config directory (the old one must be gone:
    /// killed or terminated); does not wait for the socket.
    pub fn respawn(&mut self) {
        self.daemon = spawn_with(&self.env, &self.env_vars);
    }

    /// Waits for the admin socket.
    pub async fn wait_for_socket(&self) {
        wait_for_socket(&self.env, &self.daemon).await;
    }

    /// Waits until `table` holds exactly `n` rows; past `limit` the test fails with the log.
    pub async fn wait_for_rows(&self, table: &str, n: i64, limit: Duration) {
        wait_for_rows(&self.db, table, n, limit, &self.daemon).await;
    }

    /// One typed call over a connection of its own: the daemon's answer, or its error
    /// (`ClientError::server()` gives its code).
    pub async fn call<P>(&self, params: P) -> Result<P::Output, ClientError>
    where
        P: Params + Send + 'static,
        P::Output: Send + 'static,
    {
        let socket = self.socket();
        tokio::task::spawn_blocking(move || Client::connect(&socket)?.call(params))
            .await
            .expect("the client thread")
    }

    /// A call that must succeed.
    pub async fn ok<P>(&self, params: P) -> P::Output
    where
        P: Params + std::fmt::Debug + Clone + Send + 'static,
        P::Output: Send + 'static,
    {
        let shown = format!("{params:?}");
        self.call(params).await.unwrap_or_else(|e| panic!("{shown}: {e}\n{}", self.logs()))
    }

    /// `creator.add` of one creator with one address.
    pub async fn add_creator(
        &self,
        name: &str,
        platform: &str,
        handle: &str,
        email: &str,
    ) -> Creator {
        self.ok(CreatorFields { emails: vec![email.into()], ..creator(name, platform, handle) })
            .await
    }

    /// `campaign.create` of an unbound campaign.
    pub async fn create_campaign(&self, name: &str) -> Campaign {
        self.ok(CampaignCreate { name: name.into(), mailboxes: Vec::new() }).await
    }

    /// `outreach.record` of one message sent to `to` (`sent_at` RFC 3339, `mailbox` the
    /// mailbox it went out from); must succeed.
    pub async fn record_outreach(
        &self,
        message_id: &str,
        campaign: &str,
        creator: &str,
        to: &str,
        mailbox: Option<&str>,
        sent_at: Option<&str>,
    ) -> RecordReport {
        self.ok(OutreachFields {
            sent_at: sent_at.map(at),
            mailbox: mailbox.map(str::to_owned),
            ..outreach(message_id, campaign, creator, to)
        })
        .await
    }

    /// The real `collabctl` with `args`: (success, stdout, stderr). For tests of the CLI.
    pub fn collabctl(&self, args: &[&str]) -> (bool, String, String) {
        collabctl(&self.env, args)
    }

    /// `collabctl --json …` that must succeed; its parsed output. For tests of the CLI.
    pub fn collabctl_json(&self, args: &[&str]) -> serde_json::Value {
        collabctl_json(&self.env, args)
    }
}

impl MailboxCfg {
    /// A mailbox on `127.0.0.1:port` logging in with the app's password file, polling
    /// every 500 ms (what [`DaemonEnv::mailbox`] makes, before the environment exists).
    pub fn new(name: &str, port: u16) -> MailboxCfg {
        MailboxCfg {
            name: name.into(),
            port,
            password_file: Some(PathBuf::from("imap.pass")),
            poll_interval: "500ms".into(),
            timeout: "5s".into(),
            extra: String::new(),
        }
    }
}

/// A creator for `creator.add` with no addresses, managers or tags; set those with
/// `CreatorFields { emails: …, ..creator(..) }`.
pub fn creator(name: &str, platform: &str, handle: &str) -> CreatorFields {
    CreatorFields {
        name: name.into(),
        platform: platform.into(),
        handle: handle.into(),
        emails: Vec::new(),
        manager_emails: Vec::new(),
        tags: Vec::new(),
    }
}

/// An outreach message for `outreach.record` with no subject, time or mailbox; set those
/// with `OutreachFields { subject: …, ..outreach(..) }`.
pub fn outreach(message_id: &str, campaign: &str, creator: &str, to: &str) -> OutreachFields {
    OutreachFields {
        message_id: message_id.into(),
        campaign: campaign.into(),
        creator: creator.into(),
        to: to.into(),
        subject: String::new(),
        sent_at: None,
        mailbox: None,
    }
}

/// An RFC 3339 time, for typed params.
pub fn at(time: &str) -> chrono::DateTime<chrono::Utc> {
    time.parse().expect("an RFC 3339 time")
}
