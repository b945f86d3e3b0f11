"""Hostile but well-formed requests, one each, against a server of its own: each is refused
with a 4xx naming the limit (or served within bounds), and afterwards the server is alive,
answers, and its memory stayed bounded. Before issue 28, four of these ended the server (stack
overflows in llama.cpp's grammar code and in the HTML walker) and one took it out of memory.

scripts/test-python sets HEARTH_BIN and HEARTH_MODELS_DIR.
"""

import json
import os
import tempfile
import time

import httpx
import pytest

import own_server

CHAT = "SmolLM2-135M-Instruct.Q4_1"
EMBED = "all-MiniLM-L6-v2.Q8_0"
# Growth of the server's RSS (parent process) that any one of these may cause.
RSS_BOUND_MIB = 768


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def peak_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


@pytest.fixture(scope="module")
def server():
    scratch = tempfile.mkdtemp(prefix="hearth-hostile-")
    url, proc, log = own_server.start(
        "--default-model", CHAT, "--vector-store", os.path.join(scratch, "rag.sqlite"), "--rag-embedding-model", EMBED,
        "--parallel", "2", "--ctx-size", "2048", "--log", "warn", scratch=scratch)
    http = httpx.Client(base_url=url, timeout=300)
    assert http.post("/collections", json={"name": "hostile"}).status_code in (200, 201)
    yield http, proc, log
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture()
def alive_after(server):
    """Checks, after the test, that the server is up, answers a chat, and stayed in bounds."""
    http, proc, log = server
    before = rss_mib(proc.pid)
    yield http
    assert proc.poll() is None, "the server died:\n" + open(log).read()[-3000:]
    r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
    assert r.status_code == 200, r.text
    assert peak_mib(proc.pid) - before < RSS_BOUND_MIB, (before, peak_mib(proc.pid))


def chat(**extra):
    return {"model": CHAT, "messages": [{"role": "user", "content": "Say yes"}], "max_tokens": 4, **extra}


def refused(r, param, words):
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == param, err
    assert words in err["message"], err
    return err


def test_a_grammar_nested_forty_thousand_deep_is_a_400(alive_after):
    deep = "root ::= " + "(" * 40_000 + '"a"' + ")" * 40_000
    refused(alive_after.post("/v1/chat/completions", json=chat(grammar=deep)), "grammar", "128")


def test_a_long_chain_of_grammar_rules_is_a_400(alive_after):
    chain = "root ::= r0\n" + "".join(f"r{i} ::= r{i + 1}\n" for i in range(5000)) + 'r5000 ::= "a"\n'
    refused(alive_after.post("/v1/chat/completions", json=chat(grammar=chain)), "grammar", "4096")


def test_a_huge_repetition_in_a_grammar_is_a_400(alive_after):
    refused(alive_after.post("/v1/completions", json={"model": CHAT, "prompt": "x", "grammar": 'root ::= "a"{1,1000000}'}),
            "grammar", "4096")


def schema_format(schema):
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


def test_a_schema_with_a_200k_character_property_name_is_a_400(alive_after):
    schema = {"type": "object", "properties": {"n" * 200_000: {"type": "string"}}}
    refused(alive_after.post("/v1/chat/completions", json=chat(response_format=schema_format(schema))),
            "response_format", "1024")


def test_a_schema_with_thousands_of_properties_through_ollama_format_is_a_400(alive_after):
    schema = {"type": "object", "properties": {f"p{i}": {"type": "integer"} for i in range(3000)}}
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "format": schema, "stream": False}
    r = alive_after.post("/api/chat", json=body)
    assert r.status_code == 400, r.text
    assert "1024" in r.text


def test_a_tool_whose_parameters_have_a_huge_ref_is_a_400(alive_after):
    params = {"type": "object", "properties": {"a": {"$ref": "#/$defs/" + "x" * 100_000}}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": params}}]
    r = alive_after.post("/v1/chat/completions", json=chat(tools=tools, tool_choice="required"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"].startswith("tools[0]")


def test_a_huge_length_in_a_schema_is_a_400(alive_after):
    schema = {"type": "object", "properties": {"a": {"type": "string", "maxLength": 10_000_000}}}
    refused(alive_after.post("/v1/chat/completions", json=chat(response_format=schema_format(schema))),
            "response_format", "4096")


def test_stop_strings_are_bounded(alive_after):
    refused(alive_after.post("/v1/chat/completions", json=chat(stop=["x" * 200_000])), "stop", "1024")
    body = {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "stream": False,
            "options": {"stop": ["y" * 5000]}}
    assert alive_after.post("/api/chat", json=body).status_code == 400


def upload(http, name, body, ctype, **fields):
    files = {"file": (name, body, ctype)}
    return http.post("/collections/hostile/documents", files=files, data=fields)


def settle(http, r):
    """Waits for an accepted upload's jobs to end; returns their final states."""
    if r.status_code != 202:
        return [r.status_code]
    states = []
    for job in r.json()["data"]:
        for _ in range(1200):
            j = http.get(f"/jobs/{job['id']}").json()
            if j["status"] in ("done", "failed"):
                states.append(j["status"])
                break
            time.sleep(0.1)
    return states


def test_html_nested_sixty_thousand_deep_does_not_end_the_server(alive_after):
    body = ("<html><body>" + "<span>" * 60_000 + "deep text" + "</span>" * 60_000 + "</body></html>").encode()
    r = upload(alive_after, "deep.html", body, "text/html")
    assert r.status_code in (202, 400, 413), r.text
    settle(alive_after, r)


def test_markdown_nested_quotes_and_lists_do_not_end_the_server(alive_after):
    for name, text in (("quotes.md", ">" * 50_000 + " deep"), ("lists.md", "- " * 50_000 + "deep")):
        r = upload(alive_after, name, text.encode(), "text/markdown")
        assert r.status_code in (202, 400, 413), r.text
        settle(alive_after, r)


def test_a_huge_heading_over_many_blocks_does_not_blow_up(alive_after):
    text = "# " + "H" * (1 << 20) + "\n\n" + "a\n\n" * 300_000
    r = upload(alive_after, "heading.md", text.encode(), "text/markdown")
    assert r.status_code in (202, 400, 413), r.text[:500]
    settle(alive_after, r)


def test_metadata_copied_into_every_file_counts_against_the_limit(alive_after):
    meta = json.dumps({"k": "v" * (7 << 20)})
    files = [("file", (f"f{i}.txt", b"hello", "text/plain")) for i in range(64)]
    r = alive_after.post("/collections/hostile/documents", files=files, data={"metadata": meta})
    assert r.status_code in (400, 413), r.text[:500]
