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

/// Tells listeners (the web platform) about a new collaboration once the transaction
/// commits; Postgres delivers NOTIFY only on commit.
pub async fn notify_created(tx: &mut Tx, collab_id: i64) -> Result<(), StoreError> {
    sqlx::query!("SELECT pg_notify('collabd_collaboration', $1)", collab_id.to_string())
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
