"""OpenAI's Responses API through the openai SDK (strict response validation):
`responses.create` whole and streamed, the `responses.stream` helper, instructions, message
items, `text.format` json_schema, function tools with a tool result, and the stateless
refusals. Nothing is stored (`store: false`)."""

import json

import jsonschema
import openai
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"], "additionalProperties": False},
    "strict": True,
}


def test_create_whole(client):
    r = client.responses.create(model=MODEL, input="Name a colour.", instructions="Be brief.", max_output_tokens=12)
    assert r.object == "response" and r.status in ("completed", "incomplete") and r.store is False
    assert r.output_text and r.output[0].type == "message" and r.output[0].content[0].type == "output_text"
    assert r.instructions == "Be brief."
    assert r.usage.output_tokens >= 1 and r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    short = client.responses.create(model=MODEL, input="Write a long story.", max_output_tokens=3)
    assert short.status == "incomplete" and short.incomplete_details.reason == "max_output_tokens"


def test_message_items(client):
    items = [
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": [{"type": "input_text", "text": "Name a colour."}]},
    ]
    r = client.responses.create(model=MODEL, input=items, max_output_tokens=8)
    assert r.output_text


def test_stream_events_and_helper(client):
    events = list(client.responses.create(model=MODEL, input="Name a colour.", max_output_tokens=10, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:-1] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text
    # The helper wants `response.completed` (an answer cut at the limit ends `response.incomplete`).
    with client.responses.stream(model=MODEL, input="Name a colour.", max_output_tokens=200, temperature=0) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert final.output_text and final.usage.output_tokens >= 1


def test_json_schema_format(client):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}}, "required": ["name"], "additionalProperties": False}
    r = client.responses.create(
        model=MODEL,
        input="Describe a person.",
        text={"format": {"type": "json_schema", "name": "person", "schema": schema, "strict": True}},
        max_output_tokens=80,
    )
    jsonschema.validate(json.loads(r.output_text), schema)


def test_function_tools_and_result(client):
    r = client.responses.create(model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="required", max_output_tokens=80)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    jsonschema.validate(json.loads(calls[0].arguments), WEATHER["parameters"])
    events = list(client.responses.create(model=MODEL, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="required", max_output_tokens=80, stream=True))
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done and done[0].arguments == args
    follow = client.responses.create(
        model=MODEL,
        tools=[WEATHER],
        max_output_tokens=20,
        input=[
            {"role": "user", "content": "What is the weather in Paris?"},
            {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 degrees, sunny"},
        ],
    )
    assert follow.output


def test_stateless_refusals(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model=MODEL, input="hi", store=True)
    assert "stateless" in e.value.message
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model=MODEL, input="hi", previous_response_id="resp_123")
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
