//! The Creator Pool as ingest sees it: who owns an address, and learning new ones.

use super::{StoreError, Tx};

/// The creator an address (normalised) belongs to, as creator or manager.
pub async fn by_address(tx: &mut Tx, address: &str) -> Result<Option<i64>, StoreError> {
    let id =
        sqlx::query_scalar!("SELECT creator_id FROM creator_emails WHERE address = $1", address)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(id)
}

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

/// Records an opt-out: from one campaign, or from everything when `campaign_id` is `None`.
pub async fn unsubscribe(
    tx: &mut Tx,
    creator_id: i64,
    campaign_id: Option<i64>,
) -> Result<(), StoreError> {
    match campaign_id {
        Some(campaign_id) => {
            sqlx::query!(
                r#"INSERT INTO campaign_unsubscribes (creator_id, campaign_id) VALUES ($1, $2)
                   ON CONFLICT DO NOTHING"#,
                creator_id,
                campaign_id
            )
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query!(
                "UPDATE creators SET unsubscribed_at = coalesce(unsubscribed_at, now()) WHERE id = $1",
                creator_id
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}
