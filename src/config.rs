//! Settings: one TOML file, every key overridable as `COLLABD__SECTION__KEY`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why a configuration cannot be used; always names the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    #[error("cannot load config: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), reason: reason.into() }
    }
}

/// The whole daemon configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub database: DatabaseSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub ingest: IngestSettings,
    #[serde(default)]
    pub mailboxes: Vec<MailboxSettings>,
    /// Outgoing mail for `outreach send`; absent means sending is disabled.
    pub smtp: Option<SmtpSettings>,
}

/// The SMTP server outreach is sent through.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// The From address, e.g. `"Brand Partnerships <partners@brand.example>"`.
    pub from: String,
    /// Replies go here, with a per-thread `+token` added to the local part.
    pub reply_to: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl SmtpSettings {
    /// The port to dial: the explicit one, or the submission default for the TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        })
    }

    /// The password, read now; `None` when the server needs no login.
    pub fn password(&self) -> Result<Option<String>, ConfigError> {
        read_secret("smtp", self.password_file.as_deref(), self.password_env.as_deref(), false)
    }
}

/// Where the collaborations live.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Falls back to the `DATABASE_URL` environment variable, as sqlx tools do.
    pub url: Option<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// Server-side limit on any one statement, so a stuck lock becomes an error and a
    /// retry instead of a hang; "0s" disables it.
    #[serde(default = "default_statement_timeout", with = "humantime_serde")]
    pub statement_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            max_connections: default_max_connections(),
            statement_timeout: default_statement_timeout(),
        }
    }
}

/// The operators' Unix socket.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Group whose members may use the socket (besides root and the daemon's own user).
    pub group: Option<String>,
    /// A client that sends no request for this long is disconnected.
    #[serde(default = "default_admin_timeout", with = "humantime_serde")]
    pub read_timeout: Duration,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            socket: default_socket(),
            group: None,
            read_timeout: default_admin_timeout(),
        }
    }
}

fn default_admin_timeout() -> Duration {
    Duration::from_secs(30)
}

/// Log output shape.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
    /// An `EnvFilter` directive; `RUST_LOG` wins when set.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { format: LogFormat::default(), level: default_log_level() }
    }
}

/// `text` for people, `json` for log shippers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Knobs shared by every mailbox.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestSettings {
    /// Messages per fetch and per database transaction.
    #[serde(default = "default_batch_size")]
    pub batch_size: u32,
    /// Larger messages are recorded as skipped, never downloaded.
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    /// The brand's own addresses besides the mailbox logins: mail from them is ignored.
    #[serde(default)]
    pub own_addresses: Vec<String>,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            batch_size: default_batch_size(),
            max_message_size: default_max_message_size(),
            own_addresses: Vec::new(),
        }
    }
}

/// One IMAP mailbox to watch.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    pub name: String,
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: String,
    /// File holding the password; relative paths are looked up in `$CREDENTIALS_DIRECTORY`.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    #[serde(default = "default_folder")]
    pub folder: String,
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Longest wait between reconnect attempts (exponential backoff with jitter up to it).
    #[serde(default = "default_max_backoff", with = "humantime_serde")]
    pub max_backoff: Duration,
    /// What to do with a message once it is committed: nothing, flag it, or move it.
    #[serde(default)]
    pub post_process: PostProcess,
    /// The keyword set by `post_process = "flag"`.
    #[serde(default = "default_processed_flag")]
    pub processed_flag: String,
    /// The folder `post_process = "move"` moves to (it must exist).
    #[serde(default = "default_processed_folder")]
    pub processed_folder: String,
    /// Use IMAP IDLE when the server offers it, for replies within a second.
    #[serde(default = "default_true")]
    pub idle: bool,
    /// Bound on every single network operation (connect, login, fetch, logout).
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

/// Optional clean-up after a message is committed; off by default so collabd never
/// changes the mailbox unless asked.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PostProcess {
    #[default]
    None,
    Flag,
    Move,
}

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Implicit,
    Starttls,
    None,
}

impl MailboxSettings {
    /// The port to dial: the explicit one, or the protocol default for the TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        })
    }

    /// Reads the password now, so a fixed password file is picked up on the next attempt.
    pub fn password(&self, index: usize) -> Result<String, ConfigError> {
        let section = format!("mailboxes[{index}]");
        let secret = read_secret(
            &section,
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            true,
        )?;
        Ok(secret.unwrap_or_default())
    }
}

/// Reads a secret from a file or an environment variable, naming the key on failure.
fn read_secret(
    section: &str,
    file: Option<&Path>,
    env: Option<&str>,
    required: bool,
) -> Result<Option<String>, ConfigError> {
    let key = |k: &str| format!("{section}.{k}");
    match (file, env) {
        (Some(file), None) => {
            let path = credential_path(file);
            let raw = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::invalid(key("password_file"), format!("{}: {e}", path.display()))
            })?;
            Ok(Some(raw.trim_end_matches(['\r', '\n']).to_owned()))
        }
        (None, Some(var)) => std::env::var(var).map(Some).map_err(|_| {
            ConfigError::invalid(key("password_env"), format!("variable {var} is not set"))
        }),
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key("password_file"),
            "set either password_file or password_env, not both",
        )),
        (None, None) if required => Err(ConfigError::invalid(
            key("password_file"),
            "one of password_file or password_env is required",
        )),
        (None, None) => Ok(None),
    }
}

/// systemd's `LoadCredential=` puts secrets in `$CREDENTIALS_DIRECTORY`; relative names
/// are looked up there so the unit and the config can name the same credential.
pub fn credential_path(file: &Path) -> PathBuf {
    match std::env::var_os("CREDENTIALS_DIRECTORY") {
        Some(dir) if file.is_relative() => Path::new(&dir).join(file),
        _ => file.to_path_buf(),
    }
}

impl Settings {
    /// Loads the file, applies `COLLABD__…` overrides and validates the result.
    pub fn load(path: &Path) -> Result<Settings, ConfigError> {
        if !path.exists() {
            return Err(ConfigError::Missing(path.to_path_buf()));
        }
        let raw = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("COLLABD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?;
        let mut settings: Settings = raw.try_deserialize()?;
        if settings.database.url.is_none() {
            settings.database.url = std::env::var("DATABASE_URL").ok();
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: presence, uniqueness and readable secrets.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.database.url.as_deref().is_none_or(str::is_empty) {
            return Err(ConfigError::invalid("database.url", "not set (nor is DATABASE_URL)"));
        }
        if self.ingest.batch_size == 0 {
            return Err(ConfigError::invalid("ingest.batch_size", "must be at least 1"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, mb) in self.mailboxes.iter().enumerate() {
            if mb.name.is_empty() || !names.insert(mb.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("mailboxes[{i}].name"),
                    format!("{:?} is empty or used twice", mb.name),
                ));
            }
            if mb.poll_interval.is_zero() || mb.timeout.is_zero() || mb.max_backoff.is_zero() {
                return Err(ConfigError::invalid(
                    format!("mailboxes[{i}].poll_interval"),
                    "durations must be above zero",
                ));
            }
            mb.password(i)?;
        }
        if let Some(smtp) = &self.smtp {
            smtp.password()?;
            crate::outreach::parse_mailbox(&smtp.from)
                .map_err(|e| ConfigError::invalid("smtp.from", e.to_string()))?;
            if let Some(r) = &smtp.reply_to {
                crate::outreach::parse_mailbox(r)
                    .map_err(|e| ConfigError::invalid("smtp.reply_to", e.to_string()))?;
            }
        }
        Ok(())
    }

    /// The database URL; `validate` guarantees it is there.
    pub fn database_url(&self) -> &str {
        self.database.url.as_deref().unwrap_or_default()
    }

    /// Every address the brand sends from, normalised: mail from these is never a reply.
    pub fn own_addresses(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .mailboxes
            .iter()
            .map(|m| m.username.as_str())
            .chain(self.ingest.own_addresses.iter().map(String::as_str))
            .filter_map(crate::mail::normalize_address)
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

fn default_statement_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_backoff() -> Duration {
    Duration::from_secs(300)
}
fn default_processed_flag() -> String {
    "$CollabdProcessed".into()
}
fn default_processed_folder() -> String {
    "Processed".into()
}
fn default_true() -> bool {
    true
}
fn default_max_connections() -> u32 {
    10
}
fn default_socket() -> PathBuf {
    PathBuf::from("/run/collabd/admin.sock")
}
fn default_log_level() -> String {
    "info,sqlx=warn".into()
}
fn default_batch_size() -> u32 {
    500
}
fn default_max_message_size() -> u64 {
    25 * 1024 * 1024
}
fn default_folder() -> String {
    "INBOX".into()
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
