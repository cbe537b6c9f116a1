-- Passwords of mailboxes added at run time (issue #20): collabctl reads them with the
-- operator's permissions and sends them in `mailbox.add`; the daemon stores them here,
-- sealed (ChaCha20-Poly1305 with `[secrets] key_file`, the context `mailbox:<name>` or
-- `mailbox-smtp:<name>` bound in as associated data), never in `mailboxes.settings`.
-- Removed with their mailbox.
CREATE TABLE mailbox_passwords (
    mailbox    text NOT NULL REFERENCES mailboxes (name) ON DELETE CASCADE,
    -- `imap`: the mailbox's own login; `smtp`: its `smtp` identity's
    login      text NOT NULL CHECK (login IN ('imap', 'smtp')),
    nonce      bytea NOT NULL,
    ciphertext bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox, login)
);
