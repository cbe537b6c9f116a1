//! Sending outreach over SMTP with lettre. The Message-ID (and a per-thread reply token)
//! is generated here, so it can be recorded before the message leaves.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rand::distr::{Alphanumeric, SampleString};

use crate::config::{ConfigError, MailboxSettings, SmtpSettings, TlsMode};
use crate::oauth::{Logins, OAuthError, TokenSource};

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
        Mailer::new_in("smtp", s, tokens)
    }

    /// [`Mailer::new`] for the settings at `section` (`mailboxes[1].smtp`), which a bad
    /// password file is reported under.
    pub fn new_in(
        section: &str,
        s: &SmtpSettings,
        tokens: Option<Arc<TokenSource>>,
    ) -> Result<Mailer, OutreachError> {
        let login = match (tokens, &s.username) {
            (Some(tokens), Some(user)) => {
                Login::OAuth { settings: Box::new(s.clone()), user: user.clone(), tokens }
            }
            _ => {
                let mut builder = transport_builder(s)?;
                if let (Some(user), Some(password)) = (&s.username, s.password_in(section)?) {
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

    /// The From address its messages carry.
    pub fn from(&self) -> String {
        self.from.to_string()
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

/// Why no mailer could be picked for `outreach send`.
#[derive(Debug, thiserror::Error)]
pub enum PickError {
    /// Neither `[smtp]` nor (when one was named) the mailbox's `[mailboxes.smtp]` is set.
    #[error("no [smtp] section in the configuration{0}")]
    NotConfigured(String),
    #[error(
        "no running mailbox named {0:?} (see `collabctl mailbox list`; a paused one cannot send)"
    )]
    UnknownMailbox(String),
    /// The mailbox's SMTP settings could not be turned into a mailer (read at the last
    /// configuration change).
    #[error("mailbox {0:?} cannot send: {1}")]
    Broken(String, String),
}

/// Every SMTP identity outreach can be sent as: the default `[smtp]` and each running
/// mailbox's own (`None` for a mailbox without one: it sends through the default). The
/// daemon replaces the mailboxes' part at every configuration change (`Daemon::apply`),
/// so database mailboxes added at run time send as themselves; the default changes only
/// on restart, like the rest of `[smtp]`.
#[derive(Clone, Default)]
pub struct Mailers {
    default: Option<Mailer>,
    mailboxes: HashMap<String, Result<Option<Mailer>, String>>,
}

/// The mailers, shared by the daemon (which updates them) and the admin methods.
pub type SharedMailers = Arc<RwLock<Mailers>>;

impl Mailers {
    /// The default mailer from `[smtp]` (an error stops the start, as before) and each of
    /// `settings.mailboxes`' own. `logins` must be configured for `settings`.
    pub fn start(
        settings: &crate::config::Settings,
        logins: &Logins,
    ) -> Result<SharedMailers, OutreachError> {
        let default = settings
            .smtp
            .as_ref()
            .map(|s| Mailer::new(s, logins.get(Logins::SMTP_KEY)))
            .transpose()?;
        let mut mailers = Mailers { default, mailboxes: HashMap::new() };
        mailers.set_mailboxes(&settings.mailboxes, logins);
        Ok(Arc::new(RwLock::new(mailers)))
    }

    /// Rebuilds the mailboxes' mailers from the running mailboxes; one that cannot be
    /// built is logged and refuses to send, the others are unaffected.
    pub fn set_mailboxes(&mut self, mailboxes: &[MailboxSettings], logins: &Logins) {
        self.mailboxes = mailboxes
            .iter()
            .enumerate()
            .map(|(i, mb)| {
                let mailer = mb.smtp.as_ref().map(|s| {
                    let section = format!("mailboxes[{i}].smtp");
                    let tokens = logins.get(&Logins::mailbox_smtp_key(&mb.name));
                    Mailer::new_in(&section, s, tokens).map_err(|e| {
                        tracing::error!(mailbox = %mb.name, error = %e, "mailbox cannot send");
                        e.to_string()
                    })
                });
                (mb.name.clone(), mailer.transpose())
            })
            .collect();
    }

    /// [`Mailers::set_mailboxes`] on shared mailers: the one call `Daemon::apply` makes.
    pub fn update(shared: &SharedMailers, mailboxes: &[MailboxSettings], logins: &Logins) {
        shared.write().expect("mailers lock").set_mailboxes(mailboxes, logins);
    }

    /// The mailer for `outreach send`: the named mailbox's own, else the default.
    pub fn pick(&self, mailbox: Option<&str>) -> Result<Mailer, PickError> {
        let own = match mailbox {
            None => None,
            Some(name) => match self.mailboxes.get(name) {
                None => return Err(PickError::UnknownMailbox(name.to_owned())),
                Some(Err(e)) => return Err(PickError::Broken(name.to_owned(), e.clone())),
                Some(Ok(own)) => own.as_ref(),
            },
        };
        own.or(self.default.as_ref()).cloned().ok_or_else(|| {
            PickError::NotConfigured(
                mailbox
                    .map(|m| format!(" and mailbox {m:?} has no smtp table of its own"))
                    .unwrap_or_default(),
            )
        })
    }
}
