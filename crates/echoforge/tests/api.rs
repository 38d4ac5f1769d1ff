//! The HTTP API, end to end: a real server on port 0 with a fresh SQLite database per test.

use serde_json::{Value, json};
use testkit::{Session, TestApp, spawn_app, token_in};

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

async fn problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    body(resp).await
}

fn ws(s: &Session) -> (&str, &str) {
    ("echoforge-workspace", s.workspace_id.as_str())
}

// ---------- registration and verification ----------

#[tokio::test]
async fn registration_verification_and_login_work_end_to_end() {
    let app = spawn_app().await;
    let resp = app.post("/api/v1/auth/register", None, json!({"email": "Ada@Example.com", "password": "Correct1horse", "name": "Ada", "company_name": "Analytical"})).await;
    assert_eq!(resp.status(), 201);
    let created = body(resp).await;
    assert_eq!(created["user"]["email"], "ada@example.com");
    assert_eq!(created["user"]["email_verified"], false);

    // Unverified accounts cannot sign in yet.
    let p = problem(
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ada@example.com", "password": "Correct1horse"}),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(p["code"], "email_not_verified");

    let mail = app.wait_for_mail("ada@example.com", "Verify").await;
    assert!(mail.contains("/verify-email?token="), "the mail carries a link");
    let token = token_in(&mail, "Verification token: ");
    assert_eq!(
        app.post("/api/v1/auth/verify-email", None, json!({"token": token})).await.status(),
        200
    );
    let p =
        problem(app.post("/api/v1/auth/verify-email", None, json!({"token": token})).await, 400)
            .await;
    assert_eq!(p["code"], "invalid_token", "verification links work once");

    let session = app.login("ADA@example.com", "Correct1horse").await;
    let me = body(app.get("/api/v1/auth/me", Some(&session.access_token)).await).await;
    assert_eq!(me["user"]["email_verified"], true);
    assert_eq!(me["workspaces"].as_array().unwrap().len(), 1);
    assert_eq!(me["workspaces"][0]["role"], "owner");
    assert_eq!(me["workspaces"][0]["workspace_name"], "Analytical");
    let workspace = body(app.get("/api/v1/workspace", Some(&session.access_token)).await).await;
    assert_eq!(workspace["plan"], "starter");
}

#[tokio::test]
async fn resending_verification_sends_a_new_link_and_voids_the_old_one() {
    let app = spawn_app().await;
    app.post("/api/v1/auth/register", None, json!({"email": "r@example.com", "password": "Correct1horse", "name": "R", "company_name": "R"})).await;
    let first =
        token_in(&app.wait_for_mail("r@example.com", "Verify").await, "Verification token: ");
    assert_eq!(
        app.post("/api/v1/auth/resend-verification", None, json!({"email": "r@example.com"}))
            .await
            .status(),
        202
    );
    assert_eq!(
        app.post("/api/v1/auth/resend-verification", None, json!({"email": "nobody@example.com"}))
            .await
            .status(),
        202,
        "no account enumeration"
    );
    let second =
        token_in(&app.wait_for_mail("r@example.com", "Verify").await, "Verification token: ");
    assert_ne!(first, second);
    assert_eq!(
        app.post("/api/v1/auth/verify-email", None, json!({"token": first})).await.status(),
        400
    );
    assert_eq!(
        app.post("/api/v1/auth/verify-email", None, json!({"token": second})).await.status(),
        200
    );
}

#[tokio::test]
async fn registration_refuses_bad_input_with_field_errors_and_saves_nothing() {
    let app = spawn_app().await;
    let p = problem(
        app.post(
            "/api/v1/auth/register",
            None,
            json!({"email": "not-an-email", "password": "short", "name": " ", "company_name": "X"}),
        )
        .await,
        422,
    )
    .await;
    let paths: Vec<&str> =
        p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/email", "/password", "/name"]);
    for (password, code) in [
        ("alllower1x", "password_needs_uppercase"),
        ("NoDigitsHere", "password_needs_digit"),
        ("Sh0rt", "password_too_short"),
    ] {
        let p = problem(app.post("/api/v1/auth/register", None, json!({"email": "p@example.com", "password": password, "name": "P", "company_name": "P"})).await, 422).await;
        assert_eq!(p["errors"][0]["code"], code);
    }
    // Nothing was created by the failed attempts: the address is still free.
    assert_eq!(app.post("/api/v1/auth/register", None, json!({"email": "p@example.com", "password": "Correct1horse", "name": "P", "company_name": "P"})).await.status(), 201);
    let p = problem(app.post("/api/v1/auth/register", None, json!({"email": "P@EXAMPLE.com", "password": "Correct1horse", "name": "P", "company_name": "P"})).await, 422).await;
    assert_eq!(p["errors"][0]["code"], "email_taken", "emails are unique case-insensitively");
}

#[tokio::test]
async fn malformed_requests_get_specific_problems() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/register");
    let resp = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 400).await["code"], "malformed_json");
    let resp = app.client.post(&url).body("email=a").send().await.unwrap();
    assert_eq!(problem(resp, 415).await["code"], "unsupported_media_type");
    let resp = app
        .client
        .post(&url)
        .json(&json!({"email": 5, "password": "x", "name": "x", "company_name": "x"}))
        .send()
        .await
        .unwrap();
    let p = problem(resp, 422).await;
    assert_eq!(p["errors"][0]["path"], "/email");
    let resp = app.client.post(&url).json(&json!({"email": "a@b.co", "password": "Correct1horse", "name": "x", "company_name": "x", "admin": true})).send().await.unwrap();
    assert_eq!(problem(resp, 422).await["errors"][0]["path"], "/admin");
    let huge = "x".repeat(2 * 1024 * 1024);
    let resp = app
        .client
        .post(&url)
        .json(&json!({"email": huge, "password": "x", "name": "x", "company_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 413).await["code"], "body_too_large");
    let p = problem(app.get("/api/v1/nope", None).await, 404).await;
    assert_eq!(p["code"], "not_found");
}

// ---------- sign-in, sessions, passwords ----------

#[tokio::test]
async fn login_is_refused_after_five_wrong_passwords_even_with_the_right_one() {
    let app = spawn_app().await;
    let s = app.signed_up("brute@example.com").await;
    for _ in 0..5 {
        let p = problem(
            app.post(
                "/api/v1/auth/login",
                None,
                json!({"email": s.email, "password": "Wrong1password"}),
            )
            .await,
            401,
        )
        .await;
        assert_eq!(p["code"], "invalid_credentials");
    }
    let resp = app
        .post("/api/v1/auth/login", None, json!({"email": s.email, "password": s.password}))
        .await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry));
    // Unknown accounts answer like wrong passwords.
    let p = problem(
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": "ghost@example.com", "password": "Whatever1"}),
        )
        .await,
        401,
    )
    .await;
    assert_eq!(p["code"], "invalid_credentials");
}

#[tokio::test]
async fn login_is_rate_limited_per_ip_across_accounts() {
    let app = testkit::spawn_app_with(testkit::Options {
        login_failures_per_ip: Some(3),
        ..Default::default()
    })
    .await;
    for i in 0..3 {
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": format!("u{i}@example.com"), "password": "Wrong1password"}),
        )
        .await;
    }
    let resp = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "fresh@example.com", "password": "Wrong1password"}),
        )
        .await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_replayed_one_signs_the_session_out() {
    let app = spawn_app().await;
    let s = app.signed_up("rot@example.com").await;
    let next = body(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": s.refresh_token})).await,
    )
    .await;
    let new_access = next["access_token"].as_str().unwrap().to_owned();
    let new_refresh = next["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, s.refresh_token);
    assert_eq!(app.get("/api/v1/auth/me", Some(&new_access)).await.status(), 200);
    // Replaying the first refresh token revokes the whole family.
    let p = problem(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": s.refresh_token})).await,
        401,
    )
    .await;
    assert_eq!(p["code"], "refresh_token_reused");
    assert_eq!(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": new_refresh}))
            .await
            .status(),
        401
    );
    let p = problem(app.get("/api/v1/auth/me", Some(&new_access)).await, 401).await;
    assert_eq!(p["code"], "session_revoked");
    let p = problem(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": "rt_forged"})).await,
        401,
    )
    .await;
    assert_eq!(p["code"], "invalid_refresh_token");
}

#[tokio::test]
async fn forged_and_missing_tokens_are_refused() {
    let app = spawn_app().await;
    let s = app.signed_up("forge@example.com").await;
    let mut forged = s.access_token.clone();
    forged.pop();
    forged.push(if s.access_token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        problem(app.get("/api/v1/workspace", Some(&forged)).await, 401).await["code"],
        "invalid_token"
    );
    assert_eq!(
        problem(app.get("/api/v1/workspace", None).await, 401).await["code"],
        "missing_credentials"
    );
    let resp = app
        .client
        .get(app.url("/api/v1/workspace"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 401).await["code"], "invalid_credentials");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let s = app.signed_up("out@example.com").await;
    assert_eq!(
        app.post("/api/v1/auth/logout", Some(&s.access_token), json!({})).await.status(),
        204
    );
    assert_eq!(
        problem(app.get("/api/v1/auth/me", Some(&s.access_token)).await, 401).await["code"],
        "session_revoked"
    );
    assert_eq!(
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": s.refresh_token}))
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn changing_the_password_signs_out_other_sessions_only() {
    let app = spawn_app().await;
    let here = app.signed_up("pw@example.com").await;
    let elsewhere = app.login(&here.email, &here.password).await;
    let p = problem(
        app.post(
            "/api/v1/auth/password",
            Some(&here.access_token),
            json!({"current_password": "Wrong1pass", "new_password": "Better2horse"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "/current_password");
    let p = problem(
        app.post(
            "/api/v1/auth/password",
            Some(&here.access_token),
            json!({"current_password": here.password, "new_password": "weak"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "/new_password");
    assert_eq!(
        app.post(
            "/api/v1/auth/password",
            Some(&here.access_token),
            json!({"current_password": here.password, "new_password": "Better2horse"})
        )
        .await
        .status(),
        204
    );
    assert_eq!(app.get("/api/v1/auth/me", Some(&here.access_token)).await.status(), 200);
    assert_eq!(app.get("/api/v1/auth/me", Some(&elsewhere.access_token)).await.status(), 401);
    assert_eq!(
        app.post(
            "/api/v1/auth/login",
            None,
            json!({"email": here.email, "password": here.password})
        )
        .await
        .status(),
        401
    );
    app.login(&here.email, "Better2horse").await;
}

#[tokio::test]
async fn a_password_reset_link_works_once_and_signs_everyone_out() {
    let app = spawn_app().await;
    let s = app.signed_up("reset@example.com").await;
    assert_eq!(
        app.post("/api/v1/auth/password-reset", None, json!({"email": "reset@example.com"}))
            .await
            .status(),
        202
    );
    assert_eq!(
        app.post("/api/v1/auth/password-reset", None, json!({"email": "nobody@example.com"}))
            .await
            .status(),
        202
    );
    let token = token_in(&app.wait_for_mail("reset@example.com", "Reset").await, "Reset token: ");
    let p = problem(
        app.post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "new_password": "nouppercase1"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "password_needs_uppercase");
    assert_eq!(
        app.post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "new_password": "Fresh3start"})
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.post(
            "/api/v1/auth/password-reset/confirm",
            None,
            json!({"token": token, "new_password": "Fresh4start"})
        )
        .await
        .status(),
        400,
        "single use"
    );
    assert_eq!(app.get("/api/v1/auth/me", Some(&s.access_token)).await.status(), 401);
    app.login(&s.email, "Fresh3start").await;
}

// ---------- workspace, members, invites ----------

async fn invite_and_join(app: &TestApp, owner: &Session, email: &str, role: &str) -> Session {
    let resp = app
        .post(
            "/api/v1/workspace/invites",
            Some(&owner.access_token),
            json!({"email": email, "role": role}),
        )
        .await;
    assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    let token = token_in(&app.wait_for_mail(email, "invited").await, "Invite token: ");
    let resp = app
        .post(
            &format!("/api/v1/invites/{token}/accept"),
            None,
            json!({"name": "Invited", "password": "Joiner1pass"}),
        )
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let mut s = app.login(email, "Joiner1pass").await;
    s.workspace_id = owner.workspace_id.clone();
    s
}

#[tokio::test]
async fn owners_edit_the_profile_and_members_only_read_it() {
    let app = spawn_app().await;
    let owner = app.signed_up("owner@example.com").await;
    let resp = app.patch("/api/v1/workspace", Some(&owner.access_token), json!({"name": "Acme", "phone": "+1 555 0100", "website": "https://acme.test", "industry": "Retail"})).await;
    let w = body(resp).await;
    assert_eq!(
        (w["name"].as_str(), w["website"].as_str()),
        (Some("Acme"), Some("https://acme.test"))
    );
    let w = body(
        app.patch("/api/v1/workspace", Some(&owner.access_token), json!({"phone": null})).await,
    )
    .await;
    assert!(w["phone"].is_null());
    assert_eq!(w["website"], "https://acme.test", "absent fields stay");
    let p = problem(
        app.patch(
            "/api/v1/workspace",
            Some(&owner.access_token),
            json!({"website": "ftp://x", "name": ""}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"].as_array().unwrap().len(), 2);
    let member = invite_and_join(&app, &owner, "m@example.com", "member").await;
    assert_eq!(
        body(app.get("/api/v1/workspace", Some(&member.access_token)).await).await["name"],
        "Acme"
    );
    let p = problem(
        app.patch("/api/v1/workspace", Some(&member.access_token), json!({"name": "Mine"})).await,
        403,
    )
    .await;
    assert_eq!(p["code"], "owner_or_admin_required");
}

#[tokio::test]
async fn invites_add_members_once_and_can_be_revoked() {
    let app = spawn_app().await;
    let owner = app.signed_up("boss@example.com").await;
    let joined = invite_and_join(&app, &owner, "new@example.com", "admin").await;
    let members = body(app.get("/api/v1/workspace/members", Some(&owner.access_token)).await).await;
    let roles: Vec<(String, String)> = members["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap().into(), m["role"].as_str().unwrap().into()))
        .collect();
    assert!(roles.contains(&("new@example.com".into(), "admin".into())));
    assert_eq!(
        body(app.get("/api/v1/auth/me", Some(&joined.access_token)).await).await["user"]["email_verified"],
        true
    );

    // Inviting a member again is refused; a revoked invite cannot be used.
    let p = problem(
        app.post(
            "/api/v1/workspace/invites",
            Some(&owner.access_token),
            json!({"email": "NEW@example.com", "role": "member"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(p["code"], "already_member");
    let inv = body(
        app.post(
            "/api/v1/workspace/invites",
            Some(&owner.access_token),
            json!({"email": "later@example.com", "role": "member"}),
        )
        .await,
    )
    .await;
    let token =
        token_in(&app.wait_for_mail("later@example.com", "invited").await, "Invite token: ");
    let pending = body(app.get("/api/v1/workspace/invites", Some(&owner.access_token)).await).await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.delete(
            &format!("/api/v1/workspace/invites/{}", inv["id"].as_str().unwrap()),
            Some(&owner.access_token)
        )
        .await
        .status(),
        204
    );
    let p = problem(
        app.post(
            &format!("/api/v1/invites/{token}/accept"),
            None,
            json!({"name": "L", "password": "Later1pass"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(p["code"], "invite_used");
    assert_eq!(
        problem(app.post("/api/v1/invites/inv_bogus/accept", None, json!({})).await, 404).await["code"],
        "not_found"
    );
    let p = problem(
        app.post(
            "/api/v1/workspace/invites",
            Some(&owner.access_token),
            json!({"email": "x@example.com", "role": "emperor"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "/role");
}

#[tokio::test]
async fn an_existing_user_accepts_an_invite_with_their_session_and_picks_the_workspace_per_request()
{
    let app = spawn_app().await;
    let a = app.signed_up("a@example.com").await;
    let b = app.signed_up("b@example.com").await;
    app.post(
        "/api/v1/workspace/invites",
        Some(&a.access_token),
        json!({"email": "b@example.com", "role": "member"}),
    )
    .await;
    let token = token_in(&app.wait_for_mail("b@example.com", "invited").await, "Invite token: ");
    // Someone else's session cannot take the invite.
    let p = problem(
        app.post(&format!("/api/v1/invites/{token}/accept"), Some(&a.access_token), json!({}))
            .await,
        403,
    )
    .await;
    assert_eq!(p["code"], "invite_email_mismatch");
    assert_eq!(
        app.post(&format!("/api/v1/invites/{token}/accept"), Some(&b.access_token), json!({}))
            .await
            .status(),
        200
    );
    let me = body(app.get("/api/v1/auth/me", Some(&b.access_token)).await).await;
    assert_eq!(me["workspaces"].as_array().unwrap().len(), 2);
    // Default: the first workspace joined (b's own); the header picks another.
    assert_eq!(
        body(app.get("/api/v1/workspace", Some(&b.access_token)).await).await["id"],
        b.workspace_id.as_str()
    );
    let resp = app
        .client
        .get(app.url("/api/v1/workspace"))
        .bearer_auth(&b.access_token)
        .header("echoforge-workspace", &a.workspace_id)
        .send()
        .await
        .unwrap();
    assert_eq!(body(resp).await["id"], a.workspace_id.as_str());
    let resp = app
        .client
        .get(app.url("/api/v1/workspace"))
        .bearer_auth(&a.access_token)
        .header("echoforge-workspace", &b.workspace_id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404, "a workspace you do not belong to does not exist for you");
}

#[tokio::test]
async fn roles_change_and_the_last_owner_stays() {
    let app = spawn_app().await;
    let owner = app.signed_up("o@example.com").await;
    let member = invite_and_join(&app, &owner, "mem@example.com", "member").await;
    let path = format!("/api/v1/workspace/members/{}", owner.user_id);
    let p =
        problem(app.patch(&path, Some(&owner.access_token), json!({"role": "admin"})).await, 409)
            .await;
    assert_eq!(p["code"], "last_owner");
    assert_eq!(
        problem(app.delete(&path, Some(&owner.access_token)).await, 409).await["code"],
        "last_owner"
    );
    // Members cannot manage members.
    let p = problem(
        app.patch(
            &format!("/api/v1/workspace/members/{}", member.user_id),
            Some(&member.access_token),
            json!({"role": "owner"}),
        )
        .await,
        403,
    )
    .await;
    assert_eq!(p["code"], "owner_or_admin_required");
    let m = body(
        app.patch(
            &format!("/api/v1/workspace/members/{}", member.user_id),
            Some(&owner.access_token),
            json!({"role": "owner"}),
        )
        .await,
    )
    .await;
    assert_eq!(m["role"], "owner");
    assert_eq!(
        body(app.patch(&path, Some(&owner.access_token), json!({"role": "member"})).await).await["role"],
        "member"
    );
    assert_eq!(app.delete(&path, Some(&member.access_token)).await.status(), 204);
    assert_eq!(
        body(app.get("/api/v1/workspace/members", Some(&member.access_token)).await).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.delete("/api/v1/workspace/members/usr_nope", Some(&member.access_token)).await.status(),
        404
    );
}

// ---------- API keys ----------

#[tokio::test]
async fn api_keys_are_shown_once_authenticate_and_stop_when_revoked() {
    let app = spawn_app().await;
    let s = app.signed_up("dev@example.com").await;
    let created = body(
        app.post(
            "/api/v1/api-keys",
            Some(&s.access_token),
            json!({"name": "ci", "permissions": ["read", "chat"]}),
        )
        .await,
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("ef_") && secret.starts_with(created["prefix"].as_str().unwrap()));
    let listed = body(app.get("/api/v1/api-keys", Some(&secret)).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("secret").is_none(), "the secret is never listed");
    assert!(!listed.to_string().contains(&secret[3..]));
    // A key without `admin` cannot mint keys or read the audit log.
    let p = problem(
        app.post("/api/v1/api-keys", Some(&secret), json!({"name": "x", "permissions": ["read"]}))
            .await,
        403,
    )
    .await;
    assert_eq!(p["code"], "permission_denied");
    assert_eq!(app.get("/api/v1/audit-events", Some(&secret)).await.status(), 403);
    // Last-used is recorded (batched).
    app.app.flush().await;
    let listed = body(app.get("/api/v1/api-keys", Some(&s.access_token)).await).await;
    assert!(listed["data"][0]["last_used_at"].is_i64());
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("/api/v1/api-keys/{id}"), Some(&s.access_token)).await.status(),
        204
    );
    assert_eq!(
        problem(app.get("/api/v1/api-keys", Some(&secret)).await, 401).await["code"],
        "invalid_api_key"
    );
    assert_eq!(
        app.delete(&format!("/api/v1/api-keys/{id}"), Some(&s.access_token)).await.status(),
        404
    );
    assert_eq!(
        problem(app.get("/api/v1/api-keys", Some("ef_made_up")).await, 401).await["code"],
        "invalid_api_key"
    );
}

#[tokio::test]
async fn api_key_requests_are_validated_and_ip_allowlists_hold() {
    let app = spawn_app().await;
    let s = app.signed_up("ip@example.com").await;
    let p = problem(app.post("/api/v1/api-keys", Some(&s.access_token), json!({"name": "", "permissions": ["fly"], "ip_allowlist": ["nonsense"], "rate_per_minute": 0})).await, 422).await;
    let paths: Vec<&str> =
        p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/name", "/permissions/0", "/rate_per_minute", "/ip_allowlist/0"]);
    let far = body(
        app.post(
            "/api/v1/api-keys",
            Some(&s.access_token),
            json!({"name": "far", "permissions": ["read"], "ip_allowlist": ["10.0.0.0/8"]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        problem(app.get("/api/v1/api-keys", Some(far["secret"].as_str().unwrap())).await, 403)
            .await["code"],
        "ip_not_allowed"
    );
    let near = body(
        app.post(
            "/api/v1/api-keys",
            Some(&s.access_token),
            json!({"name": "near", "permissions": ["read"], "ip_allowlist": ["127.0.0.1/32"]}),
        )
        .await,
    )
    .await;
    assert_eq!(
        app.get("/api/v1/api-keys", Some(near["secret"].as_str().unwrap())).await.status(),
        200
    );
}

// ---------- isolation ----------

#[tokio::test]
async fn another_workspaces_resources_are_not_found() {
    let app = spawn_app().await;
    let a = app.signed_up("iso-a@example.com").await;
    let b = app.signed_up("iso-b@example.com").await;
    let key = body(
        app.post(
            "/api/v1/api-keys",
            Some(&a.access_token),
            json!({"name": "a", "permissions": ["read"]}),
        )
        .await,
    )
    .await;
    let invite = body(
        app.post(
            "/api/v1/workspace/invites",
            Some(&a.access_token),
            json!({"email": "guest@example.com", "role": "member"}),
        )
        .await,
    )
    .await;
    let key_path = format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap());
    assert_eq!(app.delete(&key_path, Some(&b.access_token)).await.status(), 404);
    assert_eq!(
        app.delete(
            &format!("/api/v1/workspace/invites/{}", invite["id"].as_str().unwrap()),
            Some(&b.access_token)
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.patch(
            &format!("/api/v1/workspace/members/{}", a.user_id),
            Some(&b.access_token),
            json!({"role": "member"})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.delete(&format!("/api/v1/workspace/members/{}", a.user_id), Some(&b.access_token))
            .await
            .status(),
        404
    );
    assert!(
        body(app.get("/api/v1/api-keys", Some(&b.access_token)).await).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        body(app.get("/api/v1/workspace/invites", Some(&b.access_token)).await).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let members = body(app.get("/api/v1/workspace/members", Some(&b.access_token)).await).await;
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
    let audit = body(app.get("/api/v1/audit-events", Some(&b.access_token)).await).await;
    assert!(audit["data"].as_array().unwrap().iter().all(|e| e["target"] != key["id"]));
    // A's key cannot be pointed at B's workspace.
    let resp = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(key["secret"].as_str().unwrap())
        .header(ws(&b).0, ws(&b).1)
        .send()
        .await
        .unwrap();
    assert_eq!(problem(resp, 403).await["code"], "workspace_mismatch");
    // A's key still works for A.
    assert_eq!(
        app.get("/api/v1/api-keys", Some(key["secret"].as_str().unwrap())).await.status(),
        200
    );
}

// ---------- audit log ----------

#[tokio::test]
async fn security_events_are_audited_with_actor_ip_and_time() {
    let app = spawn_app().await;
    let owner = app.signed_up("audit@example.com").await;
    app.post("/api/v1/auth/login", None, json!({"email": owner.email, "password": "Wrong1pass"}))
        .await;
    let key = body(
        app.post(
            "/api/v1/api-keys",
            Some(&owner.access_token),
            json!({"name": "k", "permissions": ["read"]}),
        )
        .await,
    )
    .await;
    app.delete(
        &format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()),
        Some(&owner.access_token),
    )
    .await;
    let member = invite_and_join(&app, &owner, "aud-m@example.com", "member").await;
    app.patch(
        &format!("/api/v1/workspace/members/{}", member.user_id),
        Some(&owner.access_token),
        json!({"role": "admin"}),
    )
    .await;
    app.delete(&format!("/api/v1/workspace/members/{}", member.user_id), Some(&owner.access_token))
        .await;
    app.post(
        "/api/v1/auth/password",
        Some(&owner.access_token),
        json!({"current_password": owner.password, "new_password": "Newer5pass"}),
    )
    .await;
    let page =
        body(app.get("/api/v1/audit-events?limit=200", Some(&owner.access_token)).await).await;
    let actions: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for expected in [
        "login.succeeded",
        "api_key.created",
        "api_key.revoked",
        "invite.sent",
        "invite.accepted",
        "member.added",
        "member.role_changed",
        "member.removed",
        "password.changed",
    ] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
    let created =
        page["data"].as_array().unwrap().iter().find(|e| e["action"] == "api_key.created").unwrap();
    assert_eq!(created["actor_user_id"], owner.user_id.as_str());
    assert_eq!(created["ip"], "127.0.0.1");
    assert!(created["created_at"].as_i64().unwrap() > 0);
    let only = body(
        app.get("/api/v1/audit-events?action=api_key.created", Some(&owner.access_token)).await,
    )
    .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 1);
    let first =
        body(app.get("/api/v1/audit-events?limit=2", Some(&owner.access_token)).await).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = body(
        app.get(
            &format!("/api/v1/audit-events?limit=2&cursor={cursor}"),
            Some(&owner.access_token),
        )
        .await,
    )
    .await;
    assert_ne!(first["data"][0]["id"], next["data"][0]["id"]);
    assert_eq!(
        app.get("/api/v1/audit-events?cursor=bogus", Some(&owner.access_token)).await.status(),
        400
    );
}

#[tokio::test]
async fn members_cannot_read_the_audit_log() {
    let app = spawn_app().await;
    let owner = app.signed_up("al@example.com").await;
    let member = invite_and_join(&app, &owner, "al-m@example.com", "member").await;
    assert_eq!(app.get("/api/v1/audit-events", Some(&member.access_token)).await.status(), 403);
}

// ---------- operations ----------

#[tokio::test]
async fn health_readiness_metrics_and_openapi_are_served() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.text().await.unwrap(), "ok");
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let resp = app.get("/healthz", None).await;
    assert!(resp.headers().contains_key("x-request-id"), "every response carries a request id");
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("http_request_duration_seconds_bucket"));
    let doc = body(app.get("/api/v1/openapi.json", None).await).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/workspace/members/{user_id}",
        "/api/v1/invites/{token}/accept",
        "/api/v1/api-keys/{key_id}",
        "/api/v1/audit-events",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
}

#[tokio::test]
async fn a_graceful_stop_lets_the_server_finish() {
    let app = spawn_app().await;
    let s = app.signed_up("stop@example.com").await;
    assert_eq!(app.get("/api/v1/auth/me", Some(&s.access_token)).await.status(), 200);
    let base = app.base.clone();
    tokio::time::timeout(std::time::Duration::from_secs(30), app.stop())
        .await
        .expect("the server stops within its grace period");
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "the port is closed after shutdown"
    );
}

// ---------- mail over a real SMTP server ----------

/// Starts Python's aiosmtpd (a real SMTP server) on a free port, printing what it receives.
fn start_smtp_server() -> (std::process::Child, u16, std::sync::Arc<std::sync::Mutex<String>>) {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = std::process::Command::new("python3")
        .args([
            "-u",
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Debugging",
            "stdout",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd runs (pip install aiosmtpd; scripts/test does)");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let out = child.stdout.take().unwrap();
    let sink = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port, seen);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the SMTP server did not start");
}

#[tokio::test]
async fn verification_mail_goes_out_over_smtp_when_configured() {
    let (mut smtp, port, seen) = start_smtp_server();
    let app = testkit::spawn_app_with(testkit::Options {
        smtp_url: Some(format!("smtp://127.0.0.1:{port}")),
        ..Default::default()
    })
    .await;
    let resp = app.post("/api/v1/auth/register", None, json!({"email": "smtp@example.com", "password": "Correct1horse", "name": "S", "company_name": "S"})).await;
    assert_eq!(resp.status(), 201);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let token = loop {
        let text = seen.lock().unwrap().clone();
        if text.contains("Verification token: ") {
            break token_in(&text, "Verification token: ");
        }
        assert!(std::time::Instant::now() < deadline, "no mail reached the SMTP server:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(seen.lock().unwrap().contains("smtp@example.com"));
    assert!(
        std::fs::read_dir(app.outbox()).unwrap().next().is_none(),
        "nothing went to the outbox"
    );
    assert_eq!(
        app.post("/api/v1/auth/verify-email", None, json!({"token": token})).await.status(),
        200
    );
    let _ = smtp.kill();
    let _ = smtp.wait();
}

// ---------- key permissions ----------

#[tokio::test]
async fn a_key_reads_what_its_permissions_work_on_as_the_published_matrix_says() {
    let app = spawn_app().await;
    let s = app.signed_up("perms@example.com").await;
    let ws = s.workspace_id.as_str();
    let agent = app.create_agent(ws, "Ada", "ada", Default::default()).await;
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": "Docs"})).await,
    )
    .await;
    let kb = kb["id"].as_str().unwrap().to_owned();
    // (route, permissions that read it), as in the matrix of the API reference.
    let routes = [
        ("/api/v1/agents".to_owned(), &["read", "chat", "config"][..]),
        (format!("/api/v1/agents/{agent}"), &["read", "chat", "config"][..]),
        (format!("/api/v1/agents/{agent}/revisions"), &["read", "chat", "config"][..]),
        ("/api/v1/knowledge-bases".to_owned(), &["read", "upload", "config"][..]),
        (format!("/api/v1/knowledge-bases/{kb}/documents"), &["read", "upload", "config"][..]),
        ("/api/v1/conversations".to_owned(), &["read", "chat"][..]),
        ("/api/v1/runs".to_owned(), &["read", "chat"][..]),
        ("/api/v1/api-keys".to_owned(), &["read"][..]),
        ("/api/v1/workspace/members".to_owned(), &["read"][..]),
    ];
    for perm in ["read", "write", "chat", "upload", "config", "admin"] {
        let key = app.create_key(ws, None, &[perm]).await;
        for (route, readers) in &routes {
            let status = app.get(route, Some(&key)).await.status().as_u16();
            let expected = if readers.contains(&perm) { 200 } else { 403 };
            assert_eq!(status, expected, "GET {route} with a `{perm}` key");
        }
    }
    // The person's case: a chat + upload + config key reads the agents it configures.
    let key = app.create_key(ws, None, &["chat", "upload", "config"]).await;
    let agents = body(app.get("/api/v1/agents", Some(&key)).await).await;
    assert_eq!(agents["data"][0]["id"], agent.as_str());
    // An agent key with `config` reads its agent but no knowledge base.
    let agent_key = app.create_key(ws, Some(&agent), &["config"]).await;
    assert_eq!(app.get(&format!("/api/v1/agents/{agent}"), Some(&agent_key)).await.status(), 200);
    assert_eq!(app.get("/api/v1/knowledge-bases", Some(&agent_key)).await.status(), 403);
    // The matrix is in the API reference.
    let doc = body(app.get("/api/v1/openapi.json", None).await).await;
    let intro = doc["info"]["description"].as_str().unwrap();
    assert!(intro.contains("| `PATCH /api/v1/agents/{id}`"), "{intro}");
}

#[tokio::test]
async fn a_key_created_without_permissions_gets_the_documented_default() {
    let app = spawn_app().await;
    let s = app.signed_up("default-perms@example.com").await;
    let created =
        app.post("/api/v1/api-keys", Some(&s.access_token), json!({"name": "plain"})).await;
    assert_eq!(created.status(), 201);
    let created = body(created).await;
    assert_eq!(created["permissions"], json!(["read", "chat"]));
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(app.get("/api/v1/agents", Some(secret)).await.status(), 200);
    assert_eq!(
        app.post("/api/v1/knowledge-bases", Some(secret), json!({"name": "x"})).await.status(),
        403
    );
    // An empty list is still a mistake worth saying.
    let p = problem(
        app.post(
            "/api/v1/api-keys",
            Some(&s.access_token),
            json!({"name": "none", "permissions": []}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "/permissions");
    // An agent key without permissions: chat and upload.
    let agent = app.create_agent(&s.workspace_id, "Bo", "bo", Default::default()).await;
    let key = body(
        app.post(
            &format!("/api/v1/agents/{agent}/keys"),
            Some(&s.access_token),
            json!({"name": "bo"}),
        )
        .await,
    )
    .await;
    assert_eq!(key["permissions"], json!(["chat", "upload"]), "{key}");
}

// ---------- request limits: RateLimit-* headers on every surface ----------

fn rate(resp: &reqwest::Response) -> Option<(i64, i64, i64)> {
    let n = |h: &str| resp.headers().get(h).map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
    Some((n("ratelimit-limit")?, n("ratelimit-remaining")?, n("ratelimit-reset")?))
}

#[tokio::test]
async fn keys_with_request_limits_say_where_they_stand_on_rest_v1_and_mcp() {
    let app = spawn_app().await;
    let s = app.signed_up("limits@example.com").await;
    // Start well inside a minute, so the window does not roll over mid-test.
    let into_minute = domain::time::now_ms() / 1000 % 60;
    if into_minute > 45 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - into_minute) as u64)).await;
    }
    let created = body(
        app.post(
            "/api/v1/api-keys",
            Some(&s.access_token),
            json!({"name": "limited", "permissions": ["chat", "read"], "rate_per_minute": 3}),
        )
        .await,
    )
    .await;
    let key = created["secret"].as_str().unwrap().to_owned();

    let r = app.get("/api/v1/agents", Some(&key)).await;
    assert_eq!(r.status(), 200);
    let (limit, remaining, reset) = rate(&r).expect("RateLimit headers on REST");
    assert_eq!((limit, remaining), (3, 2));
    assert!((1..=60).contains(&reset), "{reset}");
    let r = app.client.get(app.url("/v1/models")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(rate(&r).map(|r| (r.0, r.1)), Some((3, 1)), "on /v1");
    let r = app
        .client
        .post(app.url("/mcp"))
        .bearer_auth(&key)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(rate(&r).map(|r| (r.0, r.1)), Some((3, 0)), "on /mcp");

    // The fourth is refused with when to come back, on each surface.
    let r = app.get("/api/v1/agents", Some(&key)).await;
    assert_eq!(r.status(), 429);
    let retry: i64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers()["ratelimit-remaining"], "0");
    let r = app.client.get(app.url("/v1/models")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(body(r).await["error"]["type"], "rate_limit_error");

    // A key without limits of its own stands against the starter plan's 600 requests a
    // minute for the workspace's keys; people signed in get no headers.
    let unlimited = body(
        app.post(
            "/api/v1/api-keys",
            Some(&s.access_token),
            json!({"name": "free", "permissions": ["read"]}),
        )
        .await,
    )
    .await;
    let r = app.get("/api/v1/agents", Some(unlimited["secret"].as_str().unwrap())).await;
    assert_eq!((r.status().as_u16(), rate(&r).map(|(limit, ..)| limit)), (200, Some(600)));
    let r = app.get("/api/v1/agents", Some(&s.access_token)).await;
    assert_eq!((r.status().as_u16(), rate(&r)), (200, None));
}
