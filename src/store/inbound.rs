//! Inbound messages: one row per (mailbox, UIDVALIDITY, UID), never two per Message-ID.

use std::collections::HashMap;

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
    pub collaboration_id: Option<i64>,
}

/// Who sent a stored message and a digest of its text: enough to tell a true copy from
/// another mail that reuses its Message-ID.
#[derive(Debug, Clone)]
pub struct StoredIdentity {
    pub id: i64,
    pub uid: i64,
    pub dedupe_key: String,
    pub from_address: Option<String>,
    /// SHA-256 (hex) of the text body; `None` when the body was not kept (over the size
    /// limit).
    pub body_sha256: Option<String>,
}

/// A message waiting for a person to decide what it is.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
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
    /// Human messages no rule could match, newest first (`page.after`: ids below it).
    pub async fn unmatched(&self, page: super::Page) -> Result<Vec<UnmatchedMessage>, StoreError> {
        let rows = sqlx::query_as!(
            UnmatchedMessage,
            r#"SELECT id, mailbox, from_address, from_name, subject, sent_date, reply_text, received_at
               FROM inbound_messages
               WHERE kind = 'unmatched' AND ($1::bigint IS NULL OR id < $1)
               ORDER BY id DESC LIMIT $2"#,
            page.after,
            page.limit
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// One message as `inbox.unmatched` shows it, if it is (still) unmatched.
    pub async fn unmatched_message(&self, id: i64) -> Result<Option<UnmatchedMessage>, StoreError> {
        let row = sqlx::query_as!(
            UnmatchedMessage,
            r#"SELECT id, mailbox, from_address, from_name, subject, sent_date, reply_text, received_at
               FROM inbound_messages WHERE id = $1 AND kind = 'unmatched'"#,
            id
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// The stored messages of `mailbox` under these dedupe keys: what a dropped duplicate
    /// is compared with.
    pub async fn stored_identities(
        &self,
        mailbox: &str,
        keys: &[&str],
    ) -> Result<Vec<StoredIdentity>, StoreError> {
        let rows = sqlx::query_as!(
            StoredIdentity,
            r#"SELECT id, uid, dedupe_key, from_address,
                      encode(sha256(convert_to(text_body, 'UTF8')), 'hex') AS body_sha256
               FROM inbound_messages WHERE mailbox = $1 AND dedupe_key = ANY($2)"#,
            mailbox,
            keys as &[&str]
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Which of these `(uid, dedupe key)` pairs are stored already, by UID or by dedupe key.
    pub async fn stored_before(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        rows: &[(u32, &str)],
    ) -> Result<Vec<u32>, StoreError> {
        let uids: Vec<i64> = rows.iter().map(|(u, _)| i64::from(*u)).collect();
        let keys: Vec<&str> = rows.iter().map(|(_, k)| *k).collect();
        let stored = sqlx::query_scalar!(
            r#"SELECT u.uid AS "uid!" FROM unnest($3::bigint[], $4::text[]) AS u(uid, key)
               WHERE EXISTS (SELECT 1 FROM inbound_messages
                             WHERE mailbox = $1 AND uidvalidity = $2 AND uid = u.uid)
                  OR EXISTS (SELECT 1 FROM inbound_messages
                             WHERE mailbox = $1 AND dedupe_key = u.key)"#,
            mailbox,
            i64::from(uidvalidity),
            &uids,
            &keys as &[&str]
        )
        .fetch_all(self.pool())
        .await?;
        Ok(stored.into_iter().map(|u| u as u32).collect())
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
        let target = super::collabs::OpenTarget {
            creator_id,
            campaign_id,
            outreach_id: None,
            thread_id: None,
        };
        let collab = super::collabs::open_or_create(&mut tx, &[target]).await?.remove(0);
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
            let created = super::collabs::Created {
                collab_id: collab.id,
                reason: &reason,
                inbound_id: Some(inbound_id),
            };
            super::collabs::record_created(&mut tx, actor, &[created]).await?;
        }
        tx.commit().await?;
        Ok(Some(collab))
    }
}

/// Tells listeners (`collabctl watch`, the web platform) of new unmatched messages with
/// a NOTIFY on [`super::channels::UNMATCHED`]; delivered only when the transaction commits.
pub async fn notify_unmatched(tx: &mut Tx, ids: &[i64]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "SELECT pg_notify($2, id::text) FROM unnest($1::bigint[]) AS u(id)",
        ids,
        super::channels::UNMATCHED
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a batch's rows in one statement and returns their ids by UID. A row stored
/// before (same UID or same dedupe key) fails the whole statement (see `is_stored_before`):
/// checking every row for a conflict cost more than the rare redo.
pub async fn insert_many(
    tx: &mut Tx,
    mailbox: &str,
    uidvalidity: u32,
    rows: &[NewInbound<'_>],
) -> Result<HashMap<u32, i64>, StoreError> {
    // Lists travel as newline-joined text (cheaper for Postgres than a JSON array per row);
    // an element never holds a newline (ids and addresses are unfolded).
    let lines =
        |v: &[String]| v.iter().map(|e| e.replace('\n', " ")).collect::<Vec<_>>().join("\n");
    let uids: Vec<i64> = rows.iter().map(|r| i64::from(r.uid)).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.dedupe_key).collect();
    let mids: Vec<Option<&str>> = rows.iter().map(|r| r.message_id).collect();
    let irt: Vec<String> = rows.iter().map(|r| lines(r.in_reply_to)).collect();
    let refs: Vec<String> = rows.iter().map(|r| lines(r.references)).collect();
    let from: Vec<Option<&str>> = rows.iter().map(|r| r.from_address).collect();
    let names: Vec<Option<&str>> = rows.iter().map(|r| r.from_name).collect();
    let to: Vec<String> = rows.iter().map(|r| lines(r.to_addresses)).collect();
    let subjects: Vec<Option<&str>> = rows.iter().map(|r| r.subject).collect();
    let dates: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        rows.iter().map(|r| r.sent_date).collect();
    let bodies: Vec<Option<&str>> = rows.iter().map(|r| r.text_body).collect();
    let replies: Vec<Option<&str>> = rows.iter().map(|r| r.reply_text).collect();
    let sizes: Vec<i64> = rows.iter().map(|r| r.size as i64).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let reasons: Vec<&str> = rows.iter().map(|r| r.kind_reason).collect();
    let rules: Vec<Option<&str>> = rows.iter().map(|r| r.match_rule).collect();
    let outreach: Vec<Option<i64>> = rows.iter().map(|r| r.outreach_id).collect();
    let creators: Vec<Option<i64>> = rows.iter().map(|r| r.creator_id).collect();
    let campaigns: Vec<Option<i64>> = rows.iter().map(|r| r.campaign_id).collect();
    let collabs: Vec<Option<i64>> = rows.iter().map(|r| r.collaboration_id).collect();
    let inserted = sqlx::query!(
        r#"INSERT INTO inbound_messages
             (mailbox, uidvalidity, uid, dedupe_key, message_id, in_reply_to, "references",
              from_address, from_name, to_addresses, subject, sent_date, text_body, reply_text,
              size, kind, kind_reason, match_rule, outreach_id, creator_id, campaign_id,
              collaboration_id)
           SELECT $1, $2, u.uid, u.key, u.mid, string_to_array(u.irt, E'\n'),
                  string_to_array(u.refs, E'\n'), u.sender, u.name,
                  string_to_array(u.rcpt, E'\n'), u.subject, u.sent, u.body, u.reply, u.size,
                  u.kind, u.reason, u.rule, u.outreach, u.creator, u.campaign, u.collab
           FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                       $9::text[], $10::text[], $11::text[], $12::timestamptz[], $13::text[],
                       $14::text[], $15::bigint[], $16::text[], $17::text[], $18::text[],
                       $19::bigint[], $20::bigint[], $21::bigint[], $22::bigint[])
                AS u(uid, key, mid, irt, refs, sender, name, rcpt, subject, sent, body, reply,
                     size, kind, reason, rule, outreach, creator, campaign, collab)
           RETURNING uid, id"#,
        mailbox,
        i64::from(uidvalidity),
        &uids,
        &keys as &[&str],
        &mids as &[Option<&str>],
        &irt,
        &refs,
        &from as &[Option<&str>],
        &names as &[Option<&str>],
        &to,
        &subjects as &[Option<&str>],
        &dates as &[Option<chrono::DateTime<chrono::Utc>>],
        &bodies as &[Option<&str>],
        &replies as &[Option<&str>],
        &sizes,
        &kinds as &[&str],
        &reasons as &[&str],
        &rules as &[Option<&str>],
        &outreach as &[Option<i64>],
        &creators as &[Option<i64>],
        &campaigns as &[Option<i64>],
        &collabs as &[Option<i64>],
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(inserted.into_iter().map(|r| (r.uid as u32, r.id)).collect())
}

/// True when `insert_many` failed because a row was stored before.
pub fn is_stored_before(e: &StoreError) -> bool {
    let StoreError::Db(sqlx::Error::Database(db)) = e else { return false };
    db.is_unique_violation() && db.table() == Some("inbound_messages")
}

/// An unmatched message as stored, with what matching and the decline reading need.
#[derive(Debug, Clone)]
pub struct StoredUnmatched {
    pub id: i64,
    pub mailbox: String,
    pub uid: i64,
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from_address: Option<String>,
    pub to_addresses: Vec<String>,
    pub subject: Option<String>,
    pub text_body: Option<String>,
    pub reply_text: Option<String>,
}

/// Locks up to `limit` messages still `unmatched`, in id order after `after_id` (and
/// received since `since`, when given). Rows another transaction holds are skipped: that
/// one is deciding them.
pub async fn lock_unmatched(
    tx: &mut Tx,
    after_id: i64,
    since: Option<chrono::DateTime<chrono::Utc>>,
    limit: i64,
) -> Result<Vec<StoredUnmatched>, StoreError> {
    let rows = sqlx::query_as!(
        StoredUnmatched,
        r#"SELECT id, mailbox, uid, message_id, in_reply_to, "references", from_address,
                  to_addresses, subject, text_body, reply_text
           FROM inbound_messages
           WHERE kind = 'unmatched' AND id > $1
             AND ($2::timestamptz IS NULL OR received_at >= $2)
           ORDER BY id
           LIMIT $3
           FOR UPDATE SKIP LOCKED"#,
        after_id,
        since,
        limit
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows)
}

/// A stored message's new kind and match.
#[derive(Debug, Clone)]
pub struct Rematched<'a> {
    pub id: i64,
    pub kind: &'a str,
    pub kind_reason: &'a str,
    pub match_rule: &'a str,
    pub outreach_id: i64,
    pub creator_id: i64,
    pub campaign_id: i64,
    pub collaboration_id: Option<i64>,
}

/// Writes the matches of messages locked by `lock_unmatched`, in one statement. Only rows
/// still `unmatched` change; returns how many did.
pub async fn set_rematched(tx: &mut Tx, rows: &[Rematched<'_>]) -> Result<u64, StoreError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let col = |f: fn(&Rematched<'_>) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let kinds: Vec<&str> = rows.iter().map(|r| r.kind).collect();
    let reasons: Vec<&str> = rows.iter().map(|r| r.kind_reason).collect();
    let rules: Vec<&str> = rows.iter().map(|r| r.match_rule).collect();
    let collabs: Vec<Option<i64>> = rows.iter().map(|r| r.collaboration_id).collect();
    let done = sqlx::query!(
        r#"UPDATE inbound_messages m
           SET kind = u.kind, kind_reason = u.reason, match_rule = u.rule,
               outreach_id = u.outreach, creator_id = u.creator, campaign_id = u.campaign,
               collaboration_id = u.collab
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                       $6::bigint[], $7::bigint[], $8::bigint[])
                AS u(id, kind, reason, rule, outreach, creator, campaign, collab)
           WHERE m.id = u.id AND m.kind = 'unmatched'"#,
        &col(|r| r.id),
        &kinds as &[&str],
        &reasons as &[&str],
        &rules as &[&str],
        &col(|r| r.outreach_id),
        &col(|r| r.creator_id),
        &col(|r| r.campaign_id),
        &collabs as &[Option<i64>],
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
