//! OAuth2 as a client: the authorization URL (code flow, PKCE S256, `state`), the code
//! exchange, refresh and RFC 7009 revocation with `client_secret_post`, and the userinfo read.
//! Token endpoint errors keep the provider's `error` and `error_description` (never a token).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fetch::{ApiRequest, FetchError, GuardedClient, Method};
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::retry;

/// A provider's endpoints and the operator's client credentials.
#[derive(Clone)]
pub struct OAuthEndpoints {
    pub authorize_url: String,
    pub token_url: String,
    pub revoke_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for OAuthEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthEndpoints")
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A PKCE pair: the verifier stays with us (sealed), the challenge goes in the URL.
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    /// 32 random bytes as the verifier (43 characters), its SHA-256 as the S256 challenge.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = challenge_of(&verifier);
        Self { verifier, challenge }
    }
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random opaque value (32 bytes, URL-safe) for `state`.
pub fn random_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the token endpoint granted.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSet {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Seconds from now, when the provider said.
    pub expires_in: Option<i64>,
    /// Granted scopes, space separated, when the provider said.
    pub scope: Option<String>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"<redacted>")
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "<redacted>"))
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish()
    }
}

/// Why an OAuth2 call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OAuthError {
    #[error("the provider could not be reached: {0}")]
    Transport(#[from] FetchError),
    /// The provider refused (`invalid_grant`: the code or refresh token is not valid).
    #[error("the provider refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected { status: u16, error: String, description: Option<String> },
    #[error("the provider's answer was not understood: {0}")]
    Invalid(String),
}

impl OAuthError {
    /// Whether the grant itself is dead (reconnecting is the only cure), as opposed to the
    /// provider being down.
    pub fn is_grant_revoked(&self) -> bool {
        matches!(self, OAuthError::Rejected { status, .. } if *status < 500)
    }
}

/// An OAuth2 client for one provider.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    pub endpoints: OAuthEndpoints,
    http: GuardedClient,
}

impl OAuthClient {
    pub fn new(endpoints: OAuthEndpoints, http: GuardedClient) -> Self {
        Self { endpoints, http }
    }

    /// Where to send the person's browser.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        scopes: &[String],
        state: &str,
        challenge: &str,
    ) -> Result<String, OAuthError> {
        let mut url = url::Url::parse(&self.endpoints.authorize_url)
            .map_err(|_| OAuthError::Invalid("the authorize URL does not parse".into()))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.endpoints.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", state)
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(" "));
            }
            // Refresh tokens from Google need both of these.
            q.append_pair("access_type", "offline").append_pair("prompt", "consent");
        }
        Ok(url.into())
    }

    /// Trades the code (and the PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<TokenSet, OAuthError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// A fresh access token for a refresh token (the answer may rotate the refresh token).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, OAuthError> {
        self.token_request(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
            .await
    }

    /// RFC 7009: asks the provider to forget a token. `Ok(false)` when it has no endpoint.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<bool, OAuthError> {
        let Some(url) = &self.endpoints.revoke_url else { return Ok(false) };
        let e = &self.endpoints;
        let request = ApiRequest::new(Method::POST, url).form(&[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", &e.client_id),
            ("client_secret", &e.client_secret),
        ]);
        let r = retry::send(&self.http, &request).await?;
        // RFC 7009 §2.2: 200 even for an unknown token; anything else is the provider's error.
        if r.is_success() { Ok(true) } else { Err(rejection(r.status, &r.json())) }
    }

    /// The connected account as the provider describes it (OIDC userinfo or the vendor's
    /// equivalent); `Null` when the provider has no such endpoint.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, OAuthError> {
        let Some(url) = &self.endpoints.userinfo_url else { return Ok(Value::Null) };
        let request = ApiRequest::new(Method::GET, url)
            .bearer(access_token)
            .header("accept", "application/json");
        let r = retry::send(&self.http, &request).await?;
        if !r.is_success() {
            return Err(rejection(r.status, &r.json()));
        }
        Ok(r.json())
    }

    async fn token_request(&self, grant: &[(&str, &str)]) -> Result<TokenSet, OAuthError> {
        let e = &self.endpoints;
        let mut form: Vec<(&str, &str)> = grant.to_vec();
        form.push(("client_id", &e.client_id));
        form.push(("client_secret", &e.client_secret));
        let request = ApiRequest::new(Method::POST, &e.token_url)
            .header("accept", "application/json")
            .form(&form);
        let r = retry::send(&self.http, &request).await?;
        let body = r.json();
        // Slack answers 200 with `ok: false` for a refused grant.
        if !r.is_success() || body.get("ok") == Some(&Value::Bool(false)) {
            return Err(rejection(if r.is_success() { 400 } else { r.status }, &body));
        }
        parse_tokens(&body)
    }
}

fn rejection(status: u16, body: &Value) -> OAuthError {
    let error = body
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(|| format!("HTTP {status}"), str::to_string);
    let description = body.get("error_description").and_then(Value::as_str).map(str::to_string);
    OAuthError::Rejected { status, error, description }
}

fn parse_tokens(body: &Value) -> Result<TokenSet, OAuthError> {
    let access_token = body
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::Invalid("no access_token in the token response".into()))?
        .to_string();
    let expires_in = match body.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    Ok(TokenSet {
        access_token,
        refresh_token: body.get("refresh_token").and_then(Value::as_str).map(str::to_string),
        expires_in,
        scope: body.get("scope").and_then(Value::as_str).map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_challenge_is_rfc_7636s_example() {
        // RFC 7636 Appendix B.
        assert_eq!(
            challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let p = Pkce::generate();
        assert_eq!(p.verifier.len(), 43);
        assert_eq!(challenge_of(&p.verifier), p.challenge);
    }

    #[test]
    fn token_responses_parse_with_string_or_number_expiry() {
        let t =
            parse_tokens(&serde_json::json!({"access_token": "a", "expires_in": "3600"})).unwrap();
        assert_eq!(t.expires_in, Some(3600));
        let t = parse_tokens(
            &serde_json::json!({"access_token": "a", "expires_in": 60, "refresh_token": "r"}),
        )
        .unwrap();
        assert_eq!((t.expires_in, t.refresh_token.as_deref()), (Some(60), Some("r")));
        assert!(parse_tokens(&serde_json::json!({"token_type": "bearer"})).is_err());
        assert!(!format!("{t:?}").contains("\"a\""));
    }
}
