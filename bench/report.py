"""Turn one results document into the markdown table and the PNG plots (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.measure import median_of

GOAL_CPU_US = 40.0
GOAL_SDK_FACTOR = 8.0
GOAL_LITELLM_FACTOR = 20.0
GOAL_TTFT_MS = 2.0
GOAL_GAP_MS = 2.0
GOAL_EVENTS = 50_000.0
GOAL_KB = 45.0
GOAL_CLOSE_MS = 50.0
# The goals were set on a machine where a raw-ASGI SSE event cost 7.7 µs of CPU (issue 9's anchors).
# Dividing by the raw-ASGI cost measured in the same run gives a machine-independent relay figure.
ANCHOR_RAW_US = 7.7


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _mm(figure: dict[str, Any] | None, key: str) -> str:
    """`min / median` of one figure over repetitions."""
    value = (figure or {}).get(key)
    if value is None:
        return "–"
    return f"{_num(value['min'])} / {_num(value['median'])}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _met(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def goals(doc: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    relay = doc.get("relay", {})
    targets = relay.get("targets", {})

    def cpu(name: str, level: str = "100") -> float | None:
        figure = targets.get(name, {}).get(level)
        return median_of(figure, "server_cpu_us_per_token") if figure else None

    kit_cpu = cpu("kit")
    if relay:
        rows.append(
            [f"relay CPU ≤ {GOAL_CPU_US:g} µs/token (100 streams)", _num(kit_cpu), _met(_le(kit_cpu, GOAL_CPU_US))]
        )
        raw = median_of(doc.get("ceiling", {}).get("targets", {}).get("raw_asgi", {}), "server_cpu_us_per_event")
        units = kit_cpu / raw if kit_cpu and raw else None
        goal_units = GOAL_CPU_US / ANCHOR_RAW_US
        rows.append(
            [
                "relay CPU in raw-ASGI events per token (indicative: the goal scaled by this machine's speed,"
                f" {goal_units:.1f} on the anchor machine; this raw ASGI includes the shared fake generator)",
                _num(units) + (f" (raw ASGI here: {_num(raw)} µs/event)" if raw else ""),
                "–",
            ]
        )
        for peer, factor in (("tutorial", GOAL_SDK_FACTOR), ("litellm", GOAL_LITELLM_FACTOR)):
            theirs = cpu(peer, "100") or cpu(peer, "10")
            ratio = theirs / kit_cpu if theirs and kit_cpu else None
            rows.append(
                [f"≥ {factor:g}× below {peer} per token", _num(ratio) + "×" if ratio else "–", _met(_ge(ratio, factor))]
            )
        added = relay.get("added", {}).get("kit", {})
        ttft = (added.get("10") or {}).get("ttft_p50_ms")
        rows.append([f"added TTFT p50 ≤ {GOAL_TTFT_MS:g} ms at 10 streams", _num(ttft), _met(_le(ttft, GOAL_TTFT_MS))])
        ttft100 = (added.get("100") or {}).get("ttft_p50_ms")
        rows.append(
            [f"added TTFT p50 ≤ {GOAL_TTFT_MS:g} ms at 100 streams", _num(ttft100), _met(_le(ttft100, GOAL_TTFT_MS))]
        )
        at100 = targets.get("kit", {}).get("100")
        gap = (added.get("100") or {}).get("gap_p99_ms")
        rows.append(
            [
                "100 streams × 50 tokens/s unsaturated",
                "saturated" if at100 and at100["saturated"] else ("ok" if at100 else "–"),
                _met(None if at100 is None else not at100["saturated"]),
            ]
        )
        rows.append([f"added gap p99 ≤ {GOAL_GAP_MS:g} ms at 100 streams", _num(gap), _met(_le(gap, GOAL_GAP_MS))])
    ceiling = doc.get("ceiling", {}).get("targets", {})
    if ceiling:
        kit = median_of(ceiling.get("kit", {}), "events_per_s")
        bare = (
            median_of(ceiling.get("sse_starlette_bare", {}), "events_per_s")
            if "sse_starlette_bare" in ceiling
            else None
        )
        rows.append([f"ceiling ≥ {GOAL_EVENTS:,.0f} events/s per worker", _num(kit), _met(_ge(kit, GOAL_EVENTS))])
        rows.append(["ceiling ≥ bare sse-starlette", f"{_num(kit)} vs {_num(bare)}", _met(_ge(kit, bare))])
    memory = doc.get("memory", {}).get("targets", {}).get("kit", {}).get("levels", {})
    if memory:
        worst = max((row["kb_per_stream"] for key, row in memory.items() if key != "error"), default=None)
        rows.append([f"≤ {GOAL_KB:g} KB per idle stream", _num(worst), _met(_le(worst, GOAL_KB))])
        bare = doc["memory"]["targets"].get("sse_starlette_bare", {}).get("levels", {})
        pairs = [(key, memory[key], bare[key]) for key in bare if key in memory and key != "error"]
        if pairs:
            ok = all(mine["kb_per_stream"] <= theirs["kb_per_stream"] for _, mine, theirs in pairs)
            shown = ", ".join(
                f"{_num(mine['kb_per_stream'])} vs {_num(theirs['kb_per_stream'])} at {key}"
                for key, mine, theirs in pairs
            )
            rows.append(["KB per idle stream ≤ bare sse-starlette", shown, _met(ok)])
    cancel = doc.get("cancellation", {}).get("targets", {}).get("kit", {})
    if cancel:
        for window, row in cancel.items():
            ok = row["max_ms"] is not None and row["max_ms"] <= row["bound_ms"] and row["not_closed"] == 0
            measured = f"max {_num(row['max_ms'])} ms, {row['not_closed']} not closed"
            rows.append([f"upstream closed ≤ {row['bound_ms']:g} ms, {window}", measured, _met(ok)])
    return rows


def _le(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def _ge(value: float | None, bound: float | None) -> bool | None:
    return None if value is None or bound is None else value >= bound


def markdown(doc: dict[str, Any], stem: str) -> str:
    meta = doc["meta"]
    before, after = meta["environment_before"], meta["environment_after"]
    lines = [
        f"# Benchmark results {meta['date']}",
        "",
        f"Commit `{meta['commit']}`, started {meta['started']}, took {meta['elapsed_s']} s"
        + (" (SMOKE sizes: not a measurement)" if meta["smoke"] else "")
        + ".",
        f"{before['cpus']} cores; server pinned to core {before['server_core']}, load client (and fake-upstream,"
        f" and proxies) to core {before['client_core']} (pinned: {before['pinned']}). Load average"
        f" {', '.join(f'{v:.1f}' for v in before['loadavg'])} before, {', '.join(f'{v:.1f}' for v in after['loadavg'])}"
        " after: the machine is shared with other engineers' test runs, so absolute figures are noisy;"
        " every figure is `min / median` over repetitions.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items() if v) + ".",
    ]
    if meta.get("litellm_missing"):
        lines += ["", f"LiteLLM not measured: {meta['litellm_missing']}."]
    lines += ["", "## Goals", "", *_table(["goal", "measured", ""], goals(doc))]
    if "relay" in doc:
        lines += ["", *relay_section(doc["relay"])]
    if "ceiling" in doc:
        lines += ["", *ceiling_section(doc["ceiling"])]
    if "memory" in doc:
        lines += ["", *memory_section(doc["memory"])]
    if "cancellation" in doc:
        lines += ["", *cancel_section(doc["cancellation"])]
    if "proxies" in doc:
        lines += ["", *proxy_section(doc["proxies"])]
    lines += ["", *profile_section(doc)]
    lines += ["", "Plots: " + ", ".join(f"[{name}]({stem}-{name}.png)" for name in PLOTS if name.split("_")[0] in doc)]
    return "\n".join(lines) + "\n"


def _cost_rows(section: dict[str, Any], columns: list[str], level: bool) -> list[list[str]]:
    """A row per target (and per load level when `level`) of a cost section: each column the
    figure's `min / median` by key; `+key` the same key over the direct path (the section's
    `added`); `saturated` yes or no."""
    rows = []
    for name, levels in section["targets"].items():
        for at, figure in levels.items():
            added = section["added"].get(name, {}).get(at, {})
            rows.append([name, *([at] if level else []), *(_cost_cell(figure, added, key) for key in columns)])
    return rows


def _cost_cell(figure: dict[str, Any], added: dict[str, Any], key: str) -> str:
    if key.startswith("+"):
        return _num(added.get(key[1:]))
    if key == "saturated":
        return "yes" if figure["saturated"] else "no"
    return _mm(figure, key)


# The cost columns both sections show, after the CPU column.
_LATENCY_COLUMNS = ["ttft_p50_ms", "+ttft_p50_ms", "gap_p99_ms", "+gap_p99_ms"]


def relay_section(relay: dict[str, Any]) -> list[str]:
    columns = ["server_cpu_us_per_token", *_LATENCY_COLUMNS, "server_util", "client_util", "failed", "saturated"]
    rows = _cost_rows(relay, columns, level=True)
    header = ["target", "streams", "CPU µs/token", "TTFT p50 ms", "+TTFT", "gap p99 ms", "+gap p99", "server busy"]
    header += ["client busy", "failed", "saturated"]
    unsat = ", ".join(f"{k} {v}" for k, v in relay["unsaturated_max"].items())
    return [
        f"## 1. Relay cost ({relay['tokens']} tokens at {relay['tokens_per_second']:g} tokens/s per stream)",
        "",
        "client → target → fake-upstream; `direct` is client → fake-upstream (its CPU is the fake's)."
        " `+` columns: median minus direct's median at the same concurrency. CPU is the measured"
        " server process's (the one gunicorn worker for the kit) per token delivered.",
        "",
        *_table(header, rows),
        "",
        f"Highest concurrency not saturated: {unsat}.",
    ] + (["", f"LiteLLM failed to start: `{relay['litellm_error'][-300:]}`"] if relay.get("litellm_error") else [])


def ceiling_section(ceiling: dict[str, Any]) -> list[str]:
    rows = [
        [name, _mm(f, "events_per_s"), _mm(f, "server_cpu_us_per_event"), _mm(f, "server_util"), _mm(f, "client_util")]
        for name, f in ceiling["targets"].items()
    ]
    return [
        f"## 2. Ceiling ({ceiling['streams']} streams at full speed, {ceiling['seconds']:g} s per repetition)",
        "",
        *_table(["target", "events/s", "CPU µs/event", "server busy", "client busy"], rows),
    ]


def memory_section(memory: dict[str, Any]) -> list[str]:
    rows = []
    for name, target in memory["targets"].items():
        for level, row in target["levels"].items():
            if level == "error":
                rows.append([name, "–", "–", "–", "–", row])
                continue
            rows.append(
                [name, level, _num(row["rss_mb"]), _num(row["kb_per_stream"]), str(row["fds"]), str(row["failed"])]
            )
    cycles = [
        [str(c["cycle"]), _num(c.get("open_rss_mb")), str(c.get("open_fds", "–")), _num(c["rss_mb"]), str(c["fds"])]
        for c in memory["cycles"]
    ]
    return [
        "## 3. Memory per idle open stream (heartbeats only)",
        "",
        *_table(["target", "streams", "RSS MB", "KB/stream", "fds", "failed"], rows),
        "",
        "Open/close cycles (kit): RSS and fds with the streams open, and after they closed.",
        "",
        *_table(["cycle", "open RSS MB", "open fds", "closed RSS MB", "closed fds"], cycles),
    ]


def cancel_section(cancel: dict[str, Any]) -> list[str]:
    rows = []
    for name, windows in cancel["targets"].items():
        for window, row in windows.items():
            trials = cancel["stalled_trials"] if window == "stopped_reading" else cancel["trials"]
            rows.append(
                [
                    name,
                    window,
                    _num(row["p50_ms"]),
                    _num(row["p95_ms"]),
                    _num(row["max_ms"]),
                    f"{row['not_closed']}/{trials}",
                ]
            )
    return [
        "## 4. Cancellation: upstream closed after the client left (fake-upstream's own record)",
        "",
        "first_token: the client hangs up while the upstream has not sent a token; between_tokens: after"
        " its 3rd token; both measured from the hang-up. stopped_reading: the client stops reading and"
        f" stays connected; measured from when the server's send queue stopped growing, so it includes the"
        f" kit's SEND_TIMEOUT ({cancel.get('send_timeout', 1.0):g} s); peers have no send timeout."
        " `not closed`: still open 5 s later, or the upstream ran to completion.",
        "",
        *_table(["target", "window", "p50 ms", "p95 ms", "max ms", "not closed"], rows),
    ]


def proxy_section(section: dict[str, Any]) -> list[str]:
    rows = _cost_rows(section, ["server_cpu_us_per_token", *_LATENCY_COLUMNS, "failed"], level=False)
    errors = [f"{name}: {error}" for name, error in section["errors"].items()]
    return [
        f"## 5. Per-proxy cost ({section['streams']} streams × 50 tokens/s through the shipped config)",
        "",
        "CPU is the proxy's (all its processes) per event; `direct` is the app worker's own.",
        "",
        *_table(["proxy", "CPU µs/event", "TTFT p50 ms", "+TTFT", "gap p99 ms", "+gap p99", "failed"], rows),
    ] + (["", "Not measured: " + "; ".join(errors)] if errors else [])


def profile_section(doc: dict[str, Any]) -> list[str]:
    """The top of each py-spy profile: share of busy samples with the function on the stack."""
    found = [(f"relay, {name}", p) for name, p in doc.get("relay", {}).get("profiles", {}).items()]
    if doc.get("ceiling", {}).get("profile"):
        found.append(("ceiling, kit", doc["ceiling"]["profile"]))
    if not found:
        return []
    lines = ["## Profiles (py-spy, one extra uncounted run each)"]
    for label, prof in found:
        lines += ["", f"**{label}**: " + (prof["error"] if "error" in prof else f"{prof['samples']} busy samples")]
        if "inclusive_pct" in prof:
            rows = [[f"`{frame}`", f"{pct:g}%"] for frame, pct in prof["inclusive_pct"][:PROFILE_ROWS]]
            lines += ["", *_table(["function (on the stack)", "share"], rows)]
            rows = [[f"`{frame}`", f"{pct:g}%"] for frame, pct in prof["self_pct"][:PROFILE_SELF_ROWS]]
            lines += ["", *_table(["function (on top: own time)", "share"], rows)]
        if "self_by_package" in prof:
            shares = ", ".join(f"{name} {pct:g}%" for name, pct in prof["self_by_package"][:PROFILE_PACKAGES])
            lines += ["", f"Own time by package: {shares}."]
    return lines


PROFILE_ROWS = 18
PROFILE_SELF_ROWS = 8
PROFILE_PACKAGES = 12

PLOTS = ("relay_cpu", "relay_gap", "ceiling", "memory", "cancellation", "proxies")


def plots(doc: dict[str, Any], out: Path, stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / f"{stem}-{name}.png", dpi=110)
        plt.close(fig)

    if "relay" in doc:
        for key, name, label in (
            ("server_cpu_us_per_token", "relay_cpu", "server CPU µs per token (median)"),
            ("gap_p99_ms", "relay_gap", "inter-token gap p99 ms (median)"),
        ):
            fig, ax = plt.subplots(figsize=(6, 4))
            for target, levels in doc["relay"]["targets"].items():
                xs = [int(level) for level in levels]
                ys = [median_of(figure, key) or float("nan") for figure in levels.values()]
                ax.plot(xs, ys, marker="o", label=target)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("concurrent streams (50 tokens/s each)")
            ax.set_ylabel(label)
            ax.legend()
            ax.grid(True, which="both", alpha=0.3)
            save(fig, name)
    if "ceiling" in doc:
        fig, ax = plt.subplots(figsize=(6, 4))
        names = list(doc["ceiling"]["targets"])
        ax.barh(names, [median_of(doc["ceiling"]["targets"][n], "events_per_s") or 0 for n in names])
        ax.axvline(GOAL_EVENTS, color="red", linestyle="--", label="goal")
        ax.set_xlabel("events/s per worker (median)")
        ax.legend()
        save(fig, "ceiling")
    if "memory" in doc:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
        for target, data in doc["memory"]["targets"].items():
            levels = {k: v for k, v in data["levels"].items() if k != "error"}
            left.plot([int(k) for k in levels], [v["kb_per_stream"] for v in levels.values()], marker="o", label=target)
        left.axhline(GOAL_KB, color="red", linestyle="--", label="goal")
        left.set_xlabel("idle open streams")
        left.set_ylabel("KB RSS per stream")
        left.legend()
        cycles = doc["memory"]["cycles"]
        if cycles:
            right.plot([c["cycle"] for c in cycles], [c["rss_mb"] for c in cycles], marker="o", label="RSS MB (closed)")
            twin = right.twinx()
            twin.plot([c["cycle"] for c in cycles], [c["fds"] for c in cycles], marker="s", color="gray", label="fds")
            right.set_xlabel("open/close cycle")
            right.set_ylabel("worker RSS MB after close")
            twin.set_ylabel("worker fds after close")
            right.set_ylim(bottom=0)
            twin.set_ylim(bottom=0)
        save(fig, "memory")
    if "cancellation" in doc:
        fig, ax = plt.subplots(figsize=(8, 4))
        column = 0
        labels = []
        for target, windows in doc["cancellation"]["targets"].items():
            for window, row in windows.items():
                labels.append(f"{target}\n{window}")
                values = [max(v, 0.01) for v in row["values_ms"]]
                ax.scatter([column] * len(values), values, s=12, alpha=0.6, color="tab:blue")
                ax.hlines(row["bound_ms"], column - 0.4, column + 0.4, colors="red", linestyles="--")
                if row["not_closed"]:
                    ax.text(column, row["bound_ms"] / 4, f"{row['not_closed']}\nnot\nclosed", ha="center", fontsize=6)
                column += 1
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yscale("log")
        ax.set_ylabel("upstream closed after the disconnect, ms")
        ax.set_title("red: the goal (stopped_reading: SEND_TIMEOUT + 50 ms)", fontsize=8)
        save(fig, "cancellation")
    if "proxies" in doc:
        fig, ax = plt.subplots(figsize=(6, 4))
        names = list(doc["proxies"]["targets"])
        first = [next(iter(doc["proxies"]["targets"][n].values())) for n in names]
        ax.barh(names, [median_of(f, "server_cpu_us_per_token") or 0 for f in first])
        ax.set_xlabel("CPU µs per event (median; direct = app worker)")
        save(fig, "proxies")
