//! OAuth2 refresh tokens, stored sealed (see `oauth::SecretKey`): the newest one wins.

use super::{Store, StoreError};

/// A refresh token as stored: ChaCha20-Poly1305 ciphertext and its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedToken {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl Store {
    /// The stored refresh token of a login (`mailbox:<name>` or `smtp`).
    pub async fn sealed_refresh_token(
        &self,
        name: &str,
    ) -> Result<Option<SealedToken>, StoreError> {
        let row = sqlx::query_as!(
            SealedToken,
            "SELECT nonce, refresh_token AS ciphertext FROM oauth_tokens WHERE name = $1",
            name
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row)
    }

    /// Stores (or replaces) a login's refresh token.
    pub async fn save_sealed_refresh_token(
        &self,
        name: &str,
        token: &SealedToken,
    ) -> Result<(), StoreError> {
        sqlx::query!(
            r#"INSERT INTO oauth_tokens (name, nonce, refresh_token) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE
               SET nonce = excluded.nonce, refresh_token = excluded.refresh_token, updated_at = now()"#,
            name,
            token.nonce,
            token.ciphertext
        )
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
