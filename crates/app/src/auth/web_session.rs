//! Browser sessions for the web app: a session cookie (HttpOnly, SameSite=Lax) carrying a signed
//! token bound to the same server-side session as API tokens (so signing out, revocation and
//! password changes end it too), and a CSRF token derived from the session for unsafe requests.

use std::net::IpAddr;

use domain::time::now_ms;
use domain::{SessionId, UserId};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::auth::AccessClaims;
use crate::{App, AppError, ttl_ms};

/// The cookie the web app's session travels in.
pub const SESSION_COOKIE: &str = "ef_session";
/// The header (or `_csrf` form field) unsafe cookie-authenticated requests must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The cookie's value.
    pub token: String,
    pub csrf: String,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// Lifetime of the cookie, seconds.
    pub max_age_secs: i64,
}

#[derive(Serialize)]
struct CsrfClaims {
    csrf: SessionId,
}

impl App {
    /// Signs a person in for the browser: the same checks (limits, verification) as the API.
    pub async fn web_login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<WebSession, AppError> {
        let r = self.login(email, password, ip, user_agent).await?;
        Ok(self.web_session(r.user_id, r.session_id))
    }

    fn web_session(&self, user_id: UserId, session_id: SessionId) -> WebSession {
        let ttl = self.inner.config.refresh_token_ttl;
        let exp = now_ms() + ttl_ms(ttl);
        let token = self.inner.signer.sign(&AccessClaims { sub: user_id, sid: session_id, exp });
        WebSession {
            token,
            csrf: self.csrf_token(session_id),
            user_id,
            session_id,
            max_age_secs: ttl.as_secs() as i64,
        }
    }

    /// Whether cookies must be `Secure` (the app is served over HTTPS).
    pub fn cookies_secure(&self) -> bool {
        self.inner.config.public_url.starts_with("https://")
    }

    /// The CSRF token of a session: a MAC of its id, so nothing needs storing.
    pub fn csrf_token(&self, session: SessionId) -> String {
        let mac = self.inner.signer.sign(&CsrfClaims { csrf: session });
        let digest = Sha256::digest(mac.as_bytes());
        hex::encode(&digest[..16])
    }

    /// Whether `presented` is the CSRF token of `session` (constant time).
    pub fn csrf_matches(&self, session: SessionId, presented: &str) -> bool {
        vault::token::constant_time_eq(&self.csrf_token(session), presented)
    }
}
