//! Page handlers: each reads through the use cases with the signed-in person's principal and
//! renders one template. Anything of another workspace is a 404 page, as in the API.

use app::{AppError, Principal};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{WebReject, WebUser, error_page, render};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/signup", get(signup))
        .route("/forgot-password", get(forgot))
        .route("/reset-password", get(reset))
        .route("/verify-email", get(verify))
        .route("/invites/{secret}", get(invite))
        .route("/team", get(team))
        .route("/team/new", get(team_new))
        .route("/team/{id}", get(member))
        .route("/team/{id}/welcome", get(welcome))
        .route("/onboarding/{id}", get(onboarding))
        .route("/chat/{agent}", get(chat))
        .route("/knowledge", get(knowledge))
        .route("/knowledge/{id}", get(knowledge_base))
        .route("/settings", get(settings))
        .route("/studio", get(studio))
        .route("/studio/agents/{id}", get(studio_agent))
        .route("/studio/runs/{id}", get(studio_run))
}

type PageResult = Result<Response, WebError>;

/// A use-case error shown as a page.
struct WebError(AppError);

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        error_page(self.0)
    }
}

fn page<T>(r: Result<T, AppError>) -> Result<T, WebError> {
    r.map_err(WebError)
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

#[derive(Deserialize, Default)]
struct TokenQuery {
    token: Option<String>,
    next: Option<String>,
}

async fn home(user: Result<WebUser, WebReject>) -> Response {
    match user {
        Ok(_) => Redirect::to("/team").into_response(),
        Err(_) => Redirect::to("/login").into_response(),
    }
}

/// Only same-site paths are followed after signing in.
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/team".into())
}

async fn login(Query(q): Query<TokenQuery>) -> Response {
    render("auth.html", json!({"mode": "login", "next": safe_next(q.next)}))
}

async fn signup() -> Response {
    render("auth.html", json!({"mode": "signup"}))
}

async fn forgot() -> Response {
    render("auth.html", json!({"mode": "forgot"}))
}

async fn reset(Query(q): Query<TokenQuery>) -> Response {
    render("auth.html", json!({"mode": "reset", "token": q.token.unwrap_or_default()}))
}

async fn verify(State(state): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let outcome = match q.token.as_deref() {
        Some(t) if !t.is_empty() => state.app.verify_email(t).await,
        _ => Err(AppError::bad_request("missing_token", "the link has no token")),
    };
    match outcome {
        Ok(()) => render("auth.html", json!({"mode": "verified"})),
        Err(e) => render("auth.html", json!({"mode": "verify_failed", "message": e.to_string()})),
    }
}

async fn invite(Path(secret): Path<String>, user: Result<WebUser, WebReject>) -> Response {
    let signed_in = user.as_ref().ok().map(|u| u.chrome.clone());
    render(
        "auth.html",
        json!({"mode": "invite", "secret": secret, "signed_in": signed_in,
               "csrf": user.ok().map(|u| u.csrf)}),
    )
}

async fn team(State(state): State<AppState>, user: WebUser) -> PageResult {
    let p = &user.principal;
    let agents = page(state.app.agents(p, None, Some(100)).await)?;
    // Capabilities in plain words on the cards.
    let labels: serde_json::Map<String, Value> = page(state.app.capabilities(p).await)?
        .into_iter()
        .map(|c| (c.id, Value::from(c.label)))
        .collect();
    Ok(render(
        "team.html",
        user.ctx("team", json!({"agents": to_json(&agents.data), "labels": labels})),
    ))
}

#[derive(Deserialize, Default)]
struct NeedQuery {
    q: Option<String>,
}

async fn team_new(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<NeedQuery>,
) -> PageResult {
    let p = &user.principal;
    let templates = page(state.app.templates(p, None, None).await)?;
    let capabilities = page(state.app.capabilities(p).await)?;
    let need = q.q.unwrap_or_default();
    let suggestion = if need.trim().is_empty() {
        None
    } else {
        Some(page(state.app.suggest_templates(p, &need).await)?)
    };
    let suggested: Vec<String> =
        suggestion.as_ref().map(|s| s.templates.clone()).unwrap_or_default();
    let mut templates = templates;
    templates.sort_by_key(|t| suggested.iter().position(|s| *s == t.slug).unwrap_or(usize::MAX));
    let tools: Vec<&str> = {
        let mut t: Vec<&str> =
            capabilities.iter().flat_map(|c| c.requires.iter().map(String::as_str)).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    Ok(render(
        "team_new.html",
        user.ctx(
            "team",
            json!({
                "templates": to_json(&templates),
                "need": need,
                "suggested": suggested,
                "suggestion": suggestion.as_ref().map(to_json),
                "tools": tools,
            }),
        ),
    ))
}

async fn onboarding(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> PageResult {
    let p = &user.principal;
    let id = domain::OnboardingId::parse(&id)
        .map_err(|_| WebError(AppError::NotFound { what: "onboarding session" }))?;
    let session = page(state.app.onboarding(p, id).await)?;
    let template = page(state.app.template(p, &session.template).await)?;
    let kbs = if session.step.as_ref().is_some_and(|s| s.knowledge_base.is_some()) {
        page(state.app.knowledge_bases(p, None, Some(100)).await)?.data
    } else {
        Vec::new()
    };
    Ok(render(
        "onboarding.html",
        user.ctx(
            "team",
            json!({"session": to_json(&session), "template": to_json(&template), "kbs": to_json(&kbs)}),
        ),
    ))
}

/// The agent a path names, with its parsed id; a malformed id is a 404 like a missing agent.
async fn agent_of(
    state: &AppState,
    p: &Principal,
    id: &str,
) -> Result<(domain::AgentId, app::AgentView), WebError> {
    let id =
        domain::AgentId::parse(id).map_err(|_| WebError(AppError::NotFound { what: "agent" }))?;
    Ok((id, page(state.app.agent(p, id).await)?))
}

async fn welcome(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> PageResult {
    let p = &user.principal;
    let (_, agent) = agent_of(&state, p, &id).await?;
    let prompts = match agent.template.as_deref() {
        Some(slug) => state
            .app
            .template(p, slug)
            .await
            .ok()
            .and_then(|t| t.document)
            .and_then(|d| d.get("example_prompts").cloned())
            .unwrap_or(Value::Null),
        None => Value::Null,
    };
    Ok(render(
        "welcome.html",
        user.ctx("team", json!({"agent": to_json(&agent), "prompts": prompts})),
    ))
}

#[derive(Deserialize, Default)]
struct SetupQuery {
    setup: Option<String>,
}

async fn member(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Query(q): Query<SetupQuery>,
) -> PageResult {
    let p = &user.principal;
    let (_, agent) = agent_of(&state, p, &id).await?;
    let capabilities = page(state.app.capabilities(p).await)?;
    let kbs = page(state.app.knowledge_bases(p, None, Some(100)).await)?;
    Ok(render(
        "member.html",
        user.ctx(
            "team",
            json!({
                "agent": to_json(&agent),
                "capabilities": to_json(&capabilities),
                "kbs": to_json(&kbs.data),
                "setup": q.setup.is_some(),
            }),
        ),
    ))
}

#[derive(Deserialize, Default)]
struct ChatQuery {
    c: Option<String>,
    q: Option<String>,
}

async fn chat(
    State(state): State<AppState>,
    user: WebUser,
    Path(agent): Path<String>,
    Query(q): Query<ChatQuery>,
) -> PageResult {
    let p = &user.principal;
    let (agent_id, agent) = agent_of(&state, p, &agent).await?;
    let filter = store::ConversationFilter { agent_id: Some(agent_id), end_user_id: None };
    let mut conversations = page(state.app.conversations(p, filter, None, Some(100)).await)?.data;
    let search = q.q.unwrap_or_default();
    if !search.trim().is_empty() {
        let needle = search.to_lowercase();
        conversations
            .retain(|c| c.title.as_deref().unwrap_or_default().to_lowercase().contains(&needle));
    }
    let current = match q.c.as_deref().map(domain::ConversationId::parse) {
        Some(Ok(id)) => Some(page(state.app.conversation(p, id).await)?),
        Some(Err(_)) => return Err(WebError(AppError::NotFound { what: "conversation" })),
        None => None,
    };
    if let Some(c) = &current
        && c.conversation.agent_id != agent_id
    {
        return Err(WebError(AppError::NotFound { what: "conversation" }));
    }
    Ok(render(
        "chat.html",
        user.ctx(
            "team",
            json!({
                "agent": to_json(&agent),
                "conversations": to_json(&conversations),
                "current": current.as_ref().map(|c| json!({
                    "conversation": to_json(&c.conversation),
                    "messages": to_json(&c.messages),
                    "pending_actions": to_json(&c.pending_actions),
                })),
                "search": search,
            }),
        ),
    ))
}

async fn knowledge(State(state): State<AppState>, user: WebUser) -> PageResult {
    let kbs = page(state.app.knowledge_bases(&user.principal, None, Some(100)).await)?;
    Ok(render("knowledge.html", user.ctx("knowledge", json!({"kbs": to_json(&kbs.data)}))))
}

async fn knowledge_base(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> PageResult {
    let p = &user.principal;
    let kb_id = domain::KnowledgeBaseId::parse(&id)
        .map_err(|_| WebError(AppError::NotFound { what: "knowledge base" }))?;
    let kb = page(state.app.knowledge_base(p, kb_id).await)?;
    let docs = page(state.app.documents(p, kb_id, None, None, Some(200)).await)?;
    Ok(render(
        "kb.html",
        user.ctx("knowledge", json!({"kb": to_json(&kb), "documents": to_json(&docs.data)})),
    ))
}

async fn settings(State(state): State<AppState>, user: WebUser) -> PageResult {
    let p = &user.principal;
    let workspace = page(state.app.workspace(p).await)?;
    let members = page(state.app.members(p).await)?;
    let invites = if p.can(domain::Permission::Admin) {
        page(state.app.pending_invites(p).await)?
    } else {
        Vec::new()
    };
    // The plan and its billing; a page without them still shows the rest.
    let billing = state.app.billing(p).await.ok();
    let read_only = state.app.check_writable(&p.scope()).await.err().map(|e| e.to_string());
    Ok(render(
        "settings.html",
        user.ctx(
            "settings",
            json!({
                "workspace": to_json(&workspace),
                "members": to_json(&members),
                "invites": to_json(&invites),
                "billing": to_json(&billing),
                "read_only": read_only,
                "is_admin": p.can(domain::Permission::Admin),
                "me": p.user_id().map(|u| u.to_string()),
            }),
        ),
    ))
}

#[derive(Deserialize, Default)]
struct StudioQuery {
    tab: Option<String>,
}

async fn studio(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<StudioQuery>,
) -> PageResult {
    let p = &user.principal;
    let tab = q.tab.unwrap_or_else(|| "agents".into());
    let data = match tab.as_str() {
        "agents" => to_json(&page(state.app.agents(p, None, Some(100)).await)?.data),
        "keys" => to_json(&*page(state.app.api_keys(p).await)?),
        "runs" => to_json(&page(state.app.runs(p, None, None, Some(100)).await)?.data),
        "audit" => to_json(&page(state.app.audit_events(p, None, None, Some(100)).await)?.data),
        "knowledge" => to_json(&page(state.app.knowledge_bases(p, None, Some(100)).await)?.data),
        "api" => to_json(&page(state.app.agents(p, None, Some(100)).await)?.data),
        _ => return Err(WebError(AppError::NotFound { what: "page" })),
    };
    Ok(render("studio.html", user.ctx("studio", json!({"tab": tab, "data": data}))))
}

async fn studio_agent(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> PageResult {
    let p = &user.principal;
    let (agent_id, agent) = agent_of(&state, p, &id).await?;
    let revisions = page(state.app.agent_revisions(p, agent_id, None, Some(50)).await)?;
    let keys = page(state.app.agent_keys(p, agent_id).await)?;
    let editable = json!({
        "version": agent.version,
        "display_name": agent.display_name,
        "slug": agent.slug,
        "avatar": agent.avatar,
        "role": agent.role,
        "tagline": agent.tagline,
        "description": agent.description,
        "enabled_capabilities": agent.enabled_capabilities,
        "knowledge_base_ids": agent.knowledge_base_ids,
        "personality": agent.personality,
        "behavior": agent.behavior,
        "config": agent.config,
        "model_override": agent.model_override,
        "is_active": agent.is_active,
    });
    let editable = serde_json::to_string_pretty(&editable).unwrap_or_default();
    Ok(render(
        "studio_agent.html",
        user.ctx(
            "studio",
            json!({
                "agent": to_json(&agent),
                "editable": editable,
                "revisions": to_json(&revisions.data),
                "keys": to_json(&keys),
            }),
        ),
    ))
}

async fn studio_run(
    State(state): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> PageResult {
    let run_id =
        domain::RunId::parse(&id).map_err(|_| WebError(AppError::NotFound { what: "run" }))?;
    let run = page(state.app.run(&user.principal, run_id).await)?;
    Ok(render("run.html", user.ctx("studio", json!({"run": to_json(&run)}))))
}
