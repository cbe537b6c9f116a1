//! OAuth2 logins (SASL XOAUTH2 and OAUTHBEARER) for Gmail, Microsoft 365 and any server that
//! checks bearer tokens.
//!
//! A `TokenSource` per login hands out access tokens: cached until shortly before they
//! expire, refreshed with the `oauth2` crate. Refresh tokens come from Postgres first (sealed
//! with `[secrets] key_file`: Microsoft rotates them at every refresh, so the newest is kept
//! there), then from the configured file or variable. A revoked or expired grant is
//! `OAuthError::Reauthorize`: it needs `collabctl mailbox authorize`, so the worker shows it
//! in status and waits instead of retrying in a loop. Tokens never reach a log line, an
//! error message or status.

mod flows;

use std::sync::Arc;
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse};
use oauth2::{
    AuthType, AuthUrl, ClientId, ClientSecret, DeviceAuthorizationUrl, EndpointMaybeSet,
    EndpointNotSet, RefreshToken, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use tracing::{info, warn};

pub use crate::secrets::SecretKey;
pub use flows::{CodeStart, DevicePending, DeviceStart};

use crate::config::{ConfigError, OAuth2Settings, OAuthEndpoints, OAuthPurpose};
use crate::store::{Store, StoreError};

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The grant is gone (revoked, expired, never given): a person must authorize again.
    #[error("reauthorize: {0}")]
    Reauthorize(String),
    /// The token endpoint could not be reached or failed; retried with the usual backoff.
    #[error("token endpoint: {0}")]
    Temporary(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OAuthError {
    /// Whether a person has to act before a retry can succeed.
    pub fn needs_operator(&self) -> bool {
        matches!(self, OAuthError::Reauthorize(_) | OAuthError::Config(_))
    }
}

/// The client type used for every grant: endpoints set from the configuration.
type Client = BasicClient<
    EndpointMaybeSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
>;

/// An access token and when it stops being handed out.
struct Cached {
    token: String,
    until: Instant,
}

/// Access tokens for one login.
pub struct TokenSource {
    /// The key the refresh token is stored under: `mailbox:<name>`, `smtp` or
    /// `smtp:<mailbox>`.
    name: String,
    /// How the operator names it: the mailbox name, or `--smtp`.
    label: String,
    /// The configuration key of the `oauth2` table, for messages.
    section: String,
    settings: OAuth2Settings,
    endpoints: OAuthEndpoints,
    key: Arc<SecretKey>,
    store: Store,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<Cached>>,
    changed: tokio::sync::Notify,
    refreshes: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("name", &self.name).finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for mailbox `label` (or the SMTP login, `label = "--smtp"`).
    pub fn new(
        name: String,
        label: String,
        section: String,
        settings: OAuth2Settings,
        purpose: OAuthPurpose,
        key: Arc<SecretKey>,
        store: Store,
    ) -> Result<TokenSource, ConfigError> {
        let endpoints = settings.endpoints(&section, purpose)?;
        let http = reqwest::Client::builder()
            // Following redirects from a token endpoint invites SSRF (oauth2's advice).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ConfigError::Invalid { key: section.clone(), reason: e.to_string() })?;
        Ok(TokenSource {
            name,
            label,
            section,
            settings,
            endpoints,
            key,
            store,
            http,
            cache: tokio::sync::Mutex::new(None),
            changed: tokio::sync::Notify::new(),
            refreshes: 0.into(),
        })
    }

    /// The storage key (`mailbox:<name>` or `smtp`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the provider offers the device-code flow (RFC 8628) for this login.
    pub fn has_device_flow(&self) -> bool {
        self.endpoints.device_url.is_some()
    }

    /// Token refreshes made so far (for tests and status).
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A valid access token: the cached one, or a fresh one when it is near its end.
    pub async fn access_token(&self) -> Result<String, OAuthError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref().filter(|c| Instant::now() < c.until) {
            return Ok(c.token.clone());
        }
        self.refresh_locked(&mut cache).await
    }

    /// A new access token whatever the cache holds: after the server refused the cached
    /// one.
    pub async fn refreshed(&self) -> Result<String, OAuthError> {
        let mut cache = self.cache.lock().await;
        self.refresh_locked(&mut cache).await
    }

    /// Resolves when new credentials were stored (`collabctl mailbox authorize`), so a
    /// worker waiting for them can retry at once.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn client(&self) -> Result<Client, OAuthError> {
        let url_err = |key: &str, e: oauth2::url::ParseError| {
            OAuthError::Config(ConfigError::Invalid {
                key: format!("{}.{key}", self.section),
                reason: e.to_string(),
            })
        };
        let mut client = BasicClient::new(ClientId::new(self.settings.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri_option(Some(
                TokenUrl::new(self.endpoints.token_url.clone())
                    .map_err(|e| url_err("token_url", e))?,
            ))
            .set_auth_uri_option(
                self.endpoints
                    .auth_url
                    .clone()
                    .map(AuthUrl::new)
                    .transpose()
                    .map_err(|e| url_err("auth_url", e))?,
            )
            .set_device_authorization_url_option(
                self.endpoints
                    .device_url
                    .clone()
                    .map(DeviceAuthorizationUrl::new)
                    .transpose()
                    .map_err(|e| url_err("device_url", e))?,
            );
        if let Some(secret) = self.settings.client_secret(&self.section)? {
            client = client.set_client_secret(ClientSecret::new(secret));
        }
        Ok(client)
    }

    fn scopes(&self) -> Vec<Scope> {
        self.endpoints.scope.split_whitespace().map(|s| Scope::new(s.to_owned())).collect()
    }

    /// The refresh tokens to try, newest first: the stored one, then the configured one
    /// when it differs (an operator may have put a new one in the file).
    async fn refresh_candidates(&self) -> Result<Vec<(String, &'static str)>, OAuthError> {
        let mut out = Vec::new();
        if let Some(sealed) = self.store.sealed_refresh_token(&self.name).await? {
            match self.key.open(&sealed) {
                Some(token) => out.push((token, "stored")),
                None => warn!(login = %self.label,
                    "the stored refresh token cannot be decrypted with [secrets] key_file; ignoring it"),
            }
        }
        if let Some(token) = self.settings.refresh_token(&self.section)?
            && !out.iter().any(|(t, _)| *t == token)
        {
            out.push((token, "configured"));
        }
        Ok(out)
    }

    async fn refresh_locked(&self, cache: &mut Option<Cached>) -> Result<String, OAuthError> {
        *cache = None;
        let candidates = self.refresh_candidates().await?;
        if candidates.is_empty() {
            return Err(OAuthError::Reauthorize(format!(
                "no refresh token yet: run `collabctl mailbox authorize {}`",
                self.label
            )));
        }
        let client = self.client()?;
        let mut refused = Vec::new();
        for (token, origin) in candidates {
            let refresh = RefreshToken::new(token.clone());
            let request = client
                .exchange_refresh_token(&refresh)
                .map_err(|e| OAuthError::Config(self.config_error("token_url", e.to_string())))?
                .add_scopes(self.scopes());
            self.refreshes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match request.request_async(&self.http).await {
                Ok(response) => {
                    let access = self.accept(&response, Some(&token)).await?;
                    info!(login = %self.label, origin, "OAuth2 access token refreshed");
                    *cache = Some(access.1);
                    return Ok(access.0);
                }
                Err(RequestTokenError::ServerResponse(r)) if is_grant_gone(r.error()) => {
                    refused.push(format!("{origin} refresh token refused ({})", r.error()));
                }
                Err(e) => return Err(OAuthError::Temporary(describe(&e))),
            }
        }
        Err(OAuthError::Reauthorize(format!(
            "{}: run `collabctl mailbox authorize {}`",
            refused.join("; "),
            self.label
        )))
    }

    /// Keeps what a token response gives: a rotated refresh token is stored (sealed)
    /// before the access token is used, so a crash never loses the only valid one.
    async fn accept(
        &self,
        response: &BasicTokenResponse,
        used: Option<&str>,
    ) -> Result<(String, Cached), OAuthError> {
        if let Some(new) = response.refresh_token().map(|t| t.secret())
            && used != Some(new.as_str())
        {
            self.store.save_sealed_refresh_token(&self.name, &self.key.seal(new)).await?;
            info!(login = %self.label, "new refresh token stored");
        }
        let lifetime = response.expires_in().unwrap_or(Duration::from_secs(3600));
        // Refresh a little early: a fifth of the lifetime, at most a minute.
        let margin = (lifetime / 5).min(Duration::from_secs(60));
        let token = response.access_token().secret().clone();
        Ok((token.clone(), Cached { token, until: Instant::now() + lifetime - margin }))
    }

    /// Stores the result of an authorization and wakes whoever waits for it.
    async fn authorized(&self, response: &BasicTokenResponse) -> Result<(), OAuthError> {
        if response.refresh_token().is_none() {
            return Err(OAuthError::Reauthorize(
                "the provider sent no refresh token (for Microsoft, include offline_access in the scope)"
                    .into(),
            ));
        }
        let (_, cached) = self.accept(response, None).await?;
        *self.cache.lock().await = Some(cached);
        info!(login = %self.label, "authorized: refresh token stored");
        // A permit, not a broadcast: a worker between attempts still sees it.
        self.changed.notify_one();
        Ok(())
    }

    fn config_error(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::Invalid { key: format!("{}.{key}", self.section), reason }
    }
}

/// Token errors that mean the refresh token is no good any more.
fn is_grant_gone(e: &BasicErrorResponseType) -> bool {
    matches!(
        e,
        BasicErrorResponseType::InvalidGrant
            | BasicErrorResponseType::InvalidClient
            | BasicErrorResponseType::UnauthorizedClient
    )
}

/// A token request failure in words, without any token (the crate's errors carry none;
/// response bodies are left out).
fn describe<RE: std::error::Error + 'static, T: oauth2::ErrorResponse + 'static>(
    e: &RequestTokenError<RE, T>,
) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("server refused: {r}"),
        RequestTokenError::Request(e) => format!("request failed: {e}"),
        RequestTokenError::Parse(e, _) => format!("unreadable answer: {e}"),
        RequestTokenError::Other(e) => e.clone(),
    }
}

/// Where an operator's authorization of a login stands: the protocol's own answer to
/// `mailbox.authorize_status`, kept here per login.
pub use crate::admin::protocol::AuthorizeState;

/// Every OAuth2 login's token source, shared by the mailbox workers, the mailer and the
/// admin methods, with the authorizations in progress. Keyed by `TokenSource::name`.
#[derive(Default)]
pub struct Logins {
    sources: std::sync::RwLock<std::collections::HashMap<String, Arc<TokenSource>>>,
    codes: std::sync::Mutex<std::collections::HashMap<String, CodeStart>>,
    states: std::sync::Mutex<std::collections::HashMap<String, AuthorizeState>>,
}

impl Logins {
    /// The storage key of a mailbox's login.
    pub fn mailbox_key(name: &str) -> String {
        format!("mailbox:{name}")
    }

    /// The storage key of the SMTP login.
    pub const SMTP_KEY: &'static str = "smtp";

    /// The storage key of a mailbox's own SMTP login (`[mailboxes.smtp]`).
    pub fn mailbox_smtp_key(name: &str) -> String {
        format!("smtp:{name}")
    }

    /// The source of `key`, if that login uses OAuth2.
    pub fn get(&self, key: &str) -> Option<Arc<TokenSource>> {
        self.sources.read().expect("logins lock").get(key).cloned()
    }

    /// Replaces the set of sources, keeping an existing one (and its cached token) where
    /// `keep` says its settings did not change.
    pub fn set(&self, sources: Vec<Arc<TokenSource>>) {
        let mut map = self.sources.write().expect("logins lock");
        *map = sources.into_iter().map(|s| (s.name.clone(), s)).collect();
    }

    /// The source for `key` with these settings: the running one when nothing changed, so
    /// its cached access token survives a reload.
    pub fn reuse(&self, key: &str, settings: &OAuth2Settings) -> Option<Arc<TokenSource>> {
        self.get(key).filter(|s| s.settings == *settings)
    }

    /// Records where an authorization stands.
    pub fn set_state(&self, key: &str, state: AuthorizeState) {
        self.states.lock().expect("logins lock").insert(key.to_owned(), state);
    }

    /// Where the last authorization of `key` stands, if one was started.
    pub fn state(&self, key: &str) -> Option<AuthorizeState> {
        self.states.lock().expect("logins lock").get(key).cloned()
    }

    /// Keeps a code flow until its redirect comes back.
    pub fn hold_code(&self, key: &str, start: CodeStart) {
        self.codes.lock().expect("logins lock").insert(key.to_owned(), start);
    }

    /// The code flow waiting for `key`'s redirect (taken: a code is used once).
    pub fn take_code(&self, key: &str) -> Option<CodeStart> {
        self.codes.lock().expect("logins lock").remove(key)
    }
}

impl Logins {
    /// Builds a token source for every login in `settings` that uses OAuth2, reusing the
    /// running ones whose settings did not change.
    pub fn configure(
        &self,
        settings: &crate::config::Settings,
        store: &Store,
    ) -> Result<(), ConfigError> {
        let Some(key_file) = settings.secrets.key_file.as_deref().filter(|_| settings.uses_oauth())
        else {
            self.set(Vec::new());
            return Ok(());
        };
        let key = Arc::new(SecretKey::load(key_file)?);
        let mut sources = Vec::new();
        let mut add = |name: String, label: &str, section: String, o: &OAuth2Settings, purpose| {
            let source = match self.reuse(&name, o) {
                Some(s) => s,
                None => Arc::new(TokenSource::new(
                    name,
                    label.to_owned(),
                    section,
                    o.clone(),
                    purpose,
                    key.clone(),
                    store.clone(),
                )?),
            };
            sources.push(source);
            Ok::<_, ConfigError>(())
        };
        for (i, mb) in settings.mailboxes.iter().enumerate() {
            if let Some(o) = mb.oauth2.as_ref().filter(|_| mb.auth.is_oauth()) {
                let name = Logins::mailbox_key(&mb.name);
                add(name, &mb.name, format!("mailboxes[{i}].oauth2"), o, OAuthPurpose::Imap)?;
            }
            if let Some(s) = mb.smtp.as_ref().filter(|s| s.auth.is_oauth())
                && let Some(o) = &s.oauth2
            {
                let name = Logins::mailbox_smtp_key(&mb.name);
                let label = format!("{} --smtp", mb.name);
                add(name, &label, format!("mailboxes[{i}].smtp.oauth2"), o, OAuthPurpose::Smtp)?;
            }
        }
        if let Some(s) = settings.smtp.as_ref().filter(|s| s.auth.is_oauth())
            && let Some(o) = &s.oauth2
        {
            add(Logins::SMTP_KEY.into(), "--smtp", "smtp.oauth2".into(), o, OAuthPurpose::Smtp)?;
        }
        self.set(sources);
        Ok(())
    }
}
