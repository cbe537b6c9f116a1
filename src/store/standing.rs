//! A creator's standing: the declines, opt-outs and complaints messages caused, recorded as
//! `creator_events`, and their undoing by an operator.

use super::collabs::{self, CollabRef, Created, OpenTarget};
use super::{Store, StoreError, Tx};

/// One change to a creator's standing caused by an inbound message.
#[derive(Debug, Clone)]
pub struct StandingChange<'a> {
    pub creator_id: i64,
    pub campaign_id: i64,
    pub inbound_id: i64,
    /// `declined`, `opted_out`, `complained` or `revived`.
    pub kind: &'static str,
    pub reason: &'a str,
}

/// Records changes in one statement.
pub async fn record(
    tx: &mut Tx,
    actor: &str,
    changes: &[StandingChange<'_>],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let creators: Vec<i64> = changes.iter().map(|c| c.creator_id).collect();
    let campaigns: Vec<i64> = changes.iter().map(|c| c.campaign_id).collect();
    let inbound: Vec<i64> = changes.iter().map(|c| c.inbound_id).collect();
    let kinds: Vec<&str> = changes.iter().map(|c| c.kind).collect();
    let reasons: Vec<&str> = changes.iter().map(|c| c.reason).collect();
    sqlx::query!(
        r#"INSERT INTO creator_events (creator_id, campaign_id, inbound_id, kind, reason, actor)
           SELECT u.creator, u.campaign, u.inbound, u.kind, u.reason, $6
           FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[])
                AS u(creator, campaign, inbound, kind, reason)"#,
        &creators,
        &campaigns,
        &inbound,
        &kinds as &[&str],
        &reasons as &[&str],
        actor
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Reverses what a decline or complaint did: the creator is subscribed to the campaign
    /// again (and to everything, when this message opted them out), the outreach counts as
    /// replied, the message becomes a reply, and the creator's collaboration for the
    /// campaign is opened (created `pending` when there is none). `None` when `inbound_id`
    /// is not a matched decline or complaint.
    pub async fn undecline(
        &self,
        inbound_id: i64,
        actor: &str,
        why: &str,
    ) -> Result<Option<CollabRef>, StoreError> {
        let mut tx = self.begin().await?;
        let Some(msg) = sqlx::query!(
            r#"SELECT i.kind, i.kind_reason, i.outreach_id, i.creator_id AS "creator_id!",
                      i.campaign_id AS "campaign_id!", o.message_id AS "thread?"
               FROM inbound_messages i LEFT JOIN outreach_messages o ON o.id = i.outreach_id
               WHERE i.id = $1 AND i.kind IN ('decline', 'complaint')
                 AND i.creator_id IS NOT NULL AND i.campaign_id IS NOT NULL
               FOR UPDATE OF i"#,
            inbound_id
        )
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let (creator_id, campaign_id) = (msg.creator_id, msg.campaign_id);
        sqlx::query!(
            "DELETE FROM campaign_unsubscribes WHERE creator_id = $1 AND campaign_id = $2",
            creator_id,
            campaign_id
        )
        .execute(&mut *tx)
        .await?;
        sqlx::query!(
            r#"UPDATE creators SET unsubscribed_at = NULL
               WHERE id = $1 AND EXISTS (SELECT 1 FROM creator_events
                                         WHERE inbound_id = $2 AND kind = 'opted_out')"#,
            creator_id,
            inbound_id
        )
        .execute(&mut *tx)
        .await?;
        if let Some(outreach) = msg.outreach_id {
            sqlx::query!(
                "UPDATE outreach_messages SET status = 'replied' WHERE id = $1 AND status IN ('sent', 'declined')",
                outreach
            )
            .execute(&mut *tx)
            .await?;
        }
        let target = OpenTarget {
            creator_id,
            campaign_id,
            outreach_id: msg.outreach_id,
            thread_id: msg.thread.as_deref(),
        };
        let collab = collabs::open_or_create(&mut tx, &[target]).await?.remove(0);
        let reason = format!("{} in message {inbound_id} undone by {actor}: {why}", msg.kind);
        sqlx::query!(
            r#"UPDATE inbound_messages
               SET kind = 'reply', collaboration_id = $2,
                   kind_reason = $3 || ' (was: ' || kind_reason || ')'
               WHERE id = $1"#,
            inbound_id,
            collab.id,
            reason
        )
        .execute(&mut *tx)
        .await?;
        if collab.created {
            let created =
                Created { collab_id: collab.id, reason: &reason, inbound_id: Some(inbound_id) };
            collabs::record_created(&mut tx, actor, &[created]).await?;
        }
        let change = StandingChange {
            creator_id,
            campaign_id,
            inbound_id,
            kind: "undeclined",
            reason: &reason,
        };
        record(&mut tx, actor, &[change]).await?;
        tx.commit().await?;
        Ok(Some(collab))
    }
}
