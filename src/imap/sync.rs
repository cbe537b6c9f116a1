//! Catching up with a mailbox: find the UIDs above the committed one, fetch them in
//! bounded batches, commit each batch, then post-process (flag or move) what was committed.
//!
//! **The ordering rule: a batch is committed before it is post-processed, and batches are
//! committed strictly in UID order.** `mailbox_sync.last_uid` says "everything at or below
//! this UID is done", so a batch may only commit once every lower UID has; and a message
//! may only be flagged or moved once its row is committed, or a crash in between would
//! lose it (moved out of the folder, never stored). [`MailboxWorker::ingest_in_order`]
//! enforces both: one batch at most is in flight (committing in its own task while the
//! next is fetched and parsed), [`MailboxWorker::finish`] awaits that commit before the
//! next batch is handed over and only then post-processes, and a failed fetch still lets
//! the batch in flight commit. What a session committed but did not post-process is done
//! by the next one, after its first catch-up ([`MailboxWorker::post_process_committed`]).

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use tracing::{info, warn};

use super::session::OpenFolder;
use super::worker::MailboxWorker;
use super::{ImapError, Session, timed};
use crate::config::PostProcess;
use crate::ingest::{BatchReport, Fetched, Source};
use crate::store::StoreError;

/// Bytes of message bodies held in memory at once (one transaction's worth); a single
/// message may exceed it up to the size limit.
const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// A batch whose transaction is running while the next one is fetched.
struct InFlight {
    task: tokio::task::JoinHandle<Result<BatchReport, StoreError>>,
    uids: Vec<u32>,
}

impl MailboxWorker {
    /// Fetches and ingests every message above the committed UID, in bounded batches.
    pub(super) async fn catch_up(&self, folder: &mut OpenFolder) -> Result<(), ImapError> {
        let last = self.committed_uid(folder.uidvalidity).await?;
        let limit = self.settings.timeout;
        let found =
            timed(limit, "UID SEARCH", folder.imap.uid_search(format!("UID {}:*", last + 1)))
                .await?;
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
        uids.sort_unstable();
        if uids.is_empty() {
            folder.settled();
        } else {
            info!(new = uids.len(), after_uid = last, "fetching new messages");
            self.ingest_in_order(folder, &uids).await?;
        }
        if !self.shutdown.is_cancelled() {
            let now = chrono::Utc::now();
            self.update(|h| {
                h.last_sync = Some(now);
                h.last_poll = Some(now);
            });
        }
        Ok(())
    }

    /// The last committed UID in this folder and UIDVALIDITY (0 when there is none: a new
    /// mailbox, or a changed UIDVALIDITY or folder, said once per change). The worker's
    /// health takes the committed figures, which outlive it.
    async fn committed_uid(&self, uidvalidity: u32) -> Result<u32, ImapError> {
        let Some(state) = self.ingestor.store().sync_state(&self.settings.name).await? else {
            return Ok(0);
        };
        self.update(|h| {
            h.last_uid = state.last_uid;
            h.processed = u64::try_from(state.processed).unwrap_or(0);
        });
        if let Some(last) = state.last_uid_in(&self.settings.folder, uidvalidity) {
            return Ok(last);
        }
        let change = (state.folder.clone(), state.uidvalidity, uidvalidity);
        let mut warned = self.rescan_warned.lock().expect("rescan lock");
        if warned.as_ref() != Some(&change) {
            warn!(old = state.uidvalidity, new = uidvalidity, old_folder = %state.folder,
                "UIDVALIDITY or folder changed: rescanning, Message-ID dedupe prevents reprocessing");
            *warned = Some(change);
        }
        Ok(0)
    }

    /// Fetches `uids` (ascending) in batches and commits them in that order.
    async fn ingest_in_order(
        &self,
        folder: &mut OpenFolder,
        uids: &[u32],
    ) -> Result<(), ImapError> {
        let limit = self.settings.timeout;
        let uidvalidity = folder.uidvalidity;
        let source = Source {
            mailbox: self.settings.name.clone(),
            folder: self.settings.folder.clone(),
            uidvalidity,
            lease_holder: self.lease_holder.clone(),
        };
        // The batch in flight (see the module comment): at most one.
        let mut in_flight: Option<InFlight> = None;
        let mut outcome = Ok(());
        'chunks: for chunk in uids.chunks(self.batch_size as usize) {
            if self.shutdown.is_cancelled() {
                break;
            }
            self.promise(limit * 3);
            let sizes = match self.sizes(&mut folder.imap, chunk).await {
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
                let fetched = self.fetch_group(&mut folder.imap, group).await;
                // Parsing runs while the previous batch commits.
                let parsing = fetched.map(|f| {
                    let ingestor = self.ingestor.clone();
                    (!f.is_empty())
                        .then(|| tokio::task::spawn_blocking(move || ingestor.prepare(f)))
                });
                // The rule: the batch before commits (and is post-processed) first.
                if let Some(prev) = in_flight.take() {
                    self.finish(folder, prev).await?;
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
            self.finish(folder, prev).await?;
        }
        outcome
    }

    /// Waits for a batch's commit, records it, then post-processes its messages.
    async fn finish(&self, folder: &mut OpenFolder, batch: InFlight) -> Result<(), ImapError> {
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
        if let Err(e) = self.post_process(folder, &set).await {
            warn!(error = %e, "post-processing failed; the messages are stored");
            return Err(e);
        }
        Ok(())
    }

    /// Flags or moves, early in a session, whatever was committed but not yet
    /// post-processed: a session that failed (or a daemon killed) between a commit and its
    /// MOVE or STORE would otherwise leave those messages in place for good. Every UID up to
    /// the committed one is done with, so the range is safe to repeat. Skipped where the
    /// fallback cannot expunge (no MOVE, no UIDPLUS): copies would pile up.
    pub(super) async fn post_process_committed(
        &self,
        folder: &mut OpenFolder,
    ) -> Result<(), ImapError> {
        let repeatable = match self.settings.post_process {
            PostProcess::None => false,
            PostProcess::Flag => true,
            PostProcess::Move => folder.can_move || folder.uidplus,
        };
        if !repeatable {
            return Ok(());
        }
        let state = self.ingestor.store().sync_state(&self.settings.name).await?;
        let last = state.and_then(|s| s.last_uid_in(&self.settings.folder, folder.uidvalidity));
        match last {
            Some(last) if last > 0 => self.post_process(folder, &format!("1:{last}")).await,
            _ => Ok(()),
        }
    }

    /// Flags or moves committed messages, as configured.
    async fn post_process(&self, folder: &mut OpenFolder, set: &str) -> Result<(), ImapError> {
        let limit = self.settings.timeout;
        match self.settings.post_process {
            PostProcess::None => {}
            PostProcess::Flag => {
                let flags = format!("+FLAGS.SILENT ({})", self.settings.processed_flag);
                timed(limit, "UID STORE", async {
                    folder.imap.uid_store(set, &flags).await?.try_collect::<Vec<_>>().await
                })
                .await?;
            }
            PostProcess::Move if folder.can_move => {
                timed(limit, "UID MOVE", folder.imap.uid_mv(set, &self.settings.processed_folder))
                    .await?;
            }
            PostProcess::Move => {
                // RFC 3501 fallback: COPY, mark deleted, expunge just these (UIDPLUS).
                timed(
                    limit,
                    "UID COPY",
                    folder.imap.uid_copy(set, &self.settings.processed_folder),
                )
                .await?;
                timed(limit, "UID STORE", async {
                    folder
                        .imap
                        .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
                if folder.uidplus {
                    timed(limit, "UID EXPUNGE", async {
                        folder.imap.uid_expunge(set).await?.try_collect::<Vec<_>>().await
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
