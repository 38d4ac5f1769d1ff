//! Cheap token estimates for history budgeting.
//!
//! About four characters per token holds for English with the GPT and Claude tokenizers; it is
//! an estimate for trimming history before a call, not a bill (the provider's `Usage` is).

use crate::Message;

/// Fixed cost of one message's framing (role, separators), as OpenAI documents it.
const PER_MESSAGE_OVERHEAD: usize = 4;

/// Estimated tokens of a text: characters / 4, rounded up.
pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

/// Estimated tokens of one message, tool calls included.
pub fn estimate_message_tokens(message: &Message) -> usize {
    let calls: usize = match message {
        Message::Assistant { tool_calls, .. } => tool_calls
            .iter()
            .map(|c| {
                estimate_tokens(&c.name) + estimate_tokens(&c.arguments) + PER_MESSAGE_OVERHEAD
            })
            .sum(),
        _ => 0,
    };
    PER_MESSAGE_OVERHEAD + estimate_tokens(message.text()) + calls
}

/// Estimated tokens of a whole history.
pub fn estimate_messages_tokens(messages: &[Message]) -> usize {
    messages.iter().map(estimate_message_tokens).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ToolCall;

    #[test]
    fn estimates_count_characters_not_bytes_and_round_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens("☃☃☃☃"), 1);
    }

    #[test]
    fn messages_add_overhead_and_tool_calls() {
        let plain = Message::user("12345678");
        assert_eq!(estimate_message_tokens(&plain), 4 + 2);
        let call = ToolCall { id: "c".into(), name: "abcd".into(), arguments: "{\"q\":1}".into() };
        let with_call = Message::assistant_tool_calls(None, vec![call]);
        assert_eq!(estimate_message_tokens(&with_call), 4 + 1 + 2 + 4);
        assert_eq!(estimate_messages_tokens(&[plain, with_call]), 6 + 11);
    }
}
