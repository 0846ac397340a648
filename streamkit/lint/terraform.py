"""Terraform (.tf, parsed with python-hcl2): AWS ALB, GCP backend services, Azure Application
Gateway and Cloudflare zone settings and cache rules (README.md, "Cloud load balancers").

The one home of the Terraform rules: `streamkit lint` and tests/static/test_terraform.py both call
this module (the static test keeps only what lint cannot express: validation blocks, README tables).
The .tf files of one directory form a module: `var.x` resolves to the variable's default, `local.x`
to its value, expressions through streamkit/lint/hcl.py; an output named like `*keepalive*` states
the app keep-alive the module needs (it replaces --keepalive for that module, and names where it
came from). Provider defaults, used when an argument is absent, are named below with their source.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.hcl import Scope, Unsupported, resolve
from streamkit.lint.rules import (
    BUFFERING,
    CACHE,
    DRAIN,
    HTTP1,
    IDLE_TIMEOUT,
    KEEPALIVE,
    SSE_PATHS,
    TOTAL_TIMEOUT,
    drain_too_short,
    idle_too_short,
    pool_too_long,
    total_too_short,
)

NAME = "terraform"
# Provider defaults when an argument is absent (each from the provider's docs).
ALB_IDLE_DEFAULT = 60.0  # aws_lb.idle_timeout
ALB_DEREGISTRATION_DELAY_DEFAULT = 300.0  # aws_lb_target_group.deregistration_delay
GCP_TIMEOUT_DEFAULT = 30.0  # google_compute_backend_service.timeout_sec (TOTAL response time)
GCP_DRAINING_DEFAULT = 300.0  # google_compute_backend_service.connection_draining_timeout_sec
GCP_KEEPALIVE = 600.0  # fixed GFE -> backend keep-alive, not configurable
AZURE_REQUEST_TIMEOUT_DEFAULT = 30.0  # azurerm backend_http_settings.request_timeout
CLOUDFLARE_READ_TIMEOUT_DEFAULT = 100.0  # zone setting proxy_read_timeout (between two reads)
_EXPR = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
# python-hcl2 8.x keeps the quotes of strings and wraps blocks unless told otherwise.
_HCL2_OPTIONS = {"strip_string_quotes": True, "explicit_blocks": False, "with_comments": False}


def detect(path: Path, text: str) -> bool:
    return path.suffix == ".tf"


class Module:
    def __init__(self, files: dict[Path, dict[str, Any]], texts: dict[Path, list[str]]) -> None:
        self.files, self.texts = files, texts
        self.variables = {name: body.get("default") for _, name, body in self.blocks("variable")}
        self.locals = {
            k: v for parsed in files.values() for block in parsed.get("locals", []) for k, v in block.items()
        }
        self.scope = self.scope_with({})

    def scope_with(self, inputs: dict[str, Any]) -> Scope:
        """var.* from defaults (+ `inputs`) and local.* resolved in file order (unresolvable: kept raw)."""
        values = {name: value for name, value in self.variables.items() if value is not None}
        values.update(inputs)
        scope: dict[str, dict[str, Any]] = {"var": values, "local": {}}
        for name, raw in self.locals.items():
            try:
                scope["local"][name] = resolve(raw, scope)
            except Unsupported:
                scope["local"][name] = raw
        return scope

    def blocks(self, kind: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
        for path, parsed in self.files.items():
            for entry in parsed.get(kind, []):
                for name, body in entry.items():
                    yield path, name, body

    def resources(self, *types: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
        for path, rtype, named in self.blocks("resource"):
            if rtype in types:
                for name, body in named.items():
                    yield path, f"{rtype}.{name}", body

    def value(self, value: Any) -> Any:
        """A literal or an expression (streamkit/lint/hcl.py's subset); None if it cannot be known."""
        try:
            return resolve(value, self.scope)
        except Unsupported:
            return None

    def number(self, value: Any) -> float | None:
        """A number literal, `var.x` (its default), `local.x` or arithmetic over them; None if unknown."""
        if isinstance(value, str) and not value.startswith("${"):
            value = "${" + value + "}"  # an expression written without interpolation (old syntax)
        result = self.value(value)
        if isinstance(result, bool) or not isinstance(result, int | float):
            return None
        return float(result)

    def text(self, value: Any) -> str | None:
        if isinstance(value, str) and _EXPR.match(value.strip()):
            inner = _EXPR.match(value.strip()).group(1).strip()  # type: ignore[union-attr]
            default = self.variables.get(inner[4:]) if inner.startswith("var.") else None
            return None if default is None else str(default)
        return None if value is None else str(value)

    def line(self, path: Path, resource: str, attribute: str | None = None) -> int:
        """Line of `attribute` inside `resource "type" "name"` (of the resource itself if absent)."""
        rtype, name = resource.split(".", 1)
        head = re.compile(rf'^\s*resource\s+"{re.escape(rtype)}"\s+"{re.escape(name)}"')
        lines = self.texts[path]
        start = next((i for i, text in enumerate(lines) if head.match(text)), 0)
        if attribute:
            attr = re.compile(rf"^\s*{re.escape(attribute)}\s*(=|\{{)")
            for i in range(start + 1, len(lines)):
                if re.match(r"^resource\s", lines[i]):
                    break
                if attr.match(lines[i]):
                    return i + 1
        return start + 1

    def keepalive(self, budget: Budget) -> Budget:
        for path, name, body in self.blocks("output"):
            if "keepalive" in name.replace("_", "") and (value := self.number(body.get("value"))) is not None:
                return budget.with_keepalive(value, f'output "{name}" in {path.name}')
        return budget


def _blocks(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key) or []
    return [value] if isinstance(value, dict) else [v for v in value if isinstance(v, dict)]


def _aws(module: Module, report: Report, budget: Budget) -> None:
    docs = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-load-balancer-attributes.html#connection-idle-timeout"
    for path, name, body in module.resources("aws_lb", "aws_alb"):
        if body.get("load_balancer_type", "application") != "application":
            continue
        idle = module.number(body.get("idle_timeout", ALB_IDLE_DEFAULT))
        what = f"{name} idle_timeout" + ("" if "idle_timeout" in body else " (default 60 s)")
        line = module.line(path, name, "idle_timeout")
        if problem := idle_too_short(idle, budget.ping, what):
            report.add(line, IDLE_TIMEOUT, problem, "raise idle_timeout (e.g. 300)", f"{docs}#idle_timeout", path)
        if problem := pool_too_long(idle, budget.keepalive, budget.keepalive_source, what):
            report.add(
                line,
                KEEPALIVE,
                problem + " (AWS: the target's keep-alive must exceed the ALB idle timeout)",
                "run the app with KEEPALIVE above idle_timeout, or lower idle_timeout",
                f"{docs}#idle_timeout",
                path,
            )
    docs = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#target-group-protocol-version"
    for path, name, body in module.resources("aws_lb_target_group", "aws_alb_target_group"):
        delay = module.number(body.get("deregistration_delay", ALB_DEREGISTRATION_DELAY_DEFAULT))
        if problem := drain_too_short(delay, budget.drain, f"{name} deregistration_delay"):
            report.add(
                module.line(path, name, "deregistration_delay"),
                DRAIN,
                problem,
                "set deregistration_delay to at least DRAIN_SECONDS (the AWS default, 300, is enough)",
                "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay",
                path,
            )
        version = (module.text(body.get("protocol_version")) or "HTTP1").upper()
        if version != "HTTP1" and str(body.get("protocol", "HTTP")).upper() in ("HTTP", "HTTPS"):
            report.add(
                module.line(path, name, "protocol_version"),
                HTTP1,
                f"{name} protocol_version {version}; uvicorn speaks HTTP/1.1 only",
                'set protocol_version = "HTTP1"',
                docs,
                path,
            )


def _gcp(module: Module, report: Report, budget: Budget) -> None:
    docs = "https://cloud.google.com/load-balancing/docs/backend-service#timeout-setting"
    for path, name, body in module.resources("google_compute_backend_service", "google_compute_region_backend_service"):
        timeout = module.number(body.get("timeout_sec", GCP_TIMEOUT_DEFAULT))
        what = f"{name} timeout_sec" + ("" if "timeout_sec" in body else " (default 30 s)")
        if problem := total_too_short(timeout, budget.max_stream, what):
            report.add(
                module.line(path, name, "timeout_sec"),
                TOTAL_TIMEOUT,
                problem + " (for HTTP backends it is the total response time)",
                "set timeout_sec to the longest stream (e.g. 3600)",
                f"{docs}#timeout_sec",
                path,
            )
        protocol = (module.text(body.get("protocol")) or "HTTP").upper()
        if protocol not in ("HTTP", "HTTPS"):
            report.add(
                module.line(path, name, "protocol"),
                HTTP1,
                f"{name} protocol {protocol}; uvicorn speaks HTTP/1.1 only",
                'set protocol = "HTTP"',
                f"{docs}#protocol",
                path,
            )
        draining = module.number(body.get("connection_draining_timeout_sec", GCP_DRAINING_DEFAULT))
        if problem := drain_too_short(draining or None, budget.drain, f"{name} connection_draining_timeout_sec"):
            report.add(
                module.line(path, name, "connection_draining_timeout_sec"),
                DRAIN,
                problem,
                "set connection_draining_timeout_sec to at least DRAIN_SECONDS",
                "https://cloud.google.com/load-balancing/docs/enabling-connection-draining",
                path,
            )
        if problem := pool_too_long(
            GCP_KEEPALIVE,
            budget.keepalive,
            budget.keepalive_source,
            f"{name}: the load balancer's fixed backend keep-alive",
        ):
            report.add(
                module.line(path, name),
                KEEPALIVE,
                problem,
                "run the app with KEEPALIVE=620 (> 600 s)",
                "https://cloud.google.com/load-balancing/docs/https#timeouts_and_retries",
                path,
            )


def _azure(module: Module, report: Report, budget: Budget) -> None:
    docs = "https://learn.microsoft.com/azure/application-gateway/use-server-sent-events"
    for path, name, body in module.resources("azurerm_application_gateway"):
        buffering = [g.get("response_buffering_enabled") for g in _blocks(body, "global")]
        if not buffering or module.text(buffering[0]) not in ("false", "False"):
            report.add(
                module.line(path, name, "global"),
                BUFFERING,
                f"{name}: response buffering is " + ("on" if buffering else "not set (default: on)"),
                "add `global { request_buffering_enabled = true  response_buffering_enabled = false }`",
                f"{docs}#response_buffering_enabled",
                path,
            )
        for settings in _blocks(body, "backend_http_settings"):
            value = module.number(settings.get("request_timeout", AZURE_REQUEST_TIMEOUT_DEFAULT))
            what = f"{name} backend_http_settings {settings.get('name')} request_timeout" + (
                "" if "request_timeout" in settings else " (default 30 s)"
            )
            if problem := idle_too_short(value, budget.ping, what):
                report.add(
                    module.line(path, name, "request_timeout"),
                    IDLE_TIMEOUT,
                    problem,
                    "raise request_timeout (e.g. 300)",
                    f"{docs}#request_timeout",
                    path,
                )
            if problem := pool_too_long(value, budget.keepalive, budget.keepalive_source, what):
                report.add(
                    module.line(path, name, "request_timeout"),
                    KEEPALIVE,
                    problem,
                    "run the app with KEEPALIVE above request_timeout",
                    f"{docs}#request_timeout",
                    path,
                )
            draining = _blocks(settings, "connection_draining")
            enabled = bool(draining) and module.value(draining[0].get("enabled")) is True
            drain = module.number(draining[0].get("drain_timeout_sec")) if enabled else None
            if problem := drain_too_short(drain, budget.drain, f"{name} backend_http_settings connection_draining"):
                report.add(
                    module.line(path, name, "connection_draining" if draining else "backend_http_settings"),
                    DRAIN,
                    problem,
                    "add `connection_draining { enabled = true  drain_timeout_sec = <DRAIN_SECONDS or more> }`",
                    "https://learn.microsoft.com/azure/application-gateway/configuration-http-settings#connection-draining",
                    path,
                )


def _cloudflare(module: Module, report: Report, budget: Budget) -> None:
    docs = (
        "https://developers.cloudflare.com/support/troubleshooting/http-status-codes/cloudflare-5xx-errors/error-524/"
    )
    for path, name, body in module.resources("cloudflare_zone_setting", "cloudflare_zone_settings_override"):
        if body.get("setting_id") == "proxy_read_timeout":
            value = module.number(body.get("value"))
        else:
            value = next((module.number(s.get("proxy_read_timeout")) for s in _blocks(body, "settings")), None)
        if problem := idle_too_short(seconds(value), budget.ping, f"{name} proxy_read_timeout"):
            report.add(
                module.line(path, name), IDLE_TIMEOUT, problem, "keep it at the 100 s default or higher", docs, path
            )
    rules = [
        (path, name, rule)
        for path, name, body in module.resources("cloudflare_ruleset")
        if module.text(body.get("phase")) == "http_request_cache_settings"
        for rule in (module.value(body.get("rules")) or [])
        if isinstance(rule, dict)
    ]
    if not rules:
        return
    for sse_path in SSE_PATHS:
        decided = _cloudflare_cache_rule(rules, sse_path)
        if decided is not None and decided[2].get("action_parameters", {}).get("cache") is not False:
            path, name, _ = decided
            report.add(
                module.line(path, name),
                CACHE,
                f"{name}: the last cache rule matching {sse_path} caches it; a cached stream is replayed, not relayed",
                f"end the ruleset with a rule that sets `cache = false` for {', '.join(SSE_PATHS)}",
                "https://developers.cloudflare.com/cache/how-to/cache-rules/settings/#eligible-for-cache",
                path,
            )


def _cloudflare_cache_rule(
    rules: list[tuple[Path, str, dict[str, Any]]], sse_path: str
) -> tuple[Path, str, dict[str, Any]] | None:
    """The cache rule that decides for `sse_path`: the last enabled `set_cache_settings` rule whose
    expression is `true` or names the path (None: no rule decides, Cloudflare's default applies)."""
    decided = None
    for path, name, rule in rules:
        expression = str(rule.get("expression", "")).strip()
        matches = expression == "true" or f'"{sse_path}"' in expression
        if rule.get("action") == "set_cache_settings" and matches and rule.get("enabled", True) is not False:
            decided = (path, name, rule)
    return decided


def read(paths: list[Path]) -> tuple[dict[Path, list[Path]], dict[Path, dict[str, Any]], dict[Path, list[str]], Report]:
    """The one HCL reader: parse `paths` with python-hcl2, grouped by directory (one module each).
    Returns (files by directory, parsed files, their lines, errors). Raises ImportError without python-hcl2."""
    import hcl2

    options = hcl2.SerializationOptions(**_HCL2_OPTIONS)
    by_dir: dict[Path, list[Path]] = defaultdict(list)
    for path in paths:
        by_dir[path.parent].append(path)
    errors = Report(paths[0])
    parsed: dict[Path, dict[str, Any]] = {}
    texts: dict[Path, list[str]] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
            parsed[path] = hcl2.loads(text, serialization_options=options)
            texts[path] = text.splitlines()
        except Exception as exc:  # python-hcl2 raises lark errors of several kinds
            errors.error(f"Terraform does not parse: {str(exc).splitlines()[0]}", path=path)
    return dict(sorted(by_dir.items())), parsed, texts, errors


def module(files: list[Path], parsed: dict[Path, dict[str, Any]], texts: dict[Path, list[str]]) -> Module:
    return Module({p: parsed[p] for p in files if p in parsed}, {p: texts[p] for p in files if p in texts})


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    try:
        by_dir, parsed, texts, errors = read(paths)
    except ImportError:
        report = Report(paths[0])
        report.error(
            "python-hcl2 is not installed, so Terraform files were not checked",
            "pip install 'streamkit[check]' (the kit pins python-hcl2 there)",
        )
        return report.findings
    findings: list[Finding] = list(errors.findings)
    for directory, files in by_dir.items():
        report = Report(directory)
        found = module(files, parsed, texts)
        module_budget = found.keepalive(budget)
        for check_cloud in (_aws, _gcp, _azure, _cloudflare):
            check_cloud(found, report, module_budget)
        findings.extend(report.findings)
    return findings
