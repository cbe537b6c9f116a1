//! Supervision: connect the database, migrate, start one worker per mailbox, and stop
//! them all cleanly on SIGTERM/SIGINT.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::admin::{AdminContext, AdminServer, ServerError};
use crate::config::Settings;
use crate::imap::{MailboxHealth, MailboxWorker};
use crate::ingest::Ingestor;
use crate::mail::ClassifyRules;
use crate::outreach::{Mailer, OutreachError};
use crate::store::{Store, StoreError};

/// Sends a notification to systemd when `NOTIFY_SOCKET` is set; a no-op otherwise.
fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "sd_notify failed");
    }
}

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
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// A running daemon's parts, shared with the admin server.
pub struct Daemon {
    pub store: Store,
    pub mailboxes: Vec<(String, Arc<Mutex<MailboxHealth>>)>,
    workers: JoinSet<()>,
    shutdown: CancellationToken,
}

impl Daemon {
    /// Connects, migrates and starts every mailbox worker.
    pub async fn start(settings: &Settings) -> Result<Daemon, DaemonError> {
        let store =
            Store::connect(settings.database_url(), settings.database.max_connections).await?;
        store.migrate().await?;
        info!("database ready, migrations applied");
        let rules = ClassifyRules { own_addresses: settings.own_addresses() };
        let ingestor = Ingestor::new(store.clone(), rules);
        let shutdown = CancellationToken::new();
        let mut workers = JoinSet::new();
        let mut mailboxes = Vec::new();
        for (i, mb) in settings.mailboxes.iter().enumerate() {
            let worker = MailboxWorker::new(
                i,
                mb.clone(),
                ingestor.clone(),
                settings.ingest.batch_size,
                settings.ingest.max_message_size,
                shutdown.child_token(),
            );
            mailboxes.push((mb.name.clone(), worker.health()));
            workers.spawn(worker.run());
        }
        let mailer = settings.smtp.as_ref().map(Mailer::new).transpose()?;
        let ctx = AdminContext {
            store: store.clone(),
            mailboxes: mailboxes.clone(),
            mailer,
            started: std::time::Instant::now(),
        };
        let admin = AdminServer::bind(&settings.admin, ctx).await?;
        workers.spawn(admin.serve(shutdown.child_token()));
        info!(mailboxes = mailboxes.len(), "collabd started");
        Ok(Daemon { store, mailboxes, workers, shutdown })
    }

    /// Tells systemd (when it started us) that we are ready, then waits for SIGTERM or
    /// SIGINT, keeping the watchdog fed and the status line current, and stops the workers
    /// within the grace period.
    pub async fn run_until_signal(mut self) -> Result<(), DaemonError> {
        let mut term = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
        let mut int = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
        let mut hup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
        notify(&[NotifyState::Ready, NotifyState::Status(&self.status_line())]);
        // Without a watchdog the status line is still refreshed now and then.
        let beat = sd_notify::watchdog_enabled().map_or(Duration::from_secs(10), |d| d / 2);
        let mut ticker = tokio::time::interval(beat);
        loop {
            tokio::select! {
                _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
                _ = int.recv() => { info!("SIGINT: shutting down"); break; }
                _ = hup.recv() => warn!("SIGHUP: live reload is not supported yet; restart to apply a new config"),
                _ = ticker.tick() => {
                    notify(&[NotifyState::Watchdog, NotifyState::Status(&self.status_line())]);
                }
            }
        }
        notify(&[NotifyState::Stopping]);
        self.shutdown().await;
        Ok(())
    }

    /// "2 mailboxes (2 connected), 1240 messages": what `systemctl status` shows.
    fn status_line(&self) -> String {
        let (mut connected, mut processed) = (0, 0);
        for (_, h) in &self.mailboxes {
            let h = h.lock().expect("health lock");
            connected += usize::from(h.connected);
            processed += h.processed;
        }
        format!("{} mailboxes ({connected} connected), {processed} messages", self.mailboxes.len())
    }

    /// Stops fetching, lets batches in flight commit, logs out of IMAP.
    pub async fn shutdown(&mut self) {
        self.shutdown.cancel();
        let drain = async { while self.workers.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            warn!("workers did not stop in time; aborting them");
            self.workers.abort_all();
        }
        info!("collabd stopped");
    }
}
