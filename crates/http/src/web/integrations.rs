//! The Integrations page (connect, status, last error, reconnect, disconnect), the MCP servers
//! page (register, test the connection, see the tools, pick them per team member) and the OAuth2
//! callback the provider sends the browser back to. The callback needs the person's session:
//! without one it goes through sign-in and comes back with the same `code` and `state`.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::{WebUser, error_page, render};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations", get(integrations))
        .route("/integrations/{provider}/callback", get(callback))
        .route("/mcp-servers", get(mcp_servers))
}

async fn mcp_servers(State(state): State<AppState>, user: WebUser) -> Response {
    let p = &user.principal;
    let (servers, links, agents) = match (
        state.app.mcp_servers(p).await,
        state.app.mcp_agent_tools(p).await,
        state.app.agents(p, None, Some(100)).await,
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c.data),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return error_page(e),
    };
    // Per server: each team member with the tools it may call (none: not linked).
    let servers: Vec<serde_json::Value> = servers
        .into_iter()
        .map(|s| {
            let members: Vec<serde_json::Value> = agents
                .iter()
                .map(|a| {
                    let id = a.id.clone();
                    let picked = links.iter().find(|l| l.agent_id == id && l.server_id == s.id);
                    json!({
                        "id": id,
                        "name": a.display_name,
                        "linked": picked.is_some(),
                        "tools": picked.map(|l| l.tools.clone()).unwrap_or_default(),
                    })
                })
                .collect();
            json!({"server": s, "members": members})
        })
        .collect();
    render(
        "mcp_servers.html",
        user.ctx(
            "integrations",
            json!({
                "servers": servers,
                "commands": state.app.mcp_commands(),
                "can_manage": p.can(domain::Permission::Config),
            }),
        ),
    )
}

#[derive(Deserialize, Default)]
struct PageQuery {
    connected: Option<String>,
}

async fn integrations(
    State(state): State<AppState>,
    user: WebUser,
    Query(q): Query<PageQuery>,
) -> Response {
    let p = &user.principal;
    let (providers, connections) =
        match (state.app.available_integrations(p).await, state.app.integrations(p).await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return error_page(e),
        };
    let broken = connections.iter().filter(|c| c.status != "active").count();
    render(
        "integrations.html",
        user.ctx(
            "integrations",
            json!({
                "providers": providers,
                "connections": connections,
                "broken": broken,
                "connected": q.connected,
                "can_manage": p.role().is_some_and(|r| r.can_manage()),
            }),
        ),
    )
}

#[derive(Deserialize, Default)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    user: WebUser,
    Path(provider): Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Response {
    if let Some(error) = q.error {
        // The person declined, or the provider refused the request.
        let detail = q.error_description.unwrap_or_default();
        let message = format!(
            "The provider did not authorize the connection ({}{}). Nothing was stored; you can try again.",
            error.chars().take(100).collect::<String>(),
            if detail.is_empty() {
                String::new()
            } else {
                format!(": {}", detail.chars().take(300).collect::<String>())
            }
        );
        return error_page(app::AppError::bad_request("authorization_declined", message));
    }
    let outcome = state
        .app
        .finish_integration(
            &user.principal,
            &provider,
            q.state.as_deref().unwrap_or_default(),
            q.code.as_deref().unwrap_or_default(),
        )
        .await;
    match outcome {
        Ok(c) => Redirect::to(&format!("/integrations?connected={}", c.id)).into_response(),
        Err(e) => error_page(e),
    }
}
