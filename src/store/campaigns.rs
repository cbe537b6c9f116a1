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
}

impl Store {
    /// Creates a campaign; `None` when the name (case-insensitively) exists.
    pub async fn create_campaign(&self, name: &str) -> Result<Option<Campaign>, StoreError> {
        let row = sqlx::query_as!(
            Campaign,
            r#"INSERT INTO campaigns (name) VALUES ($1) ON CONFLICT DO NOTHING
               RETURNING id, name, archived_at, created_at"#,
            name
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// Every campaign, newest first.
    pub async fn list_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let rows = sqlx::query_as!(
            Campaign,
            "SELECT id, name, archived_at, created_at FROM campaigns ORDER BY id DESC"
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
            r#"SELECT id, name, archived_at, created_at FROM campaigns
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
            r#"UPDATE campaigns SET archived_at = coalesce(archived_at, now()) WHERE id = $1
               RETURNING id, name, archived_at, created_at"#,
            id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }
}
