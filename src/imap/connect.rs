//! Opening an authenticated IMAP session over TCP, implicit TLS or STARTTLS.

use std::fmt::Debug;
use std::sync::{Arc, OnceLock};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

use super::{ImapError, timed};
use crate::config::{MailboxSettings, TlsMode};

/// Any byte stream an IMAP session can run on (plain TCP or TLS).
pub trait ImapStream: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> ImapStream for T {}

/// An authenticated session, whatever the transport.
pub type Session = async_imap::Session<Box<dyn ImapStream>>;

/// Connects, negotiates TLS as configured, reads the greeting and logs in, each step
/// bounded by the mailbox timeout.
pub async fn connect(mb: &MailboxSettings, password: &str) -> Result<Session, ImapError> {
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
    match tokio::time::timeout(limit, client.login(&mb.username, password)).await {
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
