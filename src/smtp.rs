//! Sending outreach over SMTP with lettre. The Message-ID (and a per-thread reply token)
//! is generated here, so it can be recorded before the message leaves.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use std::sync::Arc;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::distr::{Alphanumeric, SampleString};

use crate::config::{ConfigError, SmtpSettings, TlsMode};
use crate::oauth::{OAuthError, TokenSource};

/// Why a message could not be built or sent.
#[derive(Debug, thiserror::Error)]
pub enum OutreachError {
    #[error("bad address: {0}")]
    Address(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("SMTP login: {0}")]
    OAuth(#[from] OAuthError),
}

/// Parses `"Name <addr>"` or a bare address.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, OutreachError> {
    crate::config::parse_mailbox(s).map_err(OutreachError::Address)
}

/// A message ready to send, with the identifiers recorded for matching replies.
pub struct Draft {
    pub message_id: String,
    pub token: String,
    pub reply_to: Option<String>,
    pub message: Message,
}

impl Draft {
    /// The message as it would go on the wire (for `--dry-run`).
    pub fn preview(&self) -> String {
        String::from_utf8_lossy(&self.message.formatted()).into_owned()
    }
}

/// How the mailer logs in.
#[derive(Clone)]
enum Login {
    /// A fixed transport: no login, or a password read at start.
    Fixed(AsyncSmtpTransport<Tokio1Executor>),
    /// AUTH XOAUTH2 with a current access token: a transport per message.
    OAuth { settings: Box<SmtpSettings>, user: String, tokens: Arc<TokenSource> },
}

/// The configured SMTP transport.
#[derive(Clone)]
pub struct Mailer {
    login: Login,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

fn transport_builder(
    s: &SmtpSettings,
) -> Result<lettre::transport::smtp::AsyncSmtpTransportBuilder, OutreachError> {
    let builder = match s.tls {
        TlsMode::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
        TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?,
        TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
    };
    Ok(builder.port(s.effective_port()).timeout(Some(s.timeout)))
}

impl Mailer {
    /// Builds the transport; reads the SMTP password now. `tokens` is the SMTP login's
    /// token source when `auth = "xoauth2"`.
    pub fn new(
        s: &SmtpSettings,
        tokens: Option<Arc<TokenSource>>,
    ) -> Result<Mailer, OutreachError> {
        let login = match (tokens, &s.username) {
            (Some(tokens), Some(user)) => {
                Login::OAuth { settings: Box::new(s.clone()), user: user.clone(), tokens }
            }
            _ => {
                let mut builder = transport_builder(s)?;
                if let (Some(user), Some(password)) = (&s.username, s.password()?) {
                    builder = builder.credentials(Credentials::new(user.clone(), password));
                }
                Login::Fixed(builder.build())
            }
        };
        Ok(Mailer {
            login,
            from: parse_mailbox(&s.from)?,
            reply_to: s.reply_to.as_deref().map(parse_mailbox).transpose()?,
        })
    }

    /// Composes a plain-text outreach message with a fresh Message-ID and reply token.
    pub fn draft(&self, to: &str, subject: &str, body: &str) -> Result<Draft, OutreachError> {
        let token = Alphanumeric.sample_string(&mut rand::rng(), 12).to_lowercase();
        let domain = self.from.email.domain().to_owned();
        let message_id = format!("outreach.{token}.{}@{domain}", chrono::Utc::now().timestamp());
        let reply_to = self.reply_to.as_ref().map(|r| {
            let user = r.email.user();
            let tagged = format!("{user}+{token}@{}", r.email.domain());
            Mailbox::new(
                r.name.clone(),
                tagged.parse().expect("a valid address stays valid with a +tag"),
            )
        });
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(parse_mailbox(to)?)
            .subject(subject)
            .message_id(Some(format!("<{message_id}>")))
            .header(ContentType::TEXT_PLAIN);
        if let Some(r) = &reply_to {
            builder = builder.reply_to(r.clone());
        }
        let message = builder.body(body.to_owned())?;
        Ok(Draft { message_id, token, reply_to: reply_to.map(|r| r.email.to_string()), message })
    }

    /// Hands the message to the SMTP server; Ok means the server accepted it. With OAuth2,
    /// a refused login is retried once with a freshly refreshed token.
    pub async fn send(&self, message: Message) -> Result<(), OutreachError> {
        let (settings, user, tokens) = match &self.login {
            Login::Fixed(transport) => {
                transport.send(message).await?;
                return Ok(());
            }
            Login::OAuth { settings, user, tokens } => (settings, user, tokens),
        };
        let with_token = |token: String| -> Result<_, OutreachError> {
            Ok(transport_builder(settings)?
                .credentials(Credentials::new(user.clone(), token))
                .authentication(vec![Mechanism::Xoauth2])
                .build())
        };
        match with_token(tokens.access_token().await?)?.send(message.clone()).await {
            Err(e) if is_auth_refusal(&e) => {
                tracing::warn!("SMTP refused the access token; refreshing it once");
                with_token(tokens.refreshed().await?)?.send(message).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }
}

/// Whether the server refused the login (535 and other 5xx on AUTH), as opposed to the
/// message or the connection.
fn is_auth_refusal(e: &lettre::transport::smtp::Error) -> bool {
    e.status().is_some_and(|c| c.to_string() == "535" || c.to_string() == "534")
}
