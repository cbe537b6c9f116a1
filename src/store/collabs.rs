//! Collaborations and their audit trail.

use crate::collab::CollabStatus;

use super::{StoreError, Tx};

/// A collaboration as ingest sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollabRef {
    pub id: i64,
    /// True when this call created it.
    pub created: bool,
}

/// A creator and campaign whose open collaboration a message joins (or starts), with the
/// thread it came from when there is one.
#[derive(Debug, Clone, Copy)]
pub struct OpenTarget<'a> {
    pub creator_id: i64,
    pub campaign_id: i64,
    pub outreach_id: Option<i64>,
    pub thread_id: Option<&'a str>,
}

/// The open collaboration of each target, created `pending` from an email where there is
/// none, in two statements whatever the count. `created` is true for the first target of
/// each collaboration this call created. The partial unique index makes this safe
/// against concurrent ingests and admin calls.
pub async fn open_or_create(
    tx: &mut Tx,
    targets: &[OpenTarget<'_>],
) -> Result<Vec<CollabRef>, StoreError> {
    if targets.is_empty() {
        return Ok(Vec::new());
    }
    // The first target of each pair decides the thread of a new collaboration.
    let mut pairs = std::collections::HashSet::new();
    let firsts: Vec<&OpenTarget<'_>> =
        targets.iter().filter(|t| pairs.insert((t.creator_id, t.campaign_id))).collect();
    let creators: Vec<i64> = firsts.iter().map(|t| t.creator_id).collect();
    let campaigns: Vec<i64> = firsts.iter().map(|t| t.campaign_id).collect();
    let outreach: Vec<Option<i64>> = firsts.iter().map(|t| t.outreach_id).collect();
    let threads: Vec<Option<&str>> = firsts.iter().map(|t| t.thread_id).collect();
    let created: std::collections::HashSet<i64> = sqlx::query_scalar!(
        r#"INSERT INTO collaborations (creator_id, campaign_id, source, outreach_id, thread_id)
           SELECT c, k, 'email', o, t
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) WITH ORDINALITY
                AS u(c, k, o, t, ord)
           ORDER BY ord
           ON CONFLICT (creator_id, campaign_id) WHERE holds_open_slot
           DO NOTHING
           RETURNING id"#,
        &creators,
        &campaigns,
        &outreach as &[Option<i64>],
        &threads as &[Option<&str>]
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .collect();
    // Every pair now has exactly one open collaboration, visible to this transaction.
    // LATERAL ... LIMIT 1 keeps the plan an index probe per pair: a join, planned once
    // while the table was empty, hashed a full scan of it for every batch after.
    let open = sqlx::query!(
        r#"SELECT l.id AS "id!", u.c AS "creator_id!", u.k AS "campaign_id!"
           FROM unnest($1::bigint[], $2::bigint[]) AS u(c, k)
           CROSS JOIN LATERAL (
             SELECT id FROM collaborations
             WHERE creator_id = u.c AND campaign_id = u.k AND holds_open_slot
             LIMIT 1) l"#,
        &creators,
        &campaigns
    )
    .fetch_all(&mut **tx)
    .await?;
    let by_pair: std::collections::HashMap<(i64, i64), i64> =
        open.into_iter().map(|r| ((r.creator_id, r.campaign_id), r.id)).collect();
    let mut first = std::collections::HashSet::new();
    targets
        .iter()
        .map(|t| {
            let id =
                *by_pair.get(&(t.creator_id, t.campaign_id)).ok_or(sqlx::Error::RowNotFound)?;
            Ok(CollabRef { id, created: created.contains(&id) && first.insert(id) })
        })
        .collect()
}

/// The audit record of a change: who, when (now), why.
#[derive(Debug, Clone, Default)]
pub struct NewEvent<'a> {
    pub kind: &'a str,
    pub from_status: Option<CollabStatus>,
    pub to_status: Option<CollabStatus>,
    pub actor: &'a str,
    pub reason: Option<&'a str>,
    pub inbound_id: Option<i64>,
}

/// Appends to a collaboration's audit trail.
pub async fn record_event(tx: &mut Tx, collab_id: i64, e: &NewEvent<'_>) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO collaboration_events
             (collaboration_id, kind, from_status, to_status, actor, reason, inbound_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7)"#,
        collab_id,
        e.kind,
        e.from_status as Option<CollabStatus>,
        e.to_status as Option<CollabStatus>,
        e.actor,
        e.reason,
        e.inbound_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Why a collaboration was created, for its `created` event.
#[derive(Debug, Clone, Copy)]
pub struct Created<'a> {
    pub collab_id: i64,
    pub reason: &'a str,
    pub inbound_id: Option<i64>,
}

/// Records collaborations' `created` events and tells listeners (the web platform) with
/// a NOTIFY on [`super::channels::COLLABORATIONS`], in one statement; Postgres delivers the
/// notifications only when the transaction commits.
pub async fn record_created(
    tx: &mut Tx,
    actor: &str,
    created: &[Created<'_>],
) -> Result<(), StoreError> {
    if created.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = created.iter().map(|c| c.collab_id).collect();
    let reasons: Vec<&str> = created.iter().map(|c| c.reason).collect();
    let inbound: Vec<Option<i64>> = created.iter().map(|c| c.inbound_id).collect();
    sqlx::query!(
        r#"WITH e AS (
             INSERT INTO collaboration_events
               (collaboration_id, kind, to_status, actor, reason, inbound_id)
             SELECT u.id, 'created', 'pending', $4, u.reason, u.inbound
             FROM unnest($1::bigint[], $2::text[], $3::bigint[]) WITH ORDINALITY
                  AS u(id, reason, inbound, ord)
             ORDER BY u.ord
             RETURNING collaboration_id)
           SELECT pg_notify($5, collaboration_id::text) FROM e"#,
        &ids,
        &reasons as &[&str],
        &inbound as &[Option<i64>],
        actor,
        super::channels::COLLABORATIONS
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A decline answered to a creator's outreach in a campaign.
#[derive(Debug, Clone, Copy)]
pub struct Declined<'a> {
    pub creator_id: i64,
    pub campaign_id: i64,
    pub reason: &'a str,
    pub inbound_id: i64,
}

/// Adds a `declined` event to the open collaboration of each decline's creator and
/// campaign, where there is one, in one statement. The collaboration stays as it is: a
/// person decides whether a "no" ends it.
pub async fn record_declined(
    tx: &mut Tx,
    actor: &str,
    declined: &[Declined<'_>],
) -> Result<u64, StoreError> {
    if declined.is_empty() {
        return Ok(0);
    }
    let creators: Vec<i64> = declined.iter().map(|d| d.creator_id).collect();
    let campaigns: Vec<i64> = declined.iter().map(|d| d.campaign_id).collect();
    let reasons: Vec<&str> = declined.iter().map(|d| d.reason).collect();
    let inbound: Vec<i64> = declined.iter().map(|d| d.inbound_id).collect();
    let done = sqlx::query!(
        r#"INSERT INTO collaboration_events (collaboration_id, kind, actor, reason, inbound_id)
           SELECT l.id, 'declined', $5, u.reason, u.inbound
           FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) WITH ORDINALITY
                AS u(c, k, reason, inbound, ord)
           CROSS JOIN LATERAL (
             SELECT id FROM collaborations
             WHERE creator_id = u.c AND campaign_id = u.k AND holds_open_slot
             LIMIT 1) l
           ORDER BY u.ord"#,
        &creators,
        &campaigns,
        &reasons as &[&str],
        &inbound,
        actor
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// The open collaboration of a creator in a campaign (the one holding the one-open slot).
pub async fn open_for(
    tx: &mut Tx,
    creator_id: i64,
    campaign_id: i64,
) -> Result<Option<i64>, StoreError> {
    let id = sqlx::query_scalar!(
        r#"SELECT id FROM collaborations
           WHERE creator_id = $1 AND campaign_id = $2 AND holds_open_slot"#,
        creator_id,
        campaign_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

/// A collaboration in the shape scripts rely on (`collabctl --json`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Collaboration {
    pub id: i64,
    pub status: CollabStatus,
    pub source: String,
    pub creator: CreatorRef,
    pub campaign: CampaignRef,
    pub deliverables: serde_json::Value,
    pub compensation: serde_json::Value,
    pub timeline: serde_json::Value,
    pub additional_terms: Option<String>,
    pub thread_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// The creator part of a collaboration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CreatorRef {
    pub id: i64,
    pub name: String,
    pub platform: String,
    pub handle: String,
}

/// The campaign part of a collaboration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CampaignRef {
    pub id: i64,
    pub name: String,
}

/// One audit record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub from_status: Option<CollabStatus>,
    pub to_status: Option<CollabStatus>,
    pub actor: String,
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One message linked to a collaboration.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct LinkedMessage {
    pub id: i64,
    pub kind: String,
    pub from_address: Option<String>,
    pub subject: Option<String>,
    pub sent_date: Option<chrono::DateTime<chrono::Utc>>,
    pub reply_text: Option<String>,
}

/// Filters for listing collaborations.
#[derive(Debug, Clone, Default)]
pub struct CollabFilter {
    pub campaign_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub status: Option<CollabStatus>,
    /// Created at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Why a lifecycle or creation request was refused.
#[derive(Debug, thiserror::Error)]
pub enum CollabError {
    #[error("collaboration {0} does not exist")]
    NotFound(i64),
    #[error("an open collaboration for this creator and campaign exists: {0}")]
    Duplicate(i64),
    #[error("cannot move from {from} to {to}; allowed next: {allowed}")]
    IllegalMove { from: CollabStatus, to: CollabStatus, allowed: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CollabError {
    fn from(e: sqlx::Error) -> Self {
        CollabError::Store(e.into())
    }
}

impl super::Store {
    /// Lists collaborations, newest first (`page.after`: ids below it).
    pub async fn list_collaborations(
        &self,
        f: &CollabFilter,
        page: super::Page,
    ) -> Result<Vec<Collaboration>, StoreError> {
        let ids = sqlx::query_scalar!(
            r#"SELECT id FROM collaborations
               WHERE ($1::bigint IS NULL OR campaign_id = $1)
                 AND ($2::bigint IS NULL OR creator_id = $2)
                 AND ($3::collab_status IS NULL OR status = $3)
                 AND ($4::bigint IS NULL OR id < $4)
                 AND ($6::timestamptz IS NULL OR created_at >= $6)
               ORDER BY id DESC LIMIT $5"#,
            f.campaign_id,
            f.creator_id,
            f.status as Option<CollabStatus>,
            page.after,
            page.limit,
            f.since
        )
        .fetch_all(self.pool())
        .await?;
        self.collaborations_by_ids(&ids).await
    }

    /// One collaboration.
    pub async fn collaboration(&self, id: i64) -> Result<Option<Collaboration>, StoreError> {
        Ok(self.collaborations_by_ids(&[id]).await?.pop())
    }

    async fn collaborations_by_ids(&self, ids: &[i64]) -> Result<Vec<Collaboration>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT l.id, l.status AS "status: CollabStatus", l.source, l.deliverables,
                      l.compensation, l.timeline, l.additional_terms, l.thread_id, l.created_at,
                      l.updated_at, c.id AS creator_id, c.name AS creator_name, c.platform,
                      c.handle, k.id AS campaign_id, k.name AS campaign_name
               FROM collaborations l
               JOIN creators c ON c.id = l.creator_id
               JOIN campaigns k ON k.id = l.campaign_id
               WHERE l.id = ANY($1)
               ORDER BY l.id DESC"#,
            ids
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Collaboration {
                id: r.id,
                status: r.status,
                source: r.source,
                creator: CreatorRef {
                    id: r.creator_id,
                    name: r.creator_name,
                    platform: r.platform,
                    handle: r.handle,
                },
                campaign: CampaignRef { id: r.campaign_id, name: r.campaign_name },
                deliverables: r.deliverables,
                compensation: r.compensation,
                timeline: r.timeline,
                additional_terms: r.additional_terms,
                thread_id: r.thread_id,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// The audit trail of a collaboration, oldest first.
    pub async fn events(&self, collab_id: i64) -> Result<Vec<Event>, StoreError> {
        let rows = sqlx::query_as!(
            Event,
            r#"SELECT kind, from_status AS "from_status: CollabStatus",
                      to_status AS "to_status: CollabStatus", actor, reason, at
               FROM collaboration_events WHERE collaboration_id = $1 ORDER BY id"#,
            collab_id
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// The messages that fed a collaboration, oldest first.
    pub async fn linked_messages(&self, collab_id: i64) -> Result<Vec<LinkedMessage>, StoreError> {
        let rows = sqlx::query_as!(
            LinkedMessage,
            r#"SELECT id, kind, from_address, subject, sent_date, reply_text
               FROM inbound_messages WHERE collaboration_id = $1 ORDER BY id"#,
            collab_id
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Creates a manual collaboration in `pending` with its `created` event. Refused with
    /// the existing id when an open one exists, unless `allow_duplicate`.
    pub async fn create_manual_collaboration(
        &self,
        creator_id: i64,
        campaign_id: i64,
        terms: &crate::collab::Terms,
        allow_duplicate: bool,
        actor: &str,
    ) -> Result<i64, CollabError> {
        let mut tx = self.begin().await?;
        let id = sqlx::query_scalar!(
            r#"INSERT INTO collaborations (creator_id, campaign_id, source, deliverables,
                 compensation, timeline, additional_terms, allow_duplicate)
               VALUES ($1, $2, 'manual', $3, $4, $5, $6, $7)
               ON CONFLICT (creator_id, campaign_id) WHERE holds_open_slot
               DO NOTHING
               RETURNING id"#,
            creator_id,
            campaign_id,
            to_json(&terms.deliverables),
            to_json(&terms.compensation),
            to_json(&terms.timeline),
            terms.additional_terms,
            allow_duplicate
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            let existing = open_for(&mut tx, creator_id, campaign_id).await?.unwrap_or_default();
            return Err(CollabError::Duplicate(existing));
        };
        let created = Created { collab_id: id, reason: "created by hand", inbound_id: None };
        record_created(&mut tx, actor, &[created]).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Replaces a collaboration's terms and records who did it.
    pub async fn update_terms(
        &self,
        id: i64,
        terms: &crate::collab::Terms,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<(), CollabError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query!(
            r#"UPDATE collaborations SET deliverables = $2, compensation = $3, timeline = $4,
                 additional_terms = $5, updated_at = now()
               WHERE id = $1"#,
            id,
            to_json(&terms.deliverables),
            to_json(&terms.compensation),
            to_json(&terms.timeline),
            terms.additional_terms
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(CollabError::NotFound(id));
        }
        record_event(
            &mut tx,
            id,
            &NewEvent { kind: "terms_updated", actor, reason, ..Default::default() },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves a collaboration along its lifecycle, refusing illegal moves with the allowed
    /// next states; the row is locked so two operators cannot race.
    pub async fn transition(
        &self,
        id: i64,
        to: CollabStatus,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<(CollabStatus, CollabStatus), CollabError> {
        let mut tx = self.begin().await?;
        let from = sqlx::query_scalar!(
            r#"SELECT status AS "status: CollabStatus" FROM collaborations WHERE id = $1 FOR UPDATE"#,
            id
        )
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CollabError::NotFound(id))?;
        if !from.can_move_to(to) {
            let allowed: Vec<&str> = from.next_states().iter().map(|s| s.as_str()).collect();
            let allowed =
                if allowed.is_empty() { "none (final)".into() } else { allowed.join(", ") };
            return Err(CollabError::IllegalMove { from, to, allowed });
        }
        sqlx::query!(
            "UPDATE collaborations SET status = $2, updated_at = now() WHERE id = $1",
            id,
            to as CollabStatus
        )
        .execute(&mut *tx)
        .await?;
        record_event(
            &mut tx,
            id,
            &NewEvent {
                kind: "status",
                from_status: Some(from),
                to_status: Some(to),
                actor,
                reason,
                ..Default::default()
            },
        )
        .await?;
        tx.commit().await?;
        Ok((from, to))
    }
}

/// A terms part as a JSONB value (these types always serialise).
fn to_json(v: &impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
