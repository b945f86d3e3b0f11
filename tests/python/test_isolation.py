"""Process isolation: each loaded model's worker runs in a child process of the server, so one
model's crash ends only that model's requests.

A server of its own is started with the debug build's test-only fault hook
(HEARTH_TEST_FAULT_ABORT: a generation request whose stop strings hold the marker makes the
worker abort, as a failed GGML_ASSERT would). scripts/test-python sets HEARTH_BIN and
HEARTH_MODELS_DIR.
"""

import json
import os
import signal
import tempfile
import threading
import time

import httpx
import openai
import pytest

import own_server

CHAT = "SmolLM2-135M-Instruct.Q4_1"
OTHER = "gemma-3-270m-q4_k_m"
MARK = "hearth-test-abort-marker"


def gone(pid):
    """Whether process `pid` has ended (reaped, or a zombie no one has reaped yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return out


def start(scratch, *extra):
    env = dict(os.environ, HEARTH_TEST_FAULT_ABORT=MARK)
    args = ("--default-model", CHAT, "--parallel", "2", "--ctx-size", "2048", "--log", "warn", *extra)
    return own_server.start(*args, env=env, scratch=scratch)


@pytest.fixture(scope="module")
def server():
    scratch = tempfile.mkdtemp(prefix="hearth-isolation-")
    url, proc, log = start(scratch)
    yield url, proc, log
    proc.terminate()
    proc.wait(timeout=30)
    assert not children(proc.pid), "no worker outlives the server"


def loaded(url, model):
    data = httpx.get(url + "/models/loaded").json()["data"]
    return next((m for m in data if m["id"] == model), None)


def chat(model, content, max_tokens, **extra):
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens, **extra}


class Stream:
    """A streamed chat read on a thread: its text chunks and its last data line."""

    def __init__(self, url, body):
        self.started = threading.Event()
        self.chunks, self.last, self.status = [], None, None
        self.thread = threading.Thread(target=self.run, args=(url, body), daemon=True)
        self.thread.start()
        assert self.started.wait(60), "the stream did not start"

    def run(self, url, body):
        with httpx.stream("POST", url + "/v1/chat/completions", json={**body, "stream": True}, timeout=120) as r:
            self.status = r.status_code
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                self.last = event
                if event.get("choices") and event["choices"][0]["delta"].get("content"):
                    self.chunks.append(event["choices"][0]["delta"]["content"])
                    self.started.set()
        self.started.set()

    def join(self):
        self.thread.join(120)
        assert not self.thread.is_alive()
        return self


def crash(url, model, stream=False):
    """Sends the marked request that makes `model`'s worker abort; returns the response."""
    body = chat(model, "Say hello", 8, stop=[MARK], stream=stream)
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=60)


def test_a_crash_ends_that_models_requests_and_no_other_and_the_model_comes_back(server):
    url, _, log = server
    victim = Stream(url, chat(CHAT, "Write a long story about a lighthouse.", 1500, ignore_eos=True))
    survivor = Stream(url, chat(OTHER, "Write a long story about a harbour.", 300, ignore_eos=True))
    pid = loaded(url, CHAT)["pid"]
    assert pid and pid != server[1].pid and loaded(url, OTHER)["pid"] not in (None, pid)

    # The marked request is refused before its first byte: 503 in OpenAI's error shape.
    r = crash(url, CHAT, stream=True)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "model_crashed"
    assert "Retry-After" in r.headers

    # The stream that was running ends with a final error event, not a cut connection.
    victim.join()
    assert victim.chunks, "the victim had streamed before the crash"
    assert victim.last.get("error", {}).get("code") == "model_crashed", victim.last
    # The other model's stream runs to its end untouched.
    survivor.join()
    assert survivor.last["choices"][0]["finish_reason"] == "length", survivor.last
    assert len(survivor.chunks) > 100

    wait = time.time() + 10
    while gone(pid) is False and time.time() < wait:
        time.sleep(0.05)
    assert gone(pid)
    failed = loaded(url, CHAT)
    assert failed["status"] == "failed" and failed["crashes"] == 1 and "signal 6" in failed["last_crash"]
    health = httpx.get(url + "/health").json()
    assert any(m["id"] == CHAT and m["status"] == "failed" for m in health["models"])
    metrics = httpx.get(url + "/metrics").text
    assert f'hearth_model_crashes_total{{model="{CHAT}"}} 1' in metrics
    assert f'hearth_model_failed{{model="{CHAT}"}} 1' in metrics
    # The exit status and the worker's last words are in the server's log, not in answers.
    assert "killed by signal 6" in open(log).read()
    assert "signal" not in r.text

    # The next request loads the model again, and a real client sees a normal answer.
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    answer = client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "Hi"}], max_tokens=5)
    assert answer.choices[0].message.content
    back = loaded(url, CHAT)
    assert back["status"] == "ready" and back["pid"] != pid and back["crashes"] == 1


def test_the_openai_sdk_sees_a_crash_as_a_503_it_may_retry(server):
    url = server[0]
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    with pytest.raises(openai.InternalServerError) as e:
        client.chat.completions.create(model=OTHER, messages=[{"role": "user", "content": "x"}], max_tokens=4, stop=[MARK])
    assert e.value.status_code == 503 and e.value.code == "model_crashed"


def test_kill_9_of_a_worker_fails_its_stream_and_the_model_reloads(server):
    url = server[0]
    client = openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0)
    client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    before = loaded(url, CHAT)
    stream = Stream(url, chat(CHAT, "Count to a thousand.", 1500, ignore_eos=True))
    os.kill(before["pid"], signal.SIGKILL)
    stream.join()
    assert stream.last.get("error", {}).get("code") == "model_crashed", stream.last
    again = client.chat.completions.create(model=CHAT, messages=[{"role": "user", "content": "Hi"}], max_tokens=2)
    assert again.choices[0].message.content is not None
    after = loaded(url, CHAT)
    assert after["crashes"] == before["crashes"] + 1 and "signal 9" in after["last_crash"]


def test_three_crashes_in_a_minute_are_refused_until_the_back_off_ends_or_an_admin_loads(server):
    url = server[0]
    # OTHER crashed once in the SDK test; two more make three within the minute.
    for _ in range(2):
        assert crash(url, OTHER).json()["error"]["code"] == "model_crashed"
    r = httpx.post(url + "/v1/chat/completions", json=chat(OTHER, "Hi", 2), timeout=30)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "model_crashed" and "3 times" in r.json()["error"]["message"]
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    # Other models serve on meanwhile.
    ok = httpx.post(url + "/v1/chat/completions", json=chat(CHAT, "Hi", 2), timeout=30)
    assert ok.status_code == 200
    # A load on purpose (open mode: the caller manages models) ends the back-off.
    assert httpx.post(url + "/models/load", json={"model": OTHER}, timeout=60).status_code == 200
    assert httpx.post(url + "/v1/chat/completions", json=chat(OTHER, "Hi", 2), timeout=30).status_code == 200


def test_kill_9_of_the_server_leaves_no_worker_behind():
    scratch = tempfile.mkdtemp(prefix="hearth-isolation-kill-")
    url, proc, _ = start(scratch)
    httpx.post(url + "/v1/embeddings", json={"model": "all-MiniLM-L6-v2.Q8_0", "input": "hi"}, timeout=60)
    workers = children(proc.pid)
    assert len(workers) == 2, workers  # the chat model and the embedding model
    proc.kill()
    proc.wait(timeout=10)
    deadline = time.time() + 10
    while not all(gone(w) for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    assert all(gone(w) for w in workers), [open(f"/proc/{w}/status").read() for w in workers if not gone(w)]


def test_a_graceful_stop_drains_and_then_ends_the_workers():
    scratch = tempfile.mkdtemp(prefix="hearth-isolation-stop-")
    url, proc, _ = start(scratch)
    stream = Stream(url, chat(CHAT, "Tell me a story.", 200, ignore_eos=True))
    workers = children(proc.pid)
    proc.send_signal(signal.SIGINT)
    stream.join()
    assert stream.last["choices"][0]["finish_reason"] == "length", "the running stream finished"
    assert proc.wait(timeout=30) == 0
    assert all(gone(w) for w in workers)
