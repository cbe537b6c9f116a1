//! Turns fetched messages into database effects, one transaction per batch: the inbound
//! rows, their matches and collaborations, and the mailbox's sync state commit together,
//! so a crash anywhere neither loses a reply nor creates a second collaboration.

use std::collections::HashSet;
use std::sync::Arc;

use tracing::{debug, info, warn};

use crate::mail::{self, Classification, ClassifyRules, Kind, ParsedMail};
use crate::matching::{self, Match};
use crate::store::collabs::{self, CollabRef, Created, Declined, OpenTarget};
use crate::store::inbound::{self, NewInbound};
use crate::store::standing::{self, StandingChange};
use crate::store::{Store, StoreError, Tx, cluster, creators, outreach, sync};

/// The actor recorded on events the daemon itself causes.
pub const DAEMON_ACTOR: &str = "collabd";

/// A message as it came off IMAP.
#[derive(Debug)]
pub struct Fetched {
    pub uid: u32,
    pub size: u64,
    /// The whole message, or only its header when it was over the size limit.
    pub raw: Vec<u8>,
    /// False when `raw` is the header alone.
    pub complete: bool,
}

/// Which mailbox and folder generation a batch belongs to.
#[derive(Debug, Clone)]
pub struct Source {
    pub mailbox: String,
    pub folder: String,
    pub uidvalidity: u32,
    /// The instance whose mailbox lease every commit must find held (`crate::cluster`);
    /// `None` outside the daemon (tools, tests of ingest alone).
    pub lease_holder: Option<String>,
}

/// What one batch did, for logs and status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub stored: u32,
    pub duplicates: u32,
    pub collaborations_created: u32,
    pub last_uid: u32,
}

/// The classification rules every worker reads. One copy for all workers (a copy each
/// made memory grow with the square of the number of mailboxes), replaced in place when
/// the brand's own addresses change, so adding a mailbox restarts no other worker.
#[derive(Clone, Debug, Default)]
pub struct SharedRules(Arc<std::sync::RwLock<Arc<ClassifyRules>>>);

impl SharedRules {
    /// The rules as they are now.
    pub fn current(&self) -> Arc<ClassifyRules> {
        self.0.read().expect("rules lock").clone()
    }

    /// Replaces the rules for every worker's next batch.
    pub fn replace(&self, rules: ClassifyRules) {
        *self.0.write().expect("rules lock") = Arc::new(rules);
    }
}

impl From<ClassifyRules> for SharedRules {
    fn from(rules: ClassifyRules) -> Self {
        SharedRules(Arc::new(std::sync::RwLock::new(Arc::new(rules))))
    }
}

/// Parses, classifies, matches and stores messages.
#[derive(Clone, Debug)]
pub struct Ingestor {
    store: Store,
    rules: SharedRules,
}

#[derive(Debug)]
struct Prepared {
    uid: u32,
    mail: ParsedMail,
    class: Classification,
}

/// A batch parsed and classified, in UID order, ready to commit.
#[derive(Debug)]
pub struct PreparedBatch(Vec<Prepared>);

impl PreparedBatch {
    /// The batch's UIDs, in order.
    pub fn uids(&self) -> Vec<u32> {
        self.0.iter().map(|p| p.uid).collect()
    }
}

impl Ingestor {
    /// `rules` carry the brand's own addresses (every mailbox's): the daemon's workers
    /// share one [`SharedRules`].
    pub fn new(store: Store, rules: impl Into<SharedRules>) -> Self {
        Ingestor { store, rules: rules.into() }
    }

    /// The store batches are written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Parses and classifies a batch. This is CPU work: callers run it off the async
    /// workers, while the previous batch commits.
    pub fn prepare(&self, mut batch: Vec<Fetched>) -> PreparedBatch {
        // A UID the server repeated in one response is one message.
        batch.sort_by_key(|f| f.uid);
        batch.dedup_by_key(|f| f.uid);
        let rules = self.rules.current();
        PreparedBatch(batch.into_iter().map(|f| prepare(f, &rules)).collect())
    }

    /// Stores a batch and advances the sync state to its last UID, all in one
    /// transaction. On error nothing of the batch is kept and it can be retried.
    pub async fn commit(
        &self,
        src: &Source,
        batch: PreparedBatch,
    ) -> Result<BatchReport, StoreError> {
        let Some(last_uid) = batch.0.last().map(|p| p.uid) else {
            return Ok(BatchReport::default());
        };
        // A mail the server holds twice in one batch (a copy) is stored once: first UID wins.
        let mut keys = HashSet::new();
        let mut seen: HashSet<u32> = batch
            .0
            .iter()
            .filter(|p| !keys.insert(p.mail.dedupe_key.as_str()))
            .map(|p| p.uid)
            .collect();
        // Messages stored before are rare (a UIDVALIDITY reset, a copy): rather than check
        // every row, a batch that meets one fails, rolls back and runs again without it.
        let (mut tx, mut report) = loop {
            let mut report = BatchReport { last_uid, ..Default::default() };
            let mut tx = self.store.begin().await?;
            if let Some(holder) = &src.lease_holder
                && !cluster::holds_lease(&mut tx, &src.mailbox, holder).await?
            {
                return Err(StoreError::LeaseLost(src.mailbox.clone()));
            }
            match store_batch(&mut tx, src, &batch.0, &seen, &mut report).await {
                Ok(()) => break (tx, report),
                Err(e) if inbound::is_stored_before(&e) => {
                    tx.rollback().await?;
                    let rows: Vec<(u32, &str)> = batch
                        .0
                        .iter()
                        .filter(|p| !seen.contains(&p.uid))
                        .map(|p| (p.uid, p.mail.dedupe_key.as_str()))
                        .collect();
                    let stored =
                        self.store.stored_before(&src.mailbox, src.uidvalidity, &rows).await?;
                    // A conflict no stored row explains (a concurrent writer) is an error,
                    // never a loop.
                    if stored.is_empty() {
                        return Err(e);
                    }
                    debug!(count = stored.len(), "batch holds messages stored before; redoing it");
                    seen.extend(stored);
                }
                Err(e) => return Err(e),
            }
        };
        report.duplicates = seen.len() as u32;
        let duplicates: Vec<&Prepared> = batch.0.iter().filter(|p| seen.contains(&p.uid)).collect();
        sync::advance(
            &mut tx,
            &src.mailbox,
            &src.folder,
            src.uidvalidity,
            last_uid,
            i64::from(report.stored),
        )
        .await?;
        tx.commit().await?;
        if !duplicates.is_empty() {
            self.warn_of_changed_duplicates(src, &duplicates).await;
        }
        Ok(report)
    }

    /// A dropped duplicate is nearly always a true copy (a UIDVALIDITY reset, a mail in
    /// two folders). One whose sender or text differ from the stored message of the same
    /// Message-ID is another mail reusing it, by a broken client or on purpose: it is
    /// still dropped (one Message-ID, one message), but logged with both, so an operator
    /// can find it. Logging only: a failure here changes nothing that was committed.
    async fn warn_of_changed_duplicates(&self, src: &Source, duplicates: &[&Prepared]) {
        let keys: Vec<&str> = duplicates.iter().map(|p| p.mail.dedupe_key.as_str()).collect();
        let stored = match self.store.stored_identities(&src.mailbox, &keys).await {
            Ok(s) => s,
            Err(e) => {
                debug!(error = %e, "cannot compare dropped duplicates with their originals");
                return;
            }
        };
        for p in duplicates {
            let Some(first) = stored.iter().find(|s| s.dedupe_key == p.mail.dedupe_key) else {
                continue;
            };
            if i64::from(p.uid) == first.uid {
                continue; // the same message fetched again
            }
            let sender_differs = first.from_address != p.mail.from_address;
            let body_differs = p.class.kind != Kind::Skipped
                && first.body_sha256.as_ref().is_some_and(|h| *h != sha256_hex(&p.mail.text_body));
            if sender_differs || body_differs {
                warn!(
                    mailbox = %src.mailbox,
                    message_id = p.mail.message_id.as_deref().unwrap_or(""),
                    kept_id = first.id,
                    kept_uid = first.uid,
                    dropped_uid = p.uid,
                    sender_differs,
                    body_differs,
                    "a mail reusing a stored Message-ID was dropped as its duplicate, though its \
                     sender or text differ"
                );
            }
        }
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

fn prepare(f: Fetched, rules: &ClassifyRules) -> Prepared {
    let mut mail = mail::parse(&f.raw);
    let class = if f.complete {
        mail::classify::classify(&mail, rules)
    } else {
        // Only the header was fetched: keep its identity, not a body we never read.
        mail.size = f.size;
        mail.text_body.clear();
        mail.reply_text.clear();
        Classification::new(Kind::Skipped, format!("{} bytes is over the size limit", f.size))
    };
    Prepared { uid: f.uid, mail, class }
}

/// A message with its final classification and match.
struct Decided<'a> {
    p: &'a Prepared,
    /// The mailbox it was fetched from.
    mailbox: &'a str,
    class: Classification,
    found: Option<Match>,
    /// The collaboration a reply joined or started.
    collab: Option<CollabRef>,
    /// Its `inbound_messages` id, once stored.
    id: i64,
}

/// The decision for new mail and for stored mail matched again (`rematch`) alike: every
/// message's match (against outreach and pool addresses as they are now), its final kind
/// (a human message nothing explains is `unmatched`), and the open collaboration each
/// matched reply joins or starts, in the order given, so the first reply of a pair
/// decides a new collaboration's thread. The caller writes the rows, then calls `settle`.
async fn decide<'a>(
    tx: &mut Tx,
    messages: impl IntoIterator<Item = (&'a str, &'a Prepared)>,
) -> Result<(Vec<Decided<'a>>, matching::Lookups), StoreError> {
    let messages: Vec<(&str, &Prepared)> = messages.into_iter().collect();
    let lookups = matching::Lookups::load(tx, messages.iter().map(|(_, p)| &p.mail)).await?;
    let mut decided = Vec::with_capacity(messages.len());
    for (mailbox, p) in messages {
        let found = match p.class.kind {
            Kind::Own | Kind::Skipped | Kind::Bulk => None,
            kind => matching::resolve(tx, &p.mail, kind, mailbox, &lookups).await?,
        };
        let mut class = p.class.clone();
        if class.kind.is_human() && found.is_none() {
            class = Classification::new(
                Kind::Unmatched,
                "no outreach thread, reply token or pool address matches",
            );
        }
        decided.push(Decided { p, mailbox, class, found, collab: None, id: 0 });
    }

    // Replies join or start their collaboration first, so each row is written once, linked.
    let replies: Vec<usize> = (0..decided.len())
        .filter(|&i| decided[i].class.kind == Kind::Reply && decided[i].found.is_some())
        .collect();
    let targets: Vec<OpenTarget<'_>> = replies
        .iter()
        .filter_map(|&i| decided[i].found.as_ref())
        .map(|m| OpenTarget {
            creator_id: m.creator_id(),
            campaign_id: m.campaign_id(),
            outreach_id: Some(m.outreach.id),
            thread_id: Some(&m.outreach.message_id),
        })
        .collect();
    let collabs = collabs::open_or_create(tx, &targets).await?;
    for (&i, c) in replies.iter().zip(collabs) {
        decided[i].collab = Some(c);
    }
    Ok((decided, lookups))
}

/// What decided messages do once their rows are written (`id` set): the `created` event of
/// each new collaboration (its reason ends with `note`, when given), the effects on
/// outreach and standing (`apply_effects`), and the manager addresses learned from threads.
/// Returns how many collaborations were created.
async fn settle(
    tx: &mut Tx,
    decided: &[Decided<'_>],
    lookups: &matching::Lookups,
    note: Option<&str>,
) -> Result<u32, StoreError> {
    // Why each new collaboration exists; only those that were created need the words.
    let origins: Vec<(i64, String, i64)> = decided
        .iter()
        .filter_map(|d| {
            let (c, m) = (d.collab.as_ref().filter(|c| c.created)?, d.found.as_ref()?);
            let revived = if m.rule.is_after_bounce() {
                "; its outreach had bounced, and this reply revives the address"
            } else {
                ""
            };
            let note = note.map(|n| format!("; {n}")).unwrap_or_default();
            let reason = format!(
                "reply in mailbox {} (uid {}), matched by {}{revived}{note}",
                d.mailbox,
                d.p.uid,
                m.rule.as_str()
            );
            Some((c.id, reason, d.id))
        })
        .collect();
    let created: Vec<Created<'_>> = origins
        .iter()
        .map(|(collab_id, reason, inbound_id)| Created {
            collab_id: *collab_id,
            reason,
            inbound_id: Some(*inbound_id),
        })
        .collect();
    collabs::record_created(tx, DAEMON_ACTOR, &created).await?;

    apply_effects(tx, decided).await?;

    for d in decided {
        let mail = &d.p.mail;
        if let (true, Some(m), Some(from)) = (d.class.kind.is_human(), &d.found, &mail.from_address)
            && m.rule.is_thread()
            && !lookups.creators_by_address.contains_key(from)
            && creators::learn_address(tx, m.creator_id(), from).await?
        {
            info!(address = %from, creator = m.creator_id(), mailbox = %d.mailbox, uid = d.p.uid,
                "learned a new manager address from the thread");
        }
    }
    Ok(created.len() as u32)
}

/// Stores a batch, less the UIDs in `seen`, with a handful of statements whatever its
/// size: lookups, replies' collaborations, inbound rows, events and opt-outs all go in
/// bulk; only learned addresses and the rarer matching rules cost statements of their own.
async fn store_batch(
    tx: &mut Tx,
    src: &Source,
    prepared: &[Prepared],
    seen: &HashSet<u32>,
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    let fresh = prepared.iter().filter(|p| !seen.contains(&p.uid));
    let (mut decided, lookups) = decide(tx, fresh.map(|p| (src.mailbox.as_str(), p))).await?;

    let rows: Vec<NewInbound<'_>> = decided.iter().map(|d| row(src, d)).collect();
    let ids = inbound::insert_many(tx, &src.mailbox, src.uidvalidity, &rows).await?;
    report.stored = ids.len() as u32;
    for d in &mut decided {
        d.id = ids[&d.p.uid];
    }
    let unmatched: Vec<i64> =
        decided.iter().filter(|d| d.class.kind == Kind::Unmatched).map(|d| d.id).collect();
    inbound::notify_unmatched(tx, &unmatched).await?;
    report.collaborations_created = settle(tx, &decided, &lookups, None).await?;

    for d in &decided {
        let mail = &d.p.mail;
        let span = tracing::info_span!("message", mailbox = %src.mailbox, uid = d.p.uid,
            message_id = mail.message_id.as_deref().unwrap_or("-"));
        let _g = span.enter();
        log_decision(d);
    }
    Ok(())
}

fn log_decision(d: &Decided<'_>) {
    match (d.class.kind, &d.found, &d.collab) {
        (Kind::Reply, Some(_), Some(c)) if c.created => {
            info!(collaboration = c.id, "pending collaboration created");
        }
        (Kind::Reply, Some(_), Some(c)) => {
            info!(collaboration = c.id, "reply attached to collaboration");
        }
        (Kind::Decline, Some(_), _) => {
            info!(reason = %d.class.reason, opt_out = d.class.opt_out, "creator declined");
        }
        (Kind::Bounce, Some(m), _) => {
            info!(outreach = m.outreach.id, reason = %d.class.reason, "outreach bounced");
        }
        (Kind::Complaint, Some(m), _) => {
            warn!(
                outreach = m.outreach.id,
                "spam complaint: creator unsubscribed from the campaign"
            );
        }
        (kind, _, _) => {
            if kind == Kind::Skipped {
                warn!(size = d.p.mail.size, "message over the size limit recorded as skipped");
            }
            info!(kind = kind.as_str(), reason = %d.class.reason, "message recorded");
        }
    }
}

/// What a batch's messages do to outreach and to creators' standing, a statement per kind
/// of effect: replies mark their outreach replied (and revive a bounced one), declines
/// and complaints unsubscribe, hard bounces mark the outreach bounced. Every decline,
/// opt-out, complaint and revival is recorded as a creator event an operator can undo.
async fn apply_effects(tx: &mut Tx, decided: &[Decided<'_>]) -> Result<(), StoreError> {
    let stored: Vec<(&Decided<'_>, &Match, i64)> =
        decided.iter().filter_map(|d| Some((d, d.found.as_ref()?, d.id))).collect();
    let outreach_of = |keep: &dyn Fn(&Classification) -> bool| -> Vec<i64> {
        let mut ids: Vec<i64> = stored
            .iter()
            .filter(|(d, _, _)| keep(&d.class))
            .map(|(_, m, _)| m.outreach.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    let replied = outreach_of(&|c| c.kind == Kind::Reply);
    let revived = outreach::revive_bounced(tx, &replied).await?;
    outreach::mark_many(tx, &replied, "replied").await?;
    outreach::mark_many(tx, &outreach_of(&|c| c.kind == Kind::Decline), "declined").await?;
    outreach::mark_many(tx, &outreach_of(&Classification::is_hard_bounce), "bounced").await?;

    let mut changes = Vec::new();
    let mut opt_outs: Vec<(i64, Option<i64>)> = Vec::new();
    let mut declined = Vec::new();
    for &(d, m, inbound_id) in &stored {
        let (creator_id, campaign_id) = (m.creator_id(), m.campaign_id());
        let kind = match d.class.kind {
            Kind::Decline if d.class.opt_out => "opted_out",
            Kind::Decline => "declined",
            Kind::Complaint => "complained",
            Kind::Reply if revived.contains(&m.outreach.id) => "revived",
            _ => continue,
        };
        let reason = d.class.reason.as_str();
        changes.push(StandingChange { creator_id, campaign_id, inbound_id, kind, reason });
        match d.class.kind {
            Kind::Decline => {
                opt_outs.push((creator_id, (!d.class.opt_out).then_some(campaign_id)));
                declined.push(Declined { creator_id, campaign_id, reason, inbound_id });
            }
            Kind::Complaint => opt_outs.push((creator_id, Some(campaign_id))),
            _ => {}
        }
    }
    creators::unsubscribe(tx, &opt_outs).await?;
    collabs::record_declined(tx, DAEMON_ACTOR, &declined).await?;
    standing::record(tx, DAEMON_ACTOR, &changes).await
}

fn row<'a>(src: &'a Source, d: &'a Decided<'_>) -> NewInbound<'a> {
    let (mail, class, found) = (&d.p.mail, &d.class, &d.found);
    let has_body = class.kind != Kind::Skipped;
    NewInbound {
        mailbox: &src.mailbox,
        uidvalidity: src.uidvalidity,
        uid: d.p.uid,
        dedupe_key: &mail.dedupe_key,
        message_id: mail.message_id.as_deref(),
        in_reply_to: &mail.in_reply_to,
        references: &mail.references,
        from_address: mail.from_address.as_deref(),
        from_name: mail.from_name.as_deref(),
        to_addresses: &mail.recipients,
        subject: mail.subject.as_deref(),
        sent_date: mail.date,
        text_body: has_body.then_some(mail.text_body.as_str()),
        reply_text: has_body.then_some(mail.reply_text.as_str()),
        size: mail.size,
        kind: class.kind.as_str(),
        kind_reason: &class.reason,
        match_rule: found.as_ref().map(|m| m.rule.as_str()),
        outreach_id: found.as_ref().map(|m| m.outreach.id),
        creator_id: found.as_ref().map(Match::creator_id),
        campaign_id: found.as_ref().map(Match::campaign_id),
        collaboration_id: d.collab.as_ref().map(|c| c.id),
    }
}

/// The note on the `created` event of a collaboration the re-match opened.
pub const REMATCH_NOTE: &str = "rematched after import";

/// Stored messages re-matched per transaction.
pub const REMATCH_BATCH: i64 = 500;

/// What a re-match did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RematchReport {
    /// Unmatched messages looked at.
    pub examined: u64,
    /// Of those, how many now matched (replies and declines).
    pub matched: u64,
    pub collaborations_created: u64,
}

/// Matches again the stored `unmatched` messages (received since `since`, when given)
/// against outreach and creators as they are now, as ingest would have had they been
/// known when the mail came: the same `decide` and `settle`, so a reply opens or joins its
/// Pending collaboration, a decline declines, learned addresses are learned, and each new
/// collaboration's `created` event says it was rematched after import.
///
/// Messages go in id order (the order they were committed: UID order per mailbox), in
/// transactions of `REMATCH_BATCH` each. Each transaction locks its rows
/// (`FOR UPDATE SKIP LOCKED`, only rows still `unmatched`) and commits their new kind with
/// the collaborations and effects they cause, so a crash loses at most the batch in
/// flight, which stays `unmatched` for the next run; nothing is counted twice. Runs of
/// one daemon take turns, so two imports at once still match in id order.
pub async fn rematch(
    store: &Store,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<RematchReport, StoreError> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = TURN.lock().await;
    let mut report = RematchReport::default();
    let mut after = 0;
    loop {
        let mut tx = store.begin().await?;
        let rows = inbound::lock_unmatched(&mut tx, after, since, REMATCH_BATCH).await?;
        let Some(last) = rows.last() else {
            tx.commit().await?;
            break;
        };
        after = last.id;
        report.examined += rows.len() as u64;
        let prepared: Vec<Prepared> = rows.iter().map(stored_prepared).collect();
        let (decided, lookups) =
            decide(&mut tx, rows.iter().map(|r| r.mailbox.as_str()).zip(&prepared)).await?;
        // `decide` keeps the order it was given: each decision is its row's.
        let decided: Vec<Decided<'_>> = decided
            .into_iter()
            .zip(&rows)
            .map(|(d, r)| Decided { id: r.id, ..d })
            .filter(|d| d.found.is_some())
            .collect();
        let updates: Vec<inbound::Rematched<'_>> = decided
            .iter()
            .filter_map(|d| {
                let m = d.found.as_ref()?;
                Some(inbound::Rematched {
                    id: d.id,
                    kind: d.class.kind.as_str(),
                    kind_reason: &d.class.reason,
                    match_rule: m.rule.as_str(),
                    outreach_id: m.outreach.id,
                    creator_id: m.creator_id(),
                    campaign_id: m.campaign_id(),
                    collaboration_id: d.collab.as_ref().map(|c| c.id),
                })
            })
            .collect();
        report.matched += inbound::set_rematched(&mut tx, &updates).await?;
        report.collaborations_created +=
            u64::from(settle(&mut tx, &decided, &lookups, Some(REMATCH_NOTE)).await?);
        tx.commit().await?;
        for d in &decided {
            let span = tracing::info_span!("rematch", mailbox = %d.mailbox, uid = d.p.uid,
                inbound = d.id);
            let _g = span.enter();
            log_decision(d);
        }
    }
    if report.matched > 0 {
        info!(
            examined = report.examined,
            matched = report.matched,
            collaborations_created = report.collaborations_created,
            "unmatched messages rematched"
        );
    }
    Ok(report)
}

/// A stored unmatched message as ingest would have prepared it: it was a human message
/// (nothing else is stored `unmatched`), so its reading is `classify::human` of the stored
/// new text. Where the stripper was unsure of that text is not stored: it is found again
/// from the stored body, as parsing found it (for HTML mail cut before conversion, from
/// the new text itself).
fn stored_prepared(r: &inbound::StoredUnmatched) -> Prepared {
    let body = r.text_body.clone().unwrap_or_default();
    let reply_text = r.reply_text.clone().unwrap_or_default();
    let again = mail::new_text(&body);
    let reply_unsure =
        if again.text == reply_text { again.unsure } else { mail::new_text(&reply_text).unsure };
    let mail = ParsedMail {
        message_id: r.message_id.clone(),
        dedupe_key: String::new(),
        in_reply_to: r.in_reply_to.clone(),
        references: r.references.clone(),
        from_address: r.from_address.clone(),
        recipients: r.to_addresses.clone(),
        subject: r.subject.clone(),
        text_body: body,
        reply_text,
        reply_unsure,
        ..Default::default()
    };
    let class = mail::classify::human(&mail);
    Prepared { uid: r.uid as u32, mail, class }
}
