//! Opening an authenticated IMAP session over TCP, implicit TLS or STARTTLS.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

use super::{ImapError, timed};
use crate::config::{AuthMethod, MailboxSettings, TlsMode};

/// Any byte stream an IMAP session can run on (plain TCP or TLS).
pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}

/// An authenticated session, whatever the transport.
pub type Session = async_imap::Session<Box<dyn ImapStream>>;

/// What a session logs in with.
pub enum Credential {
    /// LOGIN with the mailbox's password.
    Password(String),
    /// AUTHENTICATE XOAUTH2 or OAUTHBEARER with an OAuth2 access token.
    Bearer { method: AuthMethod, token: String },
}

impl Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password(_) => f.write_str("Password(…)"),
            Credential::Bearer { method, .. } => write!(f, "Bearer({method:?}, …)"),
        }
    }
}

/// The SASL exchange of XOAUTH2 and OAUTHBEARER: the initial response carries the token;
/// a challenge after it is the server's error report, answered with an empty line so the
/// server can end the exchange with its NO.
struct BearerSasl {
    initial: Option<String>,
}

impl async_imap::Authenticator for BearerSasl {
    type Response = String;

    fn process(&mut self, _challenge: &[u8]) -> String {
        self.initial.take().unwrap_or_default()
    }
}

/// The initial client response of `method` (XOAUTH2: Google's format; OAUTHBEARER: RFC 7628).
fn bearer_response(method: AuthMethod, user: &str, host: &str, port: u16, token: &str) -> String {
    match method {
        AuthMethod::Oauthbearer => {
            format!("n,a={user},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01")
        }
        _ => format!("user={user}\x01auth=Bearer {token}\x01\x01"),
    }
}

/// Connects, negotiates TLS as configured, reads the greeting and logs in, each step
/// bounded by the mailbox timeout.
pub async fn connect(mb: &MailboxSettings, credential: &Credential) -> Result<Session, ImapError> {
    let port = mb.effective_port();
    let limit = mb.timeout;
    let tcp = tokio::time::timeout(limit, TcpStream::connect((mb.host.as_str(), port)))
        .await
        .map_err(|_| ImapError::Timeout { op: "connect", secs: limit.as_secs() })?
        .map_err(|source| ImapError::Connect { host: mb.host.clone(), port, source })?;
    tcp.set_nodelay(true).ok();

    let stream: Box<dyn ImapStream> = match mb.tls {
        TlsMode::None => Box::new(tcp),
        TlsMode::Implicit => Box::new(tls(&mb.host, tcp, limit).await?),
        TlsMode::Starttls => {
            let mut client = async_imap::Client::new(tcp);
            greeting(&mut client, limit).await?;
            timed(limit, "STARTTLS", client.run_command_and_check_ok("STARTTLS", None)).await?;
            Box::new(tls(&mb.host, client.into_inner(), limit).await?)
        }
    };
    let mut client = async_imap::Client::new(stream);
    // After STARTTLS the server sends no second greeting.
    if mb.tls != TlsMode::Starttls {
        greeting(&mut client, limit).await?;
    }
    let login = async {
        match credential {
            Credential::Password(password) => client.login(&mb.username, password).await,
            Credential::Bearer { method, token } => {
                let mechanism =
                    if *method == AuthMethod::Oauthbearer { "OAUTHBEARER" } else { "XOAUTH2" };
                let initial = bearer_response(*method, &mb.username, &mb.host, port, token);
                client.authenticate(mechanism, BearerSasl { initial: Some(initial) }).await
            }
        }
    };
    match tokio::time::timeout(limit, login).await {
        Err(_) => Err(ImapError::Timeout { op: "login", secs: limit.as_secs() }),
        Ok(Ok(session)) => Ok(session),
        Ok(Err((async_imap::error::Error::No(message), _)))
        | Ok(Err((async_imap::error::Error::Bad(message), _))) => {
            Err(ImapError::login_refused(&mb.username, message))
        }
        Ok(Err((source, _))) => Err(ImapError::Protocol { op: "login", source }),
    }
}

async fn greeting<T: ImapStream>(
    client: &mut async_imap::Client<T>,
    limit: std::time::Duration,
) -> Result<(), ImapError> {
    match tokio::time::timeout(limit, client.read_response()).await {
        Err(_) => Err(ImapError::Timeout { op: "greeting", secs: limit.as_secs() }),
        Ok(Ok(Some(_))) => Ok(()),
        Ok(Ok(None)) => Err(ImapError::Closed("greeting")),
        Ok(Err(e)) => Err(ImapError::Protocol { op: "greeting", source: e.into() }),
    }
}

async fn tls(
    host: &str,
    tcp: TcpStream,
    limit: std::time::Duration,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let err = |source| ImapError::Tls { host: host.to_owned(), source };
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let connector = TlsConnector::from(tls_config());
    tokio::time::timeout(limit, connector.connect(name, tcp))
        .await
        .map_err(|_| ImapError::Timeout { op: "TLS handshake", secs: limit.as_secs() })?
        .map_err(err)
}

/// One TLS configuration for the process: the system's trusted roots, built once.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            for e in &native.errors {
                tracing::warn!(error = %e, "could not load a system CA certificate");
            }
            let (added, _) = roots.add_parsable_certificates(native.certs);
            tracing::debug!(added, "system CA certificates loaded");
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_responses_follow_their_specs() {
        assert_eq!(
            bearer_response(AuthMethod::Xoauth2, "a@b.example", "imap.b.example", 993, "T0k"),
            "user=a@b.example\x01auth=Bearer T0k\x01\x01"
        );
        assert_eq!(
            bearer_response(AuthMethod::Oauthbearer, "a@b.example", "imap.b.example", 993, "T0k"),
            "n,a=a@b.example,\x01host=imap.b.example\x01port=993\x01auth=Bearer T0k\x01\x01"
        );
        let mut sasl = BearerSasl { initial: Some("first".into()) };
        use async_imap::Authenticator;
        assert_eq!(sasl.process(b""), "first");
        assert_eq!(
            sasl.process(b"{\"status\":\"401\"}"),
            "",
            "an error challenge gets an empty answer"
        );
        assert_eq!(format!("{:?}", Credential::Password("secret".into())), "Password(…)");
    }
}
