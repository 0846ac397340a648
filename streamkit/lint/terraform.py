"""Terraform (.tf, parsed with python-hcl2): AWS ALB, GCP backend services, Azure Application
Gateway and Cloudflare zone settings (proxies.md §8-11).

The .tf files of one directory form a module: `var.x` resolves to the variable's default, and an
output named like `*keepalive*` states the app keep-alive the module needs (it replaces
--keepalive for that module, and names where it came from).
"""

from __future__ import annotations

import ast
import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from streamkit.lint.durations import seconds
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.rules import (
    BUFFERING,
    HTTP1,
    IDLE_TIMEOUT,
    KEEPALIVE,
    TOTAL_TIMEOUT,
    idle_too_short,
    pool_too_long,
    total_too_short,
)

NAME = "terraform"
ALB_IDLE_DEFAULT = 60.0
GCP_TIMEOUT_DEFAULT = 30.0
GCP_KEEPALIVE = 600.0  # fixed GFE -> backend keep-alive
AZURE_REQUEST_TIMEOUT_DEFAULT = 30.0
_EXPR = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def detect(path: Path, text: str) -> bool:
    return path.suffix == ".tf"


class Module:
    def __init__(self, files: dict[Path, dict[str, Any]], texts: dict[Path, list[str]]) -> None:
        self.files, self.texts = files, texts
        self.variables = {name: body.get("default") for _, name, body in self.blocks("variable")}
        self.locals = {
            k: v for parsed in files.values() for block in parsed.get("locals", []) for k, v in block.items()
        }
        self._evaluating: set[str] = set()

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

    def number(self, value: Any) -> float | None:
        """A literal, `var.x` (its default) or simple arithmetic over them; None if unknown."""
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        if not isinstance(value, str):
            return None
        match = _EXPR.match(value.strip())
        try:
            return self._eval(ast.parse(match.group(1) if match else value, mode="eval").body)
        except (SyntaxError, ValueError, TypeError, ZeroDivisionError):
            return None

    def _eval(self, node: ast.AST) -> float | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "var":
            return self.number(self.variables.get(node.attr))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "local":
            if node.attr in self._evaluating:  # a cycle: Terraform rejects it too
                return None
            self._evaluating.add(node.attr)
            try:
                return self.number(self.locals.get(node.attr))
            finally:
                self._evaluating.discard(node.attr)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = self._eval(node.left), self._eval(node.right)
            return None if left is None or right is None else float(_OPS[type(node.op)](left, right))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("max", "min"):
            values = [self._eval(arg) for arg in node.args]
            known = [v for v in values if v is not None]
            if not known or len(known) != len(values):
                return None
            return max(known) if node.func.id == "max" else min(known)
        return None

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


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    try:
        import hcl2
    except ImportError:
        report = Report(paths[0])
        report.error(
            "python-hcl2 is not installed, so Terraform files were not checked",
            "pip install python-hcl2 (the kit pins it)",
        )
        return report.findings
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
    by_dir: dict[Path, list[Path]] = defaultdict(list)
    for path in paths:
        by_dir[path.parent].append(path)
    findings: list[Finding] = []
    for directory, files in sorted(by_dir.items()):
        report = Report(directory)
        parsed: dict[Path, dict[str, Any]] = {}
        texts: dict[Path, list[str]] = {}
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
                parsed[path] = hcl2.loads(text, serialization_options=options)
                texts[path] = text.splitlines()
            except Exception as exc:  # python-hcl2 raises lark errors of several kinds
                report.error(f"Terraform does not parse: {str(exc).splitlines()[0]}", path=path)
        module = Module(parsed, texts)
        module_budget = module.keepalive(budget)
        for check_cloud in (_aws, _gcp, _azure, _cloudflare):
            check_cloud(module, report, module_budget)
        findings.extend(report.findings)
    return findings
