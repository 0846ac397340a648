"""Traefik configured without its YAML files: Docker/compose labels (`traefik.http...`, dynamic)
and `command:` flags (`--entrypoints...`, static), and TOML files (traefik.toml, dynamic .toml).

Each source is turned into the same tree as Traefik's YAML (label keys are case-insensitive, so
they are mapped back to Traefik's field names) and checked by `streamkit.lint.traefik`. Findings
point at the line of the label, flag or TOML key that set the value.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from streamkit.lint import traefik
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.yamlsource import LineDict, LineList, load_documents

NAME = "traefik-labels-toml"
# Traefik's field names, by their lower-case spelling (labels and flags are case-insensitive).
_NAMES = (
    "entryPoints serversTransport serversTransports http routers middlewares services loadBalancer servers "
    "compress buffering excludedContentTypes includedContentTypes forwardingTimeouts idleConnTimeout "
    "readTimeout transport respondingTimeouts writeTimeout rule url maxResponseBodyBytes minResponseBodyBytes "
    "ipAllowList ipWhiteList basicAuth digestAuth forwardAuth priority service"
)
FIELDS = {name.lower(): name for name in _NAMES.split()}
LISTS = ("excludedContentTypes", "includedContentTypes", "middlewares")


def detect(path: Path, text: str) -> bool:
    if path.suffix == ".toml":
        return bool(re.search(r"^\s*\[\[?(http|entryPoints|serversTransport)\b", text, re.MULTILINE))
    return (
        path.suffix in (".yaml", ".yml")
        and bool(re.search(r"^services:", text, re.MULTILINE))
        and bool(re.search(r"traefik\.http\.|--entrypoints\.|--serverstransport", text, re.IGNORECASE))
    )


def _line_of(lines: list[str], needle: str) -> int:
    needle = needle.lower()
    return next((n for n, line in enumerate(lines, 1) if needle in line.lower()), 1)


def _put(tree: LineDict, keys: list[str], value: Any, line: int) -> None:
    node = tree
    for key in keys[:-1]:
        key = FIELDS.get(key.lower(), key)
        child = node.get(key)
        if not isinstance(child, LineDict):
            child = LineDict()
            child.line = line
            node[key] = child
            node.lines[key] = line
        node = child
    last = FIELDS.get(keys[-1].lower(), keys[-1])
    if last in LISTS and isinstance(value, str):
        items = LineList(v.strip() for v in value.split(","))
        items.line = line
        value = items
    elif last in ("compress", "buffering") and str(value).lower() == "true":
        value = LineDict()
        value.line = line
    node[last] = value
    node.lines[last] = line


def from_compose(text: str) -> LineDict:
    """The Traefik tree that a compose file's labels and command flags describe."""
    lines = text.splitlines()
    tree = LineDict()
    for doc in load_documents(text):
        for service in (doc.get("services") or {}).values() if isinstance(doc, dict) else []:
            if not isinstance(service, dict):
                continue
            # Service labels (docker compose) and deploy labels (swarm mode) carry the same keys.
            for labels in (service.get("labels") or {}, (service.get("deploy") or {}).get("labels") or {}):
                pairs = labels.items() if isinstance(labels, dict) else (str(i).partition("=")[::2] for i in labels)
                for key, value in pairs:
                    if str(key).lower().startswith("traefik.http."):
                        _put(tree, str(key).split(".")[1:], str(value), _line_of(lines, str(key)))
            command = service.get("command") or []
            for flag in command.split() if isinstance(command, str) else command:
                key, _, value = str(flag).lstrip("-").partition("=")
                if key.lower().startswith(("entrypoints.", "serverstransport.")):
                    _put(tree, key.split("."), value, _line_of(lines, str(flag)))
    return tree


def from_toml(text: str) -> LineDict:
    lines = text.splitlines()

    def convert(node: Any, path: list[str]) -> Any:
        if isinstance(node, dict):
            result = LineDict()
            result.line = _line_of(lines, ".".join(path)) if path else 1
            for key, value in node.items():
                result[key] = convert(value, [*path, key])
                result.lines[key] = _line_of(lines, f"{key} =") if not isinstance(value, dict) else result.line
                if isinstance(value, dict):
                    result.lines[key] = getattr(result[key], "line", result.line)
            return result
        if isinstance(node, list):
            items = LineList(convert(v, path) for v in node)
            items.line = _line_of(lines, path[-1]) if path else 1
            return items
        return node

    tree: LineDict = convert(tomllib.loads(text), [])
    return tree


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    reports = {path: Report(path) for path in paths}
    config = traefik.Config()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        try:
            config.read(path, from_toml(text) if path.suffix == ".toml" else from_compose(text))
        except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
            reports[path].error(f"Traefik {'TOML' if path.suffix == '.toml' else 'compose file'} does not parse: {exc}")
    traefik.check_config(config, reports, budget)
    return [f for report in reports.values() for f in report.findings]
