//! The workspace profile, members and invites.

pub(crate) mod keys;

use std::net::IpAddr;

use domain::time::now_ms;
use domain::{Email, InviteId, Password, Role, UserId};
use store::{Invite, Member, NewAuditEvent, NewUser, StoreError, Workspace, WorkspacePatch};
use vault::token;

use crate::accounts::text_error;
use crate::mail::Mail;
use crate::{App, AppError, FieldError, Principal, ttl_ms};

/// A profile change; `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub website: Option<Option<String>>,
    pub logo_url: Option<Option<String>>,
}

/// Accepting an invite: a signed-in existing user, or a new account (name and password).
#[derive(Debug, Clone)]
pub enum InviteAcceptInput {
    ExistingUser(UserId),
    NewUser { name: String, password: String },
}

fn check_url(path: &str, v: &Option<Option<String>>, errors: &mut Vec<FieldError>) {
    if let Some(Some(url)) = v
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        errors.push(FieldError::new(path, "invalid_url", "must be an http(s) URL"));
    }
}

fn check_len(path: &str, v: &Option<Option<String>>, max: usize, errors: &mut Vec<FieldError>) {
    if let Some(Some(s)) = v
        && s.chars().count() > max
    {
        errors.push(FieldError::new(path, "too_long", format!("must be at most {max} characters")));
    }
}

impl App {
    fn audit_by(
        &self,
        p: &Principal,
        action: &'static str,
        target: String,
        ip: Option<IpAddr>,
        detail: serde_json::Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            workspace_id: Some(p.workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action,
            target: Some(target),
            ip: ip.map(|i| i.to_string()),
            detail,
        }
    }

    pub async fn workspace(&self, p: &Principal) -> Result<Workspace, AppError> {
        p.require(domain::Permission::Read)?;
        self.inner.store.get_workspace(&p.scope()).await.map_err(AppError::from_store("workspace"))
    }

    pub async fn update_workspace(
        &self,
        p: &Principal,
        input: ProfileInput,
    ) -> Result<Workspace, AppError> {
        p.require_manager()?;
        let mut errors = Vec::new();
        if let Some(name) = &input.name {
            let n = name.trim();
            if n.is_empty() {
                errors.push(FieldError::new("/name", "required", "cannot be empty"));
            } else if n.chars().count() > 200 {
                errors.push(FieldError::new("/name", "too_long", "must be at most 200 characters"));
            }
        }
        check_len("/phone", &input.phone, 20, &mut errors);
        check_len("/industry", &input.industry, 100, &mut errors);
        check_url("/website", &input.website, &mut errors);
        check_url("/logo_url", &input.logo_url, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let patch = WorkspacePatch {
            name: input.name.map(|n| n.trim().to_owned()),
            plan: None,
            phone: input.phone,
            industry: input.industry,
            website: input.website,
            logo_url: input.logo_url,
        };
        Ok(self.inner.store.update_workspace(&p.scope(), &patch, now_ms()).await?)
    }

    pub async fn members(&self, p: &Principal) -> Result<Vec<Member>, AppError> {
        p.require(domain::Permission::Read)?;
        Ok(self.inner.store.list_members(&p.scope()).await?)
    }

    pub async fn change_member_role(
        &self,
        p: &Principal,
        user: UserId,
        role: Role,
        ip: Option<IpAddr>,
    ) -> Result<Member, AppError> {
        p.require_manager()?;
        // Only owners make or unmake owners.
        if p.role() != Some(Role::Owner) {
            let current = self
                .inner
                .store
                .list_members(&p.scope())
                .await?
                .into_iter()
                .find(|m| m.user_id == user);
            if role == Role::Owner || current.is_some_and(|m| m.role == Role::Owner) {
                return Err(AppError::forbidden(
                    "owner_required",
                    "only owners can grant or remove the owner role",
                ));
            }
        }
        let member =
            self.inner.store.set_member_role(&p.scope(), user, role, now_ms()).await.map_err(
                |e| match e {
                    StoreError::NotFound => AppError::NotFound { what: "member" },
                    other => other.into(),
                },
            )?;
        self.inner.caches.forget_memberships(user);
        self.audit(self.audit_by(
            p,
            "member.role_changed",
            user.to_string(),
            ip,
            serde_json::json!({"role": role}),
        ))
        .await;
        Ok(member)
    }

    pub async fn remove_member(
        &self,
        p: &Principal,
        user: UserId,
        ip: Option<IpAddr>,
    ) -> Result<(), AppError> {
        p.require_manager()?;
        if p.role() != Some(Role::Owner) {
            let target = self
                .inner
                .store
                .list_members(&p.scope())
                .await?
                .into_iter()
                .find(|m| m.user_id == user);
            if target.is_some_and(|m| m.role == Role::Owner) {
                return Err(AppError::forbidden(
                    "owner_required",
                    "only owners can remove an owner",
                ));
            }
        }
        self.inner.store.remove_member(&p.scope(), user, now_ms()).await.map_err(|e| match e {
            StoreError::NotFound => AppError::NotFound { what: "member" },
            other => other.into(),
        })?;
        self.inner.caches.forget_memberships(user);
        self.audit(self.audit_by(p, "member.removed", user.to_string(), ip, serde_json::json!({})))
            .await;
        Ok(())
    }

    /// Invites someone by email; the link is emailed and valid for 7 days.
    pub async fn invite(
        &self,
        p: &Principal,
        email: &str,
        role: Role,
        ip: Option<IpAddr>,
    ) -> Result<Invite, AppError> {
        p.require_manager()?;
        let email =
            Email::parse(email).map_err(|e| AppError::Validation(vec![text_error("/email", e)]))?;
        if role == Role::Owner && p.role() != Some(Role::Owner) {
            return Err(AppError::forbidden("owner_required", "only owners can invite owners"));
        }
        let scope = p.scope();
        if self.inner.store.is_member_email(&scope, email.as_str()).await? {
            return Err(AppError::conflict(
                "already_member",
                "this person is already a member of the workspace",
            ));
        }
        self.check_seat_limit(&scope).await?;
        let secret = token::generate("inv_");
        let now = now_ms();
        let inviter = p
            .user_id()
            .ok_or_else(|| AppError::forbidden("user_required", "invites are sent by people"))?;
        let invite = self
            .inner
            .store
            .create_invite(
                &scope,
                InviteId::new(),
                email.as_str(),
                role,
                &token::digest(&secret),
                inviter,
                now + ttl_ms(self.inner.config.invite_ttl),
                now,
            )
            .await?;
        let workspace = self.inner.store.get_workspace(&scope).await?;
        let link = format!("{}/invites/{secret}", self.inner.config.public_url);
        self.send_mail(Mail {
            to: email.to_string(),
            subject: format!("You are invited to {} on EchoForge", workspace.name),
            body: format!("You have been invited to join {} on EchoForge as {}.\n\nAccept the invitation here:\n\n{link}\n\nThe link works once and expires in 7 days. Invite token: {secret}\n", workspace.name, role),
            link: Some(link),
        })
        .await?;
        self.audit(self.audit_by(
            p,
            "invite.sent",
            invite.id.to_string(),
            ip,
            serde_json::json!({"email": email, "role": role}),
        ))
        .await;
        Ok(invite)
    }

    pub async fn pending_invites(&self, p: &Principal) -> Result<Vec<Invite>, AppError> {
        p.require_manager()?;
        Ok(self.inner.store.list_pending_invites(&p.scope(), now_ms()).await?)
    }

    pub async fn revoke_invite(
        &self,
        p: &Principal,
        id: InviteId,
        ip: Option<IpAddr>,
    ) -> Result<(), AppError> {
        p.require_manager()?;
        self.inner
            .store
            .revoke_invite(&p.scope(), id, now_ms())
            .await
            .map_err(AppError::from_store("invite"))?;
        self.audit(self.audit_by(p, "invite.revoked", id.to_string(), ip, serde_json::json!({})))
            .await;
        Ok(())
    }

    /// Accepts an invite, for a signed-in user whose email matches, or by creating the account
    /// (verified: the invite link proved the address).
    pub async fn accept_invite(
        &self,
        secret: &str,
        input: InviteAcceptInput,
        ip: Option<IpAddr>,
    ) -> Result<(Invite, UserId), AppError> {
        let digest = token::digest(secret);
        let now = now_ms();
        let invalid = || AppError::NotFound { what: "invite" };
        let invite = self.inner.store.find_invite_by_token(&digest).await?.ok_or_else(invalid)?;
        if invite.accepted_at.is_some() || invite.revoked_at.is_some() {
            return Err(AppError::conflict(
                "invite_used",
                "this invite has already been used or was revoked",
            ));
        }
        if invite.expires_at <= now {
            return Err(AppError::bad_request(
                "invite_expired",
                "this invite has expired; ask for a new one",
            ));
        }
        // The seat was counted when the invite was sent, but the plan may have been lowered
        // since: checked before an account is made, so a refusal leaves nothing behind.
        self.check_member_seat(&crate::auth::invite_scope(invite.workspace_id)).await?;
        let user_id = match input {
            InviteAcceptInput::ExistingUser(user) => {
                let row =
                    self.inner.store.get_user(user).await.map_err(AppError::from_store("user"))?;
                if row.email != invite.email {
                    return Err(AppError::forbidden(
                        "invite_email_mismatch",
                        "this invite was sent to another email address",
                    ));
                }
                row.id
            }
            InviteAcceptInput::NewUser { name, password } => {
                let mut errors = Vec::new();
                let name = crate::accounts::required_text("/name", &name, 200, &mut errors);
                let password = Password::parse(&password)
                    .map_err(|e| errors.push(text_error("/password", e)))
                    .ok();
                let (Some(password), true) = (password, errors.is_empty()) else {
                    return Err(AppError::Validation(errors));
                };
                let hash =
                    tokio::task::spawn_blocking(move || vault::password::hash(password.expose()))
                        .await
                        .map_err(|e| AppError::Internal(e.to_string()))??;
                let email =
                    Email::parse(&invite.email).map_err(|e| AppError::Internal(e.to_string()))?;
                let user = NewUser {
                    id: UserId::new(),
                    email,
                    name,
                    password_hash: hash,
                    verified: true,
                    is_operator: false,
                };
                let row =
                    self.inner.store.create_user(&user, None, now).await.map_err(|e| match e {
                        StoreError::Conflict(_) => AppError::conflict(
                            "account_exists",
                            "an account with this email exists; sign in and accept the invite",
                        ),
                        other => other.into(),
                    })?;
                row.id
            }
        };
        let accepted =
            self.inner.store.accept_invite(&digest, user_id, now).await.map_err(|e| match e {
                StoreError::Conflict(_) => AppError::conflict(
                    "already_member",
                    "you are already a member of this workspace",
                ),
                StoreError::NotFound => AppError::conflict(
                    "invite_used",
                    "this invite has already been used or was revoked",
                ),
                other => other.into(),
            })?;
        self.inner.caches.forget_memberships(user_id);
        self.audit(NewAuditEvent {
            workspace_id: Some(accepted.workspace_id),
            actor_user_id: Some(user_id),
            actor_key_id: None,
            action: "invite.accepted",
            target: Some(accepted.id.to_string()),
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({"role": accepted.role}),
        })
        .await;
        self.audit(NewAuditEvent {
            workspace_id: Some(accepted.workspace_id),
            actor_user_id: Some(user_id),
            actor_key_id: None,
            action: "member.added",
            target: Some(user_id.to_string()),
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({"role": accepted.role}),
        })
        .await;
        Ok((accepted, user_id))
    }

    pub async fn audit_events(
        &self,
        p: &Principal,
        action: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<store::Page<store::AuditEvent>, AppError> {
        p.require(domain::Permission::Admin)?;
        if p.user_id().is_some() {
            p.require_manager()?;
        }
        let cursor = cursor
            .map(domain::AuditEventId::parse)
            .transpose()
            .map_err(|e| AppError::bad_request("invalid_cursor", e.to_string()))?;
        Ok(self.inner.store.list_audit(&p.scope(), action, cursor, limit).await?)
    }
}
