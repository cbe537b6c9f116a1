//! Instances and mailbox leases: the SQL behind `crate::cluster`. Every expiry is judged
//! by the database's clock, never an instance's.

use chrono::{DateTime, Utc};

use super::{Store, StoreError, Tx};

/// One row of `instances`, with its age by the database's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Milliseconds since the last heartbeat.
    pub heartbeat_age_ms: i64,
    /// Leases it holds that have not expired.
    pub mailboxes: i64,
}

/// One lease whose holder has not expired.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaseRow {
    pub mailbox: String,
    pub instance_id: String,
    /// The holder's expiry, which is the lease's.
    pub expires_at: DateTime<Utc>,
}

impl Store {
    /// Registers a starting instance (again, after its row was forgotten).
    pub async fn register_instance(
        &self,
        id: &str,
        host: &str,
        pid: i32,
        boot_id: &str,
        ttl_secs: f64,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"INSERT INTO instances (id, host, pid, boot_id, expires_at)
               VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
               ON CONFLICT (id) DO UPDATE
                   SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at"#,
            id,
            host,
            pid,
            boot_id,
            ttl_secs
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The instances registered from `host` since boot `boot_id`, as (id, pid).
    pub async fn instances_on_host(
        &self,
        host: &str,
        boot_id: &str,
    ) -> Result<Vec<(String, i32)>, StoreError> {
        let rows = sqlx::query!(
            "SELECT id, pid FROM instances WHERE host = $1 AND boot_id = $2",
            host,
            boot_id
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| (r.id, r.pid)).collect())
    }

    /// Removes instances and, with them, their leases: a clean stop, or instances known
    /// to be dead.
    pub async fn forget_instances(&self, ids: &[String]) -> Result<u64, StoreError> {
        let done = sqlx::query!("DELETE FROM instances WHERE id = ANY($1)", ids)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Removes instances silent for longer than `secs` (their leases expired long ago).
    pub async fn forget_silent_instances(&self, secs: f64) -> Result<u64, StoreError> {
        let done = sqlx::query!(
            "DELETE FROM instances WHERE heartbeat_at < now() - make_interval(secs => $1)",
            secs
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// The heartbeat: the instance, and with it every lease it holds, lives `ttl_secs`
    /// from now. Only the instance's own row is written, so a renewal never waits for the
    /// lease rows ingest commits hold FOR SHARE. Returns the leases it holds; `None` when
    /// the row is gone (forgotten as dead): it holds nothing and must register again.
    pub async fn heartbeat(
        &self,
        id: &str,
        ttl_secs: f64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let beat = sqlx::query!(
            r#"UPDATE instances
               SET heartbeat_at = now(), expires_at = now() + make_interval(secs => $2)
               WHERE id = $1"#,
            id,
            ttl_secs
        )
        .execute(self.pool())
        .await?;
        if beat.rows_affected() == 0 {
            return Ok(None);
        }
        let held = sqlx::query_scalar!(
            "SELECT mailbox FROM mailbox_leases WHERE instance_id = $1 ORDER BY mailbox",
            id
        )
        .fetch_all(self.pool())
        .await?;
        Ok(Some(held))
    }

    /// How many instances have not expired.
    pub async fn live_instances(&self) -> Result<i64, StoreError> {
        let n = sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM instances WHERE expires_at > now()"#
        )
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    /// Every lease whose holder has not expired.
    pub async fn live_leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query_as!(
            LeaseRow,
            r#"SELECT l.mailbox, l.instance_id, i.expires_at
               FROM mailbox_leases l JOIN instances i ON i.id = l.instance_id
               WHERE i.expires_at > now() ORDER BY l.mailbox"#
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Takes the leases of `mailboxes` that nobody holds or whose holder expired; returns
    /// the ones taken. An expired holder's lease is deleted first; that DELETE waits for an
    /// ingest commit holding the row FOR SHARE. Two instances racing for one mailbox: the
    /// primary key decides, and the loser's insert does nothing.
    pub async fn claim_leases(
        &self,
        id: &str,
        mailboxes: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query!(
            r#"DELETE FROM mailbox_leases l USING instances i
               WHERE l.mailbox = ANY($1) AND i.id = l.instance_id AND i.expires_at <= now()"#,
            mailboxes
        )
        .execute(&mut *tx)
        .await?;
        let taken = sqlx::query_scalar!(
            r#"INSERT INTO mailbox_leases (mailbox, instance_id)
               SELECT m, $1 FROM unnest($2::text[]) AS m
               ON CONFLICT (mailbox) DO NOTHING
               RETURNING mailbox"#,
            id,
            mailboxes
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(taken)
    }

    /// Gives leases up (their workers have stopped).
    pub async fn release_leases(&self, id: &str, mailboxes: &[String]) -> Result<(), StoreError> {
        sqlx::query!(
            "DELETE FROM mailbox_leases WHERE instance_id = $1 AND mailbox = ANY($2)",
            id,
            mailboxes
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The instances, newest heartbeat first, with their lease counts.
    pub async fn instances(&self) -> Result<Vec<InstanceRow>, StoreError> {
        let rows = sqlx::query_as!(
            InstanceRow,
            r#"SELECT i.id, i.host, i.pid, i.started_at, i.heartbeat_at,
                      (extract(epoch FROM now() - i.heartbeat_at) * 1000)::bigint
                          AS "heartbeat_age_ms!",
                      CASE WHEN i.expires_at > now()
                           THEN (SELECT count(*) FROM mailbox_leases l WHERE l.instance_id = i.id)
                           ELSE 0 END AS "mailboxes!"
               FROM instances i ORDER BY i.heartbeat_at DESC, i.id"#
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }
}

/// Whether `instance` holds an unexpired lease on `mailbox`, checked inside an ingest
/// transaction. The lease row is locked FOR SHARE, so a takeover (which deletes it) waits
/// until this transaction ends: a batch commits only under its holder's lease. The
/// heartbeat writes the instance's row, not this one, so it never waits for a commit.
pub async fn holds_lease(tx: &mut Tx, mailbox: &str, instance: &str) -> Result<bool, StoreError> {
    let held = sqlx::query_scalar!(
        r#"SELECT 1 AS "one!" FROM mailbox_leases l JOIN instances i ON i.id = l.instance_id
           WHERE l.mailbox = $1 AND l.instance_id = $2 AND i.expires_at > clock_timestamp()
           FOR SHARE OF l"#,
        mailbox,
        instance
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(held.is_some())
}
