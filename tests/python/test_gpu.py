"""GPU placement on a real Vulkan device: Mesa's software rasteriser (lavapipe), which reports
one CPU-type device with a 2 GiB heap (GGML_VK_VISIBLE_DEVICES=0 makes ggml use it). Run by
scripts/test-gpu vulkan, which builds the Vulkan binary (HEARTH_GPU_BIN) beside the CPU one
(HEARTH_BIN). Lavapipe is slow, so every request here is short.
"""

import json
import os
import subprocess

import httpx
import pytest

import own_server

if "HEARTH_GPU_BIN" not in os.environ:
    pytest.skip("needs the Vulkan build: scripts/test-gpu vulkan runs it", allow_module_level=True)

CHAT = "SmolLM2-135M-Instruct.Q4_1"
EMBED = "all-MiniLM-L6-v2.Q8_0"
COMMON = ("--default-model", CHAT, "--parallel", "1", "--ctx-size", "512", "--log", "warn")


def gpu_server(*extra):
    env = dict(os.environ)
    return own_server.start(*COMMON, *extra, env=env, program=os.environ["HEARTH_GPU_BIN"])


def loaded(url, model=CHAT):
    data = httpx.get(url + "/models/loaded", timeout=30).json()["data"]
    return next(m for m in data if m["id"] == model)


def greedy(url, prompt="The capital of France is"):
    """The greedy answer's text, and each token with its log-probability."""
    body = {"model": CHAT, "prompt": prompt, "max_tokens": 6, "temperature": 0, "logprobs": 1}
    choice = httpx.post(url + "/v1/completions", json=body, timeout=300).json()["choices"][0]
    lp = choice["logprobs"]
    return choice["text"], list(zip(lp["tokens"], lp["token_logprobs"]))


@pytest.fixture(scope="module")
def auto():
    url, proc, log = gpu_server()
    yield url
    proc.terminate()
    proc.wait(timeout=60)


def test_auto_places_every_layer_on_the_2_gib_device_and_reports_it(auto):
    m = loaded(auto)
    assert m["gpu_layers"] == m["layers_total"] > 0, m
    assert m["devices"] == ["Vulkan0"] and m["device_bytes"] > 0 and "gpu_fallback" not in m
    health = httpx.get(auto + "/health").json()
    assert "Vulkan" in health["backends"] and health["devices"][0]["memory_total"] == 2 << 30
    ps = httpx.get(auto + "/api/ps").json()["models"][0]
    assert ps["size_vram"] == m["device_bytes"]
    metrics = httpx.get(auto + "/metrics").text
    assert f'hearth_model_gpu_layers{{model="{CHAT}"}} {m["layers_total"]}' in metrics
    assert 'hearth_device_memory_total_bytes{device="Vulkan0"} 2147483648' in metrics


# The tolerance: the GPU's kernels add in another order than the CPU's, so logits differ in the
# last bits and a near tie late in an answer can go the other way (seen: the 5th token). The
# first three greedy tokens must be the same and their log-probabilities within 0.1.
def test_greedy_output_on_the_gpu_matches_the_cpu_builds_within_the_tolerance(auto):
    url, proc, _ = own_server.start(*COMMON)
    try:
        (_, on_gpu), (_, on_cpu) = greedy(auto), greedy(url)
        assert [t for t, _ in on_gpu[:3]] == [t for t, _ in on_cpu[:3]], (on_gpu, on_cpu)
        for (_, a), (_, b) in zip(on_gpu[:3], on_cpu[:3]):
            assert abs(a - b) < 0.1, (on_gpu, on_cpu)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_streaming_structured_output_and_embeddings_run_with_layers_on_the_device(auto):
    body = {"model": CHAT, "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 4, "stream": True}
    with httpx.stream("POST", auto + "/v1/chat/completions", json=body, timeout=300) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and len(lines) > 2
    body = {"model": CHAT, "messages": [{"role": "user", "content": "A JSON object"}], "max_tokens": 12,
            "response_format": {"type": "json_object"}}
    r = httpx.post(auto + "/v1/chat/completions", json=body, timeout=300)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"].lstrip().startswith("{")
    e = httpx.post(auto + "/v1/embeddings", json={"model": EMBED, "input": "a hearth"}, timeout=300)
    assert e.status_code == 200 and len(e.json()["data"][0]["embedding"]) == 384
    assert loaded(auto, EMBED)["gpu_layers"] > 0, "embedding models offload too"


def test_a_count_above_the_models_layers_means_all_and_a_margin_too_big_falls_back():
    url, proc, _ = gpu_server("--gpu-layers", "999")
    try:
        m = loaded(url)
        assert m["gpu_layers"] == m["layers_total"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    url, proc, log = gpu_server("--gpu-margin", "8GiB")
    try:
        m = loaded(url)
        assert m["gpu_layers"] == 0 and m["gpu_fallback"], m
        assert "falls back" in open(log).read() or "runs on the CPU" in open(log).read()
        assert greedy(url)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_explicit_gpu_layers_without_a_gpu_refuse_to_start():
    r = subprocess.run(
        [os.environ["HEARTH_BIN"], "serve", "--port", "0", "--models-dir", os.environ["HEARTH_MODELS_DIR"],
         "--gpu-layers", "5"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "no GPU device" in r.stderr, r.stderr[-2000:]


def test_ollamas_num_gpu_loads_the_idle_model_again_with_that_placement(auto):
    def chat(num_gpu):
        body = {"model": CHAT, "messages": [{"role": "user", "content": "Hi"}], "stream": False,
                "options": {"num_predict": 2, "num_gpu": num_gpu}}
        r = httpx.post(auto + "/api/chat", json=body, timeout=300)
        assert r.status_code == 200, r.text
        return next(m for m in httpx.get(auto + "/api/ps").json()["models"] if m["name"].startswith(CHAT))

    on_cpu = chat(0)
    assert on_cpu["size_vram"] == 0 and loaded(auto)["gpu_layers"] == 0
    assert chat(3)["size_vram"] > 0 and loaded(auto)["gpu_layers"] == 3
    again = chat(-1)
    assert again["size_vram"] > 0 and loaded(auto)["gpu_layers"] == loaded(auto)["layers_total"]
