"""Anthropic's Messages API through the unmodified `anthropic` SDK: create, the
`messages.stream` helper, system prompts, stop sequences, max_tokens, tool_use with
tool_result, count_tokens, errors as the SDK's typed exceptions, and the event order on the
wire."""

import json
import os

import anthropic
import httpx
import jsonschema
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"
URL = os.environ["HEARTH_URL"]
ASK = [{"role": "user", "content": "Name a colour."}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
    },
}


@pytest.fixture(scope="module")
def client():
    return anthropic.Anthropic(base_url=URL, api_key="unused", max_retries=0)


def test_create_and_usage(client):
    m = client.messages.create(model=MODEL, max_tokens=12, messages=ASK)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg")
    assert m.stop_reason in ("end_turn", "max_tokens") and m.stop_sequence is None
    assert m.content[0].type == "text" and m.content[0].text
    assert m.usage.output_tokens >= 1 and m.usage.input_tokens + m.usage.cache_read_input_tokens > 5


def test_max_tokens_and_stop_sequences(client):
    m = client.messages.create(model=MODEL, max_tokens=3, messages=[{"role": "user", "content": "Write a long story."}])
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3
    m = client.messages.create(model=MODEL, max_tokens=40, messages=[{"role": "user", "content": "Write a long story."}], stop_sequences=[" "])
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == " "
    assert " " not in m.content[0].text


def test_system_as_string_and_blocks(client):
    as_text = client.messages.count_tokens(model=MODEL, messages=ASK, system="You are a pirate.")
    as_blocks = client.messages.count_tokens(model=MODEL, messages=ASK, system=[{"type": "text", "text": "You are a pirate."}])
    longer = client.messages.count_tokens(model=MODEL, messages=ASK, system="You are a pirate who sails the seven seas.")
    assert longer.input_tokens > as_text.input_tokens == as_blocks.input_tokens > 0
    m = client.messages.create(model=MODEL, max_tokens=8, messages=ASK, system=[{"type": "text", "text": "Be brief."}])
    assert m.content[0].text
    # count_tokens counts what create evaluates.
    m = client.messages.create(model=MODEL, max_tokens=2, messages=ASK, system="You are a pirate.")
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == as_text.input_tokens


def test_stream_helper_matches_events(client):
    with client.messages.stream(model=MODEL, max_tokens=16, messages=ASK) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == final.content[0].text and text
    assert final.stop_reason in ("end_turn", "max_tokens") and final.usage.output_tokens >= 1


def test_tool_use_and_result(client):
    m = client.messages.create(model=MODEL, max_tokens=80, messages=[{"role": "user", "content": "What is the weather in Paris?"}], tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    assert m.stop_reason == "tool_use"
    use = [b for b in m.content if b.type == "tool_use"]
    assert len(use) == 1 and use[0].name == "get_weather", "one call unless parallel use is asked for"
    jsonschema.validate(use[0].input, WEATHER["input_schema"])
    with client.messages.stream(model=MODEL, max_tokens=80, messages=[{"role": "user", "content": "What is the weather in Paris?"}], tools=[WEATHER], tool_choice={"type": "any"}) as s:
        streamed = s.get_final_message()
    assert streamed.stop_reason == "tool_use"
    jsonschema.validate([b for b in streamed.content if b.type == "tool_use"][0].input, WEATHER["input_schema"])
    after = client.messages.create(
        model=MODEL,
        max_tokens=20,
        tools=[WEATHER],
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": m.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use[0].id, "content": "18 degrees, sunny"}]},
        ],
    )
    assert after.content


def test_errors_are_typed(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="no-such-model", max_tokens=5, messages=ASK)
    assert e.value.body["type"] == "error" and e.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as e:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "aGk="}}]}])
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model=MODEL, max_tokens=5, messages=ASK, thinking={"type": "enabled", "budget_tokens": 1024})
    # max_tokens is required (the SDK insists too, so this goes around it).
    res = httpx.post(URL + "/v1/messages", json={"model": MODEL, "messages": ASK})
    assert res.status_code == 400 and res.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in res.json()["error"]["message"]


def sse(text):
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_event_order_on_the_wire():
    body = {"model": MODEL, "max_tokens": 10, "messages": ASK, "stream": True}
    res = httpx.post(URL + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}, timeout=60)
    assert res.headers["content-type"].startswith("text/event-stream")
    events = sse(res.text)
    names = [e for e, _ in events]
    assert all(d["type"] == e for e, d in events)
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[-3] == "content_block_stop"
    assert set(names[2:-3]) <= {"content_block_delta", "ping"}
    assert events[-2][1]["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert events[-2][1]["usage"]["output_tokens"] >= 1
