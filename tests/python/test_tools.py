"""Tool calling through OpenAI's Python SDK (strict response validation) against the 135M
model, whose chat template knows no tools: Hearth describes them in the system prompt and the
grammar makes the calls valid. Arguments validate against the tool's schema (jsonschema),
streamed deltas assemble into the same call as the whole answer, a tool result round-trips,
and `parse` fills a pydantic model from a strict function tool."""

import json

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

MODEL = "SmolLM2-135M-Instruct.Q4_1"

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather in a city", "parameters": WEATHER}},
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Adds two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def schema_of(name):
    return next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == name)


@pytest.mark.parametrize("seed", [1, 2])
def test_required_gives_valid_arguments(client, seed):
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required", seed=seed, max_tokens=120
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    calls = choice.message.tool_calls
    assert len(calls) == 1, "parallel_tool_calls is off unless asked for"
    call = calls[0]
    assert call.type == "function" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), schema_of(call.function.name))


def test_named_tool_is_the_one_called(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "What is two plus three?"}],
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "add"}},
        temperature=0,
        max_tokens=60,
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "add"
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, schema_of("add"))
    assert isinstance(args["a"], int) and isinstance(args["b"], int)


def test_streamed_deltas_assemble_into_the_same_call(client):
    kwargs = dict(model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required", temperature=0, max_tokens=120)
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    calls, finish, ids = {}, None, set()
    with client.chat.completions.create(stream=True, **kwargs) as stream:
        for chunk in stream:
            if not chunk.choices:
                continue
            c = chunk.choices[0]
            finish = c.finish_reason or finish
            for piece in c.delta.tool_calls or []:
                slot = calls.setdefault(piece.index, {"name": "", "arguments": ""})
                if piece.id:
                    ids.add(piece.id)
                    assert piece.function.name, "the first piece names the function"
                    slot["name"] = piece.function.name
                slot["arguments"] += piece.function.arguments or ""
    assert finish == "tool_calls"
    assert len(calls) == 1 and len(ids) == 1
    assert calls[0] == {"name": whole.function.name, "arguments": whole.function.arguments}


def test_a_tool_result_round_trips(client):
    first = client.chat.completions.create(
        model=MODEL, messages=ASK, tools=TOOLS, tool_choice="required", temperature=0, max_tokens=120
    )
    msg = first.choices[0].message
    history = ASK + [
        msg.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": json.dumps({"sky": "sunny", "temp": 21})},
    ]
    r = client.chat.completions.create(model=MODEL, messages=history, tools=TOOLS, temperature=0, max_tokens=60)
    choice = r.choices[0]
    assert choice.finish_reason in ("stop", "length", "tool_calls")
    assert choice.message.content or choice.message.tool_calls
    none = client.chat.completions.create(model=MODEL, messages=history, tool_choice="none", tools=TOOLS, max_tokens=30)
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content


class Forecast(BaseModel):
    """Forecast for a city."""

    city: str = Field(max_length=40)
    days: int = Field(ge=1, le=14)


def test_parse_fills_pydantic_tool_arguments(client):
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Forecast for Rome for the next 3 days."}],
        tools=[openai.pydantic_function_tool(Forecast)],
        tool_choice="required",
        seed=5,
        max_tokens=80,
    )
    call = r.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Forecast), call.function.arguments


def test_parallel_calls_when_asked(client):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris and in Rome?"}],
        tools=TOOLS,
        tool_choice="required",
        parallel_tool_calls=True,
        temperature=0,
        max_tokens=200,
    )
    calls = r.choices[0].message.tool_calls
    assert calls and len({c.id for c in calls}) == len(calls)
    for c in calls:
        jsonschema.validate(json.loads(c.function.arguments), schema_of(c.function.name))


@pytest.mark.parametrize(
    "extra, param",
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"e": {"type": "string", "format": "email"}}}}}]},
            "tools[0].function.parameters",
        ),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_bad_tool_requests_name_their_field(client, extra, param):
    kwargs = dict(model=MODEL, messages=ASK, tools=TOOLS, max_tokens=5)
    kwargs.update(extra)
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(**kwargs)
    assert e.value.body["param"] == param
