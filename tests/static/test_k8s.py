"""Offline checks of infra/k8s: every overlay (and each component on the base) is rendered with
`kubectl kustomize` and must pass these checks, each with negative controls in tests/negative/k8s/:

- core schemas: every built-in object validates with kubernetes-validate in strict mode;
- CRD schemas: Gateway API, Envoy Gateway and Prometheus Operator objects validate against the
  JSON schemas of the @kubernetes-models npm packages (offline, installed by `make deps`);
- documented fields: those packages accept unknown fields, so every field path used in a custom
  resource must be in a list written from the projects' API references (links below);
- timeout budget: `streamkit lint`'s Kubernetes rules (streamkit/lint/k8s.py, the one place they
  are stated) find nothing in the rendered manifests, judged against the app the Deployment runs
  (two pings < every idle timeout, preStop + graceful_timeout < grace period, total-duration
  timeouts cover the longest stream, gateway pool idle < app keep-alive);
- references (overlays): routes, policies, selectors and ports point at objects that exist;
- client keys: a Deployment that relays to a real upstream has client keys (or says open access is
  meant), as `streamkit serve` demands (app/auth.py `startup_problem`), and its keys file lies on a
  Secret volume mounted whole, so a rotated Secret reaches the app without a restart.

No cluster and no container engine are needed (none exists here); infra/k8s/kind/run-e2e.sh is
the live counterpart on a machine with Docker.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

import app.gunicorn_conf
from app.auth import startup_problem
from app.routes import router
from app.settings import Settings, get_settings
from streamkit.lint import k8s as lint_k8s
from streamkit.lint.findings import Budget, Report
from streamkit.lint.yamlsource import LineDict, load_documents
from tests.conftest import ON_CI, require_binary

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
NEGATIVE = REPO / "tests" / "negative" / "k8s"
VENV_BIN = Path(sys.executable).parent
CRD_SCHEMAS = REPO / ".venv-crd-schemas" / "node_modules"
VALIDATE_CRDS = Path(__file__).parent / "k8s" / "validate_crds.mjs"

Doc = dict[str, Any]

# What `make test` renders: the two overlays, and each component on the base (components cannot
# be built alone; this is how a user adds one to an overlay).
OVERLAYS = {"overlay-kind": "overlays/kind", "overlay-production": "overlays/production"}
COMPONENTS = {
    "component-gateway-api": "components/gateway-api",
    "component-ingress-nginx": "components/ingress-nginx",
    "component-monitoring": "components/monitoring",
    "component-resume-redis": "components/resume-redis",  # issue 19
    "component-client-keys": "components/client-keys",
}
TARGETS = sorted([*OVERLAYS, *COMPONENTS])


def tool(name: str) -> str:
    """A binary from the virtualenv this test runs in (make deps installs it), else from PATH."""
    path = VENV_BIN / name
    return str(path) if path.exists() else require_binary(name)


def kustomize(directory: Path) -> list[Doc]:
    result = subprocess.run(
        [tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def render(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], list[Doc]]:
    """Render a target by name (overlay, component on base, or a negative control); cached."""
    cached: dict[str, list[Doc]] = {}

    def _render(name: str) -> list[Doc]:
        if name not in cached:
            if name in OVERLAYS:
                cached[name] = kustomize(K8S / OVERLAYS[name])
            elif name in COMPONENTS:
                # kustomize refuses absolute paths: point at the base and the component relatively.
                directory = tmp_path_factory.mktemp(name)
                rel = Path(os.path.relpath(K8S, directory))
                kustomization = {"resources": [str(rel / "base")], "components": [str(rel / COMPONENTS[name])]}
                (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
                cached[name] = kustomize(directory)
            else:
                cached[name] = kustomize(NEGATIVE / name)
        return cached[name]

    return _render


# ---------------------------------------------------------------------------------------------
# helpers: object lookup, durations, the app settings a Deployment runs with
# ---------------------------------------------------------------------------------------------


def objects(docs: list[Doc], kind: str) -> Iterator[Doc]:
    return (doc for doc in docs if doc["kind"] == kind)


def is_custom(doc: Doc) -> bool:
    """Custom resources: API groups with a dot that are not Kubernetes' own (*.k8s.io built-ins)."""
    group = doc["apiVersion"].rpartition("/")[0]
    return "." in group and group not in {"networking.k8s.io", "policy", "apps", "batch"}


def app_settings(deployment: Doc) -> Settings:
    """The app settings this Deployment runs with: app/settings.py defaults plus the container's env
    (only literal values; secrets never hold timeouts)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"].lower(): item["value"] for item in container.get("env", []) if "value" in item}
    return Settings(**env)


def the_app(docs: list[Doc]) -> Settings:
    deployments = list(objects(docs, "Deployment"))
    return app_settings(deployments[0]) if deployments else get_settings()


# ---------------------------------------------------------------------------------------------
# check 1: built-in objects against the Kubernetes OpenAPI schemas (kubernetes-validate --strict)
# ---------------------------------------------------------------------------------------------


def core_schema_problems(docs: list[Doc]) -> list[str]:
    problems = []
    version = kubernetes_validate.latest_version()
    for doc in docs:
        if is_custom(doc):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{doc['kind']}/{doc['metadata']['name']}: no Kubernetes {version} schema")
    return problems


# ---------------------------------------------------------------------------------------------
# check 2: custom resources against the @kubernetes-models JSON schemas (node, offline)
# ---------------------------------------------------------------------------------------------


def crd_schema_problems(docs: list[Doc]) -> list[str]:
    custom = [doc for doc in docs if is_custom(doc)]
    if not custom:
        return []
    if not CRD_SCHEMAS.is_dir():
        message = f"{CRD_SCHEMAS} is missing (make deps installs the npm schema packages, mk/k8s.mk)"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run(
        [require_binary("node"), str(VALIDATE_CRDS), str(CRD_SCHEMAS)],
        input=json.dumps(custom),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [f"{r['kind']}/{r['name']}: {r['error']}" for r in json.loads(result.stdout) if r["error"]]


# ---------------------------------------------------------------------------------------------
# check 3: every field of a custom resource is a documented field
# ---------------------------------------------------------------------------------------------

# Field paths (lists as `[]`) taken from the API references; a trailing `.*` makes a subtree
# opaque (free-form maps, or a patch whose content is another schema). Covers the fields this kit
# uses plus their documented siblings, so a misspelling cannot hide.
_GATEWAY_API = "https://gateway-api.sigs.k8s.io/reference/spec/"
_ENVOY_GATEWAY = "https://gateway.envoyproxy.io/docs/api/extension_types/"
_PROMETHEUS_OPERATOR = "https://prometheus-operator.dev/docs/api-reference/api/"
_PARENT_REF = ("group", "kind", "namespace", "name", "sectionName", "port")
_TARGET_REF = ("group", "kind", "name", "sectionName")
DOCUMENTED_FIELDS: dict[str, tuple[str, set[str]]] = {
    "GatewayClass": (
        _GATEWAY_API + "#gatewayclass",
        {"spec.controllerName", "spec.description", "spec.parametersRef.*"},
    ),
    "Gateway": (
        _GATEWAY_API + "#gateway",
        {
            "spec.gatewayClassName",
            "spec.addresses[].*",
            "spec.infrastructure.labels.*",
            "spec.infrastructure.annotations.*",
            *(f"spec.infrastructure.parametersRef.{f}" for f in ("group", "kind", "name")),
            *(f"spec.listeners[].{f}" for f in ("name", "hostname", "port", "protocol")),
            "spec.listeners[].allowedRoutes.*",
            "spec.listeners[].tls.mode",
            "spec.listeners[].tls.options.*",
            *(f"spec.listeners[].tls.certificateRefs[].{f}" for f in ("group", "kind", "name", "namespace")),
        },
    ),
    "HTTPRoute": (
        _GATEWAY_API + "#httproute",
        {
            *(f"spec.parentRefs[].{f}" for f in _PARENT_REF),
            "spec.hostnames[]",
            "spec.rules[].name",
            "spec.rules[].matches[].path.type",
            "spec.rules[].matches[].path.value",
            "spec.rules[].matches[].headers[].*",
            "spec.rules[].matches[].queryParams[].*",
            "spec.rules[].matches[].method",
            "spec.rules[].filters[].*",
            *(f"spec.rules[].backendRefs[].{f}" for f in ("group", "kind", "name", "namespace", "port", "weight")),
            "spec.rules[].timeouts.request",
            "spec.rules[].timeouts.backendRequest",
            "spec.rules[].retry.*",
        },
    ),
    "BackendTrafficPolicy": (
        _ENVOY_GATEWAY + "#backendtrafficpolicy",
        {
            *(f"spec.targetRefs[].{f}" for f in _TARGET_REF),
            "spec.targetSelectors[].*",
            # HTTPTimeout; streamIdleTimeout since Envoy Gateway 1.8 (release notes v1.8.0).
            *(
                f"spec.timeout.http.{f}"
                for f in (
                    "requestTimeout",
                    "connectionIdleTimeout",
                    "maxConnectionDuration",
                    "maxStreamDuration",
                    "streamIdleTimeout",
                )
            ),
            "spec.timeout.tcp.connectTimeout",
            "spec.retry.*",
            "spec.circuitBreaker.*",
            "spec.loadBalancer.*",
        },
    ),
    "ClientTrafficPolicy": (
        _ENVOY_GATEWAY + "#clienttrafficpolicy",
        {
            *(f"spec.targetRefs[].{f}" for f in _TARGET_REF),
            "spec.targetSelectors[].*",
            *(
                f"spec.timeout.http.{f}"
                for f in ("requestReceivedTimeout", "requestHeadersReceivedTimeout", "idleTimeout", "streamIdleTimeout")
            ),
            "spec.timeout.tcp.idleTimeout",
            "spec.tcpKeepalive.*",
            "spec.http1.*",
            "spec.http2.*",
        },
    ),
    "EnvoyProxy": (
        _ENVOY_GATEWAY + "#envoyproxy",
        {
            "spec.provider.type",
            "spec.provider.kubernetes.envoyDeployment.replicas",
            "spec.provider.kubernetes.envoyDeployment.pod.*",
            "spec.provider.kubernetes.envoyDeployment.container.*",
            *(f"spec.provider.kubernetes.envoyService.{f}" for f in ("name", "type", "externalTrafficPolicy")),
            "spec.provider.kubernetes.envoyService.annotations.*",
            "spec.provider.kubernetes.envoyService.labels.*",
            "spec.provider.kubernetes.envoyService.patch.type",
            "spec.provider.kubernetes.envoyService.patch.value.*",
            "spec.shutdown.drainTimeout",
            "spec.shutdown.minDrainDuration",
        },
    ),
    "ServiceMonitor": (
        _PROMETHEUS_OPERATOR + "#monitoring.coreos.com/v1.ServiceMonitor",
        {
            "spec.selector.matchLabels.*",
            "spec.namespaceSelector.*",
            *(f"spec.endpoints[].{f}" for f in ("port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels")),
        },
    ),
    "PrometheusRule": (
        _PROMETHEUS_OPERATOR + "#monitoring.coreos.com/v1.PrometheusRule",
        {
            "spec.groups[].name",
            "spec.groups[].interval",
            *(f"spec.groups[].rules[].{f}" for f in ("record", "alert", "expr", "for", "keep_firing_for")),
            "spec.groups[].rules[].labels.*",
            "spec.groups[].rules[].annotations.*",
        },
    ),
}
_METADATA_FIELDS = {"metadata.name", "metadata.namespace", "metadata.labels.*", "metadata.annotations.*"}


def field_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from field_paths(child, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value:
        for child in value:
            yield from field_paths(child, prefix + "[]")
    else:
        yield prefix


def documented(path: str, allowed: set[str]) -> bool:
    return path in allowed or any(
        entry.endswith(".*") and (path == entry[:-2] or path.startswith(entry[:-1])) for entry in allowed
    )


def field_problems(docs: list[Doc]) -> list[str]:
    problems = []
    for doc in filter(is_custom, docs):
        if doc["kind"] not in DOCUMENTED_FIELDS:
            problems.append(f"{doc['kind']}: no documented field list in this test")
            continue
        reference, allowed = DOCUMENTED_FIELDS[doc["kind"]]
        body = {k: v for k, v in doc.items() if k not in {"apiVersion", "kind"}}
        for path in sorted(set(field_paths(body))):
            if not documented(path, allowed | _METADATA_FIELDS):
                problems.append(
                    f"{doc['kind']}/{doc['metadata']['name']}: {path} is not a documented field ({reference})"
                )
    return problems


# ---------------------------------------------------------------------------------------------
# check 4: the timeout budget across manifests, gunicorn config and app settings: `streamkit lint`
# (streamkit/lint/k8s.py) is its one implementation; this test feeds it the rendered objects and
# the budget of the app the Deployment runs (app/settings.py defaults plus the container's env).
# ---------------------------------------------------------------------------------------------


def budget_problems(docs: list[Doc]) -> list[str]:
    settings = the_app(docs)
    budget = Budget(
        ping=settings.ping_interval,
        max_stream=settings.max_stream_seconds,
        keepalive=float(settings.keepalive),
        drain=settings.drain_seconds,
    )
    rendered = Path("rendered.yaml")
    lint_docs = [
        lint_k8s.Doc(rendered, body)
        for body in load_documents(yaml.safe_dump_all(docs, sort_keys=False))
        if isinstance(body, LineDict)
    ]
    reports = {rendered: Report(rendered)}
    lint_k8s.check_documents(lint_docs, reports, budget)
    return [f"{finding.rule.name}: {finding.message}" for finding in reports[rendered].findings]


# ---------------------------------------------------------------------------------------------
# check 5 (overlays only: a component alone lacks its Gateway): every reference resolves
# ---------------------------------------------------------------------------------------------


def reference_problems(docs: list[Doc]) -> list[str]:
    """Route -> Gateway -> GatewayClass, route/ingress/monitor -> Service port, policy -> target,
    Service/PDB/ServiceMonitor selectors -> the Deployment's pod labels."""
    by_kind: dict[str, dict[str, Doc]] = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
    problems = []

    def need(kind: str, name: str, where: str) -> Doc | None:
        found = by_kind.get(kind, {}).get(name)
        if found is None:
            problems.append(f"{where} refers to {kind} {name}, which is not in the manifests")
        return found

    def service_port(name: str, port: int | str, where: str) -> None:
        service = need("Service", name, where)
        if service and not any(port in (p["port"], p.get("name")) for p in service["spec"]["ports"]):
            problems.append(f"{where} refers to port {port} of Service {name}, which it does not expose")

    pods = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind.get("Deployment", {}).values()]

    def selects_pods(selector: dict[str, str], where: str) -> None:
        if not any(selector.items() <= labels.items() for labels in pods):
            problems.append(f"{where} selector {selector} matches no Deployment's pods")

    for service in by_kind.get("Service", {}).values():
        selects_pods(service["spec"]["selector"], f"Service {service['metadata']['name']}")
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        selects_pods(pdb["spec"]["selector"]["matchLabels"], f"PodDisruptionBudget {pdb['metadata']['name']}")
    for gateway in by_kind.get("Gateway", {}).values():
        need("GatewayClass", gateway["spec"]["gatewayClassName"], f"Gateway {gateway['metadata']['name']}")
    for route in by_kind.get("HTTPRoute", {}).values():
        where = f"HTTPRoute {route['metadata']['name']}"
        for parent in route["spec"]["parentRefs"]:
            need(parent.get("kind", "Gateway"), parent["name"], where)
        for rule in route["spec"]["rules"]:
            for backend in rule["backendRefs"]:
                service_port(backend["name"], backend["port"], where)
    for policy in (*by_kind.get("BackendTrafficPolicy", {}).values(), *by_kind.get("ClientTrafficPolicy", {}).values()):
        for target in policy["spec"]["targetRefs"]:
            need(target["kind"], target["name"], f"{policy['kind']} {policy['metadata']['name']}")
    for ingress in by_kind.get("Ingress", {}).values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                port = backend["port"].get("name", backend["port"].get("number"))
                service_port(backend["name"], port, f"Ingress {ingress['metadata']['name']}")
    for monitor in by_kind.get("ServiceMonitor", {}).values():
        where = f"ServiceMonitor {monitor['metadata']['name']}"
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s for s in by_kind.get("Service", {}).values() if selector.items() <= s["metadata"]["labels"].items()
        ]
        if not services:
            problems.append(f"{where} selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            for service in services:
                service_port(service["metadata"]["name"], endpoint["port"], where)
    return problems


# ---------------------------------------------------------------------------------------------
# check 6: the app starts with client keys, and a rotated keys Secret reaches it
# ---------------------------------------------------------------------------------------------


def client_keys_problems(docs: list[Doc]) -> list[str]:
    """A Deployment without API_KEYS_FILE must pass the app's own start-up rule (app/auth.py
    `startup_problem`: relaying to UPSTREAM_BASE_URL needs keys or ALLOW_ANONYMOUS=true). One with
    API_KEYS_FILE must have it on a Secret volume mounted without subPath: the kubelet updates a
    Secret volume by swapping a symlink, which a subPath mount (a pinned file) never sees
    (components/client-keys/keys-file.yaml). The file's content is the Secret's, not checked here."""
    problems = []
    for deployment in objects(docs, "Deployment"):
        where = f"Deployment {deployment['metadata']['name']}"
        settings = app_settings(deployment)
        if not settings.api_keys_file:
            problem = startup_problem(settings)
            problems += [f"{where}: {problem}"] if problem else []
            continue
        pod = deployment["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        mounts = [
            mount
            for mount in pod["containers"][0].get("volumeMounts", [])
            # A directory holding the file, or (subPath) the file itself.
            if settings.api_keys_file == mount["mountPath"]
            or settings.api_keys_file.startswith(mount["mountPath"].rstrip("/") + "/")
        ]
        mount = max(mounts, key=lambda m: len(m["mountPath"]), default=None)
        if mount is None or "secret" not in volumes.get(mount["name"], {}):
            problems.append(f"{where}: API_KEYS_FILE {settings.api_keys_file} is not on a Secret volume")
        elif {"subPath", "subPathExpr"} & mount.keys():
            problems.append(
                f"{where}: API_KEYS_FILE {settings.api_keys_file} is mounted with subPath: a rotated Secret never "
                "reaches it"
            )
    return problems


CHECKS: dict[str, Callable[[list[Doc]], list[str]]] = {
    "core-schema": core_schema_problems,
    "crd-schema": crd_schema_problems,
    "fields": field_problems,
    "budget": budget_problems,
    "client-keys": client_keys_problems,
}
# Checks that only make sense on a whole overlay (a component alone lacks its Gateway).
OVERLAY_CHECKS: dict[str, Callable[[list[Doc]], list[str]]] = {"references": reference_problems}

# Each negative control, the check that must catch it, and a phrase its report must contain.
NEGATIVE_CONTROLS = {
    "httproute-without-timeouts": ("budget", "total-timeout: HTTPRoute streamkit: timeouts.request (unset"),
    "grace-period-shorter-than-drain": ("budget", "drain: Deployment streamkit: terminationGracePeriodSeconds (20 s)"),
    "drain-raised-without-grace": ("budget", "DRAIN_SECONDS 60"),
    "btp-pool-outlives-app-keepalive": ("budget", "keepalive: BackendTrafficPolicy streamkit: timeout.http.connection"),
    "btp-without-stream-idle": ("budget", "idle-timeout: HTTPRoute streamkit: timeouts.request 0s also turns off"),
    "btp-misspelt-field": ("fields", "streamIdleTimout is not a documented field"),
    "httproute-wrong-backend-port": ("references", "port 80 of Service streamkit"),
    "httproute-bad-duration": ("crd-schema", "must match pattern"),
    "deployment-unknown-field": ("core-schema", "readinessProbes"),
    "relay-without-client-keys": ("client-keys", "refusing to start an open relay"),
    "client-keys-subpath": ("client-keys", "is mounted with subPath"),
}


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("check", list(CHECKS))
def test_rendered_manifests_pass(render: Callable[[str], list[Doc]], target: str, check: str) -> None:
    docs = render(target)
    assert docs, f"{target} rendered no objects"
    assert CHECKS[check](docs) == []


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
@pytest.mark.parametrize("check", list(OVERLAY_CHECKS))
def test_overlay_passes(render: Callable[[str], list[Doc]], overlay: str, check: str) -> None:
    assert OVERLAY_CHECKS[check](render(overlay)) == []


@pytest.mark.parametrize("control", sorted(NEGATIVE_CONTROLS))
def test_negative_control_is_caught(render: Callable[[str], list[Doc]], control: str) -> None:
    check, phrase = NEGATIVE_CONTROLS[control]
    problems = {**CHECKS, **OVERLAY_CHECKS}[check](render(control))
    assert any(phrase in problem for problem in problems), f"{check} check missed {control}: {problems}"


def test_every_negative_control_is_listed() -> None:
    assert sorted(p.name for p in NEGATIVE.iterdir() if p.is_dir()) == sorted(NEGATIVE_CONTROLS)


def test_budget_reads_gunicorn_config() -> None:
    """The budget uses Settings.graceful_timeout: the very value app/gunicorn_conf.py hands gunicorn."""
    assert app.gunicorn_conf.graceful_timeout == get_settings().graceful_timeout
    assert app.gunicorn_conf.keepalive == get_settings().keepalive


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_deployment_contract(render: Callable[[str], list[Doc]], overlay: str) -> None:
    """streamkit serve, probes on routes the app has, non-root with the image's UID, read-only root
    with writable /tmp and a memory-backed metrics dir, resources, a pinned image."""
    routes = {route.path for route in router.routes}  # type: ignore[attr-defined]
    dockerfile = (REPO / "infra" / "docker" / "Dockerfile").read_text()
    image_user = re.findall(r"^USER (\d+):(\d+)$", dockerfile, re.M)[-1]
    metrics_dir = re.search(r"PROMETHEUS_MULTIPROC_DIR=(\S+)", dockerfile)
    assert metrics_dir

    (deployment,) = objects(render(overlay), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert [*container["command"], *container["args"]] == ["streamkit", "serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz" in routes
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz" in routes
    assert (str(pod["securityContext"]["runAsUser"]), str(pod["securityContext"]["runAsGroup"])) == image_user
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {"requests", "limits"} <= container["resources"].keys()
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    metrics_mount = next(path for path in mounts if metrics_dir.group(1).startswith(path.rstrip("/") + "/"))
    assert mounts[metrics_mount]["emptyDir"].get("medium") == "Memory"
    name, _, tag = container["image"].rpartition(":")
    assert name and tag and tag != "latest", f"image {container['image']} is not pinned"


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_cluster_scoped_objects_have_no_namespace(render: Callable[[str], list[Doc]], overlay: str) -> None:
    for doc in render(overlay):
        if doc["kind"] in {"GatewayClass", "Namespace"}:
            assert "namespace" not in doc["metadata"], doc["kind"]
        else:
            assert doc["metadata"].get("namespace") == "streamkit", doc["kind"]


def test_kind_port_mapping_matches_envoy_nodeport(render: Callable[[str], list[Doc]]) -> None:
    cluster = yaml.safe_load((K8S / "kind" / "cluster.yaml").read_text())
    container_ports = {m["containerPort"] for node in cluster["nodes"] for m in node.get("extraPortMappings", [])}
    (proxy,) = objects(render("overlay-kind"), "EnvoyProxy")
    service = proxy["spec"]["provider"]["kubernetes"]["envoyService"]
    node_ports = {p["nodePort"] for p in service["patch"]["value"]["spec"]["ports"]}
    assert service["type"] == "NodePort"
    assert node_ports <= container_ports


def _load_renderer() -> Any:
    path = K8S / "components" / "monitoring" / "render_prometheusrule.py"
    spec = importlib.util.spec_from_file_location("render_prometheusrule", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prometheusrule_matches_observability_rules() -> None:
    """The PrometheusRule carries exactly the groups of infra/observability's rule files (the ones
    promtool tests), and the committed file is what the renderer prints (regenerate: see its header)."""
    renderer = _load_renderer()
    committed_text = (K8S / "components" / "monitoring" / "prometheusrule.yaml").read_text()
    committed = yaml.safe_load(committed_text)
    assert committed["spec"]["groups"] == renderer.rule_groups(REPO)
    assert committed_text == renderer.render(REPO), "prometheusrule.yaml is stale: regenerate it"


def test_kind_script_is_clean_shell() -> None:
    """run-e2e.sh cannot run here (no container engine): at least it parses, passes shellcheck and
    is executable."""
    script = K8S / "kind" / "run-e2e.sh"
    for argv in ([require_binary("bash"), "-n", str(script)], [tool("shellcheck"), str(script)]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
    assert os.access(script, os.X_OK)


def test_npm_schema_packages_are_locked_without_download_addresses() -> None:
    """mk/k8s.mk installs the schema packages with `npm ci` from tests/static/k8s/package-lock.json:
    every pinned package is locked with an integrity hash, and no entry names a download address."""
    folder = Path(__file__).parent / "k8s"
    pins = json.loads((folder / "package.json").read_text())["dependencies"]
    lock = json.loads((folder / "package-lock.json").read_text())
    assert "omit-lockfile-registry-resolved=true" in (folder / ".npmrc").read_text().splitlines()
    packages = lock["packages"]
    for name, version in pins.items():
        assert packages[f"node_modules/{name}"]["version"] == version, name
    assert packages[""]["dependencies"] == pins
    for path, entry in packages.items():
        assert "resolved" not in entry, f"{path} names a download address"
        assert path == "" or entry.get("integrity"), f"{path} has no integrity hash"
