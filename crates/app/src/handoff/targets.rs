//! Handoff targets besides the inbox (the agent's `handoff_config`): a **webhook** that gets
//! the handoff and its transcript as signed JSON, or a mail to a team **email** address.
//!
//! A created handoff queues one durable job ([`HANDOFF_QUEUE`]) carrying only ids; the worker
//! reads the agent's target, the handoff and the transcript when it runs, so no URL or
//! transcript sits in the jobs table, and failures retry with the queue's backoff. The
//! webhook goes through the SSRF guard (loopback and private networks refused unless the
//! operator sets `[handoff] allow_private_webhooks`), signed with the workspace's secret:
//! `EchoForge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed by
//! the secret string (`whsec_…`, derived from the master key; `GET
//! /api/v1/handoffs/webhook-secret`). A target given up on is recorded as an internal note on
//! the handoff and logged.

use domain::time::now_ms;
use domain::{AgentId, ConversationId, Permission, WorkspaceId};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use store::{Handoff, HandoffActor, MessageRole, NewJob, Store, TenantScope};

use crate::auth::access::key_agent;
use crate::mail::{Mail, MailError};
use crate::worker::JobError;
use crate::{App, AppError, Principal};

/// The job queue handoff targets are delivered from.
pub const HANDOFF_QUEUE: &str = "handoff";
/// The one kind of job on it.
const NOTIFY_JOB: &str = "handoff.notify";
/// Attempts before a target is given up on (with the queue's backoff, 2 s doubling: over
/// about 4 minutes).
const MAX_ATTEMPTS: i64 = 8;
/// At most this many of the conversation's last messages go in the transcript.
pub const TRANSCRIPT_MESSAGES: u32 = 100;
/// The event a created handoff's webhook carries.
pub const WEBHOOK_EVENT: &str = "handoff.created";

/// Where an agent's handoffs go besides the inbox.
#[derive(Debug, Clone, PartialEq)]
enum Target {
    Webhook(String),
    Email(String),
}

/// The agent's target (`handoff_config.method` `webhook` or `email` with its address) and
/// whether the transcript goes with it; `None` for other methods and agents without the
/// `escalation` capability.
fn target_of(agent: &store::Agent) -> Option<(Target, bool)> {
    if !super::triggers::capability_enabled(&agent.enabled_capabilities.0, "escalation") {
        return None;
    }
    let config = agent.config.0.get("handoff_config")?;
    let field = |name: &str| {
        config.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    };
    let target = match config.get("method").and_then(Value::as_str) {
        Some("webhook") => Target::Webhook(field("webhook_url")?.to_owned()),
        Some("email") => Target::Email(field("email")?.to_owned()),
        _ => return None,
    };
    let transcript = config.get("include_transcript").and_then(Value::as_bool).unwrap_or(true);
    Some((target, transcript))
}

/// Queues the delivery of a just created handoff to the agent's target, if it has one.
/// Never fails the escalation: a handoff that cannot be queued is still in the inbox.
pub(crate) async fn queue(store: &Store, scope: &TenantScope, agent: &store::Agent, h: &Handoff) {
    if target_of(agent).is_none() {
        return;
    }
    let now = now_ms();
    let job = NewJob {
        queue: HANDOFF_QUEUE.into(),
        kind: NOTIFY_JOB.into(),
        payload: json!({ "handoff_id": h.id, "agent_id": agent.id }),
        workspace_id: Some(scope.workspace_id().to_string()),
        max_attempts: MAX_ATTEMPTS,
        run_at: now,
    };
    if let Err(e) = store.enqueue_job(&job, now).await {
        tracing::error!(handoff = %h.id, error = %e, "could not queue the handoff's target");
    }
}

/// [`queue`] for a handoff made where only its agent's id is at hand (the
/// `escalate_to_human` tool).
pub(crate) async fn queue_for_agent(
    store: &Store,
    scope: &TenantScope,
    agent_id: AgentId,
    h: &Handoff,
) {
    match store.get_agent(scope, agent_id).await {
        Ok(agent) => queue(store, scope, &agent, h).await,
        Err(e) => tracing::warn!(handoff = %h.id, error = %e, "could not read the handoff's agent"),
    }
}

/// The `EchoForge-Signature` header's value for `body` sent at `t` (unix seconds).
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

impl App {
    /// The workspace's webhook signing secret (`whsec_` and 64 hex digits): derived from the
    /// master key, so nothing is stored; it changes when the master key is rotated.
    pub(crate) fn webhook_secret(&self, workspace: WorkspaceId) -> String {
        let key = self.inner.keyring.derive(&format!("handoff-webhook/{workspace}"));
        format!("whsec_{}", hex::encode(key))
    }

    /// The caller's workspace's webhook signing secret, for owners, admins and workspace keys
    /// with `admin` (not agent keys).
    pub fn handoff_webhook_secret(&self, p: &Principal) -> Result<String, AppError> {
        p.require(Permission::Admin)?;
        if key_agent(p).is_some() {
            return Err(AppError::forbidden(
                "workspace_key_required",
                "the webhook secret belongs to the workspace; an agent key cannot read it",
            ));
        }
        Ok(self.webhook_secret(p.scope().workspace_id()))
    }

    /// Delivers one handoff to its agent's target (the handoff queue's job handler). The
    /// job's id is the delivery id receivers de-duplicate retries with.
    pub async fn handoff_target_job(&self, job: &store::Job) -> Result<(), JobError> {
        let permanent = |m: String| JobError::Permanent(m);
        let last_attempt = job.attempts >= job.max_attempts;
        let id = job.id.to_string();
        let ws = job
            .workspace_id
            .as_deref()
            .and_then(|w| WorkspaceId::parse(w).ok())
            .ok_or_else(|| permanent("a handoff job without its workspace".into()))?;
        let value: Value =
            serde_json::from_str(&job.payload).map_err(|e| permanent(e.to_string()))?;
        let (Some(handoff_id), Some(agent_id)) = (
            value["handoff_id"].as_str(),
            value["agent_id"].as_str().and_then(|a| AgentId::parse(a).ok()),
        ) else {
            return Err(permanent("a handoff job without its handoff and agent".into()));
        };
        let scope = crate::auth::job_scope(ws);
        let store = self.store();
        let gone = |e: store::StoreError| match e {
            store::StoreError::NotFound => permanent("the handoff or its agent is gone".into()),
            other => JobError::Retry(other.to_string()),
        };
        let agent = store.get_agent(&scope, agent_id).await.map_err(gone)?;
        let h = store.get_handoff(&scope, handoff_id).await.map_err(gone)?;
        // The target may have been removed since: nothing to do.
        let Some((target, with_transcript)) = target_of(&agent) else { return Ok(()) };
        let conversation = match h.conversation_id.as_deref().map(ConversationId::parse) {
            Some(Ok(c)) => store.get_conversation(&scope, c).await.ok(),
            _ => None,
        };
        let transcript = match (&conversation, with_transcript) {
            (Some(c), true) => store
                .recent_messages(&scope, c.id, TRANSCRIPT_MESSAGES)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?
                .into_iter()
                .filter(|m| {
                    matches!(
                        m.role,
                        MessageRole::User | MessageRole::Assistant | MessageRole::HumanAgent
                    ) && !m.content.trim().is_empty()
                })
                .collect(),
            _ => Vec::new(),
        };
        let result = match &target {
            Target::Webhook(url) => {
                let body = webhook_body(&h, conversation.as_ref(), &agent, &transcript);
                self.post_webhook(ws, url, &id, &body).await
            }
            Target::Email(to) => {
                let mail = self.handoff_mail(to, &h, conversation.as_ref(), &agent, &transcript);
                self.inner.mailer.deliver(&mail).await.map_err(|e| match e {
                    MailError::Address(_) | MailError::Build(_) => permanent(e.to_string()),
                    other => JobError::Retry(other.to_string()),
                })
            }
        };
        if let Err(e) = &result
            && (last_attempt || matches!(e, JobError::Permanent(_)))
        {
            let what = match target {
                Target::Webhook(_) => "webhook",
                Target::Email(_) => "email",
            };
            tracing::error!(handoff = %h.id, target = what, error = %e, "gave up delivering a handoff");
            let actor = HandoffActor::agent(agent.id, &agent.display_name);
            let note = format!("The handoff could not be delivered by {what}: {e}");
            if let Err(e) = store.add_handoff_note(&scope, &h.id, &actor, &note, now_ms()).await {
                tracing::warn!(handoff = %h.id, error = %e, "could not record a failed delivery");
            }
        }
        result
    }

    async fn post_webhook(
        &self,
        ws: WorkspaceId,
        url: &str,
        delivery: &str,
        body: &Value,
    ) -> Result<(), JobError> {
        let client = fetch::GuardedClient::new(fetch::FetchConfig {
            policy: fetch::AddressPolicy {
                allow_private: self.inner.config.allow_private_webhooks,
                ..Default::default()
            },
            respect_robots: false,
            max_redirects: 0,
            timeout: std::time::Duration::from_secs(15),
            max_response_bytes: 64 * 1024,
            ..Default::default()
        })
        .map_err(|e| JobError::Retry(e.to_string()))?;
        let bytes = serde_json::to_vec(body).map_err(|e| JobError::Permanent(e.to_string()))?;
        let t = now_ms() / 1000;
        let request = fetch::ApiRequest::new(fetch::Method::POST, url)
            .header("echoforge-event", WEBHOOK_EVENT)
            .header("echoforge-delivery", delivery)
            .header("echoforge-signature", signature(&self.webhook_secret(ws), t, &bytes));
        let request = fetch::ApiRequest { body: Some(("application/json", bytes)), ..request };
        match client.call(request).await {
            Ok(r) if r.is_success() => Ok(()),
            Ok(r) => Err(JobError::Retry(format!("the webhook answered {}", r.status))),
            Err(
                e @ (fetch::FetchError::InvalidUrl(_)
                | fetch::FetchError::UnsupportedScheme(_)
                | fetch::FetchError::BlockedAddress { .. }),
            ) => Err(JobError::Permanent(e.to_string())),
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }

    fn handoff_mail(
        &self,
        to: &str,
        h: &Handoff,
        conversation: Option<&store::Conversation>,
        agent: &store::Agent,
        transcript: &[store::Message],
    ) -> Mail {
        let link = format!("{}/inbox/{}", self.inner.config.public_url, h.id);
        let name: String = agent.display_name.chars().take(40).collect();
        let mut body = format!(
            "{} handed a conversation to your team.\n\nReason: {}\n",
            agent.display_name, h.reason
        );
        if let Some(c) = conversation {
            body.push_str(&format!(
                "Channel: {}\nCustomer: {}\n",
                c.channel.as_str(),
                c.end_user_id.as_deref().unwrap_or("anonymous")
            ));
        }
        body.push_str(&format!("\nOpen it in the inbox: {link}\n"));
        if !transcript.is_empty() {
            body.push_str(&format!("\nTranscript (the last {} messages):\n\n", transcript.len()));
            for m in transcript {
                let who = match m.role {
                    MessageRole::User => "Customer".to_owned(),
                    MessageRole::HumanAgent => {
                        m.author.clone().unwrap_or_else(|| "Operator".into())
                    }
                    _ => agent.display_name.clone(),
                };
                body.push_str(&format!("[{}] {who}: {}\n", rfc3339(m.created_at), m.content));
            }
        }
        Mail {
            to: to.to_owned(),
            subject: format!("Handoff: {name} needs a person"),
            body,
            link: Some(link),
        }
    }
}

/// The webhook's JSON body.
fn webhook_body(
    h: &Handoff,
    conversation: Option<&store::Conversation>,
    agent: &store::Agent,
    transcript: &[store::Message],
) -> Value {
    json!({
        "event": WEBHOOK_EVENT,
        "handoff": {"id": h.id, "reason": h.reason, "created_at": h.created_at},
        "conversation": conversation.map(|c| json!({
            "id": c.id, "channel": c.channel.as_str(), "end_user_id": c.end_user_id,
        })),
        "agent": {"id": agent.id, "name": agent.display_name},
        "transcript": transcript.iter().map(|m| json!({
            "role": m.role.as_str(), "author": m.author, "content": m.content, "created_at": m.created_at,
        })).collect::<Vec<_>>(),
    })
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_an_hmac_of_the_time_and_the_body() {
        let s = signature("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        let (t, v1) = s.split_once(',').unwrap();
        assert_eq!(t, "t=1700000000");
        assert_eq!(v1.len(), 3 + 64);
        assert_ne!(s, signature("whsec_test", 1_700_000_000, br#"{"a":2}"#));
        assert_ne!(s, signature("whsec_other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(s, signature("whsec_test", 1_700_000_001, br#"{"a":1}"#));
    }
}
