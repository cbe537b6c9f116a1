//! One worker per configured mailbox: the supervisor loop. Each session connects and
//! waits for mail (`session.rs`) and catches up from the committed sync state
//! (`sync.rs`, where the ordering rule lives); on any failure the worker backs off and
//! reconnects.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span};

use super::ImapError;
use crate::config::{IngestSettings, MailboxSettings};
use crate::ingest::Ingestor;
use crate::oauth::TokenSource;

/// What a mailbox worker reports about itself, for `collabctl status` and sd_notify.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct MailboxHealth {
    pub connected: bool,
    pub uidvalidity: Option<u32>,
    /// The committed state (`mailbox_sync`) as this worker last read or advanced it.
    pub last_uid: u32,
    pub processed: u64,
    /// The last commit, or the last catch-up that found nothing new.
    pub last_sync: Option<chrono::DateTime<chrono::Utc>>,
    /// The last catch-up that completed: every new UID found was committed.
    pub last_poll: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    /// The OAuth2 grant is gone: `collabctl mailbox authorize` is needed.
    pub reauthorize: bool,
    /// Sessions attempted so far (successful or not).
    pub attempts: u64,
    /// When the last new message was stored.
    #[serde(skip)]
    pub last_message: Option<Instant>,
    /// The time by which the worker promised to report again; past it (with some slack)
    /// the worker is wedged and the systemd watchdog is no longer fed.
    #[serde(skip)]
    pub deadline: Option<Instant>,
}

/// Grace beyond a worker's own promise before it counts as wedged.
const WEDGE_SLACK: Duration = Duration::from_secs(2);

impl MailboxHealth {
    /// Whether the worker missed its promised deadline.
    pub fn is_wedged(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now > d + WEDGE_SLACK)
    }
}

/// Every mailbox this instance knows, in config order, with the health of its worker
/// when it runs here (`None`: leased to another instance, or to none yet); shared with
/// the admin server and replaced on every change.
pub type Registry = Arc<std::sync::RwLock<Vec<(String, Option<Arc<Mutex<MailboxHealth>>>)>>>;

/// Why waiting for mail ended.
pub(super) enum Wake {
    /// The server announced something (new mail, most likely), in IDLE or earlier outside
    /// it: catch up now.
    Announced,
    /// `poll_interval` passed: catch up anyway (the safety net).
    Poll,
    /// Shutdown.
    Stop,
}

/// Watches one mailbox until told to stop.
pub struct MailboxWorker {
    /// Where the mailbox is defined, for error messages: `mailboxes[2]`, or
    /// `database mailbox "name"`.
    pub(super) section: String,
    pub(super) settings: MailboxSettings,
    pub(super) ingestor: Ingestor,
    pub(super) batch_size: u32,
    pub(super) max_message_size: u64,
    health: Arc<Mutex<MailboxHealth>>,
    pub(super) shutdown: CancellationToken,
    /// The UIDVALIDITY or folder change last warned about (old folder, old and new
    /// UIDVALIDITY): said once, not at every catch-up until the first commit.
    pub(super) rescan_warned: Mutex<Option<(String, u32, u32)>>,
    /// Access tokens when the mailbox logs in with OAuth2.
    pub(super) tokens: Option<Arc<TokenSource>>,
    /// The instance whose lease each commit must find held (see `crate::cluster`).
    pub(super) lease_holder: Option<String>,
}

impl MailboxWorker {
    /// `section` says where the mailbox is defined (`mailboxes[2]`), for error messages.
    pub fn new(
        section: String,
        settings: MailboxSettings,
        ingestor: Ingestor,
        limits: &IngestSettings,
        tokens: Option<Arc<TokenSource>>,
        lease_holder: Option<String>,
        shutdown: CancellationToken,
    ) -> Self {
        MailboxWorker {
            tokens,
            lease_holder,
            section,
            settings,
            ingestor,
            batch_size: limits.batch_size,
            max_message_size: limits.max_message_size,
            health: Arc::default(),
            shutdown,
            rescan_warned: Mutex::default(),
        }
    }

    /// Shared view of this worker's health.
    pub fn health(&self) -> Arc<Mutex<MailboxHealth>> {
        self.health.clone()
    }

    /// Runs until shutdown, reconnecting with capped exponential backoff and jitter; the
    /// backoff starts over after a session that synced.
    pub async fn run(self) {
        let span = info_span!("mailbox", mailbox = %self.settings.name);
        async move {
            let cap = self.settings.max_backoff;
            let mut backoff = new_backoff(cap);
            while !self.shutdown.is_cancelled() {
                let synced_before = self.health.lock().expect("health lock").last_sync;
                let result = self.session().await;
                self.update(|h| {
                    h.connected = false;
                    h.attempts += 1;
                });
                let err = match result {
                    Ok(()) => break,
                    Err(e) => e,
                };
                error!(error = %err, "mailbox session failed");
                let healthy = self.health.lock().expect("health lock").last_sync != synced_before;
                if healthy {
                    backoff = new_backoff(cap);
                }
                let delay = if err.needs_operator() { cap } else { backoff.next().unwrap_or(cap) };
                let reauthorize = err.needs_reauthorization();
                self.update(|h| {
                    h.last_error = Some(err.to_string());
                    h.reauthorize = reauthorize;
                });
                self.promise(delay + self.settings.timeout);
                info!(retry_in = ?delay, "reconnecting later");
                // New credentials (`collabctl mailbox authorize`) end the wait at once.
                let authorized = async {
                    match &self.tokens {
                        Some(t) => t.changed().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = self.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                    _ = authorized => info!("new OAuth2 credentials: retrying now"),
                }
            }
            self.update(|h| h.deadline = None);
            info!("mailbox worker stopped");
        }
        .instrument(span)
        .await
    }

    pub(super) fn update(&self, f: impl FnOnce(&mut MailboxHealth)) {
        f(&mut self.health.lock().expect("health lock"));
    }

    /// Promises to report again within `within` (see `MailboxHealth::is_wedged`).
    pub(super) fn promise(&self, within: Duration) {
        self.update(|h| h.deadline = Some(Instant::now() + within));
    }

    /// One connected session: returns Ok only on shutdown.
    async fn session(&self) -> Result<(), ImapError> {
        let Some(mut folder) = self.open().await? else { return Ok(()) };
        // New replies first, then what earlier sessions committed but could not flag or
        // move: a post-processing that keeps failing (a missing target folder) must not
        // keep new replies out of Postgres.
        self.promise(self.settings.timeout * 3);
        self.catch_up(&mut folder).await?;
        self.promise(self.settings.timeout * 3);
        self.post_process_committed(&mut folder).await?;
        while !self.shutdown.is_cancelled() {
            let wake;
            (folder, wake) = self.wait_for_mail(folder).await?;
            if let Wake::Stop = wake {
                break;
            }
            self.promise(self.settings.timeout * 3);
            self.catch_up(&mut folder).await?;
        }
        folder.logout().await;
        Ok(())
    }
}

/// Reconnect delays: exponential from one second up to `cap`, with jitter, forever.
/// Authentication failures wait the full cap (see `ImapError::needs_operator`).
fn new_backoff(cap: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1).min(cap))
        .with_max_delay(cap)
        .with_jitter()
        .without_max_times()
        .build()
}
