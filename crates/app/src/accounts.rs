//! Registration, email verification, sign-in, sessions, passwords.

use std::net::IpAddr;

use domain::time::now_ms;
use domain::{Email, Password, SessionId, TextError, UserId, WorkspaceId};
use serde::Serialize;
use store::{
    EmailPurpose, MembershipSummary, NewAuditEvent, NewUser, NewWorkspace, RefreshOutcome,
    StoreError, User,
};
use vault::token;

use crate::auth::AccessClaims;
use crate::mail::Mail;
use crate::{App, AppError, FieldError, ttl_ms};

/// Input of `POST /auth/register`.
#[derive(Debug, Clone)]
pub struct RegisterInput {
    pub email: String,
    pub password: String,
    pub name: String,
    pub company_name: String,
}

/// Tokens handed to a client that signed in.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// When the access token expires, epoch milliseconds.
    pub expires_at: i64,
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct LoginResult {
    pub tokens: TokenPair,
    pub user_id: UserId,
    pub session_id: SessionId,
}

/// The signed-in user and their workspaces.
#[derive(Debug, Clone, Serialize)]
pub struct Me {
    pub user: User,
    pub workspaces: Vec<MembershipSummary>,
}

pub(crate) fn text_error(path: &str, e: TextError) -> FieldError {
    let code = match e {
        TextError::InvalidEmail => "invalid_email",
        TextError::PasswordTooShort => "password_too_short",
        TextError::PasswordTooLong => "password_too_long",
        TextError::PasswordNeedsUppercase => "password_needs_uppercase",
        TextError::PasswordNeedsDigit => "password_needs_digit",
        TextError::InvalidSlug => "invalid_slug",
    };
    FieldError::new(path, code, e.to_string())
}

pub(crate) fn required_text(
    path: &str,
    value: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> String {
    let v = value.trim();
    if v.is_empty() {
        errors.push(FieldError::new(path, "required", "is required"));
    } else if v.chars().count() > max {
        errors.push(FieldError::new(path, "too_long", format!("must be at most {max} characters")));
    }
    v.to_owned()
}

async fn hash_password(password: Password) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || vault::password::hash(password.expose()))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(Into::into)
}

async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || vault::password::verify(&password, &hash))
        .await
        .unwrap_or(false)
}

impl App {
    pub(crate) async fn audit(&self, event: NewAuditEvent) {
        if let Err(e) = self.inner.store.record_audit(&event, now_ms()).await {
            tracing::error!(error = %e, action = event.action, "could not write audit event");
        }
    }

    /// Creates the user and their workspace (as owner, on the default plan), and emails a
    /// verification link.
    pub async fn register(
        &self,
        input: RegisterInput,
        ip: Option<IpAddr>,
    ) -> Result<User, AppError> {
        let mut errors = Vec::new();
        let email =
            Email::parse(&input.email).map_err(|e| errors.push(text_error("/email", e))).ok();
        let password = Password::parse(&input.password)
            .map_err(|e| errors.push(text_error("/password", e)))
            .ok();
        let name = required_text("/name", &input.name, 200, &mut errors);
        let company = required_text("/company_name", &input.company_name, 200, &mut errors);
        let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
            return Err(AppError::Validation(errors));
        };
        let hash = hash_password(password).await?;
        let user = NewUser {
            id: UserId::new(),
            email,
            name,
            password_hash: hash,
            verified: false,
            is_operator: false,
        };
        let ws = NewWorkspace {
            id: WorkspaceId::new(),
            name: company,
            plan: self.inner.config.default_plan.clone(),
        };
        let row =
            self.inner.store.create_user(&user, Some(&ws), now_ms()).await.map_err(
                |e| match e {
                    StoreError::Conflict(_) => AppError::field(
                        "/email",
                        "email_taken",
                        "an account with this email already exists",
                    ),
                    other => other.into(),
                },
            )?;
        self.audit(NewAuditEvent {
            workspace_id: Some(ws.id),
            actor_user_id: Some(row.id),
            actor_key_id: None,
            action: "user.registered",
            target: Some(row.id.to_string()),
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({}),
        })
        .await;
        self.send_verification(&row).await?;
        Ok(row)
    }

    async fn send_verification(&self, user: &User) -> Result<(), AppError> {
        let secret = token::generate("");
        let now = now_ms();
        self.inner
            .store
            .insert_email_token(
                user.id,
                EmailPurpose::Verify,
                &token::digest(&secret),
                now + ttl_ms(self.inner.config.verification_ttl),
                now,
            )
            .await?;
        let link = format!("{}/verify-email?token={secret}", self.inner.config.public_url);
        self.send_mail(Mail {
            to: user.email.clone(),
            subject: "Verify your EchoForge email".into(),
            body: format!(
                "Hello {},\n\nConfirm your email address to start using EchoForge:\n\n{link}\n\nThe link is valid for 24 hours. Verification token: {secret}\n\nIf you did not sign up, ignore this message.\n",
                user.name
            ),
            link: Some(link),
        })
        .await
    }

    /// Uses a verification token.
    pub async fn verify_email(&self, secret: &str) -> Result<(), AppError> {
        let user = self
            .inner
            .store
            .consume_email_token(EmailPurpose::Verify, &token::digest(secret.trim()), now_ms())
            .await?
            .ok_or_else(|| {
                AppError::bad_request(
                    "invalid_token",
                    "this verification link is invalid, used or expired; ask for a new one",
                )
            })?;
        self.inner.store.mark_email_verified(user, now_ms()).await?;
        Ok(())
    }

    /// Sends a new verification link if the address belongs to an unverified account. Says
    /// nothing either way, so it cannot be used to discover accounts.
    pub async fn resend_verification(&self, email: &str) -> Result<(), AppError> {
        let Ok(email) = Email::parse(email) else {
            return Err(AppError::field("/email", "invalid_email", "is not a valid email address"));
        };
        if let Some(user) = self.inner.store.find_user_by_email(&email).await?
            && !user.is_verified()
        {
            self.send_verification(&user).await?;
        }
        Ok(())
    }

    /// Signs in. Failures are counted per account and per IP; past the limits the answer is
    /// 429 with a retry time, whatever the password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> Result<LoginResult, AppError> {
        let account_key = email.trim().to_lowercase();
        let ip_key = ip.map(|i| i.to_string()).unwrap_or_default();
        for (limiter, key) in
            [(&self.inner.account_failures, &account_key), (&self.inner.ip_failures, &ip_key)]
        {
            if let Err(retry_after_secs) = limiter.check(key) {
                return Err(AppError::RateLimited { retry_after_secs });
            }
        }
        let user = match Email::parse(email) {
            Ok(e) => self.inner.store.find_user_by_email(&e).await?,
            Err(_) => None,
        };
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| vault::password::dummy_hash().to_owned());
        let ok = verify_password(password.to_owned(), hash).await && user.is_some();
        let Some(user) = user.filter(|_| ok) else {
            self.inner.account_failures.record_failure(&account_key);
            self.inner.ip_failures.record_failure(&ip_key);
            self.audit(NewAuditEvent {
                workspace_id: None,
                actor_user_id: None,
                actor_key_id: None,
                action: "login.failed",
                target: Some(account_key.clone()),
                ip: ip.map(|i| i.to_string()),
                detail: serde_json::json!({}),
            })
            .await;
            return Err(AppError::unauthorized(
                "invalid_credentials",
                "email or password is incorrect",
            ));
        };
        self.inner.account_failures.reset(&account_key);
        if !user.is_verified() {
            return Err(AppError::forbidden(
                "email_not_verified",
                "verify your email address first; we can send the link again",
            ));
        }
        let session_id = SessionId::new();
        let refresh = token::generate("rt_");
        let now = now_ms();
        self.inner
            .store
            .create_session(
                session_id,
                user.id,
                &token::digest(&refresh),
                ip.map(|i| i.to_string()).as_deref(),
                user_agent,
                now + ttl_ms(self.inner.config.refresh_token_ttl),
                now,
            )
            .await?;
        let workspaces = self.memberships(user.id).await?;
        for ws in workspaces.iter() {
            self.audit(NewAuditEvent {
                workspace_id: Some(ws.workspace_id),
                actor_user_id: Some(user.id),
                actor_key_id: None,
                action: "login.succeeded",
                target: Some(user.id.to_string()),
                ip: ip.map(|i| i.to_string()),
                detail: serde_json::json!({"session_id": session_id}),
            })
            .await;
        }
        Ok(LoginResult {
            tokens: self.issue_tokens(user.id, session_id, refresh),
            user_id: user.id,
            session_id,
        })
    }

    fn issue_tokens(&self, user: UserId, session: SessionId, refresh: String) -> TokenPair {
        let exp = now_ms() + ttl_ms(self.inner.config.access_token_ttl);
        let access = self.inner.signer.sign(&AccessClaims { sub: user, sid: session, exp });
        TokenPair {
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_at: exp,
        }
    }

    /// Rotates a refresh token. Replaying a rotated token signs the whole session out.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AppError> {
        let next = token::generate("rt_");
        let now = now_ms();
        let outcome = self
            .inner
            .store
            .rotate_refresh_token(
                &token::digest(refresh_token),
                &token::digest(&next),
                now + ttl_ms(self.inner.config.refresh_token_ttl),
                now,
            )
            .await?;
        match outcome {
            RefreshOutcome::Rotated { session_id, user_id } => {
                Ok(self.issue_tokens(user_id, session_id, next))
            }
            RefreshOutcome::Reused { session_id } => {
                self.inner.caches.forget_session(session_id);
                tracing::warn!(%session_id, "refresh token reused; session revoked");
                Err(AppError::unauthorized(
                    "refresh_token_reused",
                    "this refresh token was already used; the session has been signed out",
                ))
            }
            RefreshOutcome::Invalid => Err(AppError::unauthorized(
                "invalid_refresh_token",
                "the refresh token is invalid or expired",
            )),
        }
    }

    pub async fn logout(&self, session: SessionId) -> Result<(), AppError> {
        self.inner.store.revoke_session(session, "logout", now_ms()).await?;
        self.inner.caches.forget_session(session);
        Ok(())
    }

    pub async fn me(&self, user: UserId) -> Result<Me, AppError> {
        let row = self.inner.store.get_user(user).await.map_err(AppError::from_store("user"))?;
        let workspaces = self.memberships(user).await?;
        Ok(Me { user: row, workspaces: workspaces.as_ref().clone() })
    }

    /// Changes the password after checking the current one; every other session is signed out.
    pub async fn change_password(
        &self,
        user: UserId,
        session: SessionId,
        current: &str,
        new: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), AppError> {
        let new = Password::parse(new)
            .map_err(|e| AppError::Validation(vec![text_error("/new_password", e)]))?;
        let row = self.inner.store.get_user(user).await.map_err(AppError::from_store("user"))?;
        if !verify_password(current.to_owned(), row.password_hash.clone()).await {
            return Err(AppError::field(
                "/current_password",
                "wrong_password",
                "the current password is incorrect",
            ));
        }
        let hash = hash_password(new).await?;
        self.inner.store.set_password(user, &hash, Some(session), now_ms()).await?;
        self.inner.caches.forget_all_sessions();
        for ws in self.memberships(user).await?.iter() {
            self.audit(NewAuditEvent {
                workspace_id: Some(ws.workspace_id),
                actor_user_id: Some(user),
                actor_key_id: None,
                action: "password.changed",
                target: Some(user.to_string()),
                ip: ip.map(|i| i.to_string()),
                detail: serde_json::json!({}),
            })
            .await;
        }
        Ok(())
    }

    /// Emails a single-use reset link if the account exists; answers the same either way.
    pub async fn request_password_reset(&self, email: &str) -> Result<(), AppError> {
        let Ok(email) = Email::parse(email) else {
            return Err(AppError::field("/email", "invalid_email", "is not a valid email address"));
        };
        let Some(user) = self.inner.store.find_user_by_email(&email).await? else { return Ok(()) };
        let secret = token::generate("");
        let now = now_ms();
        self.inner
            .store
            .insert_email_token(
                user.id,
                EmailPurpose::Reset,
                &token::digest(&secret),
                now + ttl_ms(self.inner.config.reset_ttl),
                now,
            )
            .await?;
        let link = format!("{}/reset-password?token={secret}", self.inner.config.public_url);
        self.send_mail(Mail {
            to: user.email.clone(),
            subject: "Reset your EchoForge password".into(),
            body: format!("Hello {},\n\nChoose a new password here:\n\n{link}\n\nThe link works once and expires in one hour. Reset token: {secret}\n\nIf you did not ask for this, ignore this message; your password is unchanged.\n", user.name),
            link: Some(link),
        })
        .await
    }

    /// Sets a new password with a reset token; signs out every session.
    pub async fn reset_password(&self, secret: &str, new: &str) -> Result<(), AppError> {
        let new = Password::parse(new)
            .map_err(|e| AppError::Validation(vec![text_error("/new_password", e)]))?;
        let user = self
            .inner
            .store
            .consume_email_token(EmailPurpose::Reset, &token::digest(secret.trim()), now_ms())
            .await?
            .ok_or_else(|| {
                AppError::bad_request(
                    "invalid_token",
                    "this reset link is invalid, used or expired; ask for a new one",
                )
            })?;
        let hash = hash_password(new).await?;
        self.inner.store.set_password(user, &hash, None, now_ms()).await?;
        // Whoever could read the mailbox could also sign in: the address is proven.
        self.inner.store.mark_email_verified(user, now_ms()).await?;
        self.inner.caches.forget_all_sessions();
        for ws in self.memberships(user).await?.iter() {
            self.audit(NewAuditEvent {
                workspace_id: Some(ws.workspace_id),
                actor_user_id: Some(user),
                actor_key_id: None,
                action: "password.reset",
                target: Some(user.to_string()),
                ip: None,
                detail: serde_json::json!({}),
            })
            .await;
        }
        Ok(())
    }

    /// Creates the platform operator account (verified) with a workspace of its own.
    pub async fn create_operator(
        &self,
        email: &str,
        password: &str,
        name: &str,
    ) -> Result<User, AppError> {
        let email =
            Email::parse(email).map_err(|e| AppError::Validation(vec![text_error("/email", e)]))?;
        let password = Password::parse(password)
            .map_err(|e| AppError::Validation(vec![text_error("/password", e)]))?;
        let hash = hash_password(password).await?;
        let user = NewUser {
            id: UserId::new(),
            email,
            name: name.to_owned(),
            password_hash: hash,
            verified: true,
            is_operator: true,
        };
        let ws = NewWorkspace {
            id: WorkspaceId::new(),
            name: "Operators".into(),
            plan: "enterprise".into(),
        };
        self.inner.store.create_user(&user, Some(&ws), now_ms()).await.map_err(|e| match e {
            StoreError::Conflict(_) => AppError::field(
                "/email",
                "email_taken",
                "an account with this email already exists",
            ),
            other => other.into(),
        })
    }
}
