//! Shared arrangement: a fake LLM, in-memory ports with a small knowledge base, and helpers.

use std::sync::Arc;
use std::time::Duration;

use domain::{AgentId, ChunkId, ConversationId, DocumentId, KnowledgeBaseId, RunId, WorkspaceId};
use fakellm::FakeLlm;
use llm::{ProviderConfig, RetryPolicy, provider_from_config};
use runtime::memory::{InMemoryHandoffs, InMemoryKnowledge, StaticWebFetcher};
use runtime::{
    AgentSnapshot, KnowledgeHit, Ports, RunEvent, RunInput, RunOutcome, Runtime, RuntimeSettings,
    StepKind,
};

pub struct Kit {
    pub fake: FakeLlm,
    pub knowledge: Arc<InMemoryKnowledge>,
    pub web: Arc<StaticWebFetcher>,
    pub handoffs: Arc<InMemoryHandoffs>,
    pub kb: KnowledgeBaseId,
    pub workspace: WorkspaceId,
    /// Chunk ids of the three seeded passages, in insertion order.
    pub chunks: Vec<ChunkId>,
}

pub const REFUNDS: &str = "Refunds are accepted within 30 days of purchase with a receipt.";
pub const SHIPPING: &str = "Shipping takes 3 to 5 business days within the country.";
pub const HOURS: &str = "Our support team is available Monday to Friday, 9am to 5pm.";

pub async fn kit() -> Kit {
    kit_with(InMemoryKnowledge::new()).await
}

pub async fn kit_with(knowledge: InMemoryKnowledge) -> Kit {
    let kb = KnowledgeBaseId::new();
    let mut chunks = Vec::new();
    for (title, content, page) in [
        ("Refund policy", REFUNDS, Some(2)),
        ("Shipping", SHIPPING, None),
        ("Support", HOURS, None),
    ] {
        let hit = KnowledgeHit {
            chunk_id: ChunkId::new(),
            content: content.into(),
            score: 0.0,
            document_id: DocumentId::new(),
            document_title: title.into(),
            source_url: Some(format!("https://example.com/{}", title.to_lowercase())),
            page,
            heading: None,
        };
        chunks.push(hit.chunk_id);
        knowledge.add(kb, hit);
    }
    Kit {
        fake: FakeLlm::start().await,
        knowledge: Arc::new(knowledge),
        web: Arc::new(StaticWebFetcher::new()),
        handoffs: Arc::new(InMemoryHandoffs::new()),
        kb,
        workspace: WorkspaceId::new(),
        chunks,
    }
}

impl Kit {
    pub fn ports(&self) -> Ports {
        Ports {
            knowledge: self.knowledge.clone(),
            web: self.web.clone(),
            handoffs: self.handoffs.clone(),
        }
    }

    /// Fast settings: no retries in the provider, short tool timeout.
    pub fn settings(&self) -> RuntimeSettings {
        RuntimeSettings { tool_timeout: Duration::from_secs(5), ..RuntimeSettings::default() }
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime_with(self.settings())
    }

    pub fn runtime_with(&self, settings: RuntimeSettings) -> Runtime {
        let mut config = ProviderConfig::openai_compatible(&self.fake.base_url, None, "fake-model");
        config.retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
        let model = provider_from_config(config).expect("provider");
        Runtime::new(Some(model), self.ports(), settings)
    }

    /// The same, speaking the Anthropic Messages protocol to the fake.
    pub fn runtime_anthropic(&self) -> Runtime {
        let key = Some(llm::SecretString::from("sk-ant-test"));
        let mut config = ProviderConfig::anthropic(&self.fake.root_url, key, "claude-fake");
        config.retry = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
        let model = provider_from_config(config).expect("provider");
        Runtime::new(Some(model), self.ports(), self.settings())
    }

    pub fn runtime_without_model(&self) -> Runtime {
        Runtime::new(None, self.ports(), self.settings())
    }

    /// An agent grounded in the kit's knowledge base.
    pub fn agent(&self) -> AgentSnapshot {
        let mut a = AgentSnapshot::new(
            AgentId::new(),
            self.workspace,
            "Ava",
            "You are Ava, the support assistant of Acme.",
        );
        a.skills = vec!["knowledge:search".into()];
        a.knowledge_base_ids = vec![self.kb];
        a
    }
}

pub fn input(agent: &AgentSnapshot, message: &str) -> RunInput {
    RunInput {
        run_id: RunId::new(),
        conversation_id: ConversationId::new(),
        agent: agent.clone(),
        history: Vec::new(),
        user_message: message.into(),
        api_key: None,
    }
}

/// Runs to the end, returning events and outcome.
pub async fn run(rt: &Runtime, input: RunInput) -> (Vec<RunEvent>, RunOutcome) {
    tokio::time::timeout(Duration::from_secs(30), rt.run(input).collect())
        .await
        .expect("the run ends within 30 s")
}

pub fn names(events: &[RunEvent]) -> Vec<&'static str> {
    events.iter().map(RunEvent::name).collect()
}

pub fn deltas(events: &[RunEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            RunEvent::MessageDelta { delta } => Some(delta.clone()),
            _ => None,
        })
        .collect()
}

pub fn has_step(outcome: &RunOutcome, f: impl Fn(&StepKind) -> bool) -> bool {
    outcome.trace.iter().any(|s| f(&s.kind))
}

/// The `role` and `content` of the messages of a recorded request, as (role, text) pairs.
pub fn roles_and_texts(body_messages: &[serde_json::Value]) -> Vec<(String, String)> {
    body_messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or("").to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}
