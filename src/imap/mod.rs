//! IMAP side: connecting (TLS modes, timeouts) and the per-mailbox sync worker.

mod connect;
mod worker;

pub use connect::{Credential, Session, connect};
pub use worker::{MailboxHealth, MailboxWorker, Registry};

use crate::config::ConfigError;
use crate::store::StoreError;

/// Why a mailbox session ended; decides how long the worker waits before retrying.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect { host: String, port: u16, source: std::io::Error },
    #[error("TLS with {host} failed: {source}")]
    Tls { host: String, source: std::io::Error },
    #[error("login refused for {user}: {message}")]
    Auth { user: String, message: String },
    #[error("IMAP error during {op}: {source}")]
    Protocol { op: &'static str, source: async_imap::error::Error },
    #[error("IMAP server did not answer {op} within {secs} s")]
    Timeout { op: &'static str, secs: u64 },
    #[error("server closed the connection during {0}")]
    Closed(&'static str),
    #[error("folder has no UIDVALIDITY")]
    NoUidValidity,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ImapError {
    /// Authentication and configuration problems need a person; retry them slowly.
    pub fn needs_operator(&self) -> bool {
        matches!(self, ImapError::Auth { .. } | ImapError::Config(_))
    }
}

/// Runs one IMAP operation under the mailbox's timeout.
pub(crate) async fn timed<T>(
    limit: std::time::Duration,
    op: &'static str,
    fut: impl Future<Output = Result<T, async_imap::error::Error>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(ImapError::Protocol { op, source }),
        Err(_) => Err(ImapError::Timeout { op, secs: limit.as_secs() }),
    }
}
