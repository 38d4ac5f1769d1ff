//! A full walk through each seeded template's wizard with plausible answers, step by step as
//! the API would drive it (hydrate, validate, save, next), then the final check and the prompt.
//! Each template is walked with its conditional fields toggled on and off.

use catalog::onboarding::{
    Answers, KNOWLEDGE_BASE_KEY, final_check, first_step, hydrate_step, next_step, previous_step,
    validate_step,
};
use catalog::{AgentFields, PromptContext, render_prompt};
use serde_json::{Value, json};

use crate::{answers, catalog};

const KB_ID: &str = "kb_0192f3a4b5c67d8e9f0a1b2c3d4e5f60";

/// Walks the wizard of `slug` with `given` (flat answers); returns the cleaned answers and the
/// rendered prompt.
fn walk(slug: &str, given: Value) -> (Answers, String) {
    let t = catalog().template(slug).unwrap();
    let schema = &t.onboarding_schema;
    let given = answers(given);
    let mut saved = Answers::new();
    let mut step = first_step(schema).map(str::to_owned);
    let mut visited = Vec::new();
    while let Some(id) = step {
        let hydrated = hydrate_step(schema, &id, &saved).unwrap();
        assert_eq!(hydrated.index, visited.len());
        assert_eq!(hydrated.previous.as_deref(), previous_step(schema, &id).unwrap());
        let st = schema.step(&id).unwrap();
        let mut values: Answers = given
            .iter()
            .filter(|(k, _)| st.fields().any(|f| &f.name == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if st.knowledge_base
            && let Some(kb) = given.get(KNOWLEDGE_BASE_KEY)
        {
            values.insert(KNOWLEDGE_BASE_KEY.into(), kb.clone());
        }
        let clean = validate_step(schema, &id, &values, &saved)
            .unwrap_or_else(|e| panic!("{slug}/{id}: {e:?}"));
        saved.extend(clean);
        visited.push(id.clone());
        step = next_step(schema, &id).unwrap().map(str::to_owned);
    }
    assert_eq!(visited.len(), schema.steps.len());
    let done = final_check(schema, &saved).unwrap_or_else(|e| panic!("{slug} final: {e:?}"));
    assert_eq!(done, saved, "final check keeps exactly what the steps saved");
    let ctx = PromptContext {
        agent: AgentFields {
            name: done.get("agent_name").and_then(Value::as_str).unwrap_or("Alex").to_owned(),
            role: t.role.clone().unwrap_or_default(),
            tagline: None,
            description: None,
        },
        answers: done.clone(),
        capabilities: t.default_capabilities.clone(),
    };
    let prompt = render_prompt(&t.system_prompt_template, schema, &ctx)
        .unwrap_or_else(|e| panic!("{slug} prompt: {e}"));
    assert!(!prompt.contains("{{") && !prompt.contains("{%"), "{slug}: {prompt}");
    (done, prompt)
}

fn has(prompt: &str, parts: &[&str]) {
    for p in parts {
        assert!(prompt.contains(p), "missing {p:?} in:\n{prompt}");
    }
}

fn lacks(prompt: &str, parts: &[&str]) {
    for p in parts {
        assert!(!prompt.contains(p), "unexpected {p:?} in:\n{prompt}");
    }
}

#[test]
fn executive_assistant() {
    let (a, p) = walk(
        "executive-assistant",
        json!({
            "agent_name": "Alex", "principal_name": "Jordan Lee", "principal_title": "CEO", "timezone": "Europe/Berlin",
            "email_handling": "send_autonomously", "internal_domain": "acme.example", "signature": "Alex, on behalf of Jordan",
            "working_hours_start": "08:30", "working_hours_end": "18:00", "meeting_buffer": 10,
            "protect_focus_time": true, "focus_time_blocks": "Tuesday mornings", "vip_contacts": "the board",
            "knowledge_base": {"mode": "existing", "knowledge_base_id": KB_ID}
        }),
    );
    assert_eq!(a["internal_domain"], "acme.example");
    has(
        &p,
        &[
            "You are Alex, the executive assistant to Jordan Lee, CEO.",
            "Europe/Berlin",
            "addresses at acme.example",
            "Tuesday mornings",
            "08:30 to 18:00",
            "knowledge base",
        ],
    );
    let (a, p) = walk(
        "executive-assistant",
        json!({
            "agent_name": "Alex", "principal_name": "Jordan Lee", "timezone": "UTC",
            "email_handling": "draft_only", "internal_domain": "ignored.example",
            "working_hours_start": "09:00", "working_hours_end": "17:00", "protect_focus_time": false, "focus_time_blocks": "ignored"
        }),
    );
    assert!(
        a.get("internal_domain").is_none() && a.get("focus_time_blocks").is_none(),
        "hidden answers are dropped"
    );
    has(&p, &["Never send email yourself"]);
    lacks(&p, &["ignored", "focus blocks", "knowledge base", ", CEO"]);
}

#[test]
fn executive_assistant_refuses_a_missing_conditional_answer() {
    let schema = &catalog().template("executive-assistant").unwrap().onboarding_schema;
    let errs = validate_step(
        schema,
        "email",
        &answers(json!({"email_handling": "send_autonomously"})),
        &Answers::new(),
    )
    .unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/internal_domain"), ["required"]);
    let errs = validate_step(
        schema,
        "scheduling",
        &answers(json!({"working_hours_start": "9am", "working_hours_end": "17:00"})),
        &Answers::new(),
    )
    .unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/working_hours_start"), ["pattern"]);
}

#[test]
fn sales_assistant() {
    let (a, p) = walk(
        "sales-assistant",
        json!({
            "agent_name": "Sam", "company_name": "Acme Analytics", "product_description": "A dashboard that turns warehouse data into weekly KPI reports.",
            "target_industries": ["saas", "ecommerce"], "deal_size": "mid_market", "ideal_customer": "Heads of data at 50-500 person companies",
            "outreach_style": "consultative", "follow_up_days": 4, "booking_provider": "calendly", "booking_url": "https://calendly.com/acme/demo",
            "crm": {"provider": "salesforce", "connection_id": "con_01"}, "crm_owner": "005xx000001Sv6A",
            "crm_field_mapping": {"lead_email": "Email", "company": "Company"}
        }),
    );
    assert_eq!(a["crm_field_mapping"]["company"], "Company");
    has(
        &p,
        &[
            "Acme Analytics",
            "saas, ecommerce",
            "after 4 day(s)",
            "https://calendly.com/acme/demo",
            "CRM (salesforce) with owner 005xx000001Sv6A",
        ],
    );
    let (a, p) = walk(
        "sales-assistant",
        json!({
            "agent_name": "Sam", "company_name": "Acme Analytics", "product_description": "A dashboard that turns warehouse data into weekly KPI reports.",
            "deal_size": "smb", "outreach_style": "direct", "follow_up_days": 2, "booking_provider": "google_calendar",
            "booking_url": "https://stale.example", "crm_owner": "stale-owner",
            "knowledge_base": {"mode": "create_new", "name": "Product sheets", "urls": ["https://acme.example/pricing"]}
        }),
    );
    assert!(a.get("booking_url").is_none() && a.get("crm_owner").is_none());
    assert_eq!(a["knowledge_base"]["mode"], "create_new");
    has(&p, &["Propose meeting times from the connected calendar."]);
    lacks(&p, &["stale", "CRM"]);
}

#[test]
fn legal_assistant() {
    let (_, p) = walk(
        "legal-assistant",
        json!({
            "agent_name": "Lee", "organization_name": "Northwind LLP", "jurisdiction": "other", "jurisdiction_other": "Ontario, Canada",
            "contract_types": ["nda", "msa"], "liability_cap_minimum": 100000, "non_compete_max_years": 2,
            "review_guidelines": "## Red lines\n- No uncapped indemnities", "playbook_document": {"file_id": "file_9", "filename": "playbook.docx", "size_bytes": 52000},
            "escalate_to_counsel": true, "counsel_email": "Counsel@Northwind.example", "disclaimer_acknowledged": true,
            "knowledge_base": {"mode": "existing", "knowledge_base_id": KB_ID}
        }),
    );
    has(
        &p,
        &[
            "Northwind LLP",
            "Ontario, Canada",
            "nda, msa",
            "below 100000",
            "longer than 2 year(s)",
            "No uncapped indemnities",
            "counsel at counsel@northwind.example",
            "templates in the knowledge base",
        ],
    );
    let (_, p) = walk(
        "legal-assistant",
        json!({
            "agent_name": "Lee", "organization_name": "Northwind LLP", "jurisdiction": "us_delaware", "jurisdiction_other": "ignored",
            "contract_types": ["vendor"], "non_compete_max_years": 0, "escalate_to_counsel": false, "disclaimer_acknowledged": true
        }),
    );
    has(&p, &["us_delaware", "longer than 0 year(s)"]);
    lacks(&p, &["ignored", "counsel at", "liability cap", "knowledge base"]);
}

#[test]
fn legal_assistant_needs_the_disclaimer_ticked() {
    let schema = &catalog().template("legal-assistant").unwrap().onboarding_schema;
    let errs = validate_step(schema, "review", &answers(json!({"contract_types": ["nda"], "escalate_to_counsel": false, "disclaimer_acknowledged": false})), &Answers::new()).unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/disclaimer_acknowledged"), ["required"]);
}

#[test]
fn research_assistant() {
    let (_, p) = walk(
        "research-assistant",
        json!({
            "agent_name": "Riley", "focus_area": "Competitors in European fintech lending",
            "preferred_sources": ["industry_reports", "news"], "exclude_domains": ["https://content-farm.example"], "citation_style": "chicago",
            "report_format": "full_report", "include_confidence": true, "delivery_channel": "notion",
            "notion_workspace": {"provider": "notion", "connection_id": "con_7"}
        }),
    );
    has(
        &p,
        &[
            "European fintech",
            "industry_reports, news",
            "content-farm.example",
            "CHICAGO style",
            "full_report, and state your confidence",
            "Save finished reports to Notion.",
        ],
    );
    let (_, p) = walk(
        "research-assistant",
        json!({
            "agent_name": "Riley", "focus_area": "Battery recycling economics", "citation_style": "none",
            "report_format": "brief", "include_confidence": false, "delivery_channel": "chat"
        }),
    );
    has(&p, &["Link the sources you used"]);
    lacks(&p, &["Notion", "confidence"]);
}

#[test]
fn support_assistant() {
    let (_, p) = walk(
        "support-assistant",
        json!({
            "agent_name": "Sky", "company_name": "Acme", "greeting": "Hi! I'm Sky from Acme.", "support_hours": "Mon–Fri 9–17 CET",
            "business_phone": "+49 30 1234567", "ticket_integration": {"provider": "zendesk", "connection_id": "con_3"},
            "sla_hours": 8, "escalation_triggers": ["legal_threat", "refund_request"],
            "knowledge_base": {"mode": "existing", "knowledge_base_id": KB_ID}
        }),
    );
    has(
        &p,
        &[
            "Hi! I'm Sky from Acme.",
            "+49301234567",
            "ticket in zendesk",
            "within 8 hour(s)",
            "legal_threat, refund_request",
            "help-centre knowledge base",
        ],
    );
    let (_, p) = walk(
        "support-assistant",
        json!({
            "agent_name": "Sky", "company_name": "Acme", "greeting": "Hello!", "escalation_email": "Support@Acme.example", "sla_hours": 24
        }),
    );
    has(&p, &["email a summary to support@acme.example"]);
    lacks(&p, &["ticket in", "For urgent issues"]);
}

#[test]
fn support_assistant_needs_an_escalation_email_without_a_ticket_system() {
    let schema = &catalog().template("support-assistant").unwrap().onboarding_schema;
    let errs =
        validate_step(schema, "tickets", &answers(json!({"sla_hours": 24})), &Answers::new())
            .unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/escalation_email"), ["required"]);
}

#[test]
fn customer_support_agent() {
    let (a, p) = walk(
        "customer-support-agent",
        json!({
            "agent_name": "Acme Help", "company_name": "Acme", "greeting": "Hi! Ask me about Acme.",
            "avatar": {"file_id": "file_1", "filename": "bot.png", "size_bytes": 20000},
            "documents": [{"file_id": "file_2", "filename": "faq.md", "size_bytes": 4000}], "website_urls": ["https://acme.example/help"],
            "knowledge_base": {"mode": "create_new", "name": "Acme help centre", "urls": ["https://acme.example/help"]},
            "embed_domain": "www.acme.example", "widget_position": "bottom-left", "brand_color": "#FF6600",
            "ticket_integration": {"provider": "linear", "connection_id": "con_5"}
        }),
    );
    assert_eq!(a["documents"][0]["filename"], "faq.md");
    has(&p, &["You are Acme Help, the customer support agent of Acme.", "Open a linear ticket"]);
    lacks(&p, &["human when they ask"]);
    // Integrations step skipped entirely (it is optional), escalation email given instead elsewhere.
    let (a, p) = walk(
        "customer-support-agent",
        json!({
            "agent_name": "Acme Help", "company_name": "Acme", "greeting": "Hi!", "embed_domain": "acme.example"
        }),
    );
    assert!(a.get("ticket_integration").is_none() && a.get("knowledge_base").is_none());
    lacks(&p, &["ticket", "by email"]);
    let (_, p) = walk(
        "customer-support-agent",
        json!({
            "agent_name": "Acme Help", "company_name": "Acme", "greeting": "Hi!", "embed_domain": "acme.example", "escalation_email": "help@acme.example"
        }),
    );
    has(&p, &["send the conversation to help@acme.example"]);
}

#[test]
fn research_agent() {
    let (_, p) = walk(
        "research-agent",
        json!({
            "agent_name": "Scout", "research_topic": "Solid-state battery manufacturing", "audience": "our product team",
            "search_sources": ["arxiv", "google"], "max_results": 8, "output_format": "bullet_points", "include_citations": true, "citation_style": "ieee"
        }),
    );
    has(&p, &["Write for: our product team.", "arxiv, google", "bullet points", "IEEE style"]);
    let (a, p) = walk(
        "research-agent",
        json!({
            "agent_name": "Scout", "research_topic": "Solid-state battery manufacturing", "search_sources": ["wikipedia"],
            "output_format": "summary", "include_citations": false, "citation_style": "apa"
        }),
    );
    assert!(a.get("citation_style").is_none());
    has(&p, &["List the sources you used"]);
    lacks(&p, &["APA", "Write for"]);
}

#[test]
fn topic_assistant() {
    let (_, p) = walk(
        "topic-assistant",
        json!({
            "agent_name": "Py", "role": "Python tutor", "expertise_level": "beginner",
            "custom_instructions": "Teach with short examples and ask one check-in question per answer.",
            "off_topic_policy": "brief", "audience": "children", "age_range": "10-12"
        }),
    );
    has(
        &p,
        &[
            "Python tutor who explains things to beginners",
            "children aged 10-12",
            "briefly answer off-topic",
        ],
    );
    let (_, p) = walk(
        "topic-assistant",
        json!({
            "agent_name": "Py", "role": "Python expert", "expertise_level": "expert",
            "custom_instructions": "Answer precisely and point to the documentation."
        }),
    );
    has(&p, &["speaks to experts as a peer", "Politely decline"]);
    lacks(&p, &["children", "Your users are"]);
}

#[test]
fn code_assistant() {
    let (a, p) = walk(
        "code-assistant",
        json!({
            "agent_name": "Cody", "primary_languages": ["rust", "typescript"], "frameworks": "axum, React", "style_guide": "google",
            "connect_repository": true, "repository": "acme/webshop", "repository_token": "ghp_0123456789abcdef",
            "include_tests": true, "explain_level": "thorough"
        }),
    );
    assert_eq!(a["repository_token"], "ghp_0123456789abcdef");
    has(
        &p,
        &[
            "rust, typescript",
            "axum, React",
            "google style guide",
            "acme/webshop",
            "unit tests",
            "thorough",
        ],
    );
    // The token is a secret: hydrating the step never sends it back.
    let schema = &catalog().template("code-assistant").unwrap().onboarding_schema;
    let h = hydrate_step(schema, "repository", &a).unwrap();
    let token =
        h.sections[0].fields.iter().find(|f| f.definition.name == "repository_token").unwrap();
    assert!(token.value.is_none() && token.is_set);
    assert!(!serde_json::to_string(&h).unwrap().contains("ghp_0123456789abcdef"));
    let (a, p) = walk(
        "code-assistant",
        json!({
            "agent_name": "Cody", "primary_languages": ["python"], "style_guide": "none", "connect_repository": false,
            "repository": "ignored/repo", "include_tests": false, "explain_level": "none"
        }),
    );
    assert!(a.get("repository").is_none());
    lacks(&p, &["ignored", "style guide", "unit tests"]);
}

#[test]
fn knowledge_assistant() {
    let (_, p) = walk(
        "knowledge-assistant",
        json!({
            "agent_name": "Docs", "greeting": "Ask me about the handbook.", "audience_label": "our employees",
            "answer_scope": "strict", "not_found_message": "That isn't in the handbook yet.",
            "knowledge_base": {"mode": "existing", "knowledge_base_id": KB_ID},
            "offer_handoff": true, "handoff_webhook": {"url": "https://hooks.acme.example/kb", "secret": "s3cr3t-s3cr3t-s3cr3t"}
        }),
    );
    has(
        &p,
        &["for our employees", "That isn't in the handbook yet.", "pass the question to a person"],
    );
    let (_, p) = walk(
        "knowledge-assistant",
        json!({
            "agent_name": "Docs", "greeting": "Hi", "audience_label": "our customers", "answer_scope": "kb_first",
            "knowledge_base": {"mode": "create_new", "name": "Product docs"}
        }),
    );
    has(&p, &["Prefer the knowledge base"]);
    lacks(&p, &["person"]);
}

#[test]
fn knowledge_assistant_cannot_finish_without_a_knowledge_base() {
    let schema = &catalog().template("knowledge-assistant").unwrap().onboarding_schema;
    let all = answers(
        json!({"agent_name": "Docs", "greeting": "Hi", "audience_label": "our customers", "answer_scope": "kb_first"}),
    );
    let errs = final_check(schema, &all).unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/knowledge_base"), ["knowledge_base_required"]);
    let errs =
        validate_step(schema, "handoff", &answers(json!({"offer_handoff": true})), &Answers::new())
            .unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/handoff_webhook"), ["required"]);
}

#[test]
fn generic_chat() {
    let (_, p) = walk(
        "generic-chat",
        json!({
            "agent_name": "Buddy", "purpose": "helping the team brainstorm", "conversation_style": "businesslike",
            "allow_small_talk": false, "topics_to_avoid": "politics"
        }),
    );
    has(
        &p,
        &[
            "whose job is: helping the team brainstorm",
            "do not engage in small talk",
            "Do not discuss: politics",
        ],
    );
    let (a, p) = walk(
        "generic-chat",
        json!({
            "agent_name": "Buddy", "conversation_style": "playful", "allow_small_talk": true, "topics_to_avoid": "hidden when playful"
        }),
    );
    assert!(a.get("topics_to_avoid").is_none());
    lacks(&p, &["Do not discuss", "small talk", "whose job"]);
    // No knowledge base block in this wizard: a knowledge_base answer is refused.
    let schema = &catalog().template("generic-chat").unwrap().onboarding_schema;
    let errs = final_check(schema, &answers(json!({"agent_name": "Buddy", "conversation_style": "playful", "knowledge_base": {"mode": "skip"}}))).unwrap_err();
    assert_eq!(crate::codes_at(&errs, "/knowledge_base"), ["unknown_field"]);
}
