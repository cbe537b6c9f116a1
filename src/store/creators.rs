//! The Creator Pool as ingest sees it: who owns an address, and learning new ones.

use super::{StoreError, Tx};

/// Remembers an address that replied on a creator's thread as a learned manager address;
/// returns whether it was new.
pub async fn learn_address(
    tx: &mut Tx,
    creator_id: i64,
    address: &str,
) -> Result<bool, StoreError> {
    let added = sqlx::query!(
        r#"INSERT INTO creator_emails (creator_id, address, role, learned)
           VALUES ($1, $2, 'manager', true)
           ON CONFLICT (address) DO NOTHING"#,
        creator_id,
        address
    )
    .execute(&mut **tx)
    .await?;
    Ok(added.rows_affected() == 1)
}

/// Records opt-outs `(creator, campaign)`: from one campaign, or from everything when the
/// campaign is `None`.
pub async fn unsubscribe(tx: &mut Tx, opt_outs: &[(i64, Option<i64>)]) -> Result<(), StoreError> {
    let (everywhere, per_campaign): (Vec<_>, Vec<_>) =
        opt_outs.iter().partition(|(_, campaign)| campaign.is_none());
    if !everywhere.is_empty() {
        let ids: Vec<i64> = everywhere.iter().map(|(c, _)| *c).collect();
        sqlx::query!(
            "UPDATE creators SET unsubscribed_at = coalesce(unsubscribed_at, now()) WHERE id = ANY($1)",
            &ids
        )
        .execute(&mut **tx)
        .await?;
    }
    if !per_campaign.is_empty() {
        let (creators, campaigns): (Vec<i64>, Vec<i64>) =
            per_campaign.iter().filter_map(|(c, k)| Some((*c, (*k)?))).unzip();
        sqlx::query!(
            r#"INSERT INTO campaign_unsubscribes (creator_id, campaign_id)
               SELECT * FROM unnest($1::bigint[], $2::bigint[])
               ON CONFLICT DO NOTHING"#,
            &creators,
            &campaigns
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// A Creator Pool entry with its addresses.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Creator {
    pub id: i64,
    pub name: String,
    pub platform: String,
    pub handle: String,
    pub tags: Vec<String>,
    pub emails: Vec<CreatorEmail>,
    pub unsubscribed_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One address of a creator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct CreatorEmail {
    pub address: String,
    pub role: String,
    pub learned: bool,
}

/// A creator to add or import; addresses already normalised.
#[derive(Debug, Clone, Default)]
pub struct NewCreator {
    pub name: String,
    pub platform: String,
    pub handle: String,
    pub tags: Vec<String>,
    pub emails: Vec<String>,
    pub manager_emails: Vec<String>,
}

/// `s` as a LIKE pattern that matches only itself.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What an import did.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq, Eq)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub skipped: u64,
}

impl super::Store {
    /// Creators matching a search (name, handle or address), or all; in the order they were
    /// added (`page.after`: ids above it).
    pub async fn list_creators(
        &self,
        search: Option<&str>,
        page: super::Page,
    ) -> Result<Vec<Creator>, StoreError> {
        // `%`, `_` and `\\` in a search are themselves, not wildcards (backslash is LIKE's
        // default escape character in Postgres).
        let pattern = search.map(|s| format!("%{}%", like_literal(&s.to_lowercase())));
        let ids = sqlx::query_scalar!(
            r#"SELECT c.id FROM creators c
               WHERE ($1::text IS NULL OR lower(c.name) LIKE $1 OR lower(c.handle) LIKE $1
                  OR EXISTS (SELECT 1 FROM creator_emails e WHERE e.creator_id = c.id AND e.address LIKE $1))
                 AND ($2::bigint IS NULL OR c.id > $2)
               ORDER BY c.id
               LIMIT $3"#,
            pattern,
            page.after,
            page.limit
        )
        .fetch_all(self.pool())
        .await?;
        self.creators_by_ids(&ids).await
    }

    /// One creator by id, `platform:handle`, handle, or address.
    pub async fn find_creator(&self, key: &str) -> Result<Option<Creator>, StoreError> {
        let Some(Some(id)) = self.creator_ids(&[key]).await?.pop() else { return Ok(None) };
        Ok(self.creators_by_ids(&[id]).await?.pop())
    }

    /// The ids `find_creator` would find for each key, in one query: an import of
    /// thousands of rows needs no more. A key that names nobody is `None`, and so is a
    /// bare handle used on two platforms: ambiguous, refused rather than guessed.
    pub async fn creator_ids(&self, keys: &[&str]) -> Result<Vec<Option<i64>>, StoreError> {
        let mut ids = Vec::with_capacity(keys.len());
        let mut platforms = Vec::with_capacity(keys.len());
        let mut handles = Vec::with_capacity(keys.len());
        let mut addresses = Vec::with_capacity(keys.len());
        for key in keys {
            ids.push(key.parse::<i64>().ok());
            let (platform, handle) = match key.split_once(':') {
                Some((p, h)) => (Some(p.to_lowercase()), h.to_lowercase()),
                None => (None, key.trim_start_matches('@').to_lowercase()),
            };
            platforms.push(platform);
            handles.push(handle);
            addresses.push(crate::mail::normalize_address(key));
        }
        let found = sqlx::query_scalar!(
            r#"SELECT r.id FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[])
                   WITH ORDINALITY AS k(id, platform, handle, address, n)
               CROSS JOIN LATERAL (
                   SELECT CASE WHEN bool_or(c.id = k.id) THEN k.id
                               WHEN count(*) = 1 THEN min(c.id) END AS id
                   FROM creators c
                   WHERE c.id = k.id
                      OR (lower(c.handle) = k.handle
                          AND (k.platform IS NULL OR lower(c.platform) = k.platform))
                      OR c.id = (SELECT creator_id FROM creator_emails WHERE address = k.address)
               ) r
               ORDER BY k.n"#,
            &ids as &[Option<i64>],
            &platforms as &[Option<String>],
            &handles,
            &addresses as &[Option<String>]
        )
        .fetch_all(self.pool())
        .await?;
        Ok(found)
    }

    async fn creators_by_ids(&self, ids: &[i64]) -> Result<Vec<Creator>, StoreError> {
        let rows = sqlx::query!(
            r#"SELECT c.id, c.name, c.platform, c.handle, c.tags, c.unsubscribed_at,
                      coalesce(jsonb_agg(jsonb_build_object('address', e.address, 'role', e.role,
                               'learned', e.learned) ORDER BY e.id)
                               FILTER (WHERE e.id IS NOT NULL), '[]') AS "emails!"
               FROM creators c LEFT JOIN creator_emails e ON e.creator_id = c.id
               WHERE c.id = ANY($1)
               GROUP BY c.id
               ORDER BY array_position($1, c.id)"#,
            ids
        )
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Creator {
                    id: r.id,
                    name: r.name,
                    platform: r.platform,
                    handle: r.handle,
                    tags: r.tags,
                    unsubscribed_at: r.unsubscribed_at,
                    emails: serde_json::from_value(r.emails)
                        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                })
            })
            .collect()
    }

    /// [`upsert_creators`] in a transaction of its own.
    pub async fn upsert_creators(&self, rows: &[NewCreator]) -> Result<ImportCounts, StoreError> {
        let mut tx = self.begin().await?;
        let counts = upsert_creators(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(counts)
    }
}

/// Adds or updates creators (keyed on platform + handle, case-insensitive) and attaches
/// their addresses with set-based statements, so a 50,000-row import takes seconds. An
/// address that belongs to another creator is left there: callers check
/// [`address_owners`] first and refuse such rows.
pub async fn upsert_creators(tx: &mut Tx, rows: &[NewCreator]) -> Result<ImportCounts, StoreError> {
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let platforms: Vec<String> = rows.iter().map(|r| r.platform.to_lowercase()).collect();
    let handles: Vec<&str> = rows.iter().map(|r| r.handle.as_str()).collect();
    let tags: Vec<String> = rows.iter().map(|r| r.tags.join("\u{1f}")).collect();
    let changed = sqlx::query!(
        r#"INSERT INTO creators (name, platform, handle, tags)
           SELECT n, p, h, CASE WHEN t = '' THEN '{}' ELSE string_to_array(t, E'\x1f') END
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(n, p, h, t)
           ON CONFLICT (lower(platform), lower(handle)) DO UPDATE
             SET name = EXCLUDED.name,
                 tags = coalesce((SELECT array_agg(DISTINCT x)
                                  FROM unnest(creators.tags || EXCLUDED.tags) x), '{}'),
                 updated_at = now()
             WHERE creators.name IS DISTINCT FROM EXCLUDED.name
                OR NOT (EXCLUDED.tags <@ creators.tags)
           RETURNING id, (xmax = 0) AS "inserted!""#,
        &names as &[&str],
        &platforms,
        &handles as &[&str],
        &tags
    )
    .fetch_all(&mut **tx)
    .await?;
    let created_ids: std::collections::HashSet<i64> =
        changed.iter().filter(|r| r.inserted).map(|r| r.id).collect();
    let mut updated_ids: std::collections::HashSet<i64> =
        changed.iter().filter(|r| !r.inserted).map(|r| r.id).collect();

    let (mut e_platform, mut e_handle, mut e_addr, mut e_role) = (vec![], vec![], vec![], vec![]);
    for r in rows {
        for (list, role) in [(&r.emails, "creator"), (&r.manager_emails, "manager")] {
            for a in list {
                e_platform.push(r.platform.to_lowercase());
                e_handle.push(r.handle.to_lowercase());
                e_addr.push(a.clone());
                e_role.push(role);
            }
        }
    }
    let gained_address = sqlx::query_scalar!(
        r#"INSERT INTO creator_emails (creator_id, address, role)
           SELECT c.id, u.a, u.r
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(p, h, a, r)
           JOIN creators c ON lower(c.platform) = u.p AND lower(c.handle) = u.h
           ON CONFLICT (address) DO NOTHING
           RETURNING creator_id"#,
        &e_platform,
        &e_handle,
        &e_addr,
        &e_role as &[&str]
    )
    .fetch_all(&mut **tx)
    .await?;
    updated_ids.extend(gained_address.into_iter().filter(|id| !created_ids.contains(id)));
    let (created, updated) = (created_ids.len() as u64, updated_ids.len() as u64);
    // Rows that changed nothing, not even an address, were skipped.
    let skipped = (rows.len() as u64).saturating_sub(created + updated);
    Ok(ImportCounts { created, updated, skipped })
}

/// Who owns each of these addresses (normalised) already: `address → (creator id,
/// "platform:handle")`, seen from inside the import's transaction.
pub async fn address_owners(
    tx: &mut Tx,
    addresses: &[String],
) -> Result<std::collections::HashMap<String, (i64, String)>, StoreError> {
    if addresses.is_empty() {
        return Ok(Default::default());
    }
    let rows = sqlx::query!(
        r#"SELECT e.address, c.id, c.platform || ':' || c.handle AS "key!"
           FROM creator_emails e JOIN creators c ON c.id = e.creator_id
           WHERE e.address = ANY($1)"#,
        addresses
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.address, (r.id, r.key))).collect())
}

/// The creators owning any of `addresses` (normalised), by address: one query a batch.
pub async fn by_addresses(
    tx: &mut Tx,
    addresses: &[String],
) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    if addresses.is_empty() {
        return Ok(Default::default());
    }
    let rows = sqlx::query!(
        "SELECT address, creator_id FROM creator_emails WHERE address = ANY($1)",
        addresses
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.address, r.creator_id)).collect())
}
