//! Prompt assembly: the system prompt (agent prompt + personality + behaviour + grounding
//! instructions) and the conversation history, repaired and trimmed to a token budget.

use std::collections::HashSet;

use llm::{Message, estimate_message_tokens};

use crate::agent::AgentSnapshot;

/// Told to the model whenever it can search knowledge; the runtime numbers the passages.
pub const GROUNDING_INSTRUCTIONS: &str = "Ground your answers in the knowledge base: use the \
search_knowledge tool to look things up. Cite the passages you use as [1], [2], … with the \
numbers shown in the search results. If the knowledge base does not contain the answer, say so \
plainly instead of guessing.";

/// Result text for a tool call that never got one (a pending action left undecided).
pub const MISSING_RESULT: &str = "No result: this action was not carried out.";

/// The system prompt: `base` (the agent's rendered prompt, or a routing rule's override),
/// then the personality modifier, the behaviour sentences, and the grounding instructions
/// when the agent can search knowledge.
pub fn system_prompt(agent: &AgentSnapshot, base: &str, grounded: bool) -> String {
    let mut parts: Vec<String> = vec![base.trim().to_owned()];
    let modifier = agent.personality.prompt_modifier();
    if !modifier.is_empty() {
        parts.push(modifier);
    }
    parts.push(agent.behavior.prompt_text());
    if grounded {
        parts.push(GROUNDING_INSTRUCTIONS.to_owned());
    }
    parts.retain(|p| !p.is_empty());
    parts.join("\n\n")
}

/// Makes a stored history safe to send: drops system messages (the runtime writes its own) and
/// tool results whose call is unknown, and gives every tool call without a result (other than
/// those in `keep_open`) a result saying it was not carried out, right after its turn.
pub fn repair_history(history: &[Message], keep_open: &HashSet<String>) -> Vec<Message> {
    let mut out: Vec<Message> = Vec::with_capacity(history.len());
    let mut open: Vec<String> = Vec::new();
    let mut known: HashSet<String> = HashSet::new();
    let close = |out: &mut Vec<Message>, open: &mut Vec<String>| {
        for id in open.drain(..) {
            if !keep_open.contains(&id) {
                out.push(Message::tool_result(id, MISSING_RESULT));
            }
        }
    };
    for m in history {
        match m {
            Message::System { .. } => {}
            Message::Tool { tool_call_id, .. } => {
                if known.contains(tool_call_id) {
                    open.retain(|id| id != tool_call_id);
                    out.push(m.clone());
                }
            }
            Message::Assistant { tool_calls, .. } => {
                close(&mut out, &mut open);
                for c in tool_calls {
                    known.insert(c.id.clone());
                    open.push(c.id.clone());
                }
                out.push(m.clone());
            }
            Message::User { .. } => {
                close(&mut out, &mut open);
                out.push(m.clone());
            }
        }
    }
    close(&mut out, &mut open);
    out
}

/// The newest messages of `history` whose estimated tokens fit in `budget`, never starting
/// with a tool result (its call would be missing).
pub fn trim_history(history: &[Message], budget: usize) -> Vec<Message> {
    let mut used = 0usize;
    let mut start = history.len();
    for (i, m) in history.iter().enumerate().rev() {
        let cost = estimate_message_tokens(m);
        if used + cost > budget {
            break;
        }
        used += cost;
        start = i;
    }
    let mut kept = &history[start..];
    while let Some(Message::Tool { .. }) = kept.first() {
        kept = &kept[1..];
    }
    kept.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm::ToolCall;

    fn call(id: &str) -> ToolCall {
        ToolCall { id: id.into(), name: "t".into(), arguments: "{}".into() }
    }

    #[test]
    fn dangling_tool_calls_get_a_result_and_orphan_results_go() {
        let h = vec![
            Message::system("old"),
            Message::user("q"),
            Message::assistant_tool_calls(None, vec![call("a"), call("b")]),
            Message::tool_result("a", "ok"),
            Message::tool_result("zzz", "orphan"),
            Message::user("next"),
        ];
        let fixed = repair_history(&h, &HashSet::new());
        assert_eq!(fixed.len(), 5);
        assert_eq!(fixed[3], Message::tool_result("b", MISSING_RESULT));
        let kept = repair_history(&h, &HashSet::from(["b".to_owned()]));
        assert_eq!(kept.len(), 4);
    }

    #[test]
    fn trimming_keeps_the_newest_and_never_starts_with_a_tool_result() {
        let h = vec![
            Message::user("a".repeat(400)),
            Message::assistant_tool_calls(None, vec![call("a")]),
            Message::tool_result("a", "x".repeat(40)),
            Message::assistant("done"),
        ];
        let all = trim_history(&h, 10_000);
        assert_eq!(all.len(), 4);
        // Room for the last two only: the tool result would lead, so it goes too.
        let t = trim_history(&h, 20);
        assert_eq!(t, vec![Message::assistant("done")]);
    }
}
