//! Settings: one TOML file, every key overridable as `COLLABD__SECTION__KEY`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub use crate::secrets::credential_path;

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

impl From<crate::secrets::KeyError> for ConfigError {
    fn from(e: crate::secrets::KeyError) -> Self {
        ConfigError::invalid("secrets.key_file", e.to_string())
    }
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.into(), reason: reason.into() }
    }
}

/// A password held in memory: sent in a `mailbox.add` request, or decrypted from the
/// database for a runtime mailbox. Its `Debug` never shows it, so no log can; it is
/// serialized (collabctl sends it) only where a field opts in.
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The password itself, for the login and for sealing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
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
    #[serde(default)]
    pub secrets: SecretsSettings,
    #[serde(default)]
    pub cluster: ClusterSettings,
}

/// How instances sharing one database divide the mailboxes (see `crate::cluster`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// How long a mailbox lease lasts without renewal: the longest a dead instance's
    /// mailboxes wait for another instance (plus one heartbeat, a fifth of it).
    #[serde(default = "default_lease_ttl", with = "humantime_serde")]
    pub lease_ttl: Duration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings { lease_ttl: default_lease_ttl() }
    }
}

fn default_lease_ttl() -> Duration {
    Duration::from_secs(10)
}

/// Keys collabd keeps secrets with.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    /// 32 random bytes as 64 hex digits (`openssl rand -hex 32`), resolved like
    /// `password_file`: encrypts the OAuth2 refresh tokens stored in Postgres. Required
    /// when anything logs in with OAuth2.
    pub key_file: Option<PathBuf>,
}

/// How collabd logs in to a mailbox or to the SMTP server.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    /// LOGIN / AUTH PLAIN with `password_file` or `password_env`.
    #[default]
    Password,
    /// SASL XOAUTH2 with an OAuth2 access token (Gmail, Microsoft 365).
    Xoauth2,
    /// SASL OAUTHBEARER (RFC 7628) with an OAuth2 access token.
    Oauthbearer,
}

impl AuthMethod {
    /// Whether this method needs an `oauth2` table.
    pub fn is_oauth(self) -> bool {
        self != AuthMethod::Password
    }
}

/// Who issues the OAuth2 tokens; the presets fill in the endpoints and scope.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OAuthProvider {
    Google,
    Microsoft,
    Custom,
}

/// An OAuth2 client: where tokens come from and with which grant.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Settings {
    pub provider: OAuthProvider,
    /// The token endpoint; required for `custom`, overrides a preset otherwise.
    pub token_url: Option<String>,
    /// The authorization endpoint, for `collabctl mailbox authorize --flow code`.
    pub auth_url: Option<String>,
    /// The device authorization endpoint (RFC 8628), for `--flow device`.
    pub device_url: Option<String>,
    /// Microsoft's tenant in the preset URLs: `common` (default), `organizations` or an id.
    pub tenant: Option<String>,
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_env: Option<String>,
    /// The first refresh token; a newer one stored by collabd (after a rotation or
    /// `collabctl mailbox authorize`) is preferred over it.
    pub refresh_token_file: Option<PathBuf>,
    pub refresh_token_env: Option<String>,
    /// Space-separated scopes; the preset's when absent.
    pub scope: Option<String>,
}

/// What a login is for: the presets' scopes differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthPurpose {
    Imap,
    Smtp,
}

/// An OAuth2 client's endpoints and scope, presets applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthEndpoints {
    pub token_url: String,
    pub auth_url: Option<String>,
    pub device_url: Option<String>,
    pub scope: String,
}

impl OAuth2Settings {
    /// Endpoints and scope with the provider's preset filled in; `section` names the key
    /// at fault (`mailboxes[0].oauth2`).
    pub fn endpoints(
        &self,
        section: &str,
        purpose: OAuthPurpose,
    ) -> Result<OAuthEndpoints, ConfigError> {
        let ms = |path: &str| {
            let tenant = self.tenant.as_deref().unwrap_or("common");
            format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/{path}")
        };
        let (token, auth, device, scope) = match (self.provider, purpose) {
            (OAuthProvider::Google, _) => (
                Some("https://oauth2.googleapis.com/token".to_owned()),
                Some("https://accounts.google.com/o/oauth2/v2/auth".to_owned()),
                // Google's device flow does not grant the mail scope.
                None,
                "https://mail.google.com/",
            ),
            (OAuthProvider::Microsoft, purpose) => (
                Some(ms("token")),
                Some(ms("authorize")),
                Some(ms("devicecode")),
                match purpose {
                    OAuthPurpose::Imap => {
                        "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
                    }
                    OAuthPurpose::Smtp => "https://outlook.office.com/SMTP.Send offline_access",
                },
            ),
            (OAuthProvider::Custom, _) => (None, None, None, ""),
        };
        let token_url = self.token_url.clone().or(token).ok_or_else(|| {
            ConfigError::invalid(
                format!("{section}.token_url"),
                "required with provider = \"custom\"",
            )
        })?;
        let endpoints = OAuthEndpoints {
            token_url,
            auth_url: self.auth_url.clone().or(auth),
            device_url: self.device_url.clone().or(device),
            scope: self.scope.clone().unwrap_or_else(|| scope.to_owned()),
        };
        for (key, value) in [
            ("token_url", Some(&endpoints.token_url)),
            ("auth_url", endpoints.auth_url.as_ref()),
            ("device_url", endpoints.device_url.as_ref()),
        ] {
            if let Some(v) = value {
                url::Url::parse(v).map_err(|e| {
                    ConfigError::invalid(format!("{section}.{key}"), format!("{v:?}: {e}"))
                })?;
            }
        }
        Ok(endpoints)
    }

    /// The client secret, read now; `None` for public clients.
    pub fn client_secret(&self, section: &str) -> Result<Option<String>, ConfigError> {
        read_named_secret(
            section,
            ("client_secret_file", self.client_secret_file.as_deref()),
            ("client_secret_env", self.client_secret_env.as_deref()),
            false,
        )
    }

    /// The refresh token from the file or variable, read now; `None` when neither is set
    /// (the token then comes from `collabctl mailbox authorize`).
    pub fn refresh_token(&self, section: &str) -> Result<Option<String>, ConfigError> {
        read_named_secret(
            section,
            ("refresh_token_file", self.refresh_token_file.as_deref()),
            ("refresh_token_env", self.refresh_token_env.as_deref()),
            false,
        )
    }

    fn validate(&self, section: &str, purpose: OAuthPurpose) -> Result<(), ConfigError> {
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::invalid(format!("{section}.client_id"), "must not be empty"));
        }
        if self.tenant.is_some() && self.provider != OAuthProvider::Microsoft {
            return Err(ConfigError::invalid(
                format!("{section}.tenant"),
                "only used with provider = \"microsoft\"",
            ));
        }
        self.endpoints(section, purpose)?;
        self.client_secret(section)?;
        self.refresh_token(section)?;
        Ok(())
    }
}

/// Checks that a login's `auth`, password and `oauth2` keys fit together.
fn validate_login(
    section: &str,
    auth: AuthMethod,
    has_password: bool,
    oauth2: Option<&OAuth2Settings>,
    purpose: OAuthPurpose,
) -> Result<(), ConfigError> {
    match (auth.is_oauth(), oauth2) {
        (false, Some(_)) => Err(ConfigError::invalid(
            format!("{section}.oauth2"),
            "set only with auth = \"xoauth2\" or \"oauthbearer\"",
        )),
        (true, None) => Err(ConfigError::invalid(
            format!("{section}.oauth2"),
            format!("required with auth = \"{}\"", auth_name(auth)),
        )),
        (true, Some(_)) if has_password => Err(ConfigError::invalid(
            format!("{section}.password_file"),
            format!("not used with auth = \"{}\": the login uses OAuth2 tokens", auth_name(auth)),
        )),
        (true, Some(o)) => o.validate(&format!("{section}.oauth2"), purpose),
        (false, None) => Ok(()),
    }
}

fn auth_name(auth: AuthMethod) -> &'static str {
    match auth {
        AuthMethod::Password => "password",
        AuthMethod::Xoauth2 => "xoauth2",
        AuthMethod::Oauthbearer => "oauthbearer",
    }
}

/// The SMTP server outreach is sent through: `[smtp]`, the default, or a mailbox's own
/// `[mailboxes.smtp]` (stored with a database mailbox as part of its JSON).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: Option<String>,
    #[serde(default)]
    pub auth: AuthMethod,
    /// The password itself: only in a `mailbox.add` request (`smtp.password`) and in the
    /// daemon's memory, decrypted from the database; never in the file, never stored in
    /// the settings JSON (see `crate::confine`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    /// The OAuth2 client, with `auth = "xoauth2"`.
    pub oauth2: Option<OAuth2Settings>,
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
        self.password_in("smtp")
    }

    /// [`Self::password`], naming the key at fault under `section` (`mailboxes[1].smtp`).
    pub fn password_in(&self, section: &str) -> Result<Option<String>, ConfigError> {
        read_secret(
            section,
            self.password.as_ref(),
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            false,
        )
    }
}

/// Checks an SMTP identity as `section` (`smtp` or `mailboxes[i].smtp`): the login fits
/// together, its password is readable, and `from` and `reply_to` are addresses.
fn validate_smtp(section: &str, smtp: &SmtpSettings) -> Result<(), ConfigError> {
    let key = |k: &str| format!("{section}.{k}");
    if smtp.host.trim().is_empty() {
        return Err(ConfigError::invalid(key("host"), "must not be empty"));
    }
    if smtp.timeout.is_zero() {
        return Err(ConfigError::invalid(key("timeout"), "must be above zero"));
    }
    let has_password =
        smtp.password.is_some() || smtp.password_file.is_some() || smtp.password_env.is_some();
    if smtp.auth == AuthMethod::Oauthbearer {
        return Err(ConfigError::invalid(
            key("auth"),
            "the SMTP client speaks XOAUTH2 (which Gmail and Microsoft 365 accept), not OAUTHBEARER",
        ));
    }
    validate_login(section, smtp.auth, has_password, smtp.oauth2.as_ref(), OAuthPurpose::Smtp)?;
    if smtp.auth.is_oauth() && smtp.username.is_none() {
        return Err(ConfigError::invalid(key("username"), "required with auth = \"xoauth2\""));
    }
    if !smtp.auth.is_oauth() {
        smtp.password_in(section)?;
    }
    parse_mailbox(&smtp.from)
        .map_err(|e| ConfigError::invalid(key("from"), format!("bad address: {e}")))?;
    if let Some(r) = &smtp.reply_to {
        parse_mailbox(r)
            .map_err(|e| ConfigError::invalid(key("reply_to"), format!("bad address: {e}")))?;
    }
    Ok(())
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
    /// The only directory whose files a runtime mailbox (`collabctl mailbox add`) may name
    /// as `password_file` (or an `oauth2` secret file); relative names resolve in it.
    /// Unset: runtime mailboxes name no files. See `crate::confine`.
    pub credentials_dir: Option<PathBuf>,
    /// The prefix of the only environment variables a runtime mailbox may name as
    /// `password_env` (e.g. `COLLABD_MAILBOX_`). Unset: none.
    pub password_env_prefix: Option<String>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            socket: default_socket(),
            group: None,
            read_timeout: default_admin_timeout(),
            credentials_dir: None,
            password_env_prefix: None,
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

/// One IMAP mailbox to watch: a `[[mailboxes]]` entry of the file, or a row of the
/// `mailboxes` table (stored as this type's JSON), validated alike ([`validate_mailbox`]).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MailboxSettings {
    pub name: String,
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: String,
    /// `password`, `xoauth2` or `oauthbearer`.
    #[serde(default)]
    pub auth: AuthMethod,
    /// The OAuth2 client, with `auth = "xoauth2"` or `"oauthbearer"`.
    pub oauth2: Option<OAuth2Settings>,
    /// The password itself: only in a `mailbox.add` request and in the daemon's memory,
    /// decrypted from the database; never in the file, never stored in the settings JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File holding the password; relative paths are looked up in `$CREDENTIALS_DIRECTORY`
    /// (for a runtime mailbox: in `[admin] credentials_dir`, see `crate::confine`).
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
    /// The mailbox's own SMTP identity (`[mailboxes.smtp]`, the fields of `[smtp]`):
    /// `outreach send --mailbox` sends through it. Absent: `[smtp]` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smtp: Option<SmtpSettings>,
}

/// Optional clean-up after a message is committed; off by default so collabd never
/// changes the mailbox unless asked.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PostProcess {
    #[default]
    None,
    Flag,
    Move,
}

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
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
        self.password_in(&format!("mailboxes[{index}]"))
    }

    /// Whether its IMAP login or its own SMTP login uses OAuth2 (and so needs
    /// `[secrets] key_file`).
    pub fn uses_oauth(&self) -> bool {
        self.auth.is_oauth() || self.smtp.as_ref().is_some_and(|s| s.auth.is_oauth())
    }

    /// [`Self::password`], naming the key at fault under `section`.
    pub fn password_in(&self, section: &str) -> Result<String, ConfigError> {
        let secret = read_secret(
            section,
            self.password.as_ref(),
            self.password_file.as_deref(),
            self.password_env.as_deref(),
            true,
        )?;
        Ok(secret.unwrap_or_default())
    }
}

/// The password given inline (held in memory), or read from a file or an environment
/// variable, naming the key on failure.
fn read_secret(
    section: &str,
    inline: Option<&Secret>,
    file: Option<&Path>,
    env: Option<&str>,
    required: bool,
) -> Result<Option<String>, ConfigError> {
    let Some(secret) = inline else {
        return read_named_secret(
            section,
            ("password_file", file),
            ("password_env", env),
            required,
        );
    };
    if file.is_some() || env.is_some() {
        return Err(ConfigError::invalid(
            format!("{section}.password"),
            "set one of password, password_file or password_env",
        ));
    }
    Ok(Some(secret.expose().to_owned()))
}

/// Reads a secret from the file or the environment variable of a `(key, value)` pair.
fn read_named_secret(
    section: &str,
    (file_key, file): (&str, Option<&Path>),
    (env_key, env): (&str, Option<&str>),
    required: bool,
) -> Result<Option<String>, ConfigError> {
    let key = |k: &str| format!("{section}.{k}");
    match (file, env) {
        (Some(file), None) => {
            let path = credential_path(file);
            let raw = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::invalid(key(file_key), format!("{}: {e}", path.display()))
            })?;
            Ok(Some(raw.trim_end_matches(['\r', '\n']).to_owned()))
        }
        (None, Some(var)) => std::env::var(var)
            .map(Some)
            .map_err(|_| ConfigError::invalid(key(env_key), format!("variable {var} is not set"))),
        (Some(_), Some(_)) => Err(ConfigError::invalid(
            key(file_key),
            format!("set either {file_key} or {env_key}, not both"),
        )),
        (None, None) if required => Err(ConfigError::invalid(
            key(file_key),
            format!("one of {file_key} or {env_key} is required"),
        )),
        (None, None) => Ok(None),
    }
}

/// Checks one mailbox as `[[mailboxes]]` entry `index` (the key at fault is named
/// `mailboxes[index]…`): a name, durations above zero, a complete login and a readable
/// password, and its own SMTP identity checked as `[smtp]` is (`mailboxes[index].smtp…`).
/// Shared by the file and by `collabctl mailbox add`.
pub fn validate_mailbox(index: usize, mb: &MailboxSettings) -> Result<(), ConfigError> {
    let section = format!("mailboxes[{index}]");
    if mb.name.trim().is_empty() || mb.name.chars().any(char::is_control) {
        return Err(ConfigError::invalid(
            format!("{section}.name"),
            format!("{:?} is empty or used twice", mb.name),
        ));
    }
    if mb.host.trim().is_empty() {
        return Err(ConfigError::invalid(format!("{section}.host"), "must not be empty"));
    }
    if mb.poll_interval.is_zero() || mb.timeout.is_zero() || mb.max_backoff.is_zero() {
        return Err(ConfigError::invalid(
            format!("{section}.poll_interval"),
            "durations must be above zero",
        ));
    }
    let has_password =
        mb.password.is_some() || mb.password_file.is_some() || mb.password_env.is_some();
    validate_login(&section, mb.auth, has_password, mb.oauth2.as_ref(), OAuthPurpose::Imap)?;
    if !mb.auth.is_oauth() {
        mb.password(index)?;
    }
    if let Some(smtp) = &mb.smtp {
        validate_smtp(&format!("{section}.smtp"), smtp)?;
    }
    Ok(())
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
        let ttl = self.cluster.lease_ttl;
        if ttl < Duration::from_secs(2) || ttl > Duration::from_secs(600) {
            return Err(ConfigError::invalid(
                "cluster.lease_ttl",
                "must be between 2s and 10m (a fifth of it is the heartbeat)",
            ));
        }
        self.validate_admin()?;
        let mut names = std::collections::HashSet::new();
        for (i, mb) in self.mailboxes.iter().enumerate() {
            let inline =
                mb.password.is_some() || mb.smtp.as_ref().is_some_and(|s| s.password.is_some());
            if inline {
                let key = match mb.password {
                    Some(_) => format!("mailboxes[{i}].password"),
                    None => format!("mailboxes[{i}].smtp.password"),
                };
                return Err(no_inline_password(key));
            }
            if !names.insert(mb.name.as_str()) {
                return Err(ConfigError::invalid(
                    format!("mailboxes[{i}].name"),
                    format!("{:?} is empty or used twice", mb.name),
                ));
            }
            validate_mailbox(i, mb)?;
        }
        if let Some(smtp) = &self.smtp {
            if smtp.password.is_some() {
                return Err(no_inline_password("smtp.password".into()));
            }
            validate_smtp("smtp", smtp)?;
        }
        match (&self.secrets.key_file, self.uses_oauth()) {
            (None, true) => {
                return Err(ConfigError::invalid(
                    "secrets.key_file",
                    "required when a mailbox or [smtp] uses OAuth2: it encrypts the stored refresh tokens",
                ));
            }
            (Some(file), _) => {
                crate::secrets::SecretKey::load(file)?;
            }
            (None, false) => {}
        }
        Ok(())
    }

    /// `[admin] credentials_dir` is an absolute directory, the env prefix not empty.
    fn validate_admin(&self) -> Result<(), ConfigError> {
        if let Some(dir) = &self.admin.credentials_dir {
            if !dir.is_absolute() {
                return Err(ConfigError::invalid(
                    "admin.credentials_dir",
                    format!("{}: must be an absolute path", dir.display()),
                ));
            }
            if !dir.is_dir() {
                return Err(ConfigError::invalid(
                    "admin.credentials_dir",
                    format!("{}: not a directory", dir.display()),
                ));
            }
        }
        if self.admin.password_env_prefix.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(ConfigError::invalid(
                "admin.password_env_prefix",
                "must not be empty (an empty prefix would allow every variable)",
            ));
        }
        Ok(())
    }

    /// Whether any login uses OAuth2 (and so needs `[secrets] key_file`).
    pub fn uses_oauth(&self) -> bool {
        self.mailboxes.iter().any(MailboxSettings::uses_oauth)
            || self.smtp.as_ref().is_some_and(|s| s.auth.is_oauth())
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

/// The refusal of a password written into the config file itself.
fn no_inline_password(key: String) -> ConfigError {
    ConfigError::invalid(
        key,
        "passwords never sit in the config file: name a password_file (or password_env)",
    )
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

/// Parses `"Name <addr>"` or a bare address (`[smtp] from`, `reply_to`); the error names
/// the text and what is wrong with it.
pub fn parse_mailbox(s: &str) -> Result<lettre::message::Mailbox, String> {
    s.parse::<lettre::message::Mailbox>().map_err(|e| format!("{s:?}: {e}"))
}
