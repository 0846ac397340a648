"""The probe's outputs: a one-screen human report (rich) and a PNG timeline (matplotlib)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from streamkit.probe.verdict import DOCS, Report

LINK = re.compile(r"https://[^\s);]+")
LINK_IN_PARENS = re.compile(r" ?\(https://[^\s)]+\)")
MARKS = {True: ("✔", "green"), False: ("✘", "bold red"), None: ("–", "dim")}


def seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value * 1000:.1f} ms" if value < 0.1 else f"{value:.2f} s"


def labelled(label: str, parts: list[tuple[str, str]]) -> Text:
    """`label  a 1 · b 2 · c 3` with the values in bold."""
    line = Text(f"{label:<9}", style="dim")
    for i, (name, value) in enumerate(parts):
        line.append(" · " if i else "")
        line.append(f"{name} " if name else "", style="dim")
        line.append(value, style="bold")
    return line


def measurement_lines(report: Report) -> list[Text]:
    s = report.stats
    lines = [
        labelled(
            "time to",
            [
                ("headers", seconds(s["time_to_headers"])),
                ("first event", seconds(s["time_to_first_event"])),
                ("first token", seconds(s["time_to_first_token"])),
                ("end", seconds(s["duration"])),
            ],
        ),
        labelled(
            "events",
            [
                ("", f"{s['events']:.0f} ({s['tokens']:.0f} tokens)"),
                ("heartbeats", f"{s['pings']:.0f}"),
                ("longest silence", seconds(s["longest_silence"])),
            ],
        ),
        labelled(
            "gaps", [("p50", seconds(s["gap_p50"])), ("p99", seconds(s["gap_p99"])), ("max", seconds(s["gap_max"]))]
        ),
    ]
    if s["lag_max"] is None:
        lines.append(labelled("lag", [("", "unknown (events carry no emitted_at)")]))
    else:
        lines.append(labelled("lag", [("p50", seconds(s["lag_p50"])), ("max", seconds(s["lag_max"]))]))
    return lines


def checks_table(report: Report) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 1), expand=False)
    table.add_column(width=1)
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for check in report.checks:
        mark, style = ("!", "yellow") if check.advice and check.ok is False else MARKS[check.ok]
        table.add_row(Text(mark, style=style), check.name, Text(check.detail))
    return table


def print_verdict(report: Report, console: Console) -> None:
    """The bottom line: the verdict, then (on failure) the fix and its links on lines of their own."""
    colour = "green" if report.ok else "red"
    console.rule(style=colour)
    console.print(Text(report.summary, style=f"bold {colour}"))
    for advice in report.advice:
        console.print(Text.assemble(("Advice (does not fail the run): ", "yellow"), LINK_IN_PARENS.sub("", advice.fix)))
    if report.ok:
        return
    first = report.failed[0]
    if first.fix:
        console.print(Text.assemble(("Fix: ", "bold"), LINK_IN_PARENS.sub("", first.fix)))
        for link in LINK.findall(first.fix):
            console.print(Text(f"  {link}", style="cyan"), soft_wrap=True)
    others = [c.name for c in report.failed[1:]]
    if others:
        console.print(Text(f"Also failed: {', '.join(others)} (see above).", style="dim"))
    console.print(Text(f"What each check means: {DOCS}", style="dim"))


def events_table(report: Report) -> Table:
    table = Table(box=None, padding=(0, 1))
    for name in ("#", "arrival", "gap", "lag", "event"):
        table.add_column(name, justify="right" if name != "event" else "left")
    previous: float | None = None
    for i, e in enumerate(report.observation.events):
        gap = None if previous is None else e.arrival - previous
        previous = e.arrival
        table.add_row(str(i), seconds(e.arrival), seconds(gap), seconds(e.lag), escape(e.event))
    return table


def print_report(report: Report, file: IO[str] | None = None, events: bool = False) -> None:
    """The human report: what was measured, each check, then the verdict with its fix."""
    console = Console(file=file, highlight=False, soft_wrap=False)
    obs = report.observation
    head = Text()
    head.append("streamkit probe ", style="bold")
    head.append(obs.url)
    console.print(head, soft_wrap=True)
    status = Text()
    status.append(f"{obs.http_version or '?'} {obs.status if obs.status is not None else 'no response'}", "bold")
    status.append(f"  {obs.headers.get('content-type', '')}", style="dim")
    if "content-encoding" in obs.headers:
        status.append(f"  Content-Encoding: {obs.headers['content-encoding']}", style="bold red")
    console.print(status)
    for line in measurement_lines(report):
        console.print(line)
    if events:
        console.print(events_table(report))
    console.print(checks_table(report))
    print_verdict(report, console)


def plot_timeline(report: Report, path: Path) -> None:
    """PNG: when each event arrived against when the server sent it (the diagonal = no lag)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    obs = report.observation
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    timed = [e for e in obs.events if e.emitted_at is not None]
    if timed and obs.started_unix is not None:
        sent = [e.emitted_at - obs.started_unix for e in timed if e.emitted_at is not None]
        arrived = [e.arrival for e in timed]
        top = max([*sent, *arrived, obs.ended_at or 0.0])
        ax.plot([0, top], [0, top], color="0.6", linestyle="--", linewidth=1, label="arrived when sent")
        ax.scatter(sent, arrived, s=14, color="tab:blue", zorder=3, label="event")
        ax.set_xlabel("sent by the server (s after the request)")
    else:
        arrived = [e.arrival for e in obs.events]
        ax.step(range(len(arrived)), arrived, where="post", color="tab:blue", label="event (no emitted_at)")
        ax.set_xlabel("event number")
    ax.set_ylabel("arrived at the client (s after the request)")
    if obs.time_to_headers is not None:
        ax.axhline(obs.time_to_headers, color="tab:green", linewidth=1, label="headers arrived")
    if obs.pings:
        ax.scatter(
            [0.0] * len(obs.pings), obs.pings, marker=">", s=18, color="tab:orange", label="heartbeat arrived", zorder=3
        )
    colour = "green" if report.ok else "red"
    lag = report.stats["lag_max"]
    what = f"{len(timed)} timed events, max lag {seconds(lag)}" if lag is not None else f"{len(obs.events)} events"
    ax.set_title(f"{report.headline}: {what}", fontsize=11, color=colour, loc="left")
    ax.grid(True, linewidth=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
