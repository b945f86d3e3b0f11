"""`hearth run` through a pseudo-terminal and through a pipe, `hearth list/show/rm`, on the
real SmolLM2 model with the engine in the process, and `hearth pull`'s progress bar on a terminal
(scripts/test-python sets HEARTH_BIN, HEARTH_MODELS_DIR and HEARTH_LOOPBACK_HUB)."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import pexpect
import pytest

MODEL = "SmolLM2-135M-Instruct.Q4_1"


@pytest.fixture(scope="module")
def folder():
    """A models folder with SmolLM2 alone (a link), so `rm` removes only the link."""
    d = tempfile.mkdtemp(prefix="hearth-cli-")
    os.symlink(os.path.realpath(os.path.join(os.environ["HEARTH_MODELS_DIR"], MODEL + ".gguf")),
               os.path.join(d, MODEL + ".gguf"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def hearth(*args, stdin=None, folder=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("HEARTH_URL", "HEARTH_API_KEY")}
    cmd = [os.environ["HEARTH_BIN"], *args] + (["--models-dir", folder] if folder else [])
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_piped_prompt_is_answered_and_the_program_exits(folder):
    r = hearth("run", MODEL, stdin="Say hello in one word.\n", folder=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "an answer on standard output"


def test_bench_says_where_the_model_runs(folder):
    r = hearth("bench", "--model", MODEL, "--prompt-tokens", "8", "--max-tokens", "4", "--requests", "1", "--raw",
               folder=folder)
    assert r.returncode == 0, r.stderr
    assert "backends CPU  devices none  layers on the GPU 0/" in r.stdout, r.stdout
    assert "raw" in r.stdout


def test_a_prompt_argument_is_answered_once(folder):
    r = hearth("run", MODEL, "What", "is", "two", "plus", "two?", folder=folder)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_an_unknown_model_is_one_clear_error(folder):
    r = hearth("run", "no-such-model", "hi", folder=folder)
    assert r.returncode != 0
    assert "no model `no-such-model`" in r.stderr


def test_the_terminal_chat(folder):
    env = {k: v for k, v in os.environ.items() if k not in ("HEARTH_URL", "HEARTH_API_KEY")}
    env["TERM"] = "xterm"
    child = pexpect.spawn(os.environ["HEARTH_BIN"], ["run", MODEL, "--models-dir", folder],
                          env=env, encoding="utf-8", timeout=120, dimensions=(40, 200))
    try:
        child.expect("is ready")
        child.expect(">>> ")
        child.sendline("/set temperature 0")
        child.expect("Set temperature to 0")
        child.sendline("/set num_predict 12")
        child.expect("Set max_tokens to 12")
        child.sendline("/system You answer in one short sentence.")
        child.expect("Set the system message")
        child.sendline("Name a colour.")
        child.expect(">>> ")
        answer = child.before
        assert answer.strip(), "an answer before the next prompt"
        # A message of several lines.
        child.sendline('"""')
        child.expect(r"\.\.\. ")
        child.sendline("Line one,")
        child.sendline('line two."""')
        child.expect(">>> ")
        # The arrow keys bring back earlier input.
        child.send("\x1b[A")
        child.expect("line two")
        child.sendcontrol("u")
        child.send("\r")
        child.expect(">>> ")
        # Ctrl+C stops a long answer; the program goes on.
        child.sendline("/set num_predict 4000")
        child.expect(">>> ")
        child.sendline("Count from one to a thousand, one number per line.")
        child.expect(r"\d")
        child.sendcontrol("c")
        child.expect(">>> ", timeout=30)
        assert child.isalive(), "Ctrl+C ended the answer, not the program"
        child.sendline("/show")
        child.expect("architecture")
        child.expect(">>> ")
        child.sendline("/clear")
        child.expect("Cleared")
        child.sendline("/bye")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_list_show_and_rm(folder):
    r = hearth("list", "--json", folder=folder)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [m["id"] for m in rows] == [MODEL]
    assert rows[0]["architecture"] == "llama" and rows[0]["quantization"]
    table = hearth("list", folder=folder).stdout
    assert table.splitlines()[0].split() == ["NAME", "SIZE", "QUANT", "PARAMS", "KIND"] and MODEL in table
    shown = json.loads(hearth("show", MODEL, "--json", folder=folder).stdout)
    assert shown["context_length"] > 0 and "completion" in shown["capabilities"] and "im_start" in shown["template"]
    text = hearth("show", MODEL, folder=folder).stdout
    assert "architecture" in text and "capabilities" in text
    missing = hearth("show", "nope", folder=folder)
    assert missing.returncode != 0 and "nope" in missing.stderr
    target = os.path.realpath(os.path.join(folder, MODEL + ".gguf"))
    r = hearth("rm", MODEL, folder=folder)
    assert r.returncode == 0, r.stderr
    assert json.loads(hearth("list", "--json", folder=folder).stdout) == []
    assert os.path.exists(target), "rm removed the link, not the file it points to"
    os.symlink(target, os.path.join(folder, MODEL + ".gguf"))


def test_pull_draws_a_progress_bar_on_a_terminal(tmp_path):
    """The bar is redrawn in place (carriage return, erase line) with the percentage, bytes,
    speed and time left, from a paced hub on loopback; then the check and the summary."""
    source = os.path.realpath(os.path.join(os.environ["HEARTH_MODELS_DIR"], MODEL + ".gguf"))
    hub = subprocess.Popen([os.environ["HEARTH_LOOPBACK_HUB"], "--pace", str(24 << 20), f"Bar-Q4_1.gguf={source}"],
                           stdout=subprocess.PIPE, text=True)
    try:
        url = hub.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env["TERM"] = "xterm"
        args = ["pull", "test/bench-GGUF:Q4_1", "--models-dir", str(tmp_path / "models"),
                "--hf-endpoint", url, "--hf-hub-cache", str(tmp_path / "hf")]
        child = pexpect.spawn(os.environ["HEARTH_BIN"], args, env=env, encoding="utf-8", timeout=120,
                              dimensions=(40, 200))
        child.expect(r"pulling 1 file\(s\), \d+\.\d MB")
        frame = r"\r\x1b\[2KBar-Q4_1\.gguf +(\d+)% [\d.]+ MB/[\d.]+ MB [\d.]+ (?:K|M)?B/s ETA \d+s"
        shown = []
        while len(shown) < 3:
            child.expect(frame)
            shown.append(int(child.match.group(1)))
        assert shown == sorted(shown) and shown[-1] < 100, f"one bar, redrawn as the bytes arrive: {shown}"
        child.expect("Bar-Q4_1.gguf: verifying sha256")
        child.expect(r"Bar-Q4_1 \(Q4_1, [\d.]+ MB fetched\) in ")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0
        assert os.path.exists(tmp_path / "models" / "Bar-Q4_1.gguf")
        assert not re.search(r"\r\x1b\[2K", child.before or ""), "the bar ends its line before the summary"
    finally:
        hub.kill()
        hub.wait()


def loopback_hub(name, source):
    """A hub on loopback serving `source` as `name` in `test/bench-GGUF`; returns (process, URL)."""
    hub = subprocess.Popen([os.environ["HEARTH_LOOPBACK_HUB"], f"{name}={source}"], stdout=subprocess.PIPE, text=True)
    url = hub.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:"), url
    return hub, url


def test_run_pulls_a_hub_reference_then_answers_and_later_runs_need_no_hub(tmp_path):
    """`hearth run OWNER/REPO:QUANT` with the engine in the process: the pull, then the answer
    from the pulled model; a second run finds it here and never asks the hub (now gone)."""
    source = os.path.realpath(os.path.join(os.environ["HEARTH_MODELS_DIR"], MODEL + ".gguf"))
    hub, url = loopback_hub("Runner-Q4_1.gguf", source)
    ref = "hf.co/test/bench-GGUF:q4_1"
    where = ["--models-dir", str(tmp_path / "models"), "--hf-hub-cache", str(tmp_path / "hf")]
    try:
        r = hearth("run", ref, "Say", "hi.", *where, "--hf-endpoint", url)
    finally:
        hub.kill()
        hub.wait()
    assert r.returncode == 0, r.stderr
    assert "is not here; pulling it" in r.stderr and r.stdout.strip(), (r.stdout, r.stderr)
    again = hearth("run", ref, "Say", "hi.", *where, "--hf-endpoint", url)
    assert again.returncode == 0, again.stderr
    assert "pulling" not in again.stderr and again.stdout.strip()


@pytest.fixture(scope="module")
def keyed_server(folder):
    """`hearth serve` on its own port with one API key, over the module's folder."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    proc = subprocess.Popen([os.environ["HEARTH_BIN"], "serve", "--port", str(port), "--models-dir", folder,
                             "--api-key", "cli-secret", "--no-ui"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    import time
    import urllib.request
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/health/live", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def remote(*args, key=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("HEARTH_URL", "HEARTH_API_KEY")}
    if key:
        env["HEARTH_API_KEY"] = key
    return subprocess.run([os.environ["HEARTH_BIN"], *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_run_list_show_and_ps_against_a_server_with_a_key(keyed_server):
    """`--url` with `HEARTH_API_KEY`: the same commands ask the server instead of the folder."""
    denied = remote("run", MODEL, "hi", "--url", keyed_server)
    assert denied.returncode != 0 and "API key" in denied.stderr, denied.stderr
    r = remote("run", MODEL, "Say", "hi.", "--url", keyed_server, key="cli-secret")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    listed = json.loads(remote("list", "--json", "--url", keyed_server, key="cli-secret").stdout)
    assert [m["id"] for m in listed] == [MODEL]
    shown = json.loads(remote("show", MODEL, "--json", "--url", keyed_server, key="cli-secret").stdout)
    assert shown["context_length"] > 0 and "im_start" in shown["template"]
    ps = remote("ps", "--json", "--url", keyed_server, key="cli-secret")
    assert ps.returncode == 0, ps.stderr
    assert [m["name"] for m in json.loads(ps.stdout)] == [MODEL + ":latest"], "the model the run loaded"
    table = remote("ps", "--url", keyed_server, key="cli-secret").stdout
    assert table.split()[0] == "NAME" and MODEL in table
