//! The Integrations page (connect, status, last error, reconnect, disconnect) and the OAuth2
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
