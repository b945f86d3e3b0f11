"""Starting a `hearth serve` of a test's own (HEARTH_BIN, HEARTH_MODELS_DIR from scripts/test-python)
on a free loopback port, and waiting until it is ready."""

import os
import socket
import subprocess
import tempfile
import time

import httpx


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(*args, env=None, preexec_fn=None, scratch=None, program=None):
    """Starts the server (HEARTH_BIN, or `program`) with `args` after the port and models folder;
    returns (url, process, log path) once /health/ready answers 200. The log holds its stdout and
    stderr."""
    scratch = scratch or tempfile.mkdtemp(prefix="hearth-test-")
    port = free_port()
    log = open(os.path.join(scratch, f"log-{port}"), "w")
    proc = subprocess.Popen(
        [program or os.environ["HEARTH_BIN"], "serve", "--port", str(port), "--models-dir", os.environ["HEARTH_MODELS_DIR"], *args],
        stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(url + "/health/ready", timeout=1).status_code == 200:
                return url, proc, log.name
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, open(log.name).read()[-3000:]
        time.sleep(0.1)
    raise AssertionError("the server did not get ready:\n" + open(log.name).read()[-3000:])
