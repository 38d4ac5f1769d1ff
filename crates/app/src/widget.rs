//! The embeddable chat widget's public use cases: an agent addressed by its `public_id`
//! (`pub_…`), talked to by anonymous visitors of the business's website.
//!
//! There is no credential: what authorizes a request is, on every request, that
//! - the agent exists, is active and has the `widget` capability enabled (otherwise 404), and
//! - the page's origin (`Origin`, else `Referer`) is in the agent's widget `allowed_domains`
//!   (otherwise 403): the origin's host equals an entry or is a subdomain of it. Scheme and
//!   port are not compared. Entries are domain names (the capability schema's pattern), so
//!   `localhost` and IP addresses cannot be listed; for local development list a name under
//!   `.localhost` (`shop.localhost`), which browsers resolve to the loopback address.
//!
//! Passing both yields a [`WidgetAccess`], the only way into the other use cases; they count
//! the request against the agent's and the visitor's limits ([`WidgetLimits`]). A visitor is
//! an opaque id the widget keeps in the page's `localStorage`; widget conversations are
//! stored with it as their `end_user_id`, and a visitor reads only their own.

use domain::time::now_ms;
use domain::{AgentId, ConversationId};
use parking_lot::RwLock;
use runtime::RunEvent;
use serde::Serialize;
use serde_json::Value;
use store::{Channel, MessageRole, TenantScope};
use tokio::sync::mpsc;

use crate::auth::key_rate::KeyRateLimiter;
use crate::{App, AppError, ChatInput, ChatRun};

/// Requests the public widget endpoints accept, per fixed window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WidgetLimits {
    /// Chat messages and history reads per visitor (of one agent) per minute.
    pub visitor_per_minute: i64,
    /// Per visitor per day.
    pub visitor_per_day: i64,
    /// Widget requests of any kind (config, chat, history) per agent per minute.
    pub agent_per_minute: i64,
    /// Per agent per day.
    pub agent_per_day: i64,
}

impl Default for WidgetLimits {
    fn default() -> Self {
        Self {
            visitor_per_minute: 20,
            visitor_per_day: 500,
            agent_per_minute: 600,
            agent_per_day: 100_000,
        }
    }
}

/// The widget's rate limiters.
pub(crate) struct WidgetGate {
    limits: RwLock<WidgetLimits>,
    agents: KeyRateLimiter<AgentId>,
    visitors: KeyRateLimiter<(AgentId, String)>,
}

impl Default for WidgetGate {
    fn default() -> Self {
        Self {
            limits: RwLock::new(WidgetLimits::default()),
            agents: KeyRateLimiter::new(),
            visitors: KeyRateLimiter::new(),
        }
    }
}

/// Proof that a request may use an agent's widget: the agent is active, has the widget
/// enabled, and the page's origin is allowed. Only [`App::widget_access`] makes one.
pub struct WidgetAccess {
    agent: store::Agent,
}

impl std::fmt::Debug for WidgetAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WidgetAccess").field("agent", &self.agent.id).finish()
    }
}

/// What a page may know about the agent to draw the widget: branding and widget settings,
/// nothing else (no ids, prompts, keys or allowlist).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WidgetConfig {
    pub name: String,
    /// An `http(s)` image URL, or `None` for the initial-letter avatar.
    pub avatar_url: Option<String>,
    pub tagline: Option<String>,
    /// `bottom-right` or `bottom-left`.
    pub position: String,
    /// `light`, `dark` or `auto`.
    pub theme: String,
    /// `small`, `medium` or `large`.
    pub size: String,
    pub colors: WidgetColors,
    pub welcome_message: String,
    pub placeholder: String,
    pub show_on_mobile: bool,
    /// Seconds before the bubble appears.
    pub open_delay_seconds: u64,
    /// An `http(s)` image URL for the bubble.
    pub launcher_icon_url: Option<String>,
    pub show_avatar: bool,
    pub show_status: bool,
}

/// `#RRGGBB` colours.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WidgetColors {
    pub primary: String,
    pub secondary: String,
}

/// One message of a visitor's conversation.
#[derive(Debug, Clone, Serialize)]
pub struct WidgetMessage {
    /// `user`, `assistant`, or `human_agent` (a person of the business, live handoff).
    pub role: &'static str,
    pub content: String,
    pub citations: Vec<WidgetCitation>,
    pub created_at: i64,
    /// The person's name, for `human_agent` messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

/// A source an answer cites.
#[derive(Debug, Clone, Serialize)]
pub struct WidgetCitation {
    pub index: Option<u64>,
    pub title: String,
    pub url: Option<String>,
    pub page: Option<u64>,
    pub heading: Option<String>,
    pub excerpt: Option<String>,
}

/// A visitor's conversation.
#[derive(Debug, Clone, Serialize)]
pub struct WidgetConversation {
    pub id: ConversationId,
    pub messages: Vec<WidgetMessage>,
}

/// Events a public page sees; tool activity and pending actions stay with the business.
fn is_public(e: &RunEvent) -> bool {
    matches!(
        e,
        RunEvent::RunStarted { .. }
            | RunEvent::MessageDelta { .. }
            | RunEvent::Citation(_)
            | RunEvent::MessageCompleted { .. }
            | RunEvent::RunCompleted { .. }
            | RunEvent::RunFailed { .. }
    )
}

impl App {
    /// Replaces the widget's request limits (the binary's settings; tests lower them).
    pub fn set_widget_limits(&self, limits: WidgetLimits) {
        *self.inner.widget.limits.write() = limits;
    }

    /// Admits a request for the agent `public_id` from a page at `origin` (the `Origin`
    /// header, else the `Referer`): 404 unless the agent is active with the widget enabled,
    /// 403 unless the origin is allowed. Checked on every request.
    pub async fn widget_access(
        &self,
        public_id: &str,
        origin: Option<&str>,
    ) -> Result<WidgetAccess, AppError> {
        if !public_id.starts_with("pub_") || public_id.len() > 100 {
            return Err(AppError::NotFound { what: "agent" });
        }
        let agent = self
            .store()
            .get_agent_by_public_id(public_id)
            .await
            .map_err(AppError::from_store("agent"))?;
        if !agent.is_active || !widget_enabled(&agent.enabled_capabilities.0) {
            return Err(AppError::NotFound { what: "agent" });
        }
        let Some(origin) = origin else {
            return Err(AppError::forbidden(
                "origin_required",
                "the widget answers only pages that send their origin",
            ));
        };
        match origin_host(origin) {
            Some(host) if host_allowed(&host, &allowed_domains(&agent.config.0)) => {
                Ok(WidgetAccess { agent })
            }
            // Other sites, and opaque origins (`null`: sandboxed frames, files).
            _ => Err(AppError::forbidden(
                "origin_not_allowed",
                "this website is not allowed to use this chat widget",
            )),
        }
    }

    /// The public configuration the widget draws itself with.
    pub fn widget_config(&self, access: &WidgetAccess) -> Result<WidgetConfig, AppError> {
        self.widget_hit(access, None)?;
        Ok(public_config(&access.agent))
    }

    /// Answers a visitor's message, in a new conversation or one of the visitor's own.
    pub async fn widget_chat(
        &self,
        access: &WidgetAccess,
        visitor: &str,
        message: &str,
        conversation_id: Option<ConversationId>,
    ) -> Result<ChatRun, AppError> {
        let visitor = visitor_id(visitor)?;
        let message = self.chat_message(message)?;
        self.widget_hit(access, Some(visitor))?;
        let agent = access.agent.clone();
        let scope = widget_scope(&agent);
        if let Some(id) = conversation_id {
            self.visitor_conversation(&scope, &agent, visitor, id).await?;
        }
        let input = ChatInput {
            agent: agent.id.to_string(),
            message: message.clone(),
            conversation_id,
            end_user_id: Some(visitor.to_owned()),
            channel: Channel::Widget,
            history: None,
            attachments: Vec::new(),
        };
        let cached = self.cached_agent_row(&scope, &agent).await?;
        let mut run = self.chat_as(scope, cached, message, input).await?;
        // Forward only the public events; the run and its persistence are unaffected.
        let (tx, rx) = mpsc::channel(64);
        let mut events = std::mem::replace(&mut run.events, rx);
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                // A page that went away stops the forwarding, not the run.
                if is_public(&e) && tx.send(e).await.is_err() {
                    return;
                }
            }
        });
        Ok(run)
    }

    /// The visitor's own conversation with the agent: what the widget shows when reopened.
    pub async fn widget_conversation(
        &self,
        access: &WidgetAccess,
        visitor: &str,
        id: ConversationId,
    ) -> Result<WidgetConversation, AppError> {
        let visitor = visitor_id(visitor)?;
        self.widget_hit(access, Some(visitor))?;
        let scope = widget_scope(&access.agent);
        self.visitor_conversation(&scope, &access.agent, visitor, id).await?;
        let stored = self.store().recent_messages(&scope, id, 200).await?;
        let messages = stored
            .iter()
            .filter_map(|m| {
                let role = match m.role {
                    MessageRole::User => "user",
                    MessageRole::Assistant => "assistant",
                    MessageRole::HumanAgent => "human_agent",
                    MessageRole::System | MessageRole::Tool => return None,
                };
                let calls_tools = m.tool_calls.0.as_array().is_some_and(|a| !a.is_empty());
                if m.content.trim().is_empty() || calls_tools {
                    return None;
                }
                Some(WidgetMessage {
                    role,
                    content: m.content.clone(),
                    citations: citations(&m.citations.0),
                    created_at: m.created_at,
                    author: m.author.clone(),
                })
            })
            .collect();
        Ok(WidgetConversation { id, messages })
    }

    /// The visitor's live stream of their conversation (live handoff): its state now, then
    /// operators' replies and state changes.
    pub async fn widget_watch(
        &self,
        access: &WidgetAccess,
        visitor: &str,
        id: ConversationId,
    ) -> Result<(crate::LiveEvent, tokio::sync::broadcast::Receiver<crate::LiveEvent>), AppError>
    {
        let visitor = visitor_id(visitor)?;
        self.widget_hit(access, Some(visitor))?;
        let scope = widget_scope(&access.agent);
        self.visitor_conversation(&scope, &access.agent, visitor, id).await?;
        let c = self
            .store()
            .get_conversation(&scope, id)
            .await
            .map_err(AppError::from_store("conversation"))?;
        Ok(self.conversation_watch(&scope, &c).await)
    }

    /// Refuses (as not found) conversations that are not this visitor's widget conversation
    /// with this agent.
    async fn visitor_conversation(
        &self,
        scope: &TenantScope,
        agent: &store::Agent,
        visitor: &str,
        id: ConversationId,
    ) -> Result<(), AppError> {
        let c = self
            .store()
            .get_conversation(scope, id)
            .await
            .map_err(AppError::from_store("conversation"))?;
        if c.agent_id != agent.id
            || c.channel != Channel::Widget
            || c.end_user_id.as_deref() != Some(visitor)
        {
            return Err(AppError::NotFound { what: "conversation" });
        }
        Ok(())
    }

    /// Counts one request against the agent's limits and, when given, the visitor's.
    fn widget_hit(&self, access: &WidgetAccess, visitor: Option<&str>) -> Result<(), AppError> {
        let limits = *self.inner.widget.limits.read();
        let gate = &self.inner.widget;
        let now = now_ms();
        let agent = access.agent.id;
        if let Some(v) = visitor {
            gate.visitors
                .hit(
                    (agent, v.to_owned()),
                    Some(limits.visitor_per_minute),
                    Some(limits.visitor_per_day),
                    now,
                )
                .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
        }
        gate.agents
            .hit(agent, Some(limits.agent_per_minute), Some(limits.agent_per_day), now)
            .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })
    }
}

/// The agent's workspace: the public id, the agent's state and the page's origin were
/// checked by [`App::widget_access`], which is the authorization of the widget surface.
#[allow(clippy::disallowed_methods)]
fn widget_scope(agent: &store::Agent) -> TenantScope {
    TenantScope::assume(agent.workspace_id)
}

/// A visitor id as the widget makes it: 16 to 64 letters, digits, `-` or `_`.
fn visitor_id(v: &str) -> Result<&str, AppError> {
    let ok = (16..=64).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(v)
    } else {
        Err(AppError::bad_request(
            "visitor_required",
            "send the visitor's id (16 to 64 letters, digits, `-` or `_`) in `EchoForge-Visitor`",
        ))
    }
}

/// Whether `widget` is among the enabled capabilities (a list of ids or of `{id}` objects, or
/// a map of id → on).
pub(crate) fn widget_enabled(enabled: &Value) -> bool {
    match enabled {
        Value::Array(items) => items.iter().any(|i| {
            i.as_str() == Some("widget") || i.get("id").and_then(Value::as_str) == Some("widget")
        }),
        Value::Object(map) => {
            map.get("widget").is_some_and(|v| !v.is_null() && v.as_bool() != Some(false))
        }
        _ => false,
    }
}

/// The configured domains, lower-cased, without a trailing dot.
fn allowed_domains(config: &Value) -> Vec<String> {
    config
        .get("allowed_domains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect()
}

/// The host of an `Origin` (`https://shop.example:8443`) or `Referer` (a full URL) value;
/// `None` for `null`, opaque and non-HTTP origins.
pub(crate) fn origin_host(origin: &str) -> Option<url::Host<String>> {
    let url = url::Url::parse(origin.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    match url.host()? {
        url::Host::Domain(d) => {
            Some(url::Host::Domain(d.trim_end_matches('.').to_ascii_lowercase()))
        }
        ip => Some(ip.to_owned()),
    }
}

/// A domain host matches an entry exactly or as a subdomain; an IP address only exactly.
pub(crate) fn host_allowed(host: &url::Host<String>, allowed: &[String]) -> bool {
    match host {
        url::Host::Domain(h) => allowed.iter().any(|d| {
            h == d
                || (h.len() > d.len()
                    && h.ends_with(d.as_str())
                    && h[..h.len() - d.len()].ends_with('.'))
        }),
        ip => allowed.contains(&ip.to_string()),
    }
}

/// Reads the branding and widget settings (flat in the agent's config, as the capability
/// schemas compose), falling back to the schemas' defaults for anything missing or malformed.
fn public_config(agent: &store::Agent) -> WidgetConfig {
    let c = &agent.config.0;
    let text = |v: Option<&Value>, max: usize| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(max).collect::<String>())
    };
    let one_of = |key: &str, options: &[&str], default: &str| {
        c.get(key)
            .and_then(Value::as_str)
            .filter(|v| options.contains(v))
            .unwrap_or(default)
            .to_owned()
    };
    let color = |key: &str, default: &str| {
        c.get("colors")
            .and_then(|colors| colors.get(key))
            .and_then(Value::as_str)
            .filter(|v| is_hex_color(v))
            .unwrap_or(default)
            .to_owned()
    };
    let flag = |section: &str, key: &str, default: bool| {
        c.get(section).and_then(|s| s.get(key)).and_then(Value::as_bool).unwrap_or(default)
    };
    let avatar = c.get("avatar");
    let avatar_url = match avatar.and_then(|a| a.get("type")).and_then(Value::as_str) {
        Some("url" | "upload") => avatar.and_then(|a| a.get("url")).and_then(Value::as_str),
        _ => None,
    }
    .or(agent.avatar.as_deref())
    .and_then(web_url);
    WidgetConfig {
        // The branding default ("Assistant") loses to the agent's own name.
        name: text(c.get("agent_name"), 50)
            .filter(|n| n.as_str() != "Assistant")
            .unwrap_or_else(|| agent.display_name.clone()),
        avatar_url,
        tagline: agent.tagline.clone().filter(|t| !t.trim().is_empty()),
        position: one_of("position", &["bottom-right", "bottom-left"], "bottom-right"),
        theme: one_of("theme", &["light", "dark", "auto"], "light"),
        size: one_of("size", &["small", "medium", "large"], "medium"),
        colors: WidgetColors {
            primary: color("primary", "#3B82F6"),
            secondary: color("secondary", "#1E40AF"),
        },
        welcome_message: text(c.get("welcome_message"), 500)
            .unwrap_or_else(|| "Hi! How can I help you today?".into()),
        placeholder: text(c.get("placeholder_text"), 100)
            .unwrap_or_else(|| "Type your message...".into()),
        show_on_mobile: flag("trigger", "show_on_mobile", true),
        open_delay_seconds: c
            .get("trigger")
            .and_then(|t| t.get("delay_seconds"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(60),
        launcher_icon_url: c
            .get("trigger")
            .and_then(|t| t.get("custom_icon_url"))
            .and_then(Value::as_str)
            .and_then(web_url),
        show_avatar: flag("header", "show_avatar", true),
        show_status: flag("header", "show_status", true),
    }
}

fn is_hex_color(v: &str) -> bool {
    v.len() == 7 && v.starts_with('#') && v[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// `http(s)` URLs only (no `javascript:`, `data:` …), as the page will load them.
fn web_url(v: &str) -> Option<String> {
    let url = url::Url::parse(v.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// Stored citations as the widget shows them.
fn citations(v: &Value) -> Vec<WidgetCitation> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|c| WidgetCitation {
            index: c.get("index").and_then(Value::as_u64),
            title: c.get("document_title").and_then(Value::as_str).unwrap_or("Source").to_owned(),
            url: c.get("source_url").and_then(Value::as_str).and_then(web_url),
            page: c.get("page").and_then(Value::as_u64),
            heading: c.get("heading").and_then(Value::as_str).map(str::to_owned),
            excerpt: c.get("excerpt").and_then(Value::as_str).map(str::to_owned),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(origin: &str, domains: &[&str]) -> bool {
        let domains: Vec<String> = domains.iter().map(|d| d.to_string()).collect();
        origin_host(origin).is_some_and(|h| host_allowed(&h, &domains))
    }

    #[test]
    fn origins_match_exact_hosts_and_subdomains_only() {
        let d = ["acme.example"];
        assert!(allowed("https://acme.example", &d));
        assert!(allowed("http://acme.example:8080", &d), "scheme and port are not compared");
        assert!(allowed("https://www.acme.example", &d));
        assert!(allowed("https://a.b.ACME.example.", &d));
        assert!(allowed("https://acme.example/pricing?x=1", &d), "a Referer URL works too");
        assert!(!allowed("https://evilacme.example", &d));
        assert!(!allowed("https://acme.example.evil.test", &d));
        assert!(!allowed("https://example", &d));
        assert!(!allowed("null", &d));
        assert!(!allowed("file:///home/x.html", &d));
        assert!(!allowed("https://acme.example", &[]), "an empty allowlist allows nothing");
        assert!(!allowed("https://www.acme.example", &["www2.acme.example"]));
    }

    #[test]
    fn localhost_and_addresses_are_not_subdomains_of_anything() {
        assert!(allowed("http://shop.localhost:3000", &["shop.localhost"]));
        assert!(!allowed("http://localhost:3000", &["shop.localhost"]));
        assert!(!allowed("http://127.0.0.1:3000", &["0.0.1"]));
        assert!(!allowed("http://127.0.0.1:3000", &["shop.localhost"]));
    }

    #[test]
    fn visitor_ids_are_opaque_tokens() {
        assert!(visitor_id("v_0123456789abcdef").is_ok());
        assert!(visitor_id("short").is_err());
        assert!(visitor_id("v_0123456789abcdef<script>").is_err());
        assert!(visitor_id(&"a".repeat(65)).is_err());
    }

    #[test]
    fn the_widget_capability_is_found_in_every_shape() {
        assert!(widget_enabled(&serde_json::json!(["rag", "widget"])));
        assert!(widget_enabled(&serde_json::json!([{"id": "widget"}])));
        assert!(widget_enabled(&serde_json::json!({"widget": true})));
        assert!(!widget_enabled(&serde_json::json!({"widget": false})));
        assert!(!widget_enabled(&serde_json::json!(["rag"])));
    }
}
