"""Log-probabilities through OpenAI's Python SDK (strict response validation): chat's
`logprobs.content` tokens concatenate to the answer, streamed or not; at temperature 0 the
chosen token is the most likely one; legacy completions report tokens, offsets and top
alternatives; out-of-range values are a 400 naming the field."""

import math

import openai
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"
ASK = [{"role": "user", "content": "Name three colours."}]


def test_chat_logprobs_line_up_with_the_content(client):
    r = client.chat.completions.create(model=MODEL, messages=ASK, logprobs=True, top_logprobs=3, temperature=0, max_tokens=20)
    choice = r.choices[0]
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert len(tokens) == r.usage.completion_tokens or choice.finish_reason == "stop"
    for t in tokens:
        assert t.logprob <= 0 and bytes(t.bytes).decode("utf-8", "replace") == t.token
        assert len(t.top_logprobs) == 3
        lps = [a.logprob for a in t.top_logprobs]
        assert lps == sorted(lps, reverse=True)
        assert math.isclose(t.top_logprobs[0].logprob, t.logprob, abs_tol=1e-5), "greedy picks the most likely token"
        assert sum(math.exp(x) for x in lps) <= 1.0001


def test_streamed_logprobs_match_the_whole_answer(client):
    kwargs = dict(model=MODEL, messages=ASK, logprobs=True, temperature=0, max_tokens=20)
    whole = client.chat.completions.create(**kwargs).choices[0]
    text, tokens = "", []
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        for c in chunk.choices:
            text += c.delta.content or ""
            if c.logprobs and c.logprobs.content:
                tokens.extend(c.logprobs.content)
    assert text == whole.message.content == "".join(t.token for t in tokens)
    assert [round(t.logprob, 4) for t in tokens] == [round(t.logprob, 4) for t in whole.logprobs.content]


def test_no_logprobs_unless_asked(client):
    r = client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=5)
    assert r.choices[0].logprobs is None


def test_completion_logprobs(client):
    r = client.completions.create(model=MODEL, prompt="The capital of France is", logprobs=2, temperature=0, max_tokens=6)
    choice = r.choices[0]
    lp = choice.logprobs
    assert "".join(lp.tokens) == choice.text
    assert lp.text_offset == [sum(len(t.encode()) for t in lp.tokens[:i]) for i in range(len(lp.tokens))]
    assert all(len(top) <= 2 and tok in top for tok, top in zip(lp.tokens, lp.top_logprobs))


@pytest.mark.parametrize(
    "kwargs, param",
    [({"logprobs": True, "top_logprobs": 21}, "top_logprobs"), ({"top_logprobs": 2}, "top_logprobs")],
)
def test_bad_logprobs_are_400(client, kwargs, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=3, **kwargs)
    assert e.value.body["param"] == param
