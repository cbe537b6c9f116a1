//! Mailboxes managed at run time: `settings` is a `MailboxSettings` as JSON. A trigger
//! NOTIFYs [`super::channels::MAILBOXES`] on every change.

use chrono::{DateTime, Utc};

use super::{Store, StoreError};

/// One row of `mailboxes`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMailbox {
    pub name: String,
    pub settings: serde_json::Value,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Every stored mailbox, by name.
    pub async fn stored_mailboxes(&self) -> Result<Vec<StoredMailbox>, StoreError> {
        let rows = sqlx::query_as!(
            StoredMailbox,
            "SELECT name, settings, paused, created_at, updated_at FROM mailboxes ORDER BY name"
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// One stored mailbox.
    pub async fn stored_mailbox(&self, name: &str) -> Result<Option<StoredMailbox>, StoreError> {
        let row = sqlx::query_as!(
            StoredMailbox,
            "SELECT name, settings, paused, created_at, updated_at FROM mailboxes WHERE name = $1",
            name
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// Adds a mailbox; `None` when the name is taken.
    pub async fn insert_mailbox(
        &self,
        name: &str,
        settings: &serde_json::Value,
    ) -> Result<Option<StoredMailbox>, StoreError> {
        let row = sqlx::query_as!(
            StoredMailbox,
            r#"INSERT INTO mailboxes (name, settings) VALUES ($1, $2)
               ON CONFLICT (name) DO NOTHING
               RETURNING name, settings, paused, created_at, updated_at"#,
            name,
            settings
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// Pauses or resumes a mailbox; `None` when there is none of that name.
    pub async fn set_mailbox_paused(
        &self,
        name: &str,
        paused: bool,
    ) -> Result<Option<StoredMailbox>, StoreError> {
        let row = sqlx::query_as!(
            StoredMailbox,
            r#"UPDATE mailboxes SET paused = $2, updated_at = now() WHERE name = $1
               RETURNING name, settings, paused, created_at, updated_at"#,
            name,
            paused
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// Removes a mailbox (its sync state and mail stay); `None` when there is none.
    pub async fn delete_mailbox(&self, name: &str) -> Result<Option<StoredMailbox>, StoreError> {
        let row = sqlx::query_as!(
            StoredMailbox,
            r#"DELETE FROM mailboxes WHERE name = $1
               RETURNING name, settings, paused, created_at, updated_at"#,
            name
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }
}
