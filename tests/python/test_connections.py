"""Idle and slow-header connections cannot exhaust the server's file descriptors: with the
file limit lowered to 512, 2000 connections that send nothing or half a header are held to
--max-connections and closed after --header-timeout, and a normal request is served once they
time out, while a streamed answer that is quiet longer than the timeout is not cut.

scripts/test-python sets HEARTH_BIN and HEARTH_MODELS_DIR.
"""

import os
import resource
import socket
import time

import httpx

import own_server

CHAT = "SmolLM2-135M-Instruct.Q4_1"
HOSTILE = 2000
TIMEOUT_S = 2


def lower_file_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_idle_and_slow_header_connections_are_capped_and_timed_out():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    hostile = min(HOSTILE, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 200)
    assert hostile > 1024, "this test needs a file limit of about 1300 or more"
    url, proc, _ = own_server.start(
        "--default-model", CHAT, "--header-timeout", str(TIMEOUT_S), "--log", "warn", preexec_fn=lower_file_limit)
    port = int(url.rsplit(":", 1)[1])
    socks = []
    try:
        for i in range(hostile):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            socks.append(s)
            if i % 2:
                try:
                    s.send(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
                except OSError:
                    pass
        time.sleep(0.5)
        assert proc.poll() is None
        assert open_fds(proc.pid) <= 512
        started = time.monotonic()
        r = httpx.get(url + "/health", timeout=60)
        took = time.monotonic() - started
        assert r.status_code == 200
        print(f"a normal request behind {hostile} hostile connections was served after {took:.1f} s")
        # The server closes every hostile connection once its headers are late: at most the
        # connection cap at a time, the rest waiting to be accepted.
        pending, closed, deadline = list(socks), 0, time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            time.sleep(0.5)
            still = []
            for s in pending:
                try:
                    if s.recv(1) == b"":
                        closed += 1
                    else:
                        still.append(s)
                except BlockingIOError:
                    still.append(s)
                except OSError:
                    closed += 1
            pending = still
            assert proc.poll() is None and open_fds(proc.pid) <= 512
        print(f"{closed} of {hostile} hostile connections closed by the server")
        assert closed >= hostile * 0.95, f"only {closed} of {hostile} closed"
        # A stream that is quiet for longer than the header timeout (its prompt takes a while)
        # is not cut: the timeout is for reading headers, not for answers.
        prompt = " ".join(f"word{i}" for i in range(700))
        body = {"model": CHAT, "messages": [{"role": "user", "content": prompt}], "max_tokens": 3, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as s:
            assert s.status_code == 200, s.read()
            lines = [line for line in s.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(timeout=30)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
