"""Structured output through OpenAI's Python SDK (strict response validation): answers to a
json_schema request validate against the schema (jsonschema), `client.chat.completions.parse`
fills a pydantic model, json_object streams a JSON object, and an unsupported keyword is a
BadRequestError naming it. The 135M model gets these right because decoding is constrained."""

import json
from typing import Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

MODEL = "SmolLM2-135M-Instruct.Q4_1"

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "year": {"type": "integer", "minimum": 1800, "maximum": 2100},
        "genres": {"type": "array", "items": {"enum": ["drama", "comedy", "sci-fi"]}, "minItems": 1, "maxItems": 3},
        "sequel": {"anyOf": [{"type": "string", "maxLength": 40}, {"type": "null"}]},
    },
    "required": ["title", "year", "genres", "sequel"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_json_schema_answers_validate(client, seed):
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Describe a film as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "film", "strict": True, "schema": SCHEMA}},
        seed=seed,
        max_tokens=200,
    )
    choice = r.choices[0]
    jsonschema.validate(json.loads(choice.message.content), SCHEMA)
    assert choice.finish_reason == "stop"


class City(BaseModel):
    name: str = Field(max_length=40)
    country: str = Field(max_length=40)
    population: int = Field(ge=0)
    kind: Literal["capital", "town"]


def test_parse_fills_a_pydantic_model(client):
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me about Paris."}],
        response_format=City,
        seed=3,
        max_tokens=120,
    )
    city = r.choices[0].message.parsed
    assert isinstance(city, City), r.choices[0].message.content


def test_json_object_streams_an_object(client):
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": 'Reply with a JSON object with a key "answer": the capital of France.'}],
        response_format={"type": "json_object"},
        stream=True,
        temperature=0,
        max_tokens=300,
        extra_body={"repeat_penalty": 1.3},
    )
    text, finish = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    assert isinstance(json.loads(text), dict), text
    assert finish == "stop"


def test_unsupported_keyword_is_a_bad_request_naming_it(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "not": {}}}},
        )
    assert "`not`" in e.value.body["message"] and e.value.body["param"] == "response_format"
