"""Helm chart templates, read tolerantly: Go template actions are resolved where they are simple
(`.Values.x.y`, `toYaml`, `quote`, `with` blocks) and dropped where they are control flow (`if`,
`range`, `end`, `define`, `include`); each rendered document that parses as YAML is checked like
any Kubernetes manifest, and each that does not is listed as skipped, with the reason.

Both branches of an `if` are kept (the chart's values are not evaluated), so a template that
switches a setting on a value may show the setting either way; lines keep their numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from streamkit.lint import k8s
from streamkit.lint.findings import Budget, Finding, Report
from streamkit.lint.yamlsource import LineDict, load_documents

NAME = "helm"
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_BLOCK_OPEN = ("if ", "else", "range ", "with ", "define ", "block ")
PLACEHOLDER = "templated"


def chart_root(path: Path) -> Path | None:
    for parent in path.parents:
        if (parent / "Chart.yaml").is_file():
            return parent
    return None


def detect(path: Path, text: str) -> bool:
    """A template of a chart (a Chart.yaml above it), or a loose template that reads `.Values`."""
    return path.suffix in (".yaml", ".yml") and "{{" in text and (chart_root(path) is not None or ".Values." in text)


def _values(path: Path) -> Any:
    root = chart_root(path)
    try:
        return yaml.safe_load((root / "values.yaml").read_text(encoding="utf-8")) if root else {}
    except (OSError, yaml.YAMLError):
        return {}


def _lookup(expr: str, values: Any, dot: Any) -> Any:
    """`.Values.a.b` or `.a.b` (inside `with`) or `.`; None when it cannot be resolved."""
    expr = expr.strip().strip("()")
    if expr == ".":
        return dot
    node: Any
    if expr.startswith(".Values."):
        node, keys = values, expr[len(".Values.") :].split(".")
    elif expr.startswith(".") and not expr.startswith((".Release", ".Chart", ".Capabilities", ".Template")):
        node, keys = dot, expr[1:].split(".")
    else:
        return None
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _render_action(action: str, values: Any, dot: Any) -> str | None:
    """The text an inline action stands for (JSON = YAML flow style), or None if unknown."""
    parts = [p.strip() for p in action.split("|")]
    head = parts[0]
    for prefix in ("toYaml ", "toJson "):
        if head.startswith(prefix):
            head = head[len(prefix) :]
    if head.startswith("default "):
        words = head.split()
        head = words[-1] if len(words) >= 3 else head
        fallback = words[1].strip('"') if len(words) >= 3 else None
    else:
        fallback = None
    value = _lookup(head, values, dot)
    if value is None:
        value = fallback
    if value is None:
        return None
    if isinstance(value, dict | list) or any(p.startswith("quote") for p in parts[1:]):
        return json.dumps(value if not isinstance(value, int | float) else str(value))
    return str(value)


def render(text: str, values: Any) -> str:
    """The template with its actions resolved or blanked, line numbers kept."""
    out = []
    stack: list[Any] = [values]
    for line in text.splitlines():
        actions = _ACTION.findall(line)
        rest = _ACTION.sub("", line).strip()
        if actions and not rest:  # a line of control flow, or a block include/toYaml on its own
            rendered = []
            for action in actions:
                if action.startswith("/*"):
                    continue
                if action.startswith(_BLOCK_OPEN):
                    if action.startswith("with "):
                        stack.append(_lookup(action[5:], values, stack[-1]))
                    elif not action.startswith("else"):
                        stack.append(stack[-1])
                elif action.startswith("end"):
                    if len(stack) > 1:
                        stack.pop()
                else:
                    value = _render_action(action, values, stack[-1])
                    if value is not None:
                        rendered.append(value)
            indent = len(line) - len(line.lstrip())
            match = re.search(r"nindent\s+(\d+)|indent\s+(\d+)", line)
            if match:
                indent = int(match.group(1) or match.group(2))
            out.append(" " * indent + " ".join(rendered) if rendered else "")
            continue

        def inline(match: re.Match[str]) -> str:
            value = _render_action(match.group(1), values, stack[-1])
            return PLACEHOLDER if value is None else value

        out.append(_ACTION.sub(inline, line))
    return "\n".join(out) + "\n"


def check(paths: list[Path], budget: Budget) -> list[Finding]:
    reports = {path: Report(path) for path in paths}
    docs: list[k8s.Doc] = []
    for path in paths:
        rendered = render(path.read_text(encoding="utf-8"), _values(path))
        start = 0
        for chunk in re.split(r"(?m)^---.*$", rendered):
            try:
                found = load_documents(chunk)
            except yaml.YAMLError as exc:
                mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
                line = start + (mark.line + 1 if mark else 1)
                reports[path].warn(
                    f"Helm template: a document could not be read after resolving the template "
                    f"({str(exc).splitlines()[0]}), so it was skipped; the rest was checked",
                    "render the chart (`helm template`) and lint the output to check it all",
                    line=line,
                )
                found = []
            for doc in found:
                if isinstance(doc, LineDict):
                    _shift(doc, start)
                    docs.append(k8s.Doc(path, doc))
            start += chunk.count("\n")
    k8s.check_documents(docs, reports, budget)
    return [f for report in reports.values() for f in report.findings]


def _shift(node: Any, offset: int) -> None:
    """Move the remembered lines of a document parsed from a slice of the file."""
    if isinstance(node, LineDict):
        node.line += offset
        node.lines = {k: v + offset for k, v in node.lines.items()}
        for child in node.values():
            _shift(child, offset)
    elif isinstance(node, list):
        if hasattr(node, "line"):
            node.line += offset
        for child in node:
            _shift(child, offset)
