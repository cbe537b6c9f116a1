//! IMAP side: connecting (TLS modes, timeouts) and the per-mailbox sync worker.

mod connect;
mod session;
mod sync;
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
    /// A definite refusal (`[AUTHENTICATIONFAILED]`, a bad password, a disabled login):
    /// only a person can fix it.
    #[error("login refused for {user}: {message}")]
    Auth { user: String, message: String },
    /// The server could not decide the login now (`[UNAVAILABLE]`: Dovecot while its auth
    /// process is unhappy); the next attempt may well succeed.
    #[error("login failed for now for {user}: {message}")]
    AuthUnavailable { user: String, message: String },
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
    /// No OAuth2 access token: the token endpoint failed, or the grant is gone.
    #[error("OAuth2: {0}")]
    OAuth(#[from] crate::oauth::OAuthError),
}

/// RFC 5530 response codes that say a login failed for a passing reason.
const TEMPORARY_CODES: [&str; 4] = ["[UNAVAILABLE]", "[SERVERBUG]", "[INUSE]", "[LIMIT]"];

impl ImapError {
    /// A `NO` or `BAD` answer to LOGIN, classified: `[UNAVAILABLE]` and its kind (or a
    /// message saying "temporary") are worth retrying soon; `[AUTHENTICATIONFAILED]`, other
    /// codes and code-less refusals are definite.
    pub fn login_refused(user: &str, message: String) -> ImapError {
        let upper = message.to_ascii_uppercase();
        let temporary = TEMPORARY_CODES.iter().any(|c| upper.contains(c))
            || (!upper.contains('[') && upper.contains("TEMPORAR"));
        let user = user.to_owned();
        if temporary {
            ImapError::AuthUnavailable { user, message }
        } else {
            ImapError::Auth { user, message }
        }
    }

    /// Definite login refusals and configuration problems need a person: they wait the
    /// full `max_backoff`. Everything else (temporary login failures, refused or reset
    /// connections, timeouts, a database outage) takes the normal backoff.
    pub fn needs_operator(&self) -> bool {
        match self {
            ImapError::Auth { .. } | ImapError::Config(_) => true,
            ImapError::OAuth(e) => e.needs_operator(),
            _ => false,
        }
    }

    /// Whether only a new OAuth2 authorization can fix this (`collabctl mailbox authorize`).
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, ImapError::OAuth(crate::oauth::OAuthError::Reauthorize(_)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(message: &str) -> ImapError {
        ImapError::login_refused("u@example.com", message.to_owned())
    }

    #[test]
    fn temporary_login_failures_take_the_normal_backoff() {
        for m in [
            "[UNAVAILABLE] Temporary authentication failure. [host:2026-11-30 10:00:00]",
            "[unavailable] try later",
            "[SERVERBUG] Internal error occurred. Refer to server log for more information.",
            "[INUSE] Mailbox is locked",
            "[LIMIT] Too many connections",
            "Temporary failure, please retry",
        ] {
            let e = refused(m);
            assert!(matches!(e, ImapError::AuthUnavailable { .. }), "{m}: {e:?}");
            assert!(!e.needs_operator(), "{m}");
        }
    }

    #[test]
    fn definite_refusals_wait_the_full_cap() {
        for m in [
            "[AUTHENTICATIONFAILED] Authentication failed.",
            "[AUTHORIZATIONFAILED] Authorization failed",
            "[EXPIRED] Password expired",
            "[CONTACTADMIN] Account disabled",
            "[PRIVACYREQUIRED] Plaintext authentication disallowed",
            // A code that names a refusal wins over a word in the text.
            "[AUTHENTICATIONFAILED] Temporary lockout after failed attempts",
            "Login failed.",
        ] {
            let e = refused(m);
            assert!(matches!(e, ImapError::Auth { .. }), "{m}: {e:?}");
            assert!(e.needs_operator(), "{m}");
        }
    }

    #[test]
    fn connection_trouble_is_never_the_operators() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let errors = [
            ImapError::Connect { host: "h".into(), port: 143, source: reset },
            ImapError::Timeout { op: "login", secs: 30 },
            ImapError::Closed("greeting"),
            ImapError::Protocol {
                op: "login",
                source: std::io::Error::from(std::io::ErrorKind::ConnectionReset).into(),
            },
        ];
        for e in errors {
            assert!(!e.needs_operator(), "{e:?}");
        }
    }
}
