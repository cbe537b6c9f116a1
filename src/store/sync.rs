//! Per-mailbox sync state: the highest UID whose processing is committed.

use super::{Store, StoreError, Tx};

/// Where a mailbox's ingest stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    pub folder: String,
    pub uidvalidity: u32,
    pub last_uid: u32,
    pub processed: i64,
}

impl SyncState {
    /// The last committed UID, when this state describes the same folder and UIDVALIDITY;
    /// otherwise the UIDs on record mean nothing there.
    pub fn last_uid_in(&self, folder: &str, uidvalidity: u32) -> Option<u32> {
        (self.folder == folder && self.uidvalidity == uidvalidity).then_some(self.last_uid)
    }
}

/// A mailbox's committed figures, for `status`: they outlive any worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSummary {
    pub mailbox: String,
    pub uidvalidity: u32,
    pub last_uid: u32,
    pub processed: i64,
    /// When the last batch committed.
    pub last_commit: chrono::DateTime<chrono::Utc>,
}

impl Store {
    /// The committed figures of every mailbox ever synced.
    pub async fn sync_summaries(&self) -> Result<Vec<SyncSummary>, StoreError> {
        let rows = sqlx::query!(
            "SELECT mailbox, uidvalidity, last_uid, processed, updated_at FROM mailbox_sync"
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| SyncSummary {
                mailbox: r.mailbox,
                uidvalidity: r.uidvalidity as u32,
                last_uid: r.last_uid as u32,
                processed: r.processed,
                last_commit: r.updated_at,
            })
            .collect())
    }

    /// The committed state of a mailbox, if it was ever synced.
    pub async fn sync_state(&self, mailbox: &str) -> Result<Option<SyncState>, StoreError> {
        let row = sqlx::query!(
            "SELECT folder, uidvalidity, last_uid, processed FROM mailbox_sync WHERE mailbox = $1",
            mailbox
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| SyncState {
            folder: r.folder,
            uidvalidity: r.uidvalidity as u32,
            last_uid: r.last_uid as u32,
            processed: r.processed,
        }))
    }
}

/// Records that everything up to `last_uid` is done, in the same transaction as the work.
/// A new UIDVALIDITY or folder replaces the old state (the rescan that follows relies on
/// Message-ID dedupe).
pub async fn advance(
    tx: &mut Tx,
    mailbox: &str,
    folder: &str,
    uidvalidity: u32,
    last_uid: u32,
    processed: i64,
) -> Result<(), StoreError> {
    sqlx::query!(
        r#"INSERT INTO mailbox_sync (mailbox, folder, uidvalidity, last_uid, processed)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (mailbox) DO UPDATE SET
             folder = EXCLUDED.folder,
             uidvalidity = EXCLUDED.uidvalidity,
             last_uid = CASE WHEN mailbox_sync.uidvalidity = EXCLUDED.uidvalidity
                              AND mailbox_sync.folder = EXCLUDED.folder
                             THEN GREATEST(mailbox_sync.last_uid, EXCLUDED.last_uid)
                             ELSE EXCLUDED.last_uid END,
             processed = mailbox_sync.processed + EXCLUDED.processed,
             updated_at = now()"#,
        mailbox,
        folder,
        i64::from(uidvalidity),
        i64::from(last_uid),
        processed
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
