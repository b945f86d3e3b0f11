"""Readers for the deployment files that test_deploy.py checks: the Dockerfile, compose.yaml, the
Helm chart (rendered by a real `helm`), and the HEARTH_* variables that config.rs defines."""

import glob
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "deploy" / "compose.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
CHART = ROOT / "deploy" / "helm" / "hearth"
# The config module: config.rs, or config/*.rs should it be split.
CONFIG_SOURCES = [ROOT / "crates/hearth/src/config.rs", *sorted((ROOT / "crates/hearth/src/config").rglob("*.rs"))]

HEARTH_VAR = re.compile(r"\bHEARTH_[A-Z0-9_]*[A-Z0-9]\b")


def config_source() -> str:
    return "\n".join(p.read_text() for p in CONFIG_SOURCES if p.exists())


def config_env_vars() -> set[str]:
    """Every `env = "HEARTH_..."` of a clap argument in the config module."""
    return set(re.findall(r'\benv\s*=\s*"(HEARTH_[A-Z0-9_]+)"', config_source()))


def config_default_port() -> int:
    """HEARTH_PORT's default_value_t, from the same `#[arg(...)]` attribute."""
    for attr in re.findall(r"#\[arg\((.*?)\)\]", config_source(), flags=re.S):
        if re.search(r'\benv\s*=\s*"HEARTH_PORT"', attr):
            m = re.search(r"default_value_t\s*=\s*(\w+)", attr)
            assert m, f"HEARTH_PORT has no default: {attr}"
            value = m.group(1)
            if not value.isdigit():  # a constant of the config module: `const NAME: u16 = 8080;`
                c = re.search(rf"\bconst\s+{value}\s*:\s*u16\s*=\s*(\d+)\s*;", config_source())
                assert c, f"HEARTH_PORT's default {value} is not a numeric constant"
                value = c.group(1)
            return int(value)
    raise AssertionError("no flag with env = \"HEARTH_PORT\" in the config module")


# ---------------------------------------------------------------------------------- Dockerfile


def dockerfile_stages(path=None) -> list[list[tuple[str, str]]]:
    """A Dockerfile (the main one by default) as stages of (INSTRUCTION, arguments), continuation
    lines joined and comments dropped; instructions before the first FROM (global ARGs) form
    stage 0."""
    logical, buf = [], ""
    for line in (path or DOCKERFILE).read_text().splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if buf and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[list[tuple[str, str]]] = [[]]
    for line in logical:
        instr, _, args = line.strip().partition(" ")
        if instr.upper() == "FROM":
            stages.append([])
        stages[-1].append((instr.upper(), args.strip()))
    return stages


def env_instruction_vars(args: str) -> dict[str, str]:
    """`ENV A=1 B="x y"` (or the old `ENV A 1`) as a dict."""
    if "=" not in args.split()[0]:
        key, _, value = args.partition(" ")
        return {key: value.strip()}
    return {k: v.strip('"') for k, v in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)', args)}


# ------------------------------------------------------------------------------------- Helm


def find_helm() -> str | None:
    """The helm that scripts/fetch-helm installs under $HEARTH_HOME/tools, else one on PATH."""
    home = os.environ.get("HEARTH_HOME") or os.path.expanduser("~/.cache/hearth")
    found = sorted(glob.glob(os.path.join(home, "tools", "helm-v*", "helm")))
    if found:
        return found[-1]
    return shutil.which("helm")


def helm_obtainable_here() -> bool:
    """scripts/fetch-helm has a binary for linux x86-64 only."""
    return platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")


def helm(helm_bin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([helm_bin, *args], capture_output=True, text=True, timeout=120, env=_helm_env())


def _helm_env() -> dict[str, str]:
    # No kubeconfig, caches or plugins of the machine's user: `helm template` needs none of them.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KUBE"))}
    env["KUBECONFIG"] = os.devnull
    return env


def render(helm_bin: str, values: dict, tmp_path: Path, release: str = "hearth-test") -> list[dict]:
    """`helm template` of the chart with `values` as a values file; the documents it prints."""
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    out = helm(helm_bin, "template", release, str(CHART), "--namespace", "ml", "-f", str(values_file))
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} documents, wanted 1"
    return found[0]


def hearth_container(docs: list[dict]) -> dict:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "hearth")


def container_env(container: dict) -> dict[str, str]:
    names = [e["name"] for e in container["env"]]
    assert len(names) == len(set(names)), f"duplicate env entries: {names}"
    return {e["name"]: e.get("value") for e in container["env"]}


def resolve_port(port, container: dict) -> int:
    """A probe's or Service's target port (a number or a port name) as the container's number."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port in named, f"port {port!r} is not a port of the container ({named})"
    return named[port]
