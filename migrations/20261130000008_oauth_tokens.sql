-- OAuth2 refresh tokens, newest first: Microsoft rotates them at every refresh, so the one
-- in the credential file is soon stale. Encrypted (ChaCha20-Poly1305) with the key in
-- `[secrets] key_file`; the database never sees a token in clear.
CREATE TABLE oauth_tokens (
    -- `mailbox:<name>` or `smtp`
    name          text PRIMARY KEY,
    nonce         bytea NOT NULL,
    refresh_token bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
