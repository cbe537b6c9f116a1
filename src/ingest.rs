//! Turns fetched messages into database effects, one transaction per batch: the inbound
//! rows, their matches and collaborations, and the mailbox's sync state commit together,
//! so a crash anywhere neither loses a reply nor creates a second collaboration.

use tracing::{debug, info, warn};

use crate::mail::{self, Classification, ClassifyRules, Kind, ParsedMail};
use crate::matching::{self, Match};
use std::collections::HashMap;

use crate::store::collabs::{self, NewEvent, ReplyLink};
use crate::store::inbound::{self, NewInbound};
use crate::store::{Store, StoreError, Tx, creators, outreach, sync};

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
}

/// What one batch did, for logs and status.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchReport {
    pub stored: u32,
    pub duplicates: u32,
    pub collaborations_created: u32,
    pub last_uid: u32,
}

/// Parses, classifies, matches and stores messages.
#[derive(Clone, Debug)]
pub struct Ingestor {
    store: Store,
    rules: ClassifyRules,
}

struct Prepared {
    uid: u32,
    mail: ParsedMail,
    class: Classification,
}

impl Ingestor {
    /// `rules` carry the brand's own addresses.
    pub fn new(store: Store, rules: ClassifyRules) -> Self {
        Ingestor { store, rules }
    }

    /// The store batches are written to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stores a batch (in UID order) and advances the sync state to its last UID, all in
    /// one transaction. On error nothing of the batch is kept and it can be retried.
    pub async fn ingest_batch(
        &self,
        src: &Source,
        batch: Vec<Fetched>,
    ) -> Result<BatchReport, StoreError> {
        let Some(last_uid) = batch.iter().map(|f| f.uid).max() else {
            return Ok(BatchReport::default());
        };
        let rules = self.rules.clone();
        // Parsing is CPU work; keep it off the async workers.
        let prepared = tokio::task::spawn_blocking(move || {
            batch.into_iter().map(|f| prepare(f, &rules)).collect::<Vec<_>>()
        })
        .await
        .expect("parsing never panics");

        let mut report = BatchReport { last_uid, ..Default::default() };
        let mut tx = self.store.begin().await?;
        store_batch(&mut tx, src, &prepared, &mut report).await?;
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
        Ok(report)
    }
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
    class: Classification,
    found: Option<Match>,
}

/// Stores a batch with a handful of statements: the lookups and the inbound rows go in
/// bulk; only replies (one upsert each) and the rare declines, bounces and learned
/// addresses cost statements of their own.
async fn store_batch(
    tx: &mut Tx,
    src: &Source,
    prepared: &[Prepared],
    report: &mut BatchReport,
) -> Result<(), StoreError> {
    let lookups = matching::Lookups::load(tx, prepared.iter().map(|p| &p.mail)).await?;
    let mut decided = Vec::with_capacity(prepared.len());
    for p in prepared {
        let found = match p.class.kind {
            Kind::Own | Kind::Skipped | Kind::Bulk => None,
            kind => matching::resolve(tx, &p.mail, kind, &lookups).await?,
        };
        let mut class = p.class.clone();
        if class.kind.is_human() && found.is_none() {
            class = Classification::new(
                Kind::Unmatched,
                "no outreach thread, reply token or pool address matches",
            );
        }
        decided.push(Decided { p, class, found });
    }
    let rows: Vec<NewInbound<'_>> = decided.iter().map(|d| row(src, d)).collect();
    let ids = inbound::insert_many(tx, &src.mailbox, src.uidvalidity, &rows).await?;
    // Replies first, all at once; then the rarer effects message by message.
    let mut replies = Vec::new();
    for d in &decided {
        if let (Kind::Reply, Some(m), Some(&inbound_id)) =
            (d.class.kind, &d.found, ids.get(&d.p.uid))
        {
            replies.push(ReplyLink {
                inbound_id,
                creator_id: m.creator_id(),
                campaign_id: m.campaign_id(),
                outreach_id: m.outreach.id,
                thread_id: m.outreach.message_id.clone(),
                reason: format!(
                    "reply in mailbox {} (uid {}), matched by {}",
                    src.mailbox,
                    d.p.uid,
                    m.rule.as_str()
                ),
            });
        }
    }
    let (collab_of, created) = collabs::attach_replies(tx, &replies).await?;
    report.collaborations_created += created.len() as u32;
    let mut replied: Vec<i64> = decided
        .iter()
        .filter(|d| d.class.kind == Kind::Reply && ids.contains_key(&d.p.uid))
        .filter_map(|d| d.found.as_ref().map(|m| m.outreach.id))
        .collect();
    replied.sort_unstable();
    replied.dedup();
    outreach::mark_many(tx, &replied, "replied").await?;
    let collab_by_inbound: HashMap<i64, i64> =
        replies.iter().map(|r| r.inbound_id).zip(collab_of).collect();

    for d in &decided {
        let mail = &d.p.mail;
        let span = tracing::info_span!("message", mailbox = %src.mailbox, uid = d.p.uid,
            message_id = mail.message_id.as_deref().unwrap_or("-"));
        let _g = span.enter();
        let Some(&inbound_id) = ids.get(&d.p.uid) else {
            debug!("already stored; skipped");
            report.duplicates += 1;
            continue;
        };
        report.stored += 1;
        if let (true, Some(m), Some(from)) = (d.class.kind.is_human(), &d.found, &mail.from_address)
            && m.rule.is_thread()
            && !lookups.creators_by_address.contains_key(from)
            && creators::learn_address(tx, m.creator_id(), from).await?
        {
            info!(address = %from, creator = m.creator_id(), "learned a new manager address from the thread");
        }
        match (d.class.kind, &d.found) {
            (Kind::Reply, Some(_)) => {
                let collab = collab_by_inbound[&inbound_id];
                if created.contains(&collab) {
                    info!(collaboration = collab, "pending collaboration created");
                } else {
                    info!(collaboration = collab, "reply attached to collaboration");
                }
            }
            (Kind::Decline, Some(m)) => {
                outreach::mark_many(tx, &[m.outreach.id], "declined").await?;
                let scope = if d.class.opt_out { None } else { Some(m.campaign_id()) };
                creators::unsubscribe(tx, m.creator_id(), scope).await?;
                if let Some(collab) = collabs::open_for(tx, m.creator_id(), m.campaign_id()).await?
                {
                    collabs::record_event(
                        tx,
                        collab,
                        &NewEvent {
                            kind: "declined",
                            actor: DAEMON_ACTOR,
                            reason: Some(&d.class.reason),
                            inbound_id: Some(inbound_id),
                            ..Default::default()
                        },
                    )
                    .await?;
                }
                info!(reason = %d.class.reason, opt_out = d.class.opt_out, "creator declined");
            }
            (Kind::Bounce, Some(m)) => {
                outreach::mark_many(tx, &[m.outreach.id], "bounced").await?;
                info!(outreach = m.outreach.id, "outreach bounced");
            }
            (kind, _) => {
                if kind == Kind::Skipped {
                    warn!(size = mail.size, "message over the size limit recorded as skipped");
                }
                info!(kind = kind.as_str(), reason = %d.class.reason, "message recorded");
            }
        }
    }
    Ok(())
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
    }
}
