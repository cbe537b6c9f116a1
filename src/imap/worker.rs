//! One worker per configured mailbox: connect, catch up from the committed sync state,
//! wait for new mail, repeat; on any failure back off and reconnect.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_imap::extensions::idle::IdleResponse;
use backon::{BackoffBuilder, ExponentialBuilder};
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::{ImapError, Session, connect, timed};
use crate::config::{MailboxSettings, PostProcess};
use crate::ingest::{BatchReport, Fetched, Ingestor, Source};
use crate::store::StoreError;

/// Bytes of message bodies held in memory at once (one transaction's worth); a single
/// message may exceed it up to the size limit.
const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// What a mailbox worker reports about itself, for `collabctl status` and sd_notify.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct MailboxHealth {
    pub connected: bool,
    pub uidvalidity: Option<u32>,
    pub last_uid: u32,
    pub processed: u64,
    pub last_sync: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
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

/// Names and health of the running workers, shared with the admin server and the
/// supervisor; replaced entries on reload.
pub type Registry = Arc<std::sync::RwLock<Vec<(String, Arc<Mutex<MailboxHealth>>)>>>;

/// What the server said of the folder a session opened: what the sync state is checked
/// against, and how committed messages can be moved.
struct Opened {
    uidvalidity: u32,
    can_move: bool,
    uidplus: bool,
}

/// A batch whose transaction is running while the next one is fetched.
struct InFlight {
    task: tokio::task::JoinHandle<Result<BatchReport, StoreError>>,
    uids: Vec<u32>,
}

/// Watches one mailbox until told to stop.
pub struct MailboxWorker {
    index: usize,
    settings: MailboxSettings,
    ingestor: Ingestor,
    batch_size: u32,
    max_message_size: u64,
    health: Arc<Mutex<MailboxHealth>>,
    shutdown: CancellationToken,
}

impl MailboxWorker {
    /// `index` is the mailbox's position in the config, used in error messages.
    pub fn new(
        index: usize,
        settings: MailboxSettings,
        ingestor: Ingestor,
        batch_size: u32,
        max_message_size: u64,
        shutdown: CancellationToken,
    ) -> Self {
        MailboxWorker {
            index,
            settings,
            ingestor,
            batch_size,
            max_message_size,
            health: Arc::default(),
            shutdown,
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
                self.update(|h| h.last_error = Some(err.to_string()));
                self.promise(delay + self.settings.timeout);
                info!(retry_in = ?delay, "reconnecting later");
                tokio::select! {
                    _ = self.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
            self.update(|h| h.deadline = None);
            info!("mailbox worker stopped");
        }
        .instrument(span)
        .await
    }

    fn update(&self, f: impl FnOnce(&mut MailboxHealth)) {
        f(&mut self.health.lock().expect("health lock"));
    }

    /// Promises to report again within `within` (see `MailboxHealth::is_wedged`).
    fn promise(&self, within: Duration) {
        self.update(|h| h.deadline = Some(Instant::now() + within));
    }

    /// One connected session: returns Ok only on shutdown.
    async fn session(&self) -> Result<(), ImapError> {
        let password = self.settings.password(self.index)?;
        // connect + TLS + greeting + login, each bounded by the timeout
        self.promise(self.settings.timeout * 4);
        let credential = super::Credential::Password(password);
        let mut session = tokio::select! {
            s = connect(&self.settings, &credential) => s?,
            _ = self.shutdown.cancelled() => return Ok(()),
        };
        drop(credential);
        let limit = self.settings.timeout;
        self.promise(limit * 3);
        // Read-only unless post-processing has to change the mailbox.
        let mailbox = if self.settings.post_process == PostProcess::None {
            timed(limit, "EXAMINE", session.examine(&self.settings.folder)).await?
        } else {
            timed(limit, "SELECT", session.select(&self.settings.folder)).await?
        };
        let uidvalidity = mailbox.uid_validity.ok_or(ImapError::NoUidValidity)?;
        info!(folder = %self.settings.folder, uidvalidity, exists = mailbox.exists, "connected");
        self.update(|h| {
            h.connected = true;
            h.uidvalidity = Some(uidvalidity);
        });

        let caps = timed(limit, "CAPABILITY", session.capabilities()).await?;
        let idle = self.settings.idle && caps.has_str("IDLE");
        let opened = Opened {
            uidvalidity,
            can_move: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        };
        drop(caps);
        self.promise(limit * 3);
        self.post_process_committed(&mut session, &opened).await?;
        loop {
            self.promise(limit * 3);
            self.catch_up(&mut session, &opened).await?;
            if self.shutdown.is_cancelled() {
                break;
            }
            let stopped = if idle {
                // RFC 2177: wait for EXISTS; re-issue at least every poll_interval (capped at
                // 29 minutes), which is also the safety-net poll.
                let mut handle = session.idle();
                timed(limit, "IDLE", handle.init()).await?;
                let wait = self.settings.poll_interval.min(Duration::from_secs(29 * 60));
                self.promise(wait + limit * 2);
                // async-imap's own timeout restarts at every server line, and servers send
                // keepalives ("* OK Still here": Dovecot every 2 minutes), so the poll
                // deadline is kept here.
                let (woken, _interrupt) = handle.wait();
                let woken = tokio::select! {
                    r = woken => {
                        Some(r.map_err(|source| ImapError::Protocol { op: "IDLE", source })?)
                    }
                    _ = tokio::time::sleep(wait) => Some(IdleResponse::Timeout),
                    _ = self.shutdown.cancelled() => None,
                };
                session = timed(limit, "IDLE DONE", handle.done()).await?;
                // A poll, not a notification: servers (Dovecot among them) bring a session
                // up to date only when a command ends, so without this NOOP the search would
                // miss what arrived since the server last looked, until the next poll.
                if let Some(IdleResponse::Timeout) = woken {
                    debug!("IDLE reached poll_interval: polling");
                    timed(limit, "NOOP", session.noop()).await?;
                }
                woken.is_none()
            } else {
                self.promise(self.settings.poll_interval + limit);
                let stopped = tokio::select! {
                    _ = self.shutdown.cancelled() => true,
                    _ = tokio::time::sleep(self.settings.poll_interval) => false,
                };
                if !stopped {
                    timed(limit, "NOOP", session.noop()).await?;
                }
                stopped
            };
            while session.unsolicited_responses.try_recv().is_ok() {}
            if stopped {
                break;
            }
        }
        // Clean shutdown: say goodbye, but never wait long for it.
        let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
        Ok(())
    }

    /// Fetches and ingests every message above the committed UID, in bounded batches.
    async fn catch_up(&self, session: &mut Session, opened: &Opened) -> Result<(), ImapError> {
        let uidvalidity = opened.uidvalidity;
        let store_state = self.ingestor.store().sync_state(&self.settings.name).await?;
        let last = match store_state {
            Some(s) if s.last_uid_in(&self.settings.folder, uidvalidity).is_some() => s.last_uid,
            Some(s) => {
                warn!(old = s.uidvalidity, new = uidvalidity, old_folder = %s.folder,
                    "UIDVALIDITY or folder changed: rescanning, Message-ID dedupe prevents reprocessing");
                0
            }
            None => 0,
        };
        let limit = self.settings.timeout;
        let found =
            timed(limit, "UID SEARCH", session.uid_search(format!("UID {}:*", last + 1))).await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
        uids.sort_unstable();
        if uids.is_empty() {
            self.update(|h| h.last_sync = Some(chrono::Utc::now()));
            return Ok(());
        }
        info!(new = uids.len(), after_uid = last, "fetching new messages");
        let source = Source {
            mailbox: self.settings.name.clone(),
            folder: self.settings.folder.clone(),
            uidvalidity,
        };
        // One batch commits in a task of its own while the next one is fetched; commits
        // still happen strictly in UID order, one after the other.
        let mut in_flight: Option<InFlight> = None;
        let mut outcome = Ok(());
        'chunks: for chunk in uids.chunks(self.batch_size as usize) {
            if self.shutdown.is_cancelled() {
                break;
            }
            self.promise(limit * 3);
            let sizes = match self.sizes(session, chunk).await {
                Ok(s) => s,
                Err(e) => {
                    outcome = Err(e);
                    break;
                }
            };
            for group in byte_bounded_groups(&sizes, self.max_message_size) {
                // A chunk can hold hundreds of MiB: stop between groups, not after them all.
                if self.shutdown.is_cancelled() {
                    break 'chunks;
                }
                let fetched = self.fetch_group(session, group).await;
                // Parsing runs while the previous batch commits.
                let parsing = fetched.map(|f| {
                    let ingestor = self.ingestor.clone();
                    (!f.is_empty())
                        .then(|| tokio::task::spawn_blocking(move || ingestor.prepare(f)))
                });
                if let Some(prev) = in_flight.take() {
                    self.finish(session, prev, opened).await?;
                }
                let parsing = match parsing {
                    Ok(p) => p,
                    Err(e) => {
                        outcome = Err(e);
                        break 'chunks;
                    }
                };
                // Messages expunged since SEARCH are simply absent.
                let Some(parsing) = parsing else { continue };
                let prepared = parsing.await.expect("parsing never panics");
                let uids = prepared.uids();
                let (ingestor, source) = (self.ingestor.clone(), source.clone());
                let task = tokio::spawn(async move { ingestor.commit(&source, prepared).await });
                in_flight = Some(InFlight { task, uids });
            }
        }
        // The batch in flight always commits, even when fetching failed or we are stopping.
        if let Some(prev) = in_flight.take() {
            self.finish(session, prev, opened).await?;
        }
        outcome
    }

    /// Waits for a batch's commit, records it, then post-processes its messages.
    async fn finish(
        &self,
        session: &mut Session,
        batch: InFlight,
        opened: &Opened,
    ) -> Result<(), ImapError> {
        let report = batch.task.await.expect("ingest never panics")?;
        self.update(|h| {
            h.last_uid = report.last_uid;
            h.processed += u64::from(report.stored);
            h.last_sync = Some(chrono::Utc::now());
            h.last_error = None;
            if report.stored > 0 {
                h.last_message = Some(Instant::now());
            }
        });
        // Only after the commit: a failure here loses nothing.
        let set = uid_set(batch.uids.iter().copied());
        if let Err(e) = self.post_process(session, &set, opened).await {
            warn!(error = %e, "post-processing failed; the messages are stored");
            return Err(e);
        }
        Ok(())
    }

    /// Flags or moves, at the start of a session, whatever was committed but not yet
    /// post-processed: a session that failed (or a daemon killed) between a commit and its
    /// MOVE or STORE would otherwise leave those messages in place for good. Every UID up to
    /// the committed one is done with, so the range is safe to repeat. Skipped where the
    /// fallback cannot expunge (no MOVE, no UIDPLUS): copies would pile up.
    async fn post_process_committed(
        &self,
        session: &mut Session,
        opened: &Opened,
    ) -> Result<(), ImapError> {
        let repeatable = match self.settings.post_process {
            PostProcess::None => false,
            PostProcess::Flag => true,
            PostProcess::Move => opened.can_move || opened.uidplus,
        };
        if !repeatable {
            return Ok(());
        }
        let state = self.ingestor.store().sync_state(&self.settings.name).await?;
        let last = state.and_then(|s| s.last_uid_in(&self.settings.folder, opened.uidvalidity));
        match last {
            Some(last) if last > 0 => {
                self.post_process(session, &format!("1:{last}"), opened).await
            }
            _ => Ok(()),
        }
    }

    /// Flags or moves committed messages, as configured.
    async fn post_process(
        &self,
        session: &mut Session,
        set: &str,
        opened: &Opened,
    ) -> Result<(), ImapError> {
        let limit = self.settings.timeout;
        match self.settings.post_process {
            PostProcess::None => {}
            PostProcess::Flag => {
                let flags = format!("+FLAGS.SILENT ({})", self.settings.processed_flag);
                timed(limit, "UID STORE", async {
                    session.uid_store(set, &flags).await?.try_collect::<Vec<_>>().await
                })
                .await?;
            }
            PostProcess::Move if opened.can_move => {
                timed(limit, "UID MOVE", session.uid_mv(set, &self.settings.processed_folder))
                    .await?;
            }
            PostProcess::Move => {
                // RFC 3501 fallback: COPY, mark deleted, expunge just these (UIDPLUS).
                timed(limit, "UID COPY", session.uid_copy(set, &self.settings.processed_folder))
                    .await?;
                timed(limit, "UID STORE", async {
                    session
                        .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
                if opened.uidplus {
                    timed(limit, "UID EXPUNGE", async {
                        session.uid_expunge(set).await?.try_collect::<Vec<_>>().await
                    })
                    .await?;
                } else {
                    warn!(
                        "server lacks MOVE and UIDPLUS: copied and flagged \\Deleted, not expunged"
                    );
                }
            }
        }
        Ok(())
    }

    async fn sizes(
        &self,
        session: &mut Session,
        uids: &[u32],
    ) -> Result<Vec<(u32, u64)>, ImapError> {
        let set = uid_set(uids.iter().copied());
        let fetches = timed(self.settings.timeout, "UID FETCH sizes", async {
            session.uid_fetch(&set, "(UID RFC822.SIZE)").await?.try_collect::<Vec<_>>().await
        })
        .await?;
        // A server may add unsolicited FETCH responses (flags another client changed) for
        // any message: only the UIDs asked for count, each once, with the size it reported.
        let mut sizes = std::collections::BTreeMap::new();
        for f in &fetches {
            let Some(uid) = f.uid.filter(|u| uids.binary_search(u).is_ok()) else { continue };
            let size = sizes.entry(uid).or_insert(0);
            *size = u64::from(f.size.unwrap_or(0)).max(*size);
        }
        Ok(sizes.into_iter().collect())
    }

    async fn fetch_group(
        &self,
        session: &mut Session,
        group: &[(u32, u64)],
    ) -> Result<Vec<Fetched>, ImapError> {
        let max = self.max_message_size;
        let bytes = |part: &[&(u32, u64)]| part.iter().map(|(_, s)| fetch_cost(*s, max)).sum();
        let (big, small): (Vec<_>, Vec<_>) = group.iter().partition(|(_, s)| *s > max);
        let limit = self.settings.timeout;
        // Covers this fetch and the previous group's commit that follows it.
        self.promise(limit * 3 + transfer_time(bytes(&small) + bytes(&big)));
        let mut out = Vec::with_capacity(group.len());
        for (uids, query, complete) in [
            (small, "(UID RFC822.SIZE BODY.PEEK[])", true),
            (big, "(UID RFC822.SIZE BODY.PEEK[HEADER])", false),
        ] {
            if uids.is_empty() {
                continue;
            }
            let set = uid_set(uids.iter().map(|(u, _)| *u));
            let fetches = timed(limit + transfer_time(bytes(&uids)), "UID FETCH", async {
                session.uid_fetch(&set, query).await?.try_collect::<Vec<_>>().await
            })
            .await?;
            for f in fetches {
                // Only the UIDs asked for, and only a response that carries the mail: a
                // flags-only one (another client's change) must never become a row.
                let asked = |u: &u32| uids.binary_search_by_key(u, |(asked, _)| *asked).is_ok();
                let Some(uid) = f.uid.filter(asked) else { continue };
                let Some(raw) = (if complete { f.body() } else { f.header() }) else { continue };
                out.push(Fetched {
                    uid,
                    size: u64::from(f.size.unwrap_or(0)),
                    raw: raw.to_vec(),
                    complete,
                });
            }
        }
        // A UID answered twice is made one by `Ingestor::prepare`; one never answered with
        // its body was expunged since SEARCH and has nothing left to store.
        Ok(out)
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

/// Splits UID-ordered `(uid, size)` pairs into consecutive groups whose downloaded bytes
/// stay under `MAX_BATCH_BYTES`; over-limit messages count as their header only.
fn byte_bounded_groups(sizes: &[(u32, u64)], max_message_size: u64) -> Vec<&[(u32, u64)]> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, size)) in sizes.iter().enumerate() {
        let cost = fetch_cost(*size, max_message_size);
        if i > start && bytes + cost > MAX_BATCH_BYTES {
            groups.push(&sizes[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    if start < sizes.len() {
        groups.push(&sizes[start..]);
    }
    groups
}

/// The bytes a message costs to fetch: its size, or about a header's when over the limit.
fn fetch_cost(size: u64, max_message_size: u64) -> u64 {
    if size > max_message_size { 8 * 1024 } else { size }
}

/// The slowest transfer a FETCH may make before it counts as stuck. `timeout` alone would
/// fail a 16 MiB group on any link under about 270 KB/s, and fail it again at every retry:
/// a throttled server or a slow link would never get past that group.
const MIN_FETCH_RATE: u64 = 64 * 1024;

/// How long fetching `bytes` may take at `MIN_FETCH_RATE`, on top of `timeout`.
fn transfer_time(bytes: u64) -> Duration {
    Duration::from_secs(bytes / MIN_FETCH_RATE)
}

/// An IMAP sequence set for UIDs, with consecutive runs folded into ranges.
fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    let mut out = String::new();
    let mut run: Option<(u32, u32)> = None;
    let flush = |out: &mut String, (a, b): (u32, u32)| {
        if !out.is_empty() {
            out.push(',');
        }
        if a == b { out.push_str(&a.to_string()) } else { out.push_str(&format!("{a}:{b}")) }
    };
    for u in uids {
        run = match run {
            Some((a, b)) if u == b + 1 => Some((a, u)),
            Some(r) => {
                flush(&mut out, r);
                Some((u, u))
            }
            None => Some((u, u)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_fold_runs() {
        assert_eq!(uid_set([1, 2, 3, 5, 7, 8].into_iter()), "1:3,5,7:8");
        assert_eq!(uid_set([4].into_iter()), "4");
    }

    #[test]
    fn groups_respect_the_byte_bound() {
        let mb = 1024 * 1024;
        let sizes = [(1, 10 * mb), (2, 10 * mb), (3, 100 * mb), (4, 1)];
        let groups = byte_bounded_groups(&sizes, 25 * mb);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0], &sizes[..1]);
        assert_eq!(groups[1], &sizes[1..]);
    }
}
