"""Soak: 16 clients for HEARTH_SOAK_SECONDS (default 300) against a server of its own with two
keys (alice, bob) and an admin key for /metrics, mixing streamed chats read to the end,
streamed chats dropped half-way, plain chats, embeddings, uploads and searches.

It holds when: no answer is a 5xx; no key ever reads the other's documents, jobs or collection
listing; the server's RSS after the run is within 10% of its RSS after the warm-up; and at the
end every sequence has finished, no request waits, and no KV cell is held by a running sequence
(from /metrics). scripts/test-python sets HEARTH_BIN and HEARTH_MODELS_DIR.
"""

import collections
import os
import random
import re
import socket
import subprocess
import tempfile
import threading
import time

import httpx
import pytest

CLIENTS = 16
SECONDS = float(os.environ.get("HEARTH_SOAK_SECONDS", "300"))
WARM_UP = min(60.0, SECONDS / 5)
KEYS = {"alice": "sk-soak-alice", "bob": "sk-soak-bob"}
ADMIN = "sk-soak-ops"
CHAT = "SmolLM2-135M-Instruct.Q4_1"
EMBED = "all-MiniLM-L6-v2.Q8_0"
MARK = {"alice": "aliceonlyword", "bob": "bobonlyword"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


@pytest.fixture(scope="module")
def server():
    scratch = tempfile.mkdtemp(prefix="hearth-soak-")
    keys = os.path.join(scratch, "keys")
    with open(keys, "w") as f:
        f.write(f"ops:{ADMIN}:admin\n" + "".join(f"{n}:{k}\n" for n, k in KEYS.items()))
    port = free_port()
    log = open(os.path.join(scratch, "log"), "w")
    proc = subprocess.Popen(
        [os.environ["HEARTH_BIN"], "serve", "--port", str(port), "--models-dir", os.environ["HEARTH_MODELS_DIR"],
         "--default-model", CHAT, "--api-keys-file", keys, "--vector-store", os.path.join(scratch, "rag.sqlite"),
         "--rag-embedding-model", EMBED, "--parallel", "4", "--log", "warn"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, open(log.name).read()[-3000:]
        time.sleep(0.1)
    yield url, proc
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


class Tally:
    """What every client saw, shared under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = collections.Counter()
        self.failures = []
        self.jobs = {name: [] for name in KEYS}

    def saw(self, action, status, detail=""):
        with self.lock:
            self.statuses[(action, status)] += 1
            if status >= 500:
                self.failures.append(f"{action}: {status} {detail[:300]}")

    def leak(self, what):
        with self.lock:
            self.failures.append("cross-key read: " + what)


class Client(threading.Thread):
    def __init__(self, url, name, seed, until, tally):
        super().__init__(daemon=True)
        self.name_, self.other = name, next(n for n in KEYS if n != name)
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEYS[name]}"}, timeout=120)
        self.rng, self.until, self.tally, self.n = random.Random(seed), until, tally, 0

    def run(self):
        actions = [self.chat_stream, self.chat_dropped, self.chat, self.embed, self.upload, self.search, self.peek]
        weights = [3, 3, 2, 2, 1, 2, 1]
        while time.monotonic() < self.until:
            action = self.rng.choices(actions, weights)[0]
            try:
                action()
            except httpx.TransportError as e:
                self.tally.saw(action.__name__, 599, repr(e))

    def chat_body(self, stream):
        self.n += 1
        words = " ".join(self.rng.choice(["fire", "stone", "river", "lamp", "salt"]) for _ in range(self.n % 40))
        return {"model": CHAT, "stream": stream, "max_tokens": self.rng.choice([8, 24, 48]),
                "messages": [{"role": "user", "content": f"{self.name_} {self.n}: tell me about {words}"}]}

    def chat_stream(self, drop_after=None):
        with self.http.stream("POST", "/v1/chat/completions", json=self.chat_body(True)) as r:
            if r.status_code != 200:
                r.read()
                return self.tally.saw("chat_stream", r.status_code, r.text)
            for i, _ in enumerate(r.iter_lines()):
                if drop_after is not None and i >= drop_after:
                    break
        self.tally.saw("chat_dropped" if drop_after is not None else "chat_stream", r.status_code)

    def chat_dropped(self):
        self.chat_stream(drop_after=self.rng.randint(1, 6))

    def chat(self):
        r = self.http.post("/v1/chat/completions", json=self.chat_body(False))
        self.tally.saw("chat", r.status_code, r.text)

    def embed(self):
        texts = [f"{self.name_} sentence {i} about {self.rng.random()}" for i in range(self.rng.randint(1, 8))]
        r = self.http.post("/v1/embeddings", json={"model": EMBED, "input": texts})
        self.tally.saw("embed", r.status_code, r.text)

    def upload(self):
        self.n += 1
        body = f"# Note {self.n}\n\n{MARK[self.name_]} {self.n}. " + "The hearth keeps the house warm. " * 30
        files = {"file": (f"{self.name_}-{self.n}.md", body.encode(), "text/markdown")}
        r = self.http.post("/collections/soak/documents", files=files)
        self.tally.saw("upload", r.status_code, r.text)
        if r.status_code == 202:
            with self.tally.lock:
                self.tally.jobs[self.name_].extend(j["id"] for j in r.json()["data"])

    def search(self):
        r = self.http.post("/collections/soak/search", json={"query": "hearth warm house", "top_k": 8})
        self.tally.saw("search", r.status_code, r.text)
        if r.status_code == 200 and MARK[self.other] in r.text:
            self.tally.leak(f"{self.name_}'s search returned {self.other}'s text")

    def peek(self):
        """Reads that must not show the other key's objects."""
        with self.tally.lock:
            theirs = list(self.tally.jobs[self.other][-5:])
        for job in theirs:
            r = self.http.get(f"/jobs/{job}")
            self.tally.saw("peek_job", r.status_code, r.text)
            if r.status_code != 404:
                self.tally.leak(f"{self.name_} read {self.other}'s job {job}: {r.status_code}")
        r = self.http.get("/collections/soak/documents")
        self.tally.saw("list_documents", r.status_code, r.text)
        if r.status_code == 200 and any(d["name"].startswith(self.other) for d in r.json()["data"]):
            self.tally.leak(f"{self.name_}'s document list holds {self.other}'s")
        r = self.http.get(f"/collections/{self.other}%2Fsoak")
        self.tally.saw("peek_collection", r.status_code, r.text)
        if r.status_code == 200:
            self.tally.leak(f"{self.name_} read {self.other}/soak")


def gauges(url, name):
    text = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30).text
    return [float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)]


def settle(url, jobs, seconds=120):
    """Waits until every job is done and no sequence runs; returns the gauges then."""
    http = {n: httpx.Client(base_url=url, headers={"Authorization": f"Bearer {k}"}, timeout=30) for n, k in KEYS.items()}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        open_jobs = [j for n, ids in jobs.items() for j in ids
                     if http[n].get(f"/jobs/{j}").json().get("status") in ("queued", "running")]
        busy = sum(gauges(url, "hearth_active_sequences") + gauges(url, "hearth_queue_depth"))
        held = sum(gauges(url, "hearth_kv_cache_used_cells"))
        if not open_jobs and busy == 0 and held == 0:
            return busy, held, open_jobs
        time.sleep(1)
    return busy, held, open_jobs


def test_sixteen_clients_two_keys_no_5xx_no_leak_no_growth(server):
    url, proc = server
    for name, key in KEYS.items():
        r = httpx.post(url + "/collections", json={"name": "soak"}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code in (200, 201), r.text
    tally = Tally()
    start = time.monotonic()
    clients = [Client(url, list(KEYS)[i % 2], i, start + SECONDS, tally) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    time.sleep(WARM_UP)
    warm = rss_kib(proc.pid)
    for c in clients:
        c.join(timeout=SECONDS + 180)
    assert not any(c.is_alive() for c in clients), "a client hung"
    busy, held, open_jobs = settle(url, tally.jobs)
    end = rss_kib(proc.pid)
    summary = sorted(tally.statuses.items())
    print(f"\nsoak {SECONDS:.0f}s x {CLIENTS} clients: RSS {warm} KiB after warm-up, {end} KiB at the end "
          f"({(end - warm) / warm:+.1%}); answers {summary}")
    assert not tally.failures, tally.failures[:20]
    assert sum(n for (a, s), n in tally.statuses.items() if s == 200 and a.startswith("chat")) > CLIENTS
    assert sum(n for (a, s), n in tally.statuses.items() if a == "upload" and s == 202) > 0
    assert busy == 0 and held == 0 and not open_jobs, (busy, held, open_jobs[:5])
    assert end <= warm * 1.10, f"RSS grew from {warm} to {end} KiB"
