"""OpenAI's Python SDK, in strict response validation mode, against a live Hearth server.

scripts/test-python starts the server and sets HEARTH_URL.
"""


import openai
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"


def ask(content):
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": content},
    ]


def test_chat_non_stream(client):
    r = client.chat.completions.create(
        model=MODEL, messages=ask("What is the capital of France?"), temperature=0, max_tokens=30
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert "Paris" in r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_stream_with_usage(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=ask("Name a color."),
            temperature=0,
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    ids = {c.id for c in chunks}
    assert len(ids) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens <= 10
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_length_and_alias(client):
    r = client.completions.create(model="smollm2", prompt="1, 2, 3, 4,", max_tokens=5, temperature=0)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 5
    assert r.model == MODEL


def test_models(client):
    ids = [m.id for m in client.models.list().data]
    assert MODEL in ids
    assert client.models.retrieve(MODEL).id == MODEL


def test_unknown_model_is_not_found_error(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=ask("hi"))
    assert e.value.code == "model_not_found"


def test_bad_param_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), temperature=3)
    assert e.value.param == "temperature"


def test_context_length_exceeded(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=ask("hi"), max_tokens=1_000_000)
    assert e.value.code == "context_length_exceeded"
    assert "maximum context length is" in e.value.message
