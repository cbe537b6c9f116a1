//! Campaigns: what outreach and collaborations belong to.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Store, StoreError};

/// A campaign as the admin API shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Campaign {
    pub id: i64,
    pub name: String,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The mailboxes the campaign is bound to: replies arriving in any other mailbox never
    /// match its outreach. Empty: unbound, replies match in every mailbox.
    #[serde(default)]
    pub mailboxes: Vec<String>,
}

impl Store {
    /// Creates a campaign bound to `mailboxes` (none: unbound), in one transaction; `None`
    /// when the name (case-insensitively) exists.
    pub async fn create_campaign(
        &self,
        name: &str,
        mailboxes: &[String],
    ) -> Result<Option<Campaign>, StoreError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query_as!(
            Campaign,
            r#"INSERT INTO campaigns (name) VALUES ($1) ON CONFLICT DO NOTHING
               RETURNING id, name, archived_at, created_at, '{}'::text[] AS "mailboxes!""#,
            name
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(mut campaign) = row else { return Ok(None) };
        campaign.mailboxes = sqlx::query_scalar!(
            r#"INSERT INTO campaign_mailboxes (campaign_id, mailbox)
               SELECT $1, m FROM unnest($2::text[]) AS m ON CONFLICT DO NOTHING
               RETURNING mailbox"#,
            campaign.id,
            mailboxes
        )
        .fetch_all(&mut *tx)
        .await?;
        campaign.mailboxes.sort();
        tx.commit().await?;
        Ok(Some(campaign))
    }

    /// Replaces a campaign's binding with `mailboxes` (none: unbound), in one transaction;
    /// returns the campaign as stored.
    pub async fn bind_campaign(
        &self,
        id: i64,
        mailboxes: &[String],
    ) -> Result<Option<Campaign>, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query!("DELETE FROM campaign_mailboxes WHERE campaign_id = $1", id)
            .execute(&mut *tx)
            .await?;
        sqlx::query!(
            r#"INSERT INTO campaign_mailboxes (campaign_id, mailbox)
               SELECT c.id, m FROM campaigns c, unnest($2::text[]) AS m WHERE c.id = $1
               ON CONFLICT DO NOTHING"#,
            id,
            mailboxes
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.find_campaign(&id.to_string()).await
    }

    /// Every campaign, newest first.
    pub async fn list_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let rows = sqlx::query_as!(
            Campaign,
            r#"SELECT id, name, archived_at, created_at,
                      array(SELECT b.mailbox FROM campaign_mailboxes b
                            WHERE b.campaign_id = c.id ORDER BY b.mailbox) AS "mailboxes!"
               FROM campaigns c ORDER BY id DESC"#
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// A campaign by id or by name (case-insensitive).
    pub async fn find_campaign(&self, key: &str) -> Result<Option<Campaign>, StoreError> {
        let id: Option<i64> = key.parse().ok();
        let row = sqlx::query_as!(
            Campaign,
            r#"SELECT id, name, archived_at, created_at,
                      array(SELECT b.mailbox FROM campaign_mailboxes b
                            WHERE b.campaign_id = c.id ORDER BY b.mailbox) AS "mailboxes!"
               FROM campaigns c
               WHERE id = $1 OR lower(name) = lower($2)
               ORDER BY (id = $1) DESC LIMIT 1"#,
            id,
            key
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// Archives a campaign (idempotent); returns it as stored.
    pub async fn archive_campaign(&self, id: i64) -> Result<Option<Campaign>, StoreError> {
        let row = sqlx::query_as!(
            Campaign,
            r#"UPDATE campaigns c SET archived_at = coalesce(archived_at, now()) WHERE id = $1
               RETURNING id, name, archived_at, created_at,
                         array(SELECT b.mailbox FROM campaign_mailboxes b
                               WHERE b.campaign_id = c.id ORDER BY b.mailbox) AS "mailboxes!""#,
            id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }
}
