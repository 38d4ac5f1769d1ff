//! Both providers against the scripted fake server over real HTTP: answers, streams, tool calls,
//! retries, error mapping, timeouts and secret hygiene.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fakellm::{FakeLlm, Reply, ScriptedCall};
use futures::StreamExt;
use llm::{
    ChatModel, ChatRequest, FinishReason, LlmError, Message, ProviderConfig, ProviderKind,
    RetryPolicy, SecretString, StreamEvent, ToolCall, ToolSpec, collect_stream,
    provider_from_config,
};
use serde_json::{Value, json};

const KINDS: [ProviderKind; 2] = [ProviderKind::OpenAiCompatible, ProviderKind::Anthropic];
const KEY: &str = "sk-test-very-secret-0123456789";

fn config(kind: ProviderKind, fake: &FakeLlm) -> ProviderConfig {
    let key = Some(SecretString::from(KEY));
    let mut c = match kind {
        ProviderKind::OpenAiCompatible => {
            ProviderConfig::openai_compatible(&fake.base_url, key, "gpt-test")
        }
        ProviderKind::Anthropic => ProviderConfig::anthropic(&fake.root_url, key, "claude-test"),
    };
    // Fast retries so the suite stays quick; the backoff maths has its own unit test.
    c.retry = RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_secs(5),
    };
    c
}

fn provider(kind: ProviderKind, fake: &FakeLlm) -> Arc<dyn ChatModel> {
    provider_from_config(config(kind, fake)).expect("provider")
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![Message::system("Be brief."), Message::user("Hello")])
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Weather for a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

async fn events(model: &dyn ChatModel, req: &ChatRequest) -> Vec<Result<StreamEvent, LlmError>> {
    model.chat_stream(req).await.expect("stream opens").collect().await
}

#[tokio::test]
async fn plain_chat_returns_text_usage_and_model_for_both_providers() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push(Reply::text("Hi there!").with_usage(12, 3));
        let resp = provider(kind, &fake).chat(&hello()).await.unwrap();
        assert_eq!(resp.content, "Hi there!", "{kind:?}");
        assert_eq!(resp.finish_reason, FinishReason::Stop);
        let usage = resp.usage.expect("usage");
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (12, 3));
        assert!(resp.tool_calls.is_empty());
        assert!(resp.model.ends_with("-test"), "{}", resp.model);
    }
}

#[tokio::test]
async fn streamed_text_arrives_as_deltas_then_usage_then_finish() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push(Reply::text("one two three four").in_chunks(4).with_usage(7, 5));
        let evs: Vec<StreamEvent> = events(&*provider(kind, &fake), &hello())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let deltas: Vec<&str> = evs
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deltas.len(), 4, "{kind:?}: {evs:?}");
        assert_eq!(deltas.concat(), "one two three four");
        let n = evs.len();
        assert!(
            matches!(evs[n - 2], StreamEvent::Usage(u) if u.prompt_tokens == 7 && u.completion_tokens == 5)
        );
        assert!(matches!(&evs[n - 1], StreamEvent::Finish { reason: FinishReason::Stop, .. }));
    }
}

#[tokio::test]
async fn openai_streaming_requests_ask_for_usage() {
    let fake = FakeLlm::start().await;
    let model = provider(ProviderKind::OpenAiCompatible, &fake);
    let resp = collect_stream(model.chat_stream(&hello()).await.unwrap()).await.unwrap();
    assert_eq!(resp.content, "Echo: Hello");
    assert!(resp.usage.is_some());
    let req = &fake.requests()[0];
    assert_eq!(req.body["stream"], json!(true));
    assert_eq!(req.body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn a_streamed_tool_call_is_assembled_from_argument_fragments() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        let args = r#"{"city": "Paris", "unit": "celsius"}"#;
        fake.push(Reply::tool_call("get_weather", args).with_text("Let me check.").in_chunks(6));
        let mut req = hello();
        req.tools = vec![weather_tool()];
        let evs: Vec<StreamEvent> =
            events(&*provider(kind, &fake), &req).await.into_iter().map(Result::unwrap).collect();
        let starts = evs.iter().filter(|e| matches!(e, StreamEvent::ToolCallStart { .. })).count();
        let deltas = evs.iter().filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. })).count();
        assert_eq!(starts, 1, "{kind:?}");
        assert!(deltas >= 5, "{kind:?}: expected fragments, got {deltas}");
        let resp =
            collect_stream(futures::stream::iter(evs.into_iter().map(Ok)).boxed()).await.unwrap();
        assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
        assert_eq!(resp.content, "Let me check.");
        assert_eq!(resp.tool_calls.len(), 1);
        assert_eq!(resp.tool_calls[0].name, "get_weather");
        assert_eq!(
            serde_json::from_str::<Value>(&resp.tool_calls[0].arguments).unwrap(),
            json!({"city": "Paris", "unit": "celsius"})
        );
        assert!(!resp.tool_calls[0].id.is_empty());
    }
}

#[tokio::test]
async fn two_parallel_tool_calls_stay_apart_even_when_interleaved() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        let calls = vec![
            ScriptedCall::new("get_weather", r#"{"city":"Paris","days":3}"#).with_id("call_a"),
            ScriptedCall::new("get_time", r#"{"zone":"Europe/Berlin"}"#).with_id("call_b"),
        ];
        // Interleaving applies to the OpenAI protocol; Anthropic blocks come one after another.
        fake.push(Reply::tool_calls(calls).interleaved().in_chunks(4));
        let evs: Vec<StreamEvent> = events(&*provider(kind, &fake), &hello())
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        // Every delta of a call comes after its start and before its end.
        for index in 0..2 {
            let pos = |f: &dyn Fn(&StreamEvent) -> bool| evs.iter().position(f).unwrap();
            let start =
                pos(&|e| matches!(e, StreamEvent::ToolCallStart { index: i, .. } if *i == index));
            let end =
                pos(&|e| matches!(e, StreamEvent::ToolCallEnd { index: i, .. } if *i == index));
            let deltas: Vec<usize> = evs
                .iter()
                .enumerate()
                .filter(|(_, e)| matches!(e, StreamEvent::ToolCallDelta { index: i, .. } if *i == index))
                .map(|(p, _)| p)
                .collect();
            assert!(
                !deltas.is_empty() && deltas.iter().all(|p| *p > start && *p < end),
                "{kind:?}: {evs:?}"
            );
        }
        if kind == ProviderKind::OpenAiCompatible {
            let order: Vec<usize> = evs
                .iter()
                .filter_map(|e| match e {
                    StreamEvent::ToolCallDelta { index, .. } => Some(*index),
                    _ => None,
                })
                .collect();
            assert_eq!(&order[..2], &[0, 1], "fragments really were interleaved: {order:?}");
        }
        let resp =
            collect_stream(futures::stream::iter(evs.into_iter().map(Ok)).boxed()).await.unwrap();
        assert_eq!(
            resp.tool_calls,
            vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "get_weather".into(),
                    arguments: r#"{"city":"Paris","days":3}"#.into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "get_time".into(),
                    arguments: r#"{"zone":"Europe/Berlin"}"#.into()
                },
            ],
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn non_streamed_tool_calls_are_parsed_with_ids_and_json_arguments() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push(Reply::tool_calls(vec![
            ScriptedCall::new("get_weather", r#"{"city":"Oslo"}"#),
            ScriptedCall::new("get_time", "{}"),
        ]));
        let resp = provider(kind, &fake).chat(&hello()).await.unwrap();
        assert_eq!(resp.finish_reason, FinishReason::ToolCalls, "{kind:?}");
        let names: Vec<&str> = resp.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["get_weather", "get_time"]);
        assert_eq!(
            serde_json::from_str::<Value>(&resp.tool_calls[0].arguments).unwrap(),
            json!({"city": "Oslo"})
        );
        assert_ne!(resp.tool_calls[0].id, resp.tool_calls[1].id);
    }
}

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_delay_then_succeeds() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push_all([Reply::rate_limited(1), Reply::text("finally")]);
        let started = Instant::now();
        let resp = provider(kind, &fake).chat(&hello()).await.unwrap();
        assert_eq!(resp.content, "finally");
        assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured ({kind:?})");
        assert_eq!(fake.request_count(), 2);
    }
}

#[tokio::test]
async fn a_streaming_call_is_retried_on_429_before_any_byte() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push_all([
            Reply::rate_limited(0),
            Reply::server_error(),
            Reply::text("streamed").in_chunks(2),
        ]);
        let resp = collect_stream(provider(kind, &fake).chat_stream(&hello()).await.unwrap())
            .await
            .unwrap();
        assert_eq!(resp.content, "streamed");
        assert_eq!(fake.request_count(), 3);
    }
}

#[tokio::test]
async fn server_errors_exhaust_the_retries_and_report_unavailable() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push_all((0..5).map(|_| Reply::server_error()));
        let err = provider(kind, &fake).chat(&hello()).await.unwrap_err();
        assert!(matches!(err, LlmError::Unavailable { .. }), "{kind:?}: {err:?}");
        assert_eq!(fake.request_count(), 3, "first try + max_retries 2");
        assert!(err.is_transient());
    }
}

#[tokio::test]
async fn rate_limits_beyond_the_backoff_cap_fail_at_once_with_retry_after() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::rate_limited(60));
    let err = provider(ProviderKind::OpenAiCompatible, &fake).chat(&hello()).await.unwrap_err();
    assert_eq!(err, LlmError::RateLimited { retry_after: Some(Duration::from_secs(60)) });
    assert_eq!(fake.request_count(), 1);
    assert!(err.to_string().contains("60s"));
}

#[tokio::test]
async fn malformed_json_is_an_invalid_response_streaming_or_not() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push_all([Reply::malformed(), Reply::malformed()]);
        let model = provider(kind, &fake);
        let err = model.chat(&hello()).await.unwrap_err();
        assert!(matches!(err, LlmError::InvalidResponse { .. }), "{kind:?}: {err:?}");
        let evs = events(&*model, &hello()).await;
        assert_eq!(evs.len(), 1, "one error, then the end: {evs:?}");
        assert!(matches!(evs[0], Err(LlmError::InvalidResponse { .. })), "{kind:?}: {evs:?}");
    }
}

#[tokio::test]
async fn a_provider_that_does_not_answer_times_out() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push_all([Reply::hang(), Reply::hang()]);
        let mut cfg = config(kind, &fake);
        cfg.timeouts.request = Duration::from_millis(300);
        let model = provider_from_config(cfg).unwrap();
        let started = Instant::now();
        assert_eq!(model.chat(&hello()).await.unwrap_err(), LlmError::Timeout);
        assert!(started.elapsed() < Duration::from_secs(3));
        // The per-request override applies to streams too (until their first byte).
        let mut req = hello();
        req.timeout = Some(Duration::from_millis(200));
        assert_eq!(model.chat_stream(&req).await.err(), Some(LlmError::Timeout));
        assert_eq!(fake.request_count(), 2, "timeouts are not retried");
    }
}

#[tokio::test]
async fn a_stream_that_goes_silent_fails_with_timeout_after_the_idle_limit() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push(Reply::text("slow answer here").in_chunks(3).chunk_delay(Duration::from_secs(3)));
        let mut cfg = config(kind, &fake);
        cfg.timeouts.idle = Duration::from_millis(300);
        let evs = events(&*provider_from_config(cfg).unwrap(), &hello()).await;
        assert_eq!(evs.last(), Some(&Err(LlmError::Timeout)), "{kind:?}: {evs:?}");
        assert!(evs[..evs.len() - 1].iter().all(Result::is_ok));
    }
}

#[tokio::test]
async fn a_stream_cut_mid_way_yields_its_text_then_one_interrupted_error() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push(Reply::cut_after("alpha beta gamma delta", 4, 2));
        let evs = events(&*provider(kind, &fake), &hello()).await;
        let text: String = evs
            .iter()
            .filter_map(|e| match e {
                Ok(StreamEvent::TextDelta(t)) => Some(t.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, "alpha beta g", "{kind:?}: {evs:?}");
        assert!(
            matches!(evs.last(), Some(Err(LlmError::StreamInterrupted { .. }))),
            "{kind:?}: {evs:?}"
        );
        assert!(!evs.iter().any(|e| matches!(e, Ok(StreamEvent::Finish { .. }))));
        let err = collect_stream(futures::stream::iter(evs).boxed()).await.unwrap_err();
        assert!(matches!(err, LlmError::StreamInterrupted { .. }));
    }
}

#[tokio::test]
async fn a_non_streamed_answer_cut_mid_body_is_retried() {
    let fake = FakeLlm::start().await;
    fake.push_all([Reply::cut_after("whatever", 1, 0), Reply::text("second try")]);
    let resp = provider(ProviderKind::OpenAiCompatible, &fake).chat(&hello()).await.unwrap();
    assert_eq!(resp.content, "second try");
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn http_errors_map_to_clear_variants() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        fake.push_all([
            Reply::error(401, format!("Incorrect API key provided: {KEY}")),
            Reply::error(404, "The model `nope` does not exist"),
            Reply::error(400, "This model's maximum context length is 8192 tokens"),
            Reply::error(400, format!("temperature must be <= 2 (key {KEY})")),
        ]);
        let model = provider(kind, &fake);
        let mut req = hello();
        assert_eq!(model.chat(&req).await.unwrap_err(), LlmError::Unauthorized, "{kind:?}");
        req.model = Some("nope".into());
        assert_eq!(
            model.chat(&req).await.unwrap_err(),
            LlmError::ModelNotFound { model: "nope".into() }
        );
        assert_eq!(model.chat(&req).await.unwrap_err(), LlmError::ContextTooLong);
        let err = model.chat(&req).await.unwrap_err();
        let LlmError::BadRequest { message } = &err else { panic!("{err:?}") };
        assert!(message.contains("temperature must be <= 2"), "{message}");
        assert!(
            !err.to_string().contains(KEY) && !format!("{err:?}").contains(KEY),
            "key leaked: {err}"
        );
        assert_eq!(fake.request_count(), 4, "client errors are not retried");
    }
}

#[tokio::test]
async fn keys_never_show_in_debug_output() {
    let fake = FakeLlm::start().await;
    let cfg = config(ProviderKind::OpenAiCompatible, &fake);
    assert!(!format!("{cfg:?}").contains(KEY));
    let mut req = hello();
    req.api_key = Some(SecretString::from("byok-secret-key-999"));
    assert!(!format!("{req:?}").contains("byok-secret-key-999"));
}

#[tokio::test]
async fn per_request_model_and_byok_key_override_the_configured_ones() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        let model = provider(kind, &fake);
        let mut req = hello();
        req.model = Some("agent-specific-model".into());
        req.api_key = Some(SecretString::from("byok-workspace-key"));
        model.chat(&req).await.unwrap();
        model.chat(&hello()).await.unwrap();
        let seen = fake.requests();
        assert_eq!(seen[0].model(), "agent-specific-model");
        assert_eq!(seen[1].model(), model.model());
        let key_of = |r: &fakellm::RecordedRequest| match kind {
            ProviderKind::OpenAiCompatible => r.header("authorization").map(str::to_owned),
            ProviderKind::Anthropic => r.header("x-api-key").map(|k| format!("Bearer {k}")),
        };
        assert_eq!(key_of(&seen[0]).as_deref(), Some("Bearer byok-workspace-key"));
        assert_eq!(key_of(&seen[1]), Some(format!("Bearer {KEY}")));
    }
}

#[tokio::test]
async fn anthropic_requests_use_its_wire_format() {
    let fake = FakeLlm::start().await;
    let model = provider(ProviderKind::Anthropic, &fake);
    let call = ToolCall {
        id: "toolu_1".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Rome"}"#.into(),
    };
    let call2 = ToolCall {
        id: "toolu_2".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Oslo"}"#.into(),
    };
    let mut req = ChatRequest::new(vec![
        Message::system("You are helpful."),
        Message::user("Weather in Rome and Oslo?"),
        Message::assistant_tool_calls(None, vec![call, call2]),
        Message::tool_result("toolu_1", "sunny"),
        Message::tool_result("toolu_2", "snow"),
    ]);
    req.tools = vec![weather_tool()];
    req.stop = vec!["END".into()];
    let resp = model.chat(&req).await.unwrap();
    assert_eq!(resp.content, "Tool result: sunnysnow");
    let seen = &fake.requests()[0];
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("authorization"), None);
    let b = &seen.body;
    assert_eq!(b["system"], json!("You are helpful."));
    assert_eq!(b["max_tokens"], json!(4096));
    assert_eq!(b["stop_sequences"], json!(["END"]));
    assert_eq!(b["tools"][0]["input_schema"]["required"], json!(["city"]));
    let msgs = seen.messages();
    assert_eq!(msgs.len(), 3, "system lifted out, tool results merged: {msgs:?}");
    assert_eq!(
        msgs[1]["content"][0],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Rome"}})
    );
    assert_eq!(msgs[2]["role"], json!("user"));
    assert_eq!(
        msgs[2]["content"][1],
        json!({"type": "tool_result", "tool_use_id": "toolu_2", "content": "snow"})
    );
}

#[tokio::test]
async fn openai_requests_use_its_wire_format_and_azure_style_urls() {
    let fake = FakeLlm::start().await;
    let mut cfg = config(ProviderKind::OpenAiCompatible, &fake);
    cfg.base_url = format!("{}?api-version=2024-10-21", fake.base_url);
    cfg.auth_style = llm::AuthStyle::ApiKeyHeader;
    let model = provider_from_config(cfg).unwrap();
    let call = ToolCall {
        id: "call_1".into(),
        name: "get_weather".into(),
        arguments: r#"{"city":"Rome"}"#.into(),
    };
    let mut req = ChatRequest::new(vec![
        Message::user("Rome?"),
        Message::assistant_tool_calls(Some("Checking".into()), vec![call]),
        Message::tool_result("call_1", "sunny"),
    ]);
    req.tools = vec![weather_tool()];
    req.tool_choice = llm::ToolChoice::Tool("get_weather".into());
    req.temperature = Some(0.5);
    req.max_tokens = Some(100);
    model.chat(&req).await.unwrap();
    let seen = &fake.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions?api-version=2024-10-21");
    assert_eq!(seen.header("api-key"), Some(KEY));
    assert_eq!(seen.header("authorization"), None);
    let b = &seen.body;
    assert_eq!(b["tools"][0]["type"], json!("function"));
    assert_eq!(b["tools"][0]["function"]["name"], json!("get_weather"));
    assert_eq!(b["tool_choice"], json!({"type": "function", "function": {"name": "get_weather"}}));
    assert_eq!(b["temperature"], json!(0.5));
    assert_eq!(b["max_tokens"], json!(100));
    assert_eq!(
        b["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!(r#"{"city":"Rome"}"#)
    );
    assert_eq!(
        b["messages"][2],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "sunny"})
    );
}

#[tokio::test]
async fn the_echo_default_drives_a_whole_tool_loop() {
    for kind in KINDS {
        let fake = FakeLlm::start().await;
        let model = provider(kind, &fake);
        let mut req = ChatRequest::new(vec![Message::user("use get_weather for Lyon")]);
        req.tools = vec![weather_tool()];
        let first = collect_stream(model.chat_stream(&req).await.unwrap()).await.unwrap();
        assert_eq!(first.tool_calls.len(), 1, "{kind:?}");
        let args: Value = serde_json::from_str(&first.tool_calls[0].arguments).unwrap();
        assert_eq!(args, json!({"city": "use get_weather for Lyon"}));
        req.messages.push(first.to_message());
        req.messages.push(Message::tool_result(first.tool_calls[0].id.clone(), "22°C"));
        let second = model.chat(&req).await.unwrap();
        assert_eq!(second.content, "Tool result: 22°C");
        assert_eq!(second.finish_reason, FinishReason::Stop);
    }
}

#[tokio::test]
async fn one_provider_serves_many_tasks_at_once() {
    let fake = FakeLlm::start().await;
    let model = provider(ProviderKind::OpenAiCompatible, &fake);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let model = model.clone();
            tokio::spawn(async move {
                let req = ChatRequest::new(vec![Message::user(format!("task {i}"))]);
                collect_stream(model.chat_stream(&req).await?).await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap().content, format!("Echo: task {i}"));
    }
    assert_eq!(fake.request_count(), 16);
}

#[tokio::test]
async fn the_fake_lists_a_model() {
    let fake = FakeLlm::start().await;
    let body: Value =
        reqwest::get(format!("{}/models", fake.base_url)).await.unwrap().json().await.unwrap();
    assert_eq!(body["data"][0]["id"], json!("fake-model"));
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported_unavailable() {
    // Bind then release a port so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for kind in KINDS {
        let mut cfg = config(kind, &FakeLlm::start().await);
        cfg.base_url = format!("http://127.0.0.1:{port}/v1");
        let model = provider_from_config(cfg).unwrap();
        let started = Instant::now();
        let err = model.chat(&hello()).await.unwrap_err();
        assert!(
            matches!(&err, LlmError::Unavailable { detail } if detail.contains("connect")),
            "{err:?}"
        );
        assert!(started.elapsed() >= Duration::from_millis(10), "backed off between attempts");
        assert!(matches!(
            model.chat_stream(&hello()).await.err(),
            Some(LlmError::Unavailable { .. })
        ));
    }
}

#[tokio::test]
async fn a_keyless_local_server_gets_no_auth_header() {
    let fake = FakeLlm::start().await;
    let model =
        provider_from_config(ProviderConfig::openai_compatible(&fake.base_url, None, "llama3"))
            .unwrap();
    assert_eq!(model.chat(&hello()).await.unwrap().content, "Echo: Hello");
    let seen = &fake.requests()[0];
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.model(), "llama3");
}
