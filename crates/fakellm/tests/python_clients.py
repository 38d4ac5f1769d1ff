"""The official `openai` and `anthropic` Python clients against a running fakellm (echo mode).

Usage: python3 python_clients.py OPENAI_BASE_URL ANTHROPIC_BASE_URL
Needs: pip install openai anthropic
"""
import json
import sys

import anthropic
import openai

openai_url, anthropic_url = sys.argv[1], sys.argv[2]
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
    except Exception as e:  # report every failure, not just the first
        results.append((name, repr(e)))


def openai_plain():
    c = openai.OpenAI(base_url=openai_url, api_key="sk-test", max_retries=0)
    r = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "Echo: hi", r
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens >= 1 and r.usage.completion_tokens >= 1


def openai_stream_tool_call():
    c = openai.OpenAI(base_url=openai_url, api_key="sk-test", max_retries=0)
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "w", "parameters": WEATHER}}]
    stream = c.chat.completions.create(
        model="m", stream=True, stream_options={"include_usage": True}, tools=tools,
        messages=[{"role": "user", "content": "get_weather in Paris"}],
    )
    calls, finish, usage = {}, None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
                slot["id"] = tc.id or slot["id"]
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["args"] += (tc.function.arguments or "") if tc.function else ""
    assert finish == "tool_calls", finish
    assert usage is not None and usage.total_tokens > 0
    assert calls[0]["name"] == "get_weather" and calls[0]["id"]
    assert json.loads(calls[0]["args"]) == {"city": "get_weather in Paris"}


def openai_models():
    c = openai.OpenAI(base_url=openai_url, api_key="sk-test", max_retries=0)
    assert [m.id for m in c.models.list()] == ["fake-model"]


def anthropic_plain():
    c = anthropic.Anthropic(base_url=anthropic_url, api_key="k", max_retries=0)
    r = c.messages.create(model="m", max_tokens=100, system="s", messages=[{"role": "user", "content": "hey"}])
    assert r.content[0].text == "Echo: hey", r
    assert r.stop_reason == "end_turn"


def anthropic_stream_tool_use():
    c = anthropic.Anthropic(base_url=anthropic_url, api_key="k", max_retries=0)
    tools = [{"name": "get_weather", "description": "w", "input_schema": WEATHER}]
    with c.messages.stream(model="m", max_tokens=100, tools=tools,
                           messages=[{"role": "user", "content": "get_weather Rome"}]) as s:
        final = s.get_final_message()
    assert final.stop_reason == "tool_use", final
    block = [b for b in final.content if b.type == "tool_use"][0]
    assert block.name == "get_weather" and block.input == {"city": "get_weather Rome"}, block


for name, fn in [
    ("openai_plain", openai_plain),
    ("openai_stream_tool_call", openai_stream_tool_call),
    ("openai_models", openai_models),
    ("anthropic_plain", anthropic_plain),
    ("anthropic_stream_tool_use", anthropic_stream_tool_use),
]:
    check(name, fn)
failed = [(n, e) for n, e in results if e]
for n, e in failed:
    print(f"FAILED {n}: {e}")
print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
