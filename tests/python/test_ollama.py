"""Ollama's API through the unmodified `ollama` Python client (and raw HTTP where a client
reads the wire itself, as Open WebUI and Continue do): list, show, ps, generate and chat
streamed and not, format `json` and a schema, tool turns, embeddings, load/unload, and errors
as `ResponseError` with Ollama's status codes."""

import json
import os

import httpx
import jsonschema
import ollama
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"
GEMMA = "gemma-3-270m-q4_k_m"
EMBED = "all-MiniLM-L6-v2.Q8_0"
URL = os.environ["HEARTH_URL"]
ASK = [{"role": "user", "content": "Name a colour."}]


@pytest.fixture(scope="module")
def client():
    return ollama.Client(host=URL)


def test_list_show_and_ps(client):
    models = {m.model: m for m in client.list().models}
    smol = models[MODEL + ":latest"]
    assert smol.size > 10_000_000 and len(smol.digest) == 64
    assert smol.details.format == "gguf" and smol.details.family == "llama"
    assert smol.details.parameter_size == "135M" and smol.details.quantization_level == "Q4_1"
    show = client.show(MODEL)
    assert show.modelinfo["general.architecture"] == "llama"
    assert show.modelinfo["llama.context_length"] == 8192
    assert "completion" in show.capabilities and "tools" in show.capabilities
    assert "<|im_start|>" in show.template
    assert "num_ctx" in show.parameters and 'stop "<|im_end|>"' in show.parameters
    assert client.show(EMBED).capabilities == ["embedding"]
    client.chat(model=MODEL, messages=ASK, options={"num_predict": 2})
    ps = {m.model: m for m in client.ps().models}
    loaded = ps[MODEL + ":latest"]
    assert loaded.context_length > 0 and loaded.size >= smol.size and loaded.expires_at is not None


def test_chat_whole_and_streamed_agree(client):
    opts = {"num_predict": 12, "temperature": 0, "seed": 3}
    whole = client.chat(model=MODEL, messages=ASK, options=opts, stream=False)
    assert whole.done and whole.done_reason in ("stop", "length")
    assert whole.message.role == "assistant" and whole.message.content
    assert whole.eval_count >= 1 and whole.prompt_eval_count > 5
    assert isinstance(whole.total_duration, int) and whole.total_duration >= whole.eval_duration > 0
    parts = list(client.chat(model=MODEL, messages=ASK, options=opts, stream=True))
    assert all(not p.done for p in parts[:-1]) and parts[-1].done
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].eval_count == whole.eval_count


def test_generate_template_system_and_raw(client):
    r = client.generate(model=MODEL, prompt="Say hello.", system="You are terse.", options={"num_predict": 8})
    assert r.done and r.response and r.prompt_eval_count > 10
    raw = client.generate(model=MODEL, prompt="The capital of France is", raw=True, options={"num_predict": 4, "temperature": 0})
    # Raw: no template, so the prompt is a handful of tokens.
    assert raw.prompt_eval_count < 10 and raw.response
    streamed = "".join(p.response for p in client.generate(model=MODEL, prompt="The capital of France is", raw=True, stream=True, options={"num_predict": 4, "temperature": 0}))
    assert streamed == raw.response
    # Without num_predict, Ollama generates until the end (not a completion's 16 tokens).
    counting = client.generate(model=MODEL, prompt="1, 2, 3, 4, 5, 6,", raw=True, options={"stop": ["16,"], "temperature": 0})
    assert counting.done_reason == "stop" and counting.eval_count > 16, counting


def test_options_limits_stop_and_unknown_keys(client):
    r = client.chat(model=MODEL, messages=ASK, options={"num_predict": 3, "mirostat": 2, "tfs_z": 1.0, "num_gpu": 99, "num_thread": 2, "num_ctx": 4096})
    assert r.done_reason == "length" and r.eval_count == 3
    r = client.generate(model=MODEL, prompt="Count: 1, 2, 3,", raw=True, options={"stop": [","], "num_predict": 20, "temperature": 0})
    assert "," not in r.response and r.done_reason == "stop"


def test_repeat_last_n_is_the_penalties_window(client):
    def gen(n):
        o = {"num_predict": 12, "temperature": 0, "repeat_penalty": 3.0, "repeat_last_n": n}
        return client.generate(model=MODEL, prompt="1, 1, 1, 1, 1, 1, 1, 1,", raw=True, options=o).response

    off, on = gen(0), gen(64)
    assert off != on, "a window of 0 turns the penalties off"
    with pytest.raises(ollama.ResponseError) as e:
        gen(-2)
    assert e.value.status_code == 400 and "repeat_last_n" in str(e.value)


def test_format_schema_and_json(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    r = client.chat(model=MODEL, messages=[{"role": "user", "content": "Describe a person."}], format=schema, options={"num_predict": 120})
    jsonschema.validate(json.loads(r.message.content), schema)
    r = client.generate(model=MODEL, prompt='Reply with the JSON object {"ok": true}.', format="json", options={"num_predict": 120, "temperature": 0})
    assert r.done_reason == "stop", r
    assert isinstance(json.loads(r.response), dict)


def test_tool_turns_round_trip(client):
    tool = {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    history = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "18 degrees and sunny", "tool_name": "get_weather"},
    ]
    r = client.chat(model=MODEL, messages=history, tools=[tool], options={"num_predict": 30})
    assert r.done and (r.message.content or r.message.tool_calls)
    for call in r.message.tool_calls or []:
        assert isinstance(call.function.arguments, dict)


def test_embed_and_legacy_embeddings(client):
    r = client.embed(model=EMBED, input=["a cat", "a dog"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) == 384
    assert abs(sum(x * x for x in r.embeddings[0]) - 1) < 1e-3
    assert r.prompt_eval_count > 0
    # The legacy route returns the model's vector as it is (Ollama normalises /api/embed only).
    one = client.embeddings(model=EMBED, prompt="a cat").embedding
    norm = sum(x * x for x in one) ** 0.5
    assert abs(norm - 1) > 1e-3
    assert max(abs(a / norm - b) for a, b in zip(one, r.embeddings[0])) < 1e-4


def test_empty_request_loads_and_keep_alive_zero_unloads(client):
    r = client.generate(model=GEMMA, prompt="")
    assert r.done and r.done_reason == "load"
    assert GEMMA + ":latest" in {m.model for m in client.ps().models}
    r = client.generate(model=GEMMA, prompt="", keep_alive=0)
    assert r.done_reason == "unload"
    assert GEMMA + ":latest" not in {m.model for m in client.ps().models}
    r = client.chat(model=MODEL, messages=[])
    assert r.done_reason == "load"


def test_errors_are_response_errors(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="no-such-model", messages=ASK)
    assert e.value.status_code == 404 and "no-such-model" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model=MODEL, messages=ASK, think=True)
    assert e.value.status_code == 400 and "thinking" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model=MODEL, messages=[{"role": "user", "content": "what is this?", "images": ["aGVsbG8="]}])
    assert e.value.status_code == 400 and "images" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model=MODEL, input="x")
    assert e.value.status_code == 400
    # Within a stream the client raises too (an error before the first line is a status).
    with pytest.raises(ollama.ResponseError):
        list(client.generate(model="no-such-model", prompt="x", stream=True))


def ndjson(res):
    assert res.headers["content-type"].startswith("application/x-ndjson")
    lines = res.text.split("\n")
    assert lines[-1] == "", "each object ends with a newline"
    assert all(lines[:-1]), "no blank lines"
    return [json.loads(line) for line in lines[:-1]]


def test_open_webui_connect_flow():
    """What Open WebUI does when it connects to an Ollama URL, read off the wire."""
    with httpx.Client(base_url=URL, timeout=60) as h:
        assert "version" in h.get("/api/version").json()
        names = [m["name"] for m in h.get("/api/tags").json()["models"]]
        assert MODEL + ":latest" in names
        assert isinstance(h.get("/api/ps").json()["models"], list)
        assert h.post("/api/show", json={"model": MODEL}).status_code == 200
        with h.stream("POST", "/api/chat", json={"model": MODEL, "messages": ASK, "options": {"num_predict": 6}}) as res:
            res.read()
        objs = ndjson(res)
        assert all(o["done"] is False for o in objs[:-1]) and objs[-1]["done"] is True
        last = objs[-1]
        for k in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration"):
            assert isinstance(last[k], int), k
        assert last["done_reason"] in ("stop", "length") and last["message"]["role"] == "assistant"
        assert all(o["created_at"].endswith("Z") for o in objs)
        # The seed plan's spellings: the same generation as a stream, and the model list.
        res = h.post("/api/generate/stream", json={"model": MODEL, "prompt": "hi", "options": {"num_predict": 3}})
        assert ndjson(res)[-1]["done"] is True
        assert MODEL in [m["id"] for m in h.get("/api/models").json()["data"]]
        # JSON nulls read as Ollama's Go decoder reads them: empty.
        nulls = [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "w", "arguments": {}}}]}, {"role": "tool", "content": "sunny"}]
        res = h.post("/api/chat", json={"model": MODEL, "messages": nulls, "stream": False, "options": {"num_predict": 4}})
        assert res.status_code == 200, res.text
        res = h.post("/api/generate", json={"model": MODEL, "prompt": None, "raw": None})
        assert res.json()["done_reason"] == "load"
        # Errors are {"error": "..."}.
        res = h.post("/api/chat", json={"model": "nope", "messages": ASK})
        assert res.status_code == 404 and isinstance(res.json()["error"], str)
        res = h.post("/api/chat", content=b"{not json")
        assert res.status_code == 400 and isinstance(res.json()["error"], str)


def test_continue_show_with_name():
    """Continue posts the legacy `name` and reads `parameters` and `template`."""
    res = httpx.post(URL + "/api/show", json={"name": MODEL + ":latest"}, timeout=30)
    assert res.status_code == 200
    body = res.json()
    assert "num_ctx" in body["parameters"] and body["template"]
    assert body["model_info"]["general.architecture"] == "llama"


def test_root_says_running_to_non_browsers():
    res = httpx.get(URL + "/")
    assert res.status_code == 200 and "running" in res.text


def test_pull_from_the_hub_then_chat_with_the_pulled_name(client):
    """`ollama pull hf.co/...` as Open WebUI runs it: scripts/test-python serves the starter
    model from a hub on loopback as test/bench-GGUF."""
    name = "hf.co/test/bench-GGUF:Q4_1"
    events = list(client.pull(name, stream=True))
    statuses = [e.status for e in events]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success", statuses
    assert any(e.digest and e.digest.startswith("sha256:") and e.total for e in events), events
    assert client.pull(name).status == "success", "a second pull finds it here"
    r = client.chat(model=name, messages=ASK, options={"num_predict": 3})
    assert r.message.content is not None
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("hf.co/test/bench-GGUF:Q6_K")
    assert e.value.status_code == 404 and "Q4_1" in e.value.error
