//! Mailboxes managed at run time: `settings` is a `MailboxSettings` as JSON (never with a
//! password in it); their passwords live sealed in `mailbox_passwords`. A trigger
//! NOTIFYs [`super::channels::MAILBOXES`] on every change.

use chrono::{DateTime, Utc};

use super::tokens::SealedToken;
use super::{Store, StoreError};

/// Which login of a runtime mailbox a stored password is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PasswordLogin {
    /// The IMAP login.
    Imap,
    /// Its own `smtp` identity's login.
    Smtp,
}

impl PasswordLogin {
    /// As stored in `mailbox_passwords.login`.
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordLogin::Imap => "imap",
            PasswordLogin::Smtp => "smtp",
        }
    }

    /// What the sealed password is bound to: a row copied to another mailbox or login
    /// cannot be opened there.
    pub fn context(self, mailbox: &str) -> String {
        match self {
            PasswordLogin::Imap => format!("mailbox:{mailbox}"),
            PasswordLogin::Smtp => format!("mailbox-smtp:{mailbox}"),
        }
    }
}

/// One sealed password of `mailbox_passwords`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPassword {
    pub mailbox: String,
    pub login: PasswordLogin,
    pub sealed: SealedToken,
}

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

    /// Adds a mailbox with its sealed passwords, in one transaction (so a daemon woken by
    /// the notification finds them); `None` when the name is taken.
    pub async fn insert_mailbox(
        &self,
        name: &str,
        settings: &serde_json::Value,
        passwords: &[(PasswordLogin, SealedToken)],
    ) -> Result<Option<StoredMailbox>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let row = sqlx::query_as!(
            StoredMailbox,
            r#"INSERT INTO mailboxes (name, settings) VALUES ($1, $2)
               ON CONFLICT (name) DO NOTHING
               RETURNING name, settings, paused, created_at, updated_at"#,
            name,
            settings
        )
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_none() {
            return Ok(None);
        }
        for (login, sealed) in passwords {
            sqlx::query!(
                "INSERT INTO mailbox_passwords (mailbox, login, nonce, ciphertext)
                 VALUES ($1, $2, $3, $4)",
                name,
                login.as_str(),
                sealed.nonce,
                sealed.ciphertext
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(row)
    }

    /// Every stored mailbox password, sealed, by mailbox.
    pub async fn mailbox_passwords(&self) -> Result<Vec<StoredPassword>, StoreError> {
        let rows = sqlx::query!(
            "SELECT mailbox, login, nonce, ciphertext FROM mailbox_passwords
             ORDER BY mailbox, login"
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StoredPassword {
                mailbox: r.mailbox,
                login: if r.login == "smtp" { PasswordLogin::Smtp } else { PasswordLogin::Imap },
                sealed: SealedToken { nonce: r.nonce, ciphertext: r.ciphertext },
            })
            .collect())
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
