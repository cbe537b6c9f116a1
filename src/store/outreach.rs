//! Outreach messages: what the brand sent, so replies can be tied to it.

use super::{StoreError, Tx};

/// The parts of an outreach that matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutreachRef {
    pub id: i64,
    pub message_id: String,
    pub creator_id: i64,
    pub campaign_id: i64,
}

/// The outreach sent with this plus-address reply token.
pub async fn by_token(tx: &mut Tx, token: &str) -> Result<Option<OutreachRef>, StoreError> {
    let row = sqlx::query_as!(
        OutreachRef,
        "SELECT id, message_id, creator_id, campaign_id FROM outreach_messages WHERE reply_token = $1",
        token
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row)
}

/// The creator's most recent outreach whose status is one of `statuses`: `sent` or
/// `replied` for the one still open, `bounced` for a human message from a pool address
/// when none is open (the message proves the address works).
pub async fn latest_for_creator(
    tx: &mut Tx,
    creator_id: i64,
    statuses: &[&str],
) -> Result<Option<OutreachRef>, StoreError> {
    let row = sqlx::query_as!(
        OutreachRef,
        r#"SELECT id, message_id, creator_id, campaign_id FROM outreach_messages
           WHERE creator_id = $1 AND status = ANY($2)
           ORDER BY sent_at DESC, id DESC
           LIMIT 1"#,
        creator_id,
        statuses as &[&str]
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row)
}

/// Marks bounced outreach `replied`: a human answer came from the address after all.
/// Returns the ids it changed.
pub async fn revive_bounced(tx: &mut Tx, ids: &[i64]) -> Result<Vec<i64>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let revived = sqlx::query_scalar!(
        "UPDATE outreach_messages SET status = 'replied' WHERE id = ANY($1) AND status = 'bounced' RETURNING id",
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(revived)
}

/// The most recent outreach sent to an address (normalised), for bounces that quote only
/// the failed recipient.
pub async fn latest_to_address(
    tx: &mut Tx,
    address: &str,
) -> Result<Option<OutreachRef>, StoreError> {
    let row = sqlx::query_as!(
        OutreachRef,
        r#"SELECT id, message_id, creator_id, campaign_id FROM outreach_messages
           WHERE lower(to_address) = $1
           ORDER BY sent_at DESC, id DESC
           LIMIT 1"#,
        address
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row)
}

/// Outreach sent by another system (or about to be sent by collabd), to be recorded.
#[derive(Debug, Clone)]
pub struct NewOutreach {
    pub message_id: String,
    pub creator_id: i64,
    pub campaign_id: i64,
    pub to_address: String,
    pub subject: String,
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
    pub status: &'static str,
    pub reply_token: Option<String>,
    pub body: Option<String>,
}

impl super::Store {
    /// Records outreach rows; rows whose Message-ID is known are skipped. Returns how many
    /// were new.
    pub async fn record_outreach(&self, rows: &[NewOutreach]) -> Result<u64, StoreError> {
        let column = |f: fn(&NewOutreach) -> &str| rows.iter().map(f).collect::<Vec<_>>();
        let done = sqlx::query!(
            r#"INSERT INTO outreach_messages (message_id, creator_id, campaign_id, to_address,
                 subject, sent_at, status, reply_token, body)
               SELECT mid, creator, campaign, rcpt, subject, coalesce(sent, now()), status,
                      token, body
               FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                           $6::timestamptz[], $7::text[], $8::text[], $9::text[])
                    WITH ORDINALITY
                    AS u(mid, creator, campaign, rcpt, subject, sent, status, token, body, n)
               ORDER BY n
               ON CONFLICT (message_id) DO NOTHING"#,
            &column(|r| &r.message_id) as &[&str],
            &rows.iter().map(|r| r.creator_id).collect::<Vec<_>>(),
            &rows.iter().map(|r| r.campaign_id).collect::<Vec<_>>(),
            &column(|r| &r.to_address) as &[&str],
            &column(|r| &r.subject) as &[&str],
            &rows.iter().map(|r| r.sent_at).collect::<Vec<_>>()
                as &[Option<chrono::DateTime<chrono::Utc>>],
            &column(|r| r.status) as &[&str],
            &rows.iter().map(|r| r.reply_token.as_deref()).collect::<Vec<_>>() as &[Option<&str>],
            &rows.iter().map(|r| r.body.as_deref()).collect::<Vec<_>>() as &[Option<&str>],
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Marks collabd's own outreach as accepted by the SMTP server (or failed).
    pub async fn finish_send(&self, message_id: &str, accepted: bool) -> Result<(), StoreError> {
        let status = if accepted { "sent" } else { "failed" };
        sqlx::query!(
            "UPDATE outreach_messages SET status = $2, sent_at = now() WHERE message_id = $1 AND status = 'queued'",
            message_id,
            status
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether the creator opted out of this campaign or of everything.
    pub async fn is_unsubscribed(
        &self,
        creator_id: i64,
        campaign_id: i64,
    ) -> Result<bool, StoreError> {
        let out = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM creators WHERE id = $1 AND unsubscribed_at IS NOT NULL)
                   OR EXISTS (SELECT 1 FROM campaign_unsubscribes
                              WHERE creator_id = $1 AND campaign_id = $2) AS "out!""#,
            creator_id,
            campaign_id
        )
        .fetch_one(self.pool())
        .await?;
        Ok(out)
    }
}

/// Every outreach whose Message-ID is among `ids`, by Message-ID: one query for a batch.
pub async fn by_message_ids(
    tx: &mut Tx,
    ids: &[String],
) -> Result<std::collections::HashMap<String, OutreachRef>, StoreError> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows = sqlx::query_as!(
        OutreachRef,
        r#"SELECT id, message_id, creator_id, campaign_id FROM outreach_messages
           WHERE message_id = ANY($1)"#,
        ids
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|o| (o.message_id.clone(), o)).collect())
}

/// Moves outreach from `sent` to `status`; replies, bounces and declines are recorded
/// once, and a decline is never overwritten by a later reply.
pub async fn mark_many(tx: &mut Tx, ids: &[i64], status: &str) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"UPDATE outreach_messages SET status = $2
           WHERE id = ANY($1) AND (status = 'sent' OR (status = 'replied' AND $2 <> 'replied'))"#,
        ids,
        status
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
