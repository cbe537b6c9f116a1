//! Supervision: connect the database (waiting for it), migrate, run one worker per
//! mailbox, serve the admin socket, talk to systemd, reload on SIGHUP and stop cleanly on
//! SIGTERM/SIGINT.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use tokio::sync::Notify;

use crate::admin::{AdminContext, AdminServer, FileConfig, ServerError};
use crate::cluster::{self, Membership};
use crate::config::{ConfigError, MailboxSettings, Settings};
use crate::imap::{MailboxHealth, MailboxWorker, Registry};
use crate::ingest::{Ingestor, SharedRules};
use crate::mail::ClassifyRules;
use crate::oauth::Logins;
use crate::smtp::{Mailers, OutreachError, SharedMailers};
use crate::store::channels;
use crate::store::mailboxes::{PasswordLogin, StoredPassword};
use crate::store::{Store, StoreError};

/// How long workers get to finish their batch in flight after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Admin(#[from] ServerError),
    #[error(transparent)]
    Smtp(#[from] OutreachError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("stopped by a signal before start-up finished")]
    Interrupted,
}

/// Why a balancing round was skipped.
#[derive(Debug, thiserror::Error)]
enum BalanceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the database did not answer within a heartbeat")]
    Slow,
}

/// Sends a notification to systemd when `NOTIFY_SOCKET` is set; a no-op otherwise.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "sd_notify failed");
    }
}

struct Running {
    settings: MailboxSettings,
    health: Arc<Mutex<MailboxHealth>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// The running daemon.
pub struct Daemon {
    config_path: PathBuf,
    /// The config file as loaded.
    file: Settings,
    /// The file's settings with the database's running mailboxes after its own: what the
    /// workers run.
    settings: Settings,
    /// The file's settings, for the admin methods.
    file_config: FileConfig,
    /// How many of `settings.mailboxes` come from the file (the database's follow).
    file_count: usize,
    /// Set by the LISTEN task when `mailboxes` changed.
    db_changed: Arc<Notify>,
    store: Store,
    registry: Registry,
    logins: Arc<Logins>,
    /// The SMTP identities `outreach send` picks from, shared with the admin server.
    mailers: SharedMailers,
    /// One copy of the brand's own addresses (every mailbox's username), shared by every
    /// worker's Ingestor: a copy per worker made memory grow with the square of the number
    /// of mailboxes (issue #15).
    rules: SharedRules,
    workers: HashMap<String, Running>,
    /// This instance among the others sharing the database: which mailboxes it may work.
    membership: Arc<Membership>,
    /// Stops the lease keeper, last of all (leases are renewed while workers stop).
    keeper_stop: CancellationToken,
    admin: JoinHandle<()>,
    shutdown: CancellationToken,
    signals: Signals,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals, DaemonError> {
        let s = |k| signal(k).map_err(DaemonError::Signals);
        Ok(Signals {
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
            hup: s(SignalKind::hangup())?,
        })
    }
}

impl Daemon {
    /// Connects (waiting with backoff while Postgres is down), migrates, starts every
    /// mailbox worker and the admin socket.
    pub async fn start(settings: Settings, config_path: PathBuf) -> Result<Daemon, DaemonError> {
        let mut signals = Signals::install()?;
        for f in crate::confine::exposed_secret_files(&settings) {
            warn!(key = %f.key, path = %f.path.display(), mode = %format!("{:04o}", f.mode),
                "secret file readable by group or others: chmod go-rwx it");
        }
        let store = tokio::select! {
            s = connect_with_retry(&settings) => s,
            _ = signals.term.recv() => return Err(DaemonError::Interrupted),
            _ = signals.int.recv() => return Err(DaemonError::Interrupted),
        };
        store.migrate().await?;
        info!("database ready, migrations applied");
        let membership = Membership::join(store.clone(), settings.cluster.lease_ttl).await?;
        let keeper_stop = CancellationToken::new();
        tokio::spawn(membership.clone().keep(keeper_stop.clone()));
        let shutdown = CancellationToken::new();
        // LISTEN before the first read, so no change slips between them.
        let db_changed = Arc::new(Notify::new());
        tokio::spawn(listen_mailboxes(store.clone(), db_changed.clone(), shutdown.child_token()));
        let registry: Registry = Arc::default();
        let logins = Arc::new(Logins::default());
        let file = settings;
        let settings = with_database_mailboxes(&file, &store).await?;
        logins.configure(&settings, &store)?;
        let mailers = Mailers::start(&settings, &logins)?;
        let file_config: FileConfig = Arc::new(std::sync::RwLock::new(file.clone()));
        let ctx = AdminContext {
            store: store.clone(),
            mailboxes: registry.clone(),
            mailers: mailers.clone(),
            logins: logins.clone(),
            file_config: file_config.clone(),
            started: Instant::now(),
            instance: membership.id().to_owned(),
        };
        let admin = AdminServer::bind(&settings.admin, ctx).await?;
        let admin = tokio::spawn(admin.serve(shutdown.child_token()));
        let rules = SharedRules::from(ClassifyRules { own_addresses: settings.own_addresses() });
        let mut daemon = Daemon {
            config_path,
            file_count: file.mailboxes.len(),
            file,
            rules,
            settings,
            file_config,
            db_changed,
            store,
            registry,
            logins,
            mailers,
            workers: HashMap::new(),
            membership,
            keeper_stop,
            admin,
            shutdown,
            signals,
        };
        daemon.rebalance().await;
        daemon.publish_registry();
        info!(
            instance = daemon.membership.id(),
            mailboxes = daemon.settings.mailboxes.len(),
            working = daemon.workers.len(),
            "collabd started"
        );
        Ok(daemon)
    }

    fn ingestor(&self) -> Ingestor {
        Ingestor::new(self.store.clone(), self.rules.clone())
    }

    fn spawn_worker(&mut self, index: usize, mb: MailboxSettings) {
        let stop = self.shutdown.child_token();
        // The database's mailboxes come after the file's.
        let section = if index < self.file_count {
            format!("mailboxes[{index}]")
        } else {
            format!("database mailbox {:?}", mb.name)
        };
        let worker = MailboxWorker::new(
            section,
            mb.clone(),
            self.ingestor(),
            &self.settings.ingest,
            self.logins.get(&Logins::mailbox_key(&mb.name)),
            Some(self.membership.id().to_owned()),
            stop.clone(),
        );
        let health = worker.health();
        let task = tokio::spawn(worker.run());
        if self.membership.attach(&mb.name, task.abort_handle()) {
            self.workers.insert(mb.name.clone(), Running { settings: mb, health, stop, task });
        }
    }

    /// One balancing round (see `crate::cluster`): drops the workers whose lease went,
    /// releases what is over this instance's share (stopping those workers first), claims
    /// free leases up to it, and runs a worker for every lease held. Database trouble
    /// skips the round; the keeper decides alone whether the leases can be trusted.
    async fn rebalance(&mut self) {
        let before = self.workers.len();
        let held = self.membership.held();
        let gone: Vec<Running> = {
            let names: Vec<String> = self
                .workers
                .iter()
                .filter(|(n, r)| !held.contains(*n) || r.task.is_finished())
                .map(|(n, _)| n.clone())
                .collect();
            names.iter().filter_map(|n| self.workers.remove(n)).collect()
        };
        stop_all(gone).await;
        if self.membership.trusted()
            && let Err(e) = self.balance().await
        {
            warn!(error = %e, "mailbox balancing skipped");
        }
        let held = self.membership.held();
        let start: Vec<(usize, MailboxSettings)> = (self.settings.mailboxes.iter().enumerate())
            .filter(|(_, mb)| held.contains(&mb.name) && !self.workers.contains_key(&mb.name))
            .map(|(i, mb)| (i, mb.clone()))
            .collect();
        let changed = self.workers.len() != before || !start.is_empty();
        for (i, mb) in start {
            self.spawn_worker(i, mb);
        }
        // Every heartbeat runs this: the registry is rebuilt only when workers came or went.
        if changed {
            self.publish_registry();
        }
    }

    /// Releases over the share and claims up to it; bounded by one heartbeat per step.
    async fn balance(&mut self) -> Result<(), BalanceError> {
        let every = self.membership.heartbeat();
        let (live, leases) = tokio::time::timeout(every, async {
            Ok::<_, StoreError>((
                self.store.live_instances().await?,
                self.store.live_leases().await?,
            ))
        })
        .await
        .map_err(|_| BalanceError::Slow)??;
        let me = self.membership.id();
        let taken = leases.into_iter().filter(|l| l.instance_id != me).map(|l| l.mailbox).collect();
        let wanted: Vec<String> = self.settings.mailboxes.iter().map(|m| m.name.clone()).collect();
        let plan = cluster::plan(&wanted, &self.membership.held(), &taken, live as usize);
        if !plan.release.is_empty() {
            let stopping = plan.release.iter().filter_map(|n| self.workers.remove(n)).collect();
            stop_all(stopping).await;
            self.membership.release(&plan.release).await?;
        }
        tokio::time::timeout(every, self.membership.claim(&plan.claim))
            .await
            .map_err(|_| BalanceError::Slow)??;
        Ok(())
    }

    /// Publishes every mailbox, in config order, with its worker's health when it runs
    /// here, to the admin server.
    fn publish_registry(&self) {
        let list = self
            .settings
            .mailboxes
            .iter()
            .map(|m| (m.name.clone(), self.workers.get(&m.name).map(|r| r.health.clone())))
            .collect();
        *self.registry.write().expect("registry lock") = list;
    }

    /// Waits until every mailbox made its first connection attempt (or is connected),
    /// bounded by the slowest mailbox's connect budget, then tells systemd READY=1.
    async fn announce_ready(&self) {
        let budget =
            self.settings.mailboxes.iter().map(|m| m.timeout * 4).max().unwrap_or_default();
        let deadline = Instant::now() + budget + Duration::from_secs(1);
        while Instant::now() < deadline {
            let all_tried = self.workers.values().all(|r| {
                let h = r.health.lock().expect("health lock");
                h.attempts > 0 || h.connected
            });
            if all_tried {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
    }

    /// Runs until SIGTERM or SIGINT: feeds the watchdog while every worker keeps its
    /// promises, keeps the status line current, reloads on SIGHUP.
    pub async fn run_until_signal(mut self) -> Result<(), DaemonError> {
        self.announce_ready().await;
        let beat = sd_notify::watchdog_enabled().map_or(Duration::from_secs(10), |d| d / 2);
        let mut ticker = tokio::time::interval(beat);
        let mut balance = tokio::time::interval(self.membership.heartbeat());
        balance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.signals.term.recv() => { info!("SIGTERM: shutting down"); break; }
                _ = self.signals.int.recv() => { info!("SIGINT: shutting down"); break; }
                _ = self.signals.hup.recv() => self.reload().await,
                _ = self.db_changed.notified() => self.database_changed().await,
                _ = ticker.tick() => self.tick(),
                _ = balance.tick() => self.rebalance().await,
            }
        }
        notify(&[NotifyState::Stopping]);
        self.shutdown().await;
        Ok(())
    }

    /// One watchdog period: WATCHDOG=1 only if no worker is wedged.
    fn tick(&self) {
        let now = Instant::now();
        let wedged: Vec<&str> = self
            .workers
            .iter()
            .filter(|(_, r)| r.health.lock().expect("health lock").is_wedged(now))
            .map(|(name, _)| name.as_str())
            .collect();
        let status = self.status_line();
        if wedged.is_empty() {
            notify(&[NotifyState::Watchdog, NotifyState::Status(&status)]);
        } else {
            error!(mailboxes = ?wedged, "mailbox loop wedged: withholding the watchdog");
            let status = format!("{status}; WEDGED: {}", wedged.join(", "));
            notify(&[NotifyState::Status(&status)]);
        }
    }

    /// Re-reads the config file: mailboxes added, removed or changed are started, stopped
    /// or restarted, and failing ones retried at once (a fixed password file); the others
    /// keep running. A bad file is rejected and the old settings stay.
    async fn reload(&mut self) {
        info!(path = %self.config_path.display(), "SIGHUP: reloading configuration");
        // systemd ≥ 253 wants the monotonic time with RELOADING=1.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => notify(&[NotifyState::Reloading, now]),
            Err(_) => notify(&[NotifyState::Reloading]),
        }
        let new = match Settings::load(&self.config_path) {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "new configuration rejected; keeping the running one");
                notify(&[NotifyState::Ready, NotifyState::Status(&format!("reload failed: {e}"))]);
                return;
            }
        };
        let wanted = match with_database_mailboxes(&new, &self.store).await {
            Ok(w) => w,
            Err(e) => {
                error!(error = %e, "new configuration rejected; keeping the running one");
                notify(&[NotifyState::Ready, NotifyState::Status(&format!("reload failed: {e}"))]);
                return;
            }
        };
        for (field, changed) in [
            ("database", new.database != self.file.database),
            ("admin", new.admin != self.file.admin),
            ("smtp", new.smtp != self.file.smtp),
            ("log", new.log != self.file.log),
            ("cluster", new.cluster != self.file.cluster),
        ] {
            if changed {
                warn!(section = field, "this section changes only on restart");
            }
        }
        if self.apply(wanted, new.mailboxes.len()).await {
            *self.file_config.write().expect("file config lock") = new.clone();
            self.file = new;
            info!("configuration reloaded");
        }
    }

    /// The `mailboxes` table changed: re-reads it and brings the workers to the file's
    /// mailboxes plus the database's unpaused ones.
    async fn database_changed(&mut self) {
        match with_database_mailboxes(&self.file, &self.store).await {
            Ok(wanted) => {
                if self.apply(wanted, self.file.mailboxes.len()).await {
                    info!("database mailboxes applied");
                }
            }
            Err(e) => error!(error = %e, "cannot apply the database's mailboxes"),
        }
    }

    /// Brings the running workers to `wanted`: mailboxes added, removed or changed are
    /// started, stopped or restarted, and failing ones retried at once (a fixed password
    /// file); the others keep running. Used by SIGHUP and by database changes. False (and
    /// nothing changed) when the logins cannot be configured. The first `file_count` of
    /// `new.mailboxes` are the file's.
    async fn apply(&mut self, new: Settings, file_count: usize) -> bool {
        if let Err(e) = self.logins.configure(&new, &self.store) {
            error!(error = %e, "new configuration rejected; keeping the running one");
            notify(&[NotifyState::Ready, NotifyState::Status(&format!("reload failed: {e}"))]);
            return false;
        }
        // New own addresses reach running workers through the shared rules; the ingest
        // limits are a worker's own fields and need a restart.
        let addresses_changed = new.own_addresses() != self.settings.own_addresses();
        let limits_changed = new.ingest.batch_size != self.settings.ingest.batch_size
            || new.ingest.max_message_size != self.settings.ingest.max_message_size;
        let old_names: Vec<String> = self.workers.keys().cloned().collect();
        let mut to_stop = Vec::new();
        for name in old_names {
            let keep = new.mailboxes.iter().find(|m| m.name == name).is_some_and(|m| {
                let r = &self.workers[&name];
                let failing = r.health.lock().expect("health lock").last_error.is_some()
                    && !r.health.lock().expect("health lock").connected;
                *m == r.settings && !limits_changed && !failing
            });
            if !keep {
                to_stop.push(self.workers.remove(&name).expect("listed"));
            }
        }
        let stopped: Vec<String> = to_stop.iter().map(|r| r.settings.name.clone()).collect();
        stop_all(to_stop).await;
        self.settings = new;
        self.file_count = file_count;
        Mailers::update(&self.mailers, &self.settings.mailboxes, &self.logins);
        if addresses_changed {
            self.rules.replace(ClassifyRules { own_addresses: self.settings.own_addresses() });
        }
        let before: Vec<String> = self.workers.keys().cloned().collect();
        // Starts the workers of the leases held, claims new mailboxes, releases removed ones.
        self.rebalance().await;
        // The mailboxes known changed even where no worker did.
        self.publish_registry();
        let started: Vec<&String> = self.workers.keys().filter(|n| !before.contains(n)).collect();
        info!(stopped = ?stopped, started = ?started, "mailbox workers updated");
        notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
        true
    }

    /// "2 mailboxes (2 connected), 1240 messages, last message 5 s ago"; "20 of 60
    /// mailboxes here (…)" when other instances work the rest.
    fn status_line(&self) -> String {
        let (mut connected, mut processed, mut last) = (0, 0, None);
        for r in self.workers.values() {
            let h = r.health.lock().expect("health lock");
            connected += usize::from(h.connected);
            processed += h.processed;
            last = last.max(h.last_message);
        }
        // With several instances, this one works only its share of the mailboxes it knows.
        let (here, known) = (self.workers.len(), self.settings.mailboxes.len());
        let mut line = if here == known {
            format!("{here} mailboxes ({connected} connected), {processed} messages")
        } else {
            format!(
                "{here} of {known} mailboxes here ({connected} connected), {processed} messages"
            )
        };
        if let Some(at) = last {
            line += &format!(", last message {} s ago", at.elapsed().as_secs());
        }
        line
    }

    /// Stops fetching, lets batches in flight commit, logs out of IMAP, closes the socket.
    async fn shutdown(self) {
        self.shutdown.cancel();
        let workers: Vec<Running> = self.workers.into_values().collect();
        stop_all(workers).await;
        // Only now: the leases were renewed while the workers finished their batches.
        self.membership.leave().await;
        self.keeper_stop.cancel();
        if tokio::time::timeout(Duration::from_secs(2), self.admin).await.is_err() {
            warn!("admin server did not stop in time");
        }
        info!("collabd stopped");
    }
}

/// Cancels workers and waits for them within the grace period, aborting stragglers.
async fn stop_all(workers: Vec<Running>) {
    for r in &workers {
        r.stop.cancel();
    }
    // One grace period for all of them, not one each in turn.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    for r in workers {
        let abort = r.task.abort_handle();
        if tokio::time::timeout_at(deadline, r.task).await.is_err() {
            warn!(mailbox = %r.settings.name, "worker did not stop in time; aborting it");
            abort.abort();
        }
    }
}

/// The file's settings with the database's unpaused mailboxes appended (checked against
/// `crate::confine`'s rules, their sealed passwords opened, validated like the file's). A
/// database mailbox whose name the file uses is a config error naming both, as is one that
/// no longer validates; such rows are left out, the rest run.
async fn with_database_mailboxes(file: &Settings, store: &Store) -> Result<Settings, DaemonError> {
    let rows = store.stored_mailboxes().await?;
    // Read after the mailboxes: a mailbox and its passwords are committed together.
    let passwords = store.mailbox_passwords().await?;
    let key = match (&file.secrets.key_file, passwords.is_empty()) {
        (Some(f), false) => Some(crate::oauth::SecretKey::load(f).map_err(ConfigError::from)?),
        _ => None,
    };
    let mut settings = file.clone();
    for row in rows.into_iter().filter(|r| !r.paused) {
        if let Some(i) = file.mailboxes.iter().position(|m| m.name == row.name) {
            let e = crate::config::ConfigError::Invalid {
                key: format!("mailboxes[{i}].name"),
                reason: format!(
                    "mailbox {:?} is defined both in the config file (mailboxes[{i}]) and in \
                     the database (collabctl mailbox add); the file's runs: `collabctl \
                     mailbox remove` one or rename the other",
                    row.name
                ),
            };
            error!(error = %e, "config error");
            continue;
        }
        let index = settings.mailboxes.len();
        let name = row.name.clone();
        let mine: Vec<&StoredPassword> = passwords.iter().filter(|p| p.mailbox == name).collect();
        match database_mailbox(file, row.settings, &name, index, &mine, key.as_ref()) {
            Ok(mb) => settings.mailboxes.push(mb),
            Err(e) => error!(mailbox = %name, error = %e, "database mailbox left out"),
        }
    }
    Ok(settings)
}

/// One stored mailbox as the workers run it: its settings JSON parsed, confined (file keys
/// resolved inside `[admin] credentials_dir`), its passwords opened, validated.
fn database_mailbox(
    file: &Settings,
    json: serde_json::Value,
    name: &str,
    index: usize,
    passwords: &[&StoredPassword],
    key: Option<&crate::oauth::SecretKey>,
) -> Result<MailboxSettings, ConfigError> {
    let section = format!("database mailbox {name:?}");
    let bad = |k: &str, reason: String| ConfigError::Invalid { key: k.to_owned(), reason };
    let mb = serde_json::from_value::<MailboxSettings>(json)
        .map_err(|e| bad(&section, e.to_string()))?;
    if mb.password.is_some() || mb.smtp.as_ref().is_some_and(|s| s.password.is_some()) {
        return Err(bad(
            &format!("{section}.password"),
            "a password in clear in mailboxes.settings (it belongs sealed in \
             mailbox_passwords): remove the mailbox and add it again"
                .into(),
        ));
    }
    let mut mb = crate::confine::confine_mailbox(&mb, &file.admin).map_err(|e| match e {
        ConfigError::Invalid { key, reason } => bad(&format!("{section}.{key}"), reason),
        other => other,
    })?;
    for p in passwords {
        let plain =
            key.and_then(|k| k.open_bound(&p.sealed, &p.login.context(name))).ok_or_else(|| {
                bad(
                    "secrets.key_file",
                    format!(
                        "cannot open the stored {} password of {section}: no key_file, \
                         another key, or an altered row",
                        p.login.as_str()
                    ),
                )
            })?;
        let secret = Some(crate::config::Secret::new(plain));
        match (p.login, &mut mb.smtp) {
            (PasswordLogin::Imap, _) => mb.password = secret,
            (PasswordLogin::Smtp, Some(s)) => s.password = secret,
            (PasswordLogin::Smtp, None) => {}
        }
    }
    crate::config::validate_mailbox(index, &mb)?;
    if mb.uses_oauth() && file.secrets.key_file.is_none() {
        return Err(bad(
            "secrets.key_file",
            format!("database mailbox {:?} uses OAuth2: it needs one", mb.name),
        ));
    }
    Ok(mb)
}

/// LISTENs on `collabd_mailboxes` and wakes the daemon at every change; after a lost
/// connection too, since notifications may have been missed meanwhile.
async fn listen_mailboxes(store: Store, changed: Arc<Notify>, stop: CancellationToken) {
    loop {
        let mut listener = match sqlx::postgres::PgListener::connect_with(store.pool()).await {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "cannot LISTEN for mailbox changes; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if let Err(e) = listener.listen(channels::MAILBOXES).await {
            warn!(error = %e, "cannot LISTEN for mailbox changes; retrying");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
            }
        }
        loop {
            let got = tokio::select! {
                _ = stop.cancelled() => return,
                got = listener.try_recv() => got,
            };
            match got {
                Ok(Some(n)) => {
                    info!(mailbox = n.payload(), "mailboxes table changed");
                    changed.notify_one();
                }
                // The connection was lost (and is re-established on the next call).
                Ok(None) => changed.notify_one(),
                Err(e) => {
                    warn!(error = %e, "mailbox LISTEN failed; reconnecting");
                    changed.notify_one();
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => break,
                    }
                }
            }
        }
    }
}

/// Connects to Postgres, retrying with capped backoff while it is unreachable.
async fn connect_with_retry(settings: &Settings) -> Store {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times()
        .build();
    loop {
        let db = &settings.database;
        match Store::connect(settings.database_url(), db.max_connections, db.statement_timeout)
            .await
        {
            Ok(store) => return store,
            Err(e) => {
                let delay = delays.next().unwrap_or(Duration::from_secs(30));
                error!(error = %e, retry_in = ?delay, "database unreachable");
                notify(&[NotifyState::Status(&format!("waiting for the database: {e}"))]);
                tokio::time::sleep(delay).await;
            }
        }
    }
}
