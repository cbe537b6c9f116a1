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

/// The open collaboration of a creator in a campaign, created `pending` from an email if
/// there is none. The partial unique index makes this safe against concurrent ingests.
pub async fn open_or_create_from_email(
    tx: &mut Tx,
    creator_id: i64,
    campaign_id: i64,
    outreach_id: Option<i64>,
    thread_id: Option<&str>,
) -> Result<CollabRef, StoreError> {
    let created = sqlx::query_scalar!(
        r#"INSERT INTO collaborations (creator_id, campaign_id, source, outreach_id, thread_id)
           VALUES ($1, $2, 'email', $3, $4)
           ON CONFLICT (creator_id, campaign_id)
             WHERE status NOT IN ('completed', 'cancelled') AND NOT allow_duplicate
           DO NOTHING
           RETURNING id"#,
        creator_id,
        campaign_id,
        outreach_id,
        thread_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = created {
        return Ok(CollabRef { id, created: true });
    }
    // The conflict means an open one exists, and this transaction now sees it.
    let id = open_for(tx, creator_id, campaign_id).await?.ok_or(sqlx::Error::RowNotFound)?;
    Ok(CollabRef { id, created: false })
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

/// Records a collaboration's `created` event and tells listeners (the web platform) with
/// `NOTIFY collabd_collaboration, '<id>'`, in one statement; Postgres delivers the
/// notification only when the transaction commits.
pub async fn record_created(
    tx: &mut Tx,
    collab_id: i64,
    actor: &str,
    reason: &str,
    inbound_id: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"WITH e AS (
             INSERT INTO collaboration_events
               (collaboration_id, kind, to_status, actor, reason, inbound_id)
             VALUES ($1, 'created', 'pending', $2, $3, $4)
             RETURNING collaboration_id)
           SELECT pg_notify('collabd_collaboration', collaboration_id::text) FROM e"#,
        collab_id,
        actor,
        reason,
        inbound_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The open collaboration of a creator in a campaign (the one holding the one-open slot).
pub async fn open_for(
    tx: &mut Tx,
    creator_id: i64,
    campaign_id: i64,
) -> Result<Option<i64>, StoreError> {
    let id = sqlx::query_scalar!(
        r#"SELECT id FROM collaborations
           WHERE creator_id = $1 AND campaign_id = $2
             AND status NOT IN ('completed', 'cancelled') AND NOT allow_duplicate"#,
        creator_id,
        campaign_id
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

/// A collaboration in the shape scripts rely on (`collabctl --json`).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
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
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct CreatorRef {
    pub id: i64,
    pub name: String,
    pub platform: String,
    pub handle: String,
}

/// The campaign part of a collaboration.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct CampaignRef {
    pub id: i64,
    pub name: String,
}

/// One audit record.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Event {
    pub kind: String,
    pub from_status: Option<CollabStatus>,
    pub to_status: Option<CollabStatus>,
    pub actor: String,
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// One message linked to a collaboration.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
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
    /// Lists collaborations, newest first.
    pub async fn list_collaborations(
        &self,
        f: &CollabFilter,
    ) -> Result<Vec<Collaboration>, StoreError> {
        let ids = sqlx::query_scalar!(
            r#"SELECT id FROM collaborations
               WHERE ($1::bigint IS NULL OR campaign_id = $1)
                 AND ($2::bigint IS NULL OR creator_id = $2)
                 AND ($3::collab_status IS NULL OR status = $3)
               ORDER BY id DESC LIMIT 1000"#,
            f.campaign_id,
            f.creator_id,
            f.status as Option<CollabStatus>
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
               ON CONFLICT (creator_id, campaign_id)
                 WHERE status NOT IN ('completed', 'cancelled') AND NOT allow_duplicate
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
        record_created(&mut tx, id, actor, "created by hand", None).await?;
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

/// A reply that joins (or starts) its creator's collaboration in a campaign.
#[derive(Debug, Clone)]
pub struct ReplyLink {
    pub inbound_id: i64,
    pub creator_id: i64,
    pub campaign_id: i64,
    pub outreach_id: i64,
    pub thread_id: String,
    /// Why, for the `created` event if this reply starts the collaboration.
    pub reason: String,
}

/// Attaches a batch's replies (in UID order) to their open collaborations, creating a
/// Pending one per creator and campaign that has none, with its `created` event and
/// NOTIFY, in five statements whatever the batch size. Returns each reply's collaboration
/// id and the ids created. The partial unique index keeps concurrent batches from ever
/// creating two.
pub async fn attach_replies(
    tx: &mut Tx,
    replies: &[ReplyLink],
) -> Result<(Vec<i64>, Vec<i64>), StoreError> {
    if replies.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    // The first reply of each pair is the one that may start a collaboration.
    let mut seen = std::collections::HashSet::new();
    let firsts: Vec<&ReplyLink> =
        replies.iter().filter(|r| seen.insert((r.creator_id, r.campaign_id))).collect();
    let creators: Vec<i64> = firsts.iter().map(|r| r.creator_id).collect();
    let campaigns: Vec<i64> = firsts.iter().map(|r| r.campaign_id).collect();
    let outreach: Vec<i64> = firsts.iter().map(|r| r.outreach_id).collect();
    let threads: Vec<&str> = firsts.iter().map(|r| r.thread_id.as_str()).collect();
    let created = sqlx::query!(
        r#"INSERT INTO collaborations (creator_id, campaign_id, source, outreach_id, thread_id)
           SELECT c, k, 'email', o, t
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) WITH ORDINALITY
                AS u(c, k, o, t, ord)
           ORDER BY ord
           ON CONFLICT (creator_id, campaign_id)
             WHERE status NOT IN ('completed', 'cancelled') AND NOT allow_duplicate
           DO NOTHING
           RETURNING id, creator_id, campaign_id"#,
        &creators,
        &campaigns,
        &outreach,
        &threads as &[&str]
    )
    .fetch_all(&mut **tx)
    .await?;
    let open = sqlx::query!(
        r#"SELECT l.id, l.creator_id, l.campaign_id FROM collaborations l
           JOIN unnest($1::bigint[], $2::bigint[]) AS u(c, k)
             ON l.creator_id = u.c AND l.campaign_id = u.k
           WHERE l.status NOT IN ('completed', 'cancelled') AND NOT l.allow_duplicate"#,
        &creators,
        &campaigns
    )
    .fetch_all(&mut **tx)
    .await?;
    let by_pair: std::collections::HashMap<(i64, i64), i64> =
        open.into_iter().map(|r| ((r.creator_id, r.campaign_id), r.id)).collect();
    let collab_of: Vec<i64> = replies
        .iter()
        .map(|r| {
            by_pair.get(&(r.creator_id, r.campaign_id)).copied().ok_or(sqlx::Error::RowNotFound)
        })
        .collect::<Result<_, _>>()?;

    let created_ids: Vec<i64> = created.iter().map(|r| r.id).collect();
    if !created_ids.is_empty() {
        let firsts_by_pair: std::collections::HashMap<(i64, i64), &ReplyLink> =
            firsts.iter().map(|r| ((r.creator_id, r.campaign_id), *r)).collect();
        let origin: Vec<&ReplyLink> =
            created.iter().map(|c| firsts_by_pair[&(c.creator_id, c.campaign_id)]).collect();
        let reasons: Vec<&str> = origin.iter().map(|r| r.reason.as_str()).collect();
        let inbound: Vec<i64> = origin.iter().map(|r| r.inbound_id).collect();
        sqlx::query!(
            r#"WITH e AS (
                 INSERT INTO collaboration_events
                   (collaboration_id, kind, to_status, actor, reason, inbound_id)
                 SELECT u.id, 'created', 'pending', $4, u.reason, u.inbound
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(id, reason, inbound)
                 RETURNING collaboration_id)
               SELECT pg_notify('collabd_collaboration', collaboration_id::text) FROM e"#,
            &created_ids,
            &reasons as &[&str],
            &inbound,
            crate::ingest::DAEMON_ACTOR
        )
        .execute(&mut **tx)
        .await?;
    }
    let links: Vec<(i64, i64)> =
        replies.iter().zip(&collab_of).map(|(r, c)| (r.inbound_id, *c)).collect();
    super::inbound::link_many(tx, &links).await?;
    Ok((collab_of, created_ids))
}
