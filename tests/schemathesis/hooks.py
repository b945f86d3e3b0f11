"""Schemathesis hooks for tests/schemathesis/run (loaded through SCHEMATHESIS_HOOKS).

Three things that generated data alone does not do:

1. Fixtures. Before the run, a collection with one document, a conversation and a session are
   created, so that the resource pool (which feeds ids seen in `GET` lists into path parameters)
   has something to find and the `GET /collections/{name}/...` 200 paths are checked at all.
2. Known-good requests. The examples phase gets one valid request per operation (small
   `max_tokens`, names of models the server serves), because the request schemas are looser
   than the server: random bodies almost never get past validation, so without these the
   200 (and streaming) responses of the generation routes would go unchecked.
3. Guards. `DELETE /api/delete` removes a model's file and `DELETE /collections/{name}` a
   collection. Names seen in responses are fed back into requests, so without a guard the run
   would delete the served models and the fixtures halfway through, and every later request
   would test only the 404 path. Such a request is sent with a name that matches nothing.
"""

import os
import time

import requests
import schemathesis

URL = os.environ["HEARTH_URL"].rstrip("/")
HEADERS = {"Authorization": "Bearer " + os.environ["HEARTH_API_KEY"]} if os.environ.get("HEARTH_API_KEY") else {}
CHAT = os.environ.get("HEARTH_ST_CHAT_MODEL", "SmolLM2-135M-Instruct.Q4_1")
EMBED = os.environ.get("HEARTH_ST_EMBED_MODEL", "all-MiniLM-L6-v2.Q8_0")
RERANK = os.environ.get("HEARTH_ST_RERANK_MODEL", "minilm-rerank-standin")
COLLECTION = "st-fixture"
SESSION = "st-fixture-session"
NOT_A_NAME = "schemathesis-not-a-model"
# scripts/test-schemathesis serves the starter model from a hub on loopback as test/bench-GGUF.
PULL = "hf.co/test/bench-GGUF:Q4_1"
NOT_ON_THE_HUB = "test/schemathesis-not-a-repo"
DOC = b"# Hearth\n\nHearth serves GGUF models behind an OpenAI-compatible API.\n"


def _call(method, path, **kwargs):
    r = requests.request(method, URL + path, headers=HEADERS, timeout=120, **kwargs)
    return r


def _served_names():
    names = set()
    for m in _call("GET", "/v1/models").json()["data"]:
        names.add(m["id"])
        names.update((m.get("meta") or {}).get("aliases") or [])
    return names


def _setup():
    """Creates the fixtures; returns the ids the examples use."""
    _call("POST", "/collections", json={"name": COLLECTION})  # 409 when a rerun finds it
    docs = _call("GET", f"/collections/{COLLECTION}/documents").json()["data"]
    if not docs:
        files = {"file": ("hearth.md", DOC, "text/markdown")}
        job = _call("POST", f"/collections/{COLLECTION}/documents", files=files, data={"metadata": '{"src":"st"}'})
        job_id = job.json()["data"][0]["id"]
        for _ in range(600):
            if _call("GET", f"/jobs/{job_id}").json()["status"] in ("done", "failed"):
                break
            time.sleep(0.1)
        docs = _call("GET", f"/collections/{COLLECTION}/documents").json()["data"]
    else:
        job_id = None
    _call("POST", "/api/v1/generate", json={"prompt": "Hi", "session_id": SESSION, "max_tokens": 2})
    conv = _call("POST", "/api/v1/conversations", json={"title": "st", "messages": [{"role": "user", "content": "Hi"}]})
    return {"doc": docs[0]["id"], "job": job_id, "conv": conv.json()["id"]}


SERVED = _served_names()
FIX = _setup()
USER = [{"role": "user", "content": "Hi"}]

# One or more known-good requests per operation, keyed by "METHOD /path".
EXAMPLES = {
    "POST /v1/chat/completions": [
        {"body": {"model": CHAT, "messages": USER, "max_tokens": 3, "logprobs": True, "top_logprobs": 2}},
        {"body": {"model": CHAT, "messages": USER, "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}}},
    ],
    "POST /v1/completions": [
        {"body": {"model": CHAT, "prompt": "Hello", "max_tokens": 3, "logprobs": 2}},
        {"body": {"model": CHAT, "prompt": "Hello", "max_tokens": 3, "echo": True}},
        {"body": {"model": CHAT, "prompt": "Hello", "max_tokens": 3, "stream": True}},
    ],
    "POST /v1/responses": [
        {"body": {"model": CHAT, "input": "Hi", "max_output_tokens": 3}},
        {"body": {"model": CHAT, "input": "Hi", "max_output_tokens": 3, "stream": True}},
    ],
    "POST /v1/messages": [
        {"body": {"model": CHAT, "max_tokens": 3, "messages": USER}},
        {"body": {"model": CHAT, "max_tokens": 3, "messages": USER, "stream": True}},
    ],
    "POST /v1/messages/count_tokens": [{"body": {"model": CHAT, "messages": USER}}],
    "POST /v1/embeddings": [
        {"body": {"model": EMBED, "input": ["a", "b"]}},
        {"body": {"model": EMBED, "input": "a", "encoding_format": "base64"}},
    ],
    "POST /embeddings": [{"body": {"model": EMBED, "input": "a"}}],
    "POST /v1/rerank": [{"body": {"model": RERANK, "query": "q", "documents": ["a", "b"], "return_documents": True}}],
    "POST /rerank": [{"body": {"model": RERANK, "query": "q", "documents": ["a", "b"]}}],
    "POST /tokenize": [{"body": {"model": CHAT, "content": "hello world", "with_pieces": True}}],
    "POST /detokenize": [{"body": {"model": CHAT, "tokens": [28120, 905]}}],
    "POST /api/chat": [
        {"body": {"model": CHAT, "messages": USER, "stream": False, "options": {"num_predict": 3}}},
        {"body": {"model": CHAT, "messages": USER, "options": {"num_predict": 3}}},
    ],
    "POST /api/generate": [
        {"body": {"model": CHAT, "prompt": "Hi", "stream": False, "options": {"num_predict": 3}}},
        {"body": {"model": CHAT, "prompt": "Hi", "options": {"num_predict": 3}}},
    ],
    "POST /api/generate/stream": [{"body": {"model": CHAT, "prompt": "Hi", "options": {"num_predict": 3}}}],
    "POST /api/embed": [{"body": {"model": EMBED, "input": ["a", "b"]}}],
    "POST /api/embeddings": [{"body": {"model": EMBED, "prompt": "a"}}],
    "POST /api/show": [{"body": {"model": CHAT}}],
    "DELETE /api/delete": [{"body": {"model": NOT_A_NAME}}],
    "POST /api/pull": [{"body": {"model": PULL, "stream": False}}, {"body": {"model": PULL}}],
    "POST /models/pull": [{"body": {"model": PULL}}],
    "POST /models/load": [{"body": {"model": CHAT}}],
    "POST /models/unload": [{"body": {"model": RERANK}}],
    "GET /v1/models/{id}": [{"path_parameters": {"id": CHAT}}],
    "POST /collections": [{"body": {"name": "st-created"}}],
    "GET /collections/{name}": [{"path_parameters": {"name": COLLECTION}}],
    "DELETE /collections/{name}": [{"path_parameters": {"name": "st-created"}}],
    "GET /collections/{name}/documents": [{"path_parameters": {"name": COLLECTION}}],
    "GET /collections/{name}/documents/{id}": [{"path_parameters": {"name": COLLECTION, "id": FIX["doc"]}}],
    "POST /collections/{name}/search": [
        {"path_parameters": {"name": COLLECTION}, "body": {"query": "OpenAI API", "top_k": 2}},
        {"path_parameters": {"name": COLLECTION}, "body": {"query": "OpenAI API", "mode": "keyword"}},
    ],
    "POST /api/v1/generate": [
        {"body": {"collection": COLLECTION, "prompt": "What does Hearth serve?", "max_tokens": 3}},
        {"body": {"collection": COLLECTION, "prompt": "What does Hearth serve?", "max_tokens": 3, "stream": True}},
    ],
    "POST /collections/{name}/documents": [
        {"path_parameters": {"name": COLLECTION}, "media_type": "multipart/form-data",
         "body": {"file": DOC, "metadata": '{"src":"st-example"}'}},
    ],
    "POST /api/v1/generate/upload": [
        {"media_type": "multipart/form-data", "body": {"file": DOC, "prompt": "What does Hearth serve?", "max_tokens": "3"}},
    ],
    "GET /api/v1/sessions/{id}": [{"path_parameters": {"id": SESSION}}],
    "GET /api/v1/conversations/{id}": [{"path_parameters": {"id": FIX["conv"]}}],
    "PATCH /api/v1/conversations/{id}": [{"path_parameters": {"id": FIX["conv"]}, "body": {"title": "renamed"}}],
    "POST /api/v1/conversations": [{"body": {"title": "st", "messages": USER, "settings": {"temperature": 0.5}}}],
}
if FIX["job"]:
    EXAMPLES["GET /jobs/{id}"] = [{"path_parameters": {"id": FIX["job"]}}]


@schemathesis.hook
def before_add_examples(ctx, examples):
    op = ctx.operation
    for kwargs in EXAMPLES.get(f"{op.method.upper()} {op.path}", []):
        kwargs = dict(kwargs)
        if "body" in kwargs:
            kwargs.setdefault("media_type", "application/json")
        examples.append(op.Case(**kwargs))


def _guarded(name, protected):
    return isinstance(name, str) and name.strip() != "" and name.strip().removesuffix(":latest") in protected


@schemathesis.hook
def before_call(ctx, case, kwargs):
    method, path = case.operation.method.upper(), case.operation.path
    if isinstance(case.body, dict) and case.body.get("file") is DOC:
        # The multipart bodies are undocumented (no schema), so Schemathesis would send the file
        # as a plain field without a filename; send the known-good upload as a real file part.
        kwargs["files"] = {"file": ("hearth.md", DOC, "text/markdown")}
        kwargs["data"] = {k: v for k, v in case.body.items() if k != "file"}
    elif method == "DELETE" and path == "/api/delete" and isinstance(case.body, dict):
        for key in ("model", "name"):
            if _guarded(case.body.get(key), SERVED):
                case.body[key] = NOT_A_NAME
    elif method == "POST" and path in ("/api/pull", "/models/pull") and isinstance(case.body, dict):
        # Generated names would go to the hub: only the known-good one does; others are
        # names the loopback hub does not have (a 404), so no run downloads at random.
        for key in ("model", "name"):
            value = case.body.get(key)
            if isinstance(value, str) and value.strip() and value != PULL:
                case.body[key] = NOT_ON_THE_HUB
    elif method == "DELETE" and path.startswith("/collections/{name}") and case.path_parameters:
        if _guarded(case.path_parameters.get("name"), {COLLECTION}):
            case.path_parameters["name"] = "st-not-a-collection"
    elif method == "DELETE" and path == "/api/v1/sessions/{id}" and case.path_parameters:
        if _guarded(case.path_parameters.get("id"), {SESSION}):
            case.path_parameters["id"] = "st-not-a-session"
    elif method == "DELETE" and path == "/api/v1/conversations/{id}" and case.path_parameters:
        if _guarded(case.path_parameters.get("id"), {FIX["conv"]}):
            case.path_parameters["id"] = "conv-0000000000000000"
