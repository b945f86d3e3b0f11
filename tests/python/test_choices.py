"""`n` choices through OpenAI's Python SDK (strict response validation): n=3 gives three
choices with their indexes, sampled with their own seeds from one prompt evaluation; usage
counts the prompt once and every choice's tokens; n beyond the model's slots is a 400."""

import openai
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"
ASK = [{"role": "user", "content": "Write a one-line poem about the sea."}]


def test_three_choices(client):
    r = client.chat.completions.create(model=MODEL, messages=ASK, n=3, seed=7, temperature=1.0, max_tokens=24)
    assert [c.index for c in r.choices] == [0, 1, 2]
    texts = [c.message.content for c in r.choices]
    assert all(texts) and len(set(texts)) > 1, texts
    one = client.chat.completions.create(model=MODEL, messages=ASK, seed=7, temperature=1.0, max_tokens=24)
    assert r.usage.prompt_tokens == one.usage.prompt_tokens
    lengths = [len(t) for t in texts]
    assert r.usage.completion_tokens >= 3 and r.usage.completion_tokens <= 3 * 24, lengths


def test_choices_with_tools_and_logprobs(client):
    params = {"type": "object", "properties": {}, "additionalProperties": False}
    tools = [{"type": "function", "function": {"name": "noop", "parameters": params}}]
    r = client.chat.completions.create(
        model=MODEL, messages=ASK, n=2, tools=tools, tool_choice="required", logprobs=True, seed=1, max_tokens=40
    )
    assert len(r.choices) == 2
    for c in r.choices:
        assert c.finish_reason == "tool_calls" and c.message.tool_calls[0].function.name == "noop"
        assert c.logprobs.content


def test_more_choices_than_slots(client):
    # The test server runs 4 slots: choices 4 and 5 run as a second group once slots free up.
    r = client.chat.completions.create(model=MODEL, messages=ASK, n=6, seed=2, temperature=1.0, max_tokens=12)
    assert [c.index for c in r.choices] == list(range(6))
    assert all(c.message.content for c in r.choices)


def test_too_many_choices_is_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=ASK, n=9, max_tokens=2)
    assert e.value.body["param"] == "n"


def test_streamed_choices_carry_their_index(client):
    texts, finishes = {}, {}
    usage = None
    stream = client.chat.completions.create(
        model=MODEL, messages=ASK, n=3, seed=4, temperature=1.0, max_tokens=16, stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            texts[c.index] = texts.get(c.index, "") + (c.delta.content or "")
            if c.finish_reason:
                assert c.index not in finishes, "one finish per choice"
                finishes[c.index] = c.finish_reason
    assert sorted(texts) == [0, 1, 2] and sorted(finishes) == [0, 1, 2]
    assert all(texts.values()) and len(set(texts.values())) > 1, texts
    whole = client.chat.completions.create(model=MODEL, messages=ASK, n=3, seed=4, temperature=1.0, max_tokens=16)
    assert [texts[i] for i in range(3)] == [c.message.content for c in whole.choices], "same seeds, same choices"
    assert usage.completion_tokens == whole.usage.completion_tokens
