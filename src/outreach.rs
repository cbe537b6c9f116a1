//! Sending outreach over SMTP with lettre. The Message-ID (and a per-thread reply token)
//! is generated here, so it can be recorded before the message leaves.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::distr::{Alphanumeric, SampleString};

use crate::config::{ConfigError, SmtpSettings, TlsMode};

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
}

/// Parses `"Name <addr>"` or a bare address.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, OutreachError> {
    s.parse::<Mailbox>().map_err(|e| OutreachError::Address(format!("{s:?}: {e}")))
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

/// The configured SMTP transport.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
}

impl Mailer {
    /// Builds the transport; reads the SMTP password now.
    pub fn new(s: &SmtpSettings) -> Result<Mailer, OutreachError> {
        let builder = match s.tls {
            TlsMode::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)?,
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)?,
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
        };
        let mut builder = builder.port(s.effective_port()).timeout(Some(s.timeout));
        if let (Some(user), Some(password)) = (&s.username, s.password()?) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
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

    /// Hands the message to the SMTP server; Ok means the server accepted it.
    pub async fn send(&self, message: Message) -> Result<(), OutreachError> {
        self.transport.send(message).await?;
        Ok(())
    }
}
