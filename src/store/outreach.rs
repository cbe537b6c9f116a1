//! Outreach messages: what the brand sent, so replies can be tied to it.

use super::{StoreError, Tx};

/// The parts of an outreach that matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutreachRef {
    pub id: i64,
    pub message_id: String,
    pub creator_id: i64,
    pub campaign_id: i64,
    /// The mailboxes its campaign is bound to (`campaign_mailboxes`); empty when unbound.
    pub bound_to: Vec<String>,
}

impl OutreachRef {
    /// Whether a message that arrived in `mailbox` may match this outreach: a campaign
    /// bound to mailboxes is never matched by mail arriving in another one.
    pub fn allowed_in(&self, mailbox: &str) -> bool {
        self.bound_to.is_empty() || self.bound_to.iter().any(|m| m == mailbox)
    }
}

/// The outreach sent with this plus-address reply token.
pub async fn by_token(tx: &mut Tx, token: &str) -> Result<Option<OutreachRef>, StoreError> {
    let row = sqlx::query_as!(
        OutreachRef,
        r#"SELECT id, message_id, creator_id, campaign_id,
                  array(SELECT b.mailbox FROM campaign_mailboxes b
                        WHERE b.campaign_id = o.campaign_id ORDER BY b.mailbox) AS "bound_to!"
           FROM outreach_messages o WHERE reply_token = $1"#,
        token
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row)
}

/// A creator's outreach picked by sender address, and whether it is the arrival
/// mailbox's own (sent from it, or from an unknown mailbox) rather than another's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderCandidate {
    pub outreach: OutreachRef,
    pub own_mailbox: bool,
}

/// The creator's most recent outreach whose status is one of `statuses` (`sent` or
/// `replied` for the one still open, `bounced` for a human message from a pool address
/// when none is open), for a message that arrived in `mailbox`: the mailbox's own outreach
/// (its `mailbox`, or NULL: unknown) first, another mailbox's only when it has none.
/// Outreach of campaigns bound to other mailboxes is never a candidate.
pub async fn latest_for_creator(
    tx: &mut Tx,
    creator_id: i64,
    statuses: &[&str],
    mailbox: &str,
) -> Result<Option<SenderCandidate>, StoreError> {
    let row = sqlx::query!(
        r#"SELECT o.id, o.message_id, o.creator_id, o.campaign_id,
                  array(SELECT b.mailbox FROM campaign_mailboxes b
                        WHERE b.campaign_id = o.campaign_id ORDER BY b.mailbox) AS "bound_to!",
                  (o.mailbox IS NULL OR o.mailbox = $3) AS "own_mailbox!"
           FROM outreach_messages o
           WHERE o.creator_id = $1 AND o.status = ANY($2)
             AND (NOT EXISTS (SELECT 1 FROM campaign_mailboxes b
                              WHERE b.campaign_id = o.campaign_id)
                  OR EXISTS (SELECT 1 FROM campaign_mailboxes b
                             WHERE b.campaign_id = o.campaign_id AND b.mailbox = $3))
           ORDER BY (o.mailbox IS NULL OR o.mailbox = $3) DESC, o.sent_at DESC, o.id DESC
           LIMIT 1"#,
        creator_id,
        statuses as &[&str],
        mailbox
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| SenderCandidate {
        outreach: OutreachRef {
            id: r.id,
            message_id: r.message_id,
            creator_id: r.creator_id,
            campaign_id: r.campaign_id,
            bound_to: r.bound_to,
        },
        own_mailbox: r.own_mailbox,
    }))
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
/// the failed recipient; outreach of campaigns bound to mailboxes other than `mailbox`
/// (where the bounce arrived) is left out.
pub async fn latest_to_address(
    tx: &mut Tx,
    address: &str,
    mailbox: &str,
) -> Result<Option<OutreachRef>, StoreError> {
    let row = sqlx::query_as!(
        OutreachRef,
        r#"SELECT id, message_id, creator_id, campaign_id,
                  array(SELECT b.mailbox FROM campaign_mailboxes b
                        WHERE b.campaign_id = o.campaign_id ORDER BY b.mailbox) AS "bound_to!"
           FROM outreach_messages o
           WHERE lower(to_address) = $1
             AND (NOT EXISTS (SELECT 1 FROM campaign_mailboxes b
                              WHERE b.campaign_id = o.campaign_id)
                  OR EXISTS (SELECT 1 FROM campaign_mailboxes b
                             WHERE b.campaign_id = o.campaign_id AND b.mailbox = $2))
           ORDER BY sent_at DESC, id DESC
           LIMIT 1"#,
        address,
        mailbox
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
    /// The mailbox it was sent from; `None`: unknown.
    pub mailbox: Option<String>,
}

impl super::Store {
    /// Records outreach rows; rows whose Message-ID is known are skipped. Returns how many
    /// were new.
    pub async fn record_outreach(&self, rows: &[NewOutreach]) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let recorded = record_outreach(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(recorded)
    }
}

/// Records outreach rows in `tx`; rows whose Message-ID is known are skipped. Returns how
/// many were new.
pub async fn record_outreach(tx: &mut Tx, rows: &[NewOutreach]) -> Result<u64, StoreError> {
    let column = |f: fn(&NewOutreach) -> &str| rows.iter().map(f).collect::<Vec<_>>();
    let done = sqlx::query!(
        r#"INSERT INTO outreach_messages (message_id, creator_id, campaign_id, to_address,
             subject, sent_at, status, reply_token, body, mailbox)
           SELECT mid, creator, campaign, rcpt, subject, coalesce(sent, now()), status,
                  token, body, mailbox
           FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                       $6::timestamptz[], $7::text[], $8::text[], $9::text[], $10::text[])
                WITH ORDINALITY
                AS u(mid, creator, campaign, rcpt, subject, sent, status, token, body,
                     mailbox, n)
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
        &rows.iter().map(|r| r.mailbox.as_deref()).collect::<Vec<_>>() as &[Option<&str>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

impl super::Store {
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
        r#"SELECT id, message_id, creator_id, campaign_id,
                  array(SELECT b.mailbox FROM campaign_mailboxes b
                        WHERE b.campaign_id = o.campaign_id ORDER BY b.mailbox) AS "bound_to!"
           FROM outreach_messages o
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
