//! Getting the first refresh token: the device-code flow (RFC 8628; Microsoft allows it for
//! mail scopes) and the authorization-code flow with PKCE and a loopback redirect (Google).
//! The daemon runs both ends that need the client secret; `collabctl mailbox authorize`
//! shows the operator where to go and relays the redirect.

use oauth2::{
    AuthorizationCode, CsrfToken, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    RequestTokenError, StandardDeviceAuthorizationResponse,
};

use super::{OAuthError, TokenSource, describe};
use crate::config::OAuthProvider;

/// What the operator is shown to approve a device authorization.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeviceStart {
    pub verification_uri: String,
    pub user_code: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// A device authorization waiting for the operator.
pub struct DevicePending(StandardDeviceAuthorizationResponse);

/// An authorization-code flow waiting for its redirect.
pub struct CodeStart {
    pub authorize_url: String,
    state: CsrfToken,
    verifier: PkceCodeVerifier,
    redirect: RedirectUrl,
}

impl TokenSource {
    /// Asks the provider for a device code.
    pub async fn start_device(&self) -> Result<(DeviceStart, DevicePending), OAuthError> {
        let client = self.client()?;
        let request = client.exchange_device_code().map_err(|_| {
            OAuthError::Config(self.config_error(
                "device_url",
                "not set: this provider offers no device flow for mail (use --flow code)".into(),
            ))
        })?;
        let details: StandardDeviceAuthorizationResponse = request
            .add_scopes(self.scopes())
            .request_async(&self.http)
            .await
            .map_err(|e| OAuthError::Temporary(describe(&e)))?;
        let start = DeviceStart {
            verification_uri: details.verification_uri().to_string(),
            user_code: details.user_code().secret().clone(),
            expires_in: details.expires_in().as_secs(),
            interval: details.interval().as_secs(),
        };
        Ok((start, DevicePending(details)))
    }

    /// Polls until the operator approved (then stores the grant), refused, or the code
    /// expired.
    pub async fn finish_device(&self, pending: DevicePending) -> Result<(), OAuthError> {
        let client = self.client()?;
        let request = client
            .exchange_device_access_token(&pending.0)
            .map_err(|e| OAuthError::Config(self.config_error("token_url", e.to_string())))?;
        match request.request_async(&self.http, tokio::time::sleep, None).await {
            Ok(response) => self.authorized(&response).await,
            Err(RequestTokenError::ServerResponse(r)) => {
                Err(OAuthError::Reauthorize(format!("device authorization ended: {}", r.error())))
            }
            Err(e) => Err(OAuthError::Temporary(describe(&e))),
        }
    }

    /// The URL to open in a browser; the provider redirects to `redirect_uri` with a code.
    pub fn start_code(&self, redirect_uri: &str) -> Result<CodeStart, OAuthError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| OAuthError::Config(self.config_error("redirect_uri", e.to_string())))?;
        let client = self.client()?.set_redirect_uri(redirect.clone());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CsrfToken::new_random)
            .map_err(|_| {
                OAuthError::Config(
                    self.config_error("auth_url", "not set (custom provider)".into()),
                )
            })?
            .add_scopes(self.scopes())
            .set_pkce_challenge(challenge);
        if self.settings.provider == OAuthProvider::Google {
            // Google returns a refresh token only for offline access, and only at consent.
            request = request
                .add_extra_param("access_type", "offline")
                .add_extra_param("prompt", "consent");
        }
        let (url, state) = request.url();
        Ok(CodeStart { authorize_url: url.to_string(), state, verifier, redirect })
    }

    /// Exchanges the code the redirect brought (with the PKCE verifier) and stores the
    /// grant.
    pub async fn finish_code(
        &self,
        start: CodeStart,
        code: &str,
        state: &str,
    ) -> Result<(), OAuthError> {
        if state != start.state.secret() {
            return Err(OAuthError::Reauthorize(
                "the redirect's state does not match this authorization: start again".into(),
            ));
        }
        let client = self.client()?.set_redirect_uri(start.redirect);
        let request = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OAuthError::Config(self.config_error("token_url", e.to_string())))?
            .set_pkce_verifier(start.verifier);
        match request.request_async(&self.http).await {
            Ok(response) => self.authorized(&response).await,
            Err(RequestTokenError::ServerResponse(r)) => {
                Err(OAuthError::Reauthorize(format!("the code was refused: {}", r.error())))
            }
            Err(e) => Err(OAuthError::Temporary(describe(&e))),
        }
    }
}
