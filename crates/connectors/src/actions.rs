//! Each provider's actions over its REST API. Arguments arrive validated against the action's
//! schema (the runtime checks them); the answer is a short text for the model. Request and
//! response shapes follow each vendor's public API reference; base URLs come from the
//! operator's configuration so tests and private deployments point them elsewhere.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fetch::{ApiRequest, ApiResponse, FetchError, GuardedClient, Method};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::retry;

/// What a connection holds to call its provider.
#[derive(Clone)]
pub enum Credentials {
    /// An OAuth2 access token.
    Bearer(String),
    /// The fields of an API-key or basic provider's form.
    Fields(BTreeMap<String, String>),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
            Credentials::Fields(m) => f.debug_list().entries(m.keys()).finish(),
        }
    }
}

impl Credentials {
    fn field(&self, name: &str) -> Result<&str, ActionError> {
        match self {
            Credentials::Fields(m) => m
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| ActionError::Config(format!("the connection has no `{name}`"))),
            Credentials::Bearer(_) => Err(ActionError::Config(format!("`{name}` is not set"))),
        }
    }

    fn bearer(&self) -> Result<&str, ActionError> {
        match self {
            Credentials::Bearer(t) => Ok(t),
            Credentials::Fields(_) => {
                Err(ActionError::Config("the connection has no token".into()))
            }
        }
    }
}

/// Why an action failed; every message is meant for the model (and the run trace).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    /// The credentials were refused: refresh (OAuth2) or reconnect.
    #[error("the provider refused the connection's credentials")]
    Unauthorized,
    #[error("{provider} answered HTTP {status}: {message}")]
    Vendor { provider: String, status: u16, message: String },
    #[error("{0}")]
    Transport(#[from] FetchError),
    #[error("{0}")]
    Config(String),
    #[error("`{0}` is not an action this connector implements")]
    Unsupported(String),
}

/// One call of an action.
#[derive(Debug, Clone, Copy)]
pub struct ActionCall<'a> {
    pub provider: &'a str,
    pub action: &'a str,
    /// The provider's API base (placeholders such as `{subdomain}` already filled).
    pub base_url: &'a str,
    pub credentials: &'a Credentials,
    pub args: &'a Value,
    /// Now, in seconds since the epoch (webhook signatures).
    pub now_secs: i64,
}

/// Runs an action and returns the text the model reads.
pub async fn execute(http: &GuardedClient, call: ActionCall<'_>) -> Result<String, ActionError> {
    let base = call.base_url.trim_end_matches('/');
    let a = call.args;
    let s = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or_default();
    let creds = call.credentials;
    match (call.provider, call.action) {
        ("slack", "send_message") => {
            let url = format!("{base}/chat.postMessage");
            let body = json!({"channel": s("channel"), "text": s("text")});
            let r = slack(
                http,
                ApiRequest::new(Method::POST, &url).bearer(creds.bearer()?).json(&body),
            )
            .await?;
            Ok(format!(
                "Posted to {} (message ts {}).",
                r.get("channel").and_then(Value::as_str).unwrap_or(s("channel")),
                r.get("ts").and_then(Value::as_str).unwrap_or("?")
            ))
        }
        ("slack", "list_channels") => {
            let limit = a.get("limit").and_then(Value::as_u64).unwrap_or(100);
            let url = format!(
                "{base}/conversations.list?types=public_channel&exclude_archived=true&limit={limit}"
            );
            let r = slack(http, ApiRequest::new(Method::GET, &url).bearer(creds.bearer()?)).await?;
            let names: Vec<String> = r["channels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    format!(
                        "#{} ({})",
                        c["name"].as_str().unwrap_or("?"),
                        c["id"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            Ok(if names.is_empty() { "No channels.".into() } else { names.join("\n") })
        }
        ("zendesk", action) => zendesk(http, base, creds, action, a).await,
        ("hubspot", "search_contacts") => {
            let body = json!({"query": s("query"), "limit": a.get("limit").and_then(Value::as_u64).unwrap_or(10),
                "properties": ["email", "firstname", "lastname", "company"]});
            let url = format!("{base}/crm/v3/objects/contacts/search");
            let r = vendor(
                http,
                "HubSpot",
                ApiRequest::new(Method::POST, &url).bearer(creds.bearer()?).json(&body),
            )
            .await?;
            let rows: Vec<String> = r["results"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let p = &c["properties"];
                    let name = format!(
                        "{} {}",
                        p["firstname"].as_str().unwrap_or(""),
                        p["lastname"].as_str().unwrap_or("")
                    );
                    format!(
                        "{} <{}> (id {})",
                        name.trim(),
                        p["email"].as_str().unwrap_or("?"),
                        c["id"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            Ok(if rows.is_empty() { "No contacts match.".into() } else { rows.join("\n") })
        }
        ("hubspot", "create_contact") => {
            let mut props = serde_json::Map::new();
            for k in ["email", "firstname", "lastname", "company"] {
                if let Some(v) = a.get(k).and_then(Value::as_str) {
                    props.insert(k.into(), v.into());
                }
            }
            let url = format!("{base}/crm/v3/objects/contacts");
            let r = vendor(
                http,
                "HubSpot",
                ApiRequest::new(Method::POST, &url)
                    .bearer(creds.bearer()?)
                    .json(&json!({"properties": props})),
            )
            .await?;
            Ok(format!(
                "Created HubSpot contact {} (id {}).",
                s("email"),
                r["id"].as_str().unwrap_or("?")
            ))
        }
        ("gmail", "send" | "draft") => {
            let raw = URL_SAFE_NO_PAD.encode(rfc822(s("to"), s("subject"), s("body")));
            let (url, body, what) = if call.action == "send" {
                (format!("{base}/gmail/v1/users/me/messages/send"), json!({"raw": raw}), "Sent")
            } else {
                (
                    format!("{base}/gmail/v1/users/me/drafts"),
                    json!({"message": {"raw": raw}}),
                    "Saved a draft of",
                )
            };
            let r = vendor(
                http,
                "Gmail",
                ApiRequest::new(Method::POST, &url).bearer(creds.bearer()?).json(&body),
            )
            .await?;
            Ok(format!("{what} the email to {} (id {}).", s("to"), r["id"].as_str().unwrap_or("?")))
        }
        ("gmail", "search") => {
            let limit = a.get("limit").and_then(Value::as_u64).unwrap_or(10);
            let mut url = url::Url::parse(&format!("{base}/gmail/v1/users/me/messages"))
                .map_err(|_| ActionError::Config("the Gmail base URL does not parse".into()))?;
            url.query_pairs_mut()
                .append_pair("q", s("query"))
                .append_pair("maxResults", &limit.to_string());
            let r = vendor(
                http,
                "Gmail",
                ApiRequest::new(Method::GET, url.as_str()).bearer(creds.bearer()?),
            )
            .await?;
            let ids: Vec<&str> = r["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["id"].as_str())
                .collect();
            Ok(if ids.is_empty() {
                "No messages match.".into()
            } else {
                format!("{} messages: {}", ids.len(), ids.join(", "))
            })
        }
        ("google-calendar", "check_availability") => {
            let body = json!({"timeMin": s("time_min"), "timeMax": s("time_max"), "items": [{"id": "primary"}]});
            let url = format!("{base}/freeBusy");
            let r = vendor(
                http,
                "Google Calendar",
                ApiRequest::new(Method::POST, &url).bearer(creds.bearer()?).json(&body),
            )
            .await?;
            let busy: Vec<String> = r["calendars"]["primary"]["busy"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    format!(
                        "{} – {}",
                        b["start"].as_str().unwrap_or("?"),
                        b["end"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            Ok(if busy.is_empty() {
                "Free for the whole interval.".into()
            } else {
                format!("Busy: {}", busy.join("; "))
            })
        }
        ("google-calendar", "create_event") => {
            let attendees: Vec<Value> = a["attendees"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| json!({"email": e}))
                .collect();
            let body = json!({"summary": s("summary"), "description": s("description"),
                "start": {"dateTime": s("start")}, "end": {"dateTime": s("end")}, "attendees": attendees});
            let url = format!("{base}/calendars/primary/events");
            let r = vendor(
                http,
                "Google Calendar",
                ApiRequest::new(Method::POST, &url).bearer(creds.bearer()?).json(&body),
            )
            .await?;
            Ok(format!(
                "Created the event “{}” (id {}, {}).",
                s("summary"),
                r["id"].as_str().unwrap_or("?"),
                r["htmlLink"].as_str().unwrap_or("")
            ))
        }
        ("webhook", "send") => {
            let url = creds.field("url")?.to_string();
            let secret = creds.field("signing_secret")?;
            let body = serde_json::to_vec(
                &json!({"event": s("event"), "data": a["data"], "sent_at": call.now_secs}),
            )
            .unwrap_or_default();
            let signature = webhook_signature(secret, call.now_secs, &body);
            let mut request =
                ApiRequest::new(Method::POST, &url).header("echoforge-signature", signature);
            request.body = Some(("application/json", body));
            let r = retry::send(http, &request).await?;
            if r.is_success() {
                Ok(format!("Delivered the `{}` event (HTTP {}).", s("event"), r.status))
            } else {
                Err(ActionError::Vendor {
                    provider: "The webhook".into(),
                    status: r.status,
                    message: snippet(&r),
                })
            }
        }
        (p, action) => Err(ActionError::Unsupported(format!("{p}:{action}"))),
    }
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs its webhooks; a
/// receiver recomputes it and rejects old timestamps.
pub fn webhook_signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Zendesk's API-token authentication: `{email}/token:{api_token}`, Basic.
fn zendesk_auth(creds: &Credentials) -> Result<String, ActionError> {
    let raw = format!("{}/token:{}", creds.field("email")?, creds.field("api_token")?);
    Ok(format!("Basic {}", STANDARD.encode(raw)))
}

/// Checks a form provider's credentials before they are saved: Zendesk is asked who the
/// token belongs to (it answers an anonymous user, id `null`, for credentials it does not
/// know); a webhook's URL must pass the address guard. Other providers have no check.
pub async fn check_credentials(
    http: &GuardedClient,
    provider: &str,
    base_url: &str,
    creds: &Credentials,
) -> Result<(), ActionError> {
    match provider {
        "zendesk" => {
            let url = format!("{}/users/me.json", base_url.trim_end_matches('/'));
            let request =
                ApiRequest::new(Method::GET, &url).header("authorization", zendesk_auth(creds)?);
            let r = http.call(request).await?;
            if r.is_success() && r.json()["user"]["id"].is_number() {
                Ok(())
            } else {
                Err(ActionError::Unauthorized)
            }
        }
        "webhook" => {
            http.check_url(creds.field("url")?)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

async fn zendesk(
    http: &GuardedClient,
    base: &str,
    creds: &Credentials,
    action: &str,
    a: &Value,
) -> Result<String, ActionError> {
    let auth = zendesk_auth(creds)?;
    let id = a.get("ticket_id").and_then(Value::as_u64).unwrap_or(0);
    let text = |k: &str| a.get(k).and_then(Value::as_str);
    let (method, url, body) = match action {
        "create_ticket" => {
            let mut ticket =
                json!({"subject": text("subject"), "comment": {"body": text("comment")}});
            if let Some(email) = text("requester_email") {
                ticket["requester"] = json!({"email": email});
            }
            if let Some(p) = text("priority") {
                ticket["priority"] = p.into();
            }
            (Method::POST, format!("{base}/tickets.json"), Some(json!({"ticket": ticket})))
        }
        "get_ticket" => (Method::GET, format!("{base}/tickets/{id}.json"), None),
        "update_ticket" => {
            let mut ticket = json!({});
            if let Some(st) = text("status") {
                ticket["status"] = st.into();
            }
            if let Some(c) = text("comment") {
                ticket["comment"] = json!({"body": c});
            }
            (Method::PUT, format!("{base}/tickets/{id}.json"), Some(json!({"ticket": ticket})))
        }
        other => return Err(ActionError::Unsupported(format!("zendesk:{other}"))),
    };
    let mut request = ApiRequest::new(method, &url).header("authorization", auth);
    if let Some(b) = &body {
        request = request.json(b);
    }
    let r = vendor(http, "Zendesk", request).await?;
    let t = &r["ticket"];
    let number = t["id"].as_u64().unwrap_or(id);
    Ok(match action {
        "create_ticket" => {
            format!("Created Zendesk ticket #{number} “{}”.", t["subject"].as_str().unwrap_or(""))
        }
        "get_ticket" => format!(
            "Ticket #{number} “{}”: status {}, priority {}.\n{}",
            t["subject"].as_str().unwrap_or(""),
            t["status"].as_str().unwrap_or("?"),
            t["priority"].as_str().unwrap_or("none"),
            t["description"].as_str().unwrap_or("")
        ),
        _ => format!(
            "Updated Zendesk ticket #{number}: status {}.",
            t["status"].as_str().unwrap_or("?")
        ),
    })
}

/// A vendor call whose non-2xx answers are errors; 401 means the credentials are dead.
async fn vendor(
    http: &GuardedClient,
    provider: &str,
    request: ApiRequest<'_>,
) -> Result<Value, ActionError> {
    let r = retry::send(http, &request).await?;
    if r.status == 401 {
        return Err(ActionError::Unauthorized);
    }
    if !r.is_success() {
        return Err(ActionError::Vendor {
            provider: provider.into(),
            status: r.status,
            message: snippet(&r),
        });
    }
    Ok(r.json())
}

/// Slack's Web API answers 200 with `ok: false` and an error code.
async fn slack(http: &GuardedClient, request: ApiRequest<'_>) -> Result<Value, ActionError> {
    let body = vendor(http, "Slack", request).await?;
    if body["ok"] == Value::Bool(true) {
        return Ok(body);
    }
    let code = body["error"].as_str().unwrap_or("unknown_error");
    if matches!(
        code,
        "invalid_auth" | "token_revoked" | "token_expired" | "not_authed" | "account_inactive"
    ) {
        return Err(ActionError::Unauthorized);
    }
    Err(ActionError::Vendor { provider: "Slack".into(), status: 200, message: code.into() })
}

/// The start of an error body, for the model and the trace (never more than 300 characters).
fn snippet(r: &ApiResponse) -> String {
    let body = r.json();
    let msg = ["error", "message", "description", "detail"]
        .iter()
        .find_map(|k| match &body[*k] {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&r.bytes).into_owned());
    msg.chars().take(300).collect()
}

/// A plain-text RFC 5322 message; header values lose CR/LF so arguments cannot add headers.
fn rfc822(to: &str, subject: &str, body: &str) -> Vec<u8> {
    let clean = |v: &str| v.replace(['\r', '\n'], " ");
    format!(
        "To: {}\r\nSubject: {}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n{}",
        clean(to),
        clean(subject),
        body
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec
        let sig = webhook_signature("whsec", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            sig,
            "t=1700000000,v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032"
        );
        assert_ne!(sig, webhook_signature("other", 1_700_000_000, br#"{"a":1}"#));
    }

    #[test]
    fn email_arguments_cannot_inject_headers() {
        let m = String::from_utf8(rfc822("a@b.c\r\nBcc: x@y.z", "hi", "body")).unwrap();
        assert!(!m.contains("\r\nBcc:"));
    }
}
