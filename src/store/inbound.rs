//! Inbound messages: one row per (mailbox, UIDVALIDITY, UID), never two per Message-ID.

use super::{StoreError, Tx};

/// Everything recorded about one fetched message.
#[derive(Debug, Clone, Default)]
pub struct NewInbound<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
    pub dedupe_key: &'a str,
    pub message_id: Option<&'a str>,
    pub in_reply_to: &'a [String],
    pub references: &'a [String],
    pub from_address: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub to_addresses: &'a [String],
    pub subject: Option<&'a str>,
    pub sent_date: Option<chrono::DateTime<chrono::Utc>>,
    pub text_body: Option<&'a str>,
    pub reply_text: Option<&'a str>,
    pub size: u64,
    pub kind: &'a str,
    pub kind_reason: &'a str,
    pub match_rule: Option<&'a str>,
    pub outreach_id: Option<i64>,
    pub creator_id: Option<i64>,
    pub campaign_id: Option<i64>,
}

/// Inserts the row unless this message was seen before (same UID or same dedupe key);
/// returns the new id, or `None` for a duplicate.
pub async fn insert(tx: &mut Tx, m: &NewInbound<'_>) -> Result<Option<i64>, StoreError> {
    let id = sqlx::query_scalar!(
        r#"INSERT INTO inbound_messages
             (mailbox, uidvalidity, uid, dedupe_key, message_id, in_reply_to, "references",
              from_address, from_name, to_addresses, subject, sent_date, text_body, reply_text,
              size, kind, kind_reason, match_rule, outreach_id, creator_id, campaign_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19, $20, $21)
           ON CONFLICT DO NOTHING
           RETURNING id"#,
        m.mailbox,
        i64::from(m.uidvalidity),
        i64::from(m.uid),
        m.dedupe_key,
        m.message_id,
        m.in_reply_to,
        m.references,
        m.from_address,
        m.from_name,
        m.to_addresses,
        m.subject,
        m.sent_date,
        m.text_body,
        m.reply_text,
        m.size as i64,
        m.kind,
        m.kind_reason,
        m.match_rule,
        m.outreach_id,
        m.creator_id,
        m.campaign_id,
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(id)
}

/// Links a message to the collaboration it created or joined.
pub async fn link_collaboration(
    tx: &mut Tx,
    inbound_id: i64,
    collab_id: i64,
) -> Result<(), StoreError> {
    sqlx::query!(
        "UPDATE inbound_messages SET collaboration_id = $2 WHERE id = $1",
        inbound_id,
        collab_id
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A message waiting for a person to decide what it is.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct UnmatchedMessage {
    pub id: i64,
    pub mailbox: String,
    pub from_address: Option<String>,
    pub from_name: Option<String>,
    pub subject: Option<String>,
    pub sent_date: Option<chrono::DateTime<chrono::Utc>>,
    pub reply_text: Option<String>,
    pub received_at: chrono::DateTime<chrono::Utc>,
}

impl super::Store {
    /// Human messages no rule could match, newest first.
    pub async fn unmatched(&self) -> Result<Vec<UnmatchedMessage>, StoreError> {
        let rows = sqlx::query_as!(
            UnmatchedMessage,
            r#"SELECT id, mailbox, from_address, from_name, subject, sent_date, reply_text, received_at
               FROM inbound_messages WHERE kind = 'unmatched' ORDER BY id DESC LIMIT 1000"#
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Turns an unmatched message into a reply of a creator in a campaign: the message is
    /// re-labelled, a Pending collaboration created (or joined) and the sender's address
    /// remembered for the creator, all in one transaction. `None` if no such unmatched
    /// message exists.
    pub async fn assign_unmatched(
        &self,
        inbound_id: i64,
        creator_id: i64,
        campaign_id: i64,
        actor: &str,
    ) -> Result<Option<super::CollabRef>, StoreError> {
        let mut tx = self.begin().await?;
        let from = sqlx::query_scalar!(
            "SELECT from_address FROM inbound_messages WHERE id = $1 AND kind = 'unmatched' FOR UPDATE",
            inbound_id
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(from) = from else { return Ok(None) };
        let collab =
            super::collabs::open_or_create_from_email(&mut tx, creator_id, campaign_id, None, None)
                .await?;
        sqlx::query!(
            r#"UPDATE inbound_messages SET kind = 'reply', match_rule = 'manual',
                 kind_reason = 'assigned by ' || $2, creator_id = $3, campaign_id = $4,
                 collaboration_id = $5
               WHERE id = $1"#,
            inbound_id,
            actor,
            creator_id,
            campaign_id,
            collab.id
        )
        .execute(&mut *tx)
        .await?;
        if let Some(from) = from {
            super::creators::learn_address(&mut tx, creator_id, &from).await?;
        }
        if collab.created {
            let reason = format!("unmatched message {inbound_id} assigned by hand");
            super::collabs::record_event(
                &mut tx,
                collab.id,
                &super::collabs::NewEvent {
                    kind: "created",
                    to_status: Some(crate::collab::CollabStatus::Pending),
                    actor,
                    reason: Some(&reason),
                    inbound_id: Some(inbound_id),
                    ..Default::default()
                },
            )
            .await?;
            super::collabs::notify_created(&mut tx, collab.id).await?;
        }
        tx.commit().await?;
        Ok(Some(collab))
    }
}
