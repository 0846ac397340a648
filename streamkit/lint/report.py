"""Findings for people (rich) and for machines (JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from streamkit.lint.durations import show
from streamkit.lint.findings import ERROR, NOTE, WARNING, Budget
from streamkit.lint.scan import NOT_A_CONFIG, Result

SHOWN_NOT_CHECKED = 10  # files not checked listed by name in the human output; the rest counted


def as_json(result: Result, budget: Budget) -> str:
    return json.dumps(
        {
            "budget": {"ping_interval": budget.ping, "max_stream": budget.max_stream, "keepalive": budget.keepalive},
            "stream_paths": list(budget.stream_paths),
            "checked": {fmt: [str(p) for p in files] for fmt, files in result.checked.items()},
            "not_checked": [{"file": path, "why": why} for path, why in result.not_checked],
            "findings": [f.as_dict() for f in result.findings if not f.is_error],
            "notes": [note.as_dict() for note in result.notes],
        },
        indent=2,
    )


def print_human(result: Result, budget: Budget, console: Console) -> None:
    for f in result.findings:
        if f.is_error:
            continue
        colour = {ERROR: "yellow", NOTE: "blue", WARNING: "magenta"}[f.severity]
        label = "" if f.severity == ERROR else f"{f.severity}: "
        route = f"  [cyan]{escape(f.route)}[/]" if f.route else ""
        console.print(
            f"[bold]{escape(f.path)}:{f.line}[/]{route}  [{colour}]{label}{f.rule.id} {f.rule.name}[/]"
            f"  [dim]rule: {escape(f.rule.title)}[/]",
            soft_wrap=True,
        )
        console.print(f"  problem: {escape(f.message)}", soft_wrap=True)
        if f.fix:
            console.print(f"  [green]fix:[/]     {escape(f.fix)}", soft_wrap=True)
        if f.docs:
            console.print(f"  docs:    {escape(f.docs)}", soft_wrap=True)
        if f.severity == NOTE and f.is_advice:
            console.print(
                "  [dim](advice for an app that serves /metrics on its public port: a note, never a finding; "
                "streamkit's app does not, so --app streamkit drops it)[/]",
                soft_wrap=True,
            )
        elif f.severity == NOTE:
            console.print("  [dim](about streamkit's own app: a note; --app streamkit makes it a finding)[/]")
        console.print()
    for note in result.notes:
        console.print(
            f"[bold]{escape(note.format)}[/]  [blue]note: {note.rule.id} {note.rule.name}[/]  "
            f"[dim]rule: {escape(note.rule.title)}[/]",
            soft_wrap=True,
        )
        console.print(f"  {escape(note.message)}", soft_wrap=True)
        console.print(f"  docs:    {escape(note.docs)}", soft_wrap=True)
        console.print("  (not expressible in this format's config: a note, never a finding)")
        console.print()
    errors = {f.path for f in result.errors}
    # Files found in a directory that are not configs (READMEs, Dockerfiles) are counted; files
    # that could not be read or checked are each named with the reason.
    others = [path for path, why in result.not_checked if why == NOT_A_CONFIG]
    for path, why in result.not_checked:
        if why != NOT_A_CONFIG:
            colour = "red" if path in errors else "magenta"
            console.print(f"[{colour}]not checked: {escape(path)}: {escape(why)}[/]", soft_wrap=True)
    if others:
        shown = ", ".join(Path(p).name for p in others[:SHOWN_NOT_CHECKED])
        more = ", ..." if len(others) > SHOWN_NOT_CHECKED else ""
        console.print(
            f"[dim]not checked: {len(others)} file(s) that are not configs ({escape(shown)}{more})[/]", soft_wrap=True
        )
    files = sum(len(v) for v in result.checked.values())
    kinds = ", ".join(f"{name} {len(v)}" for name, v in result.checked.items()) or "none"
    failing = len(result.failing)
    notes = len([f for f in result.findings if f.severity == NOTE]) + len(result.notes)
    warnings = len([f for f in result.findings if f.severity == WARNING])
    verdict = "[green]clean[/]" if not failing else f"[yellow]{failing} finding(s)[/]"
    if notes:
        verdict += f", {notes} note(s)"
    if warnings:
        verdict += f", [magenta]{warnings} warning(s)[/]"
    if errors:
        verdict += f", [red]{len(errors)} file(s) could not be checked[/]"
    if not files:
        verdict = "[red]nothing could be checked[/]"
    console.print(
        f"{verdict}: {files} config file(s) checked ({kinds}); budget: ping {show(budget.ping)}, "
        f"longest stream {show(budget.max_stream)}, app keep-alive {show(budget.keepalive)}"
        + (f"; streaming routes: {', '.join(budget.stream_paths)}" if budget.stream_paths else ""),
        soft_wrap=True,
    )
