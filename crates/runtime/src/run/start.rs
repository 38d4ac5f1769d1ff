//! The start of a new run: routing rules first, then the no-model answer or the tool loop;
//! plus the shared helpers that answer directly and number citations.

use std::collections::HashSet;

use llm::{Message, ToolCall};

use super::{End, Run, answers};
use crate::events::{Citation, RunError, RunEvent, StepKind};
use crate::ports::{KnowledgeHit, KnowledgeQuery};
use crate::prompt::repair_history;
use crate::routing::RouteTarget;
use crate::runtime::RunInput;
use crate::tools::arguments_from_message;

impl Run {
    pub(super) async fn start_new(&mut self, input: RunInput) -> End {
        let message = input.user_message;
        let limit = self.rt.settings.max_message_chars;
        if message.chars().count() > limit {
            // Nothing is persisted: the message was refused, not answered.
            return End::Failed(RunError {
                code: "message_too_long".into(),
                message: format!("the message is longer than {limit} characters"),
            });
        }
        self.messages.push(Message::user(message.clone()));
        let history = repair_history(&input.history, &HashSet::new());
        let routing = self.agent.routing.clone();
        let matched = match routing.evaluate(&message) {
            Ok(m) => m,
            Err(e) => {
                return End::Failed(RunError { code: e.code().into(), message: e.to_string() });
            }
        };
        if !routing.rules.is_empty() {
            self.step(StepKind::Routing {
                matched: matched.clone(),
                fallback_to_llm: routing.fallback_to_llm,
            });
        }
        let mut base = self.agent.system_prompt.clone();
        let mut routed_skill = None;
        match matched.map(|m| m.target) {
            Some(RouteTarget::FixedAnswer { text }) => return self.answer(text).await,
            Some(RouteTarget::PromptOverride { prompt }) => base = prompt,
            Some(RouteTarget::Skill { skill }) => routed_skill = Some(skill),
            None if !routing.rules.is_empty() && !routing.fallback_to_llm => {
                let text = routing.no_match_answer.unwrap_or_else(|| answers::NO_MATCH.to_owned());
                return self.answer(text).await;
            }
            None => {}
        }
        let mut conv = self.conversation(&base, &history, Some(&message));
        if let Some(skill) = routed_skill
            && let Some(end) = self.route_to_skill(&skill, &message, &mut conv).await
        {
            return end;
        }
        if self.rt.model.is_none() {
            return self.answer_from_knowledge(&message).await;
        }
        self.tool_loop(conv).await
    }

    /// Calls the routed skill's tool with the message. `None` means "go on to the model" (or
    /// to the no-model answer): the tool's result, if any, is already in `conv`.
    async fn route_to_skill(
        &mut self,
        skill: &str,
        message: &str,
        conv: &mut Vec<Message>,
    ) -> Option<End> {
        let Some(tool) = self.registry.for_skill(skill) else {
            self.step(StepKind::Error(RunError {
                code: "routing_skill_unavailable".into(),
                message: format!("the routed skill `{skill}` is not one of this agent's tools"),
            }));
            return None;
        };
        let Some(args) = arguments_from_message(&tool.spec, message) else {
            self.step(StepKind::Error(RunError {
                code: "routing_arguments".into(),
                message: format!("the message does not give `{}` its arguments", tool.spec.name),
            }));
            return None;
        };
        let call = ToolCall {
            id: format!("{}{}", super::ROUTED_CALL_PREFIX, uuid::Uuid::now_v7().simple()),
            name: tool.spec.name.clone(),
            arguments: args.to_string(),
        };
        let turn = Message::assistant_tool_calls(None, vec![call.clone()]);
        conv.push(turn.clone());
        self.messages.push(turn);
        let (pending, results) = self.execute_calls(&[call], conv, &HashSet::new()).await;
        if !pending.is_empty() {
            return Some(End::Awaiting(pending));
        }
        let result = results.into_iter().next()?;
        if self.rt.model.is_some() && self.agent.routing.fallback_to_llm {
            return None;
        }
        let text = answers::from_tool_result(
            &result.status,
            &result.content,
            &result.cited,
            self.rt.model.is_none(),
            self.rt.settings.excerpt_chars,
        );
        Some(self.answer(text).await)
    }

    /// Answers `text` as the final message without a model call.
    pub(super) async fn answer(&mut self, text: String) -> End {
        self.emit(RunEvent::MessageDelta { delta: text.clone() }).await;
        self.messages.push(Message::assistant(text.clone()));
        self.text = text;
        End::Completed
    }

    /// No model configured: the best passages, numbered, with citations.
    async fn answer_from_knowledge(&mut self, message: &str) -> End {
        let hits = if self.agent.knowledge_base_ids.is_empty() {
            None
        } else {
            let query = KnowledgeQuery {
                workspace_id: self.agent.workspace_id,
                knowledge_base_ids: self.agent.knowledge_base_ids.clone(),
                query: message.to_owned(),
                top_k: self.rt.settings.top_k,
            };
            let search = self.rt.ports.knowledge.search(&query);
            Some(match tokio::time::timeout(self.rt.settings.tool_timeout, search).await {
                Ok(r) => r,
                Err(_) => Err("the knowledge search timed out".to_owned()),
            })
        };
        let text = match hits {
            None => answers::NO_MODEL_NO_KNOWLEDGE.to_owned(),
            Some(Err(e)) => {
                self.step(StepKind::Error(RunError {
                    code: "knowledge_search".into(),
                    message: e,
                }));
                answers::NO_MODEL_SEARCH_FAILED.to_owned()
            }
            Some(Ok(hits)) => {
                self.step(StepKind::NoModelFallback { hits: hits.len() });
                let cited = self.cite(hits).await;
                answers::passages(&cited, true, self.rt.settings.excerpt_chars)
            }
        };
        self.answer(text).await
    }

    /// Numbers hits (a chunk keeps its number for the whole run) and announces new ones.
    pub(super) async fn cite(&mut self, hits: Vec<KnowledgeHit>) -> Vec<(Citation, String)> {
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            if let Some(c) = self.citations.iter().find(|c| c.chunk_id == hit.chunk_id) {
                out.push((c.clone(), hit.content));
                continue;
            }
            let citation = Citation {
                index: self.citations.len() as u32 + 1,
                chunk_id: hit.chunk_id,
                document_id: hit.document_id,
                document_title: hit.document_title,
                source_url: hit.source_url,
                page: hit.page,
                heading: hit.heading,
                excerpt: answers::excerpt(&hit.content, self.rt.settings.excerpt_chars),
                score: hit.score,
            };
            self.citations.push(citation.clone());
            self.emit(RunEvent::Citation(citation.clone())).await;
            out.push((citation, hit.content));
        }
        out
    }
}
