"""Findings for people (rich) and for machines (JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from streamkit.lint.durations import show
from streamkit.lint.findings import Budget, Finding


def as_json(findings: list[Finding], checked: dict[str, list[Path]], budget: Budget) -> str:
    return json.dumps(
        {
            "budget": {"ping_interval": budget.ping, "max_stream": budget.max_stream, "keepalive": budget.keepalive},
            "checked": {fmt: [str(p) for p in files] for fmt, files in checked.items()},
            "findings": [f.as_dict() for f in findings],
        },
        indent=2,
    )


def print_human(findings: list[Finding], checked: dict[str, list[Path]], budget: Budget, console: Console) -> None:
    for f in findings:
        colour = "red" if f.is_error else "yellow"
        console.print(
            f"[bold]{escape(f.path)}:{f.line}[/]  [{colour}]{f.rule.id} {f.rule.name}[/]"
            f"  [dim]rule: {escape(f.rule.title)}[/]",
            soft_wrap=True,
        )
        console.print(f"  problem: {escape(f.message)}", soft_wrap=True)
        if f.fix:
            console.print(f"  [green]fix:[/]     {escape(f.fix)}", soft_wrap=True)
        if f.docs:
            console.print(f"  docs:    {escape(f.docs)}", soft_wrap=True)
        console.print()
    files = sum(len(v) for v in checked.values())
    kinds = ", ".join(f"{name} {len(v)}" for name, v in checked.items()) or "none"
    problems = [f for f in findings if not f.is_error]
    errors = len(findings) - len(problems)
    verdict = "[green]clean[/]" if not findings else f"[yellow]{len(problems)} finding(s)[/]"
    if errors:
        verdict += f", [red]{errors} error(s)[/]"
    console.print(
        f"{verdict}: {files} config file(s) checked ({kinds}); budget: ping {show(budget.ping)}, "
        f"longest stream {show(budget.max_stream)}, app keep-alive {show(budget.keepalive)}",
        soft_wrap=True,
    )
