"""`make load`: every load scenario at full scale, results under bench/results/load/.

    python -m bench.load_run                       # everything (about 30 minutes)
    python -m bench.load_run --only concurrency    # one scenario (names below), every proxy
    python -m bench.load_run --quick               # a smaller version of everything (minutes)

Writes `<scenario>.json` per scenario (counts, why streams ended, TTFT and gap percentiles, CPU of
the apps and the proxy, the samples taken every second), `summary.md` (the table the README
shows) and plots (`*.png`: active streams, TTFT / gap percentiles, RSS and fds over time). The
machine's load average is recorded with every result: other work on a shared machine moves the
latency figures, never the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.load import (
    Load,
    concurrency,
    fault_knobs,
    faults,
    proxy_reload,
    raise_nofile,
    rolling_restart,
    soak,
    stack,
)
from streamkit.proxies import PROXIES
from streamkit.proxies.reload import RELOADS

RESULTS = Path(__file__).resolve().parent / "results" / "load"
OTHERS = [name for name in PROXIES if name != "nginx"]


def _scale(quick: bool) -> dict[str, Any]:
    if quick:
        return {"nginx": 500, "others": 200, "seconds": 20, "soak_slots": 200, "soak_seconds": 60, "warmup": 15}
    return {"nginx": 2000, "others": 500, "seconds": 120, "soak_slots": 500, "soak_seconds": 600, "warmup": 60}


# Streams of 30 s (300 tokens at 10 tokens/s: a typical chat answer at a typical rate); every slot
# opens its next stream when one ends, so the concurrency holds for the whole run.
TOKENS, RATE = 300, 10.0


def run_concurrency(scale: dict[str, Any], workdir: Path, proxies: list[str]) -> list[dict[str, Any]]:
    out = []
    for proxy in proxies:
        slots = scale["nginx"] if proxy == "nginx" else scale["others"]
        load = Load("concurrency", slots, scale["seconds"], TOKENS, RATE, ramp=15)
        with stack(proxy, workdir / f"concurrency-{proxy}") as running:
            out.append(concurrency(running, load))
        _progress(out[-1])
    return out


def run_rolling(scale: dict[str, Any], workdir: Path, proxies: list[str]) -> list[dict[str, Any]]:
    """Each proxy: 300 streams of 12 s, both instances replaced in turn (drain window 8 s: streams
    older than that finish, younger ones end with server_shutdown)."""
    out = []
    for proxy in proxies:
        load = Load("rolling_restart", 300, 60, 120, RATE, ramp=5)
        with stack(proxy, workdir / f"rolling-{proxy}", app_env={"DRAIN_SECONDS": "8"}) as running:
            out.append(rolling_restart(running, load, first_after=10, drain_timeout=60))
        _progress(out[-1])
    return out


def run_reload(scale: dict[str, Any], workdir: Path, proxies: list[str]) -> list[dict[str, Any]]:
    """Each proxy that can reload: 300 streams of 20 s, three reloads 8 s apart."""
    out = []
    for proxy in proxies:
        if proxy == "envoy":
            out.append({"scenario": "proxy_reload", "proxy": proxy, "not_measured": RELOADS[proxy].how})
            continue
        load = Load("proxy_reload", 300, 45, 200, RATE, ramp=5)
        with stack(proxy, workdir / f"reload-{proxy}", reload=True) as running:
            out.append(proxy_reload(running, load, reloads=3, every=8))
        _progress(out[-1])
    return out


def run_faults(scale: dict[str, Any], workdir: Path, proxies: list[str]) -> list[dict[str, Any]]:
    """nginx, the apps relaying to `streamkit fake-upstream`: every 10th upstream request drops
    after 40 tokens or answers 429."""
    load = Load("faults", scale["others"], 60, 100, RATE, ramp=10, relay=True, knobs=fault_knobs(10, 40))
    with stack("nginx", workdir / "faults", relay=True) as running:
        result = faults(running, load)
    _progress(result)
    return [result]


def run_soak(scale: dict[str, Any], workdir: Path, proxies: list[str]) -> list[dict[str, Any]]:
    load = Load("soak", scale["soak_slots"], scale["soak_seconds"], TOKENS, RATE, ramp=15)
    with stack("nginx", workdir / "soak") as running:
        result = soak(running, load, warmup=scale["warmup"])
    _progress(result)
    return [result]


SCENARIOS: dict[str, Callable[[dict[str, Any], Path, list[str]], list[dict[str, Any]]]] = {
    "concurrency": run_concurrency,
    "rolling_restart": run_rolling,
    "proxy_reload": run_reload,
    "faults": run_faults,
    "soak": run_soak,
}


def _progress(result: dict[str, Any]) -> None:
    keys = ("scenario", "proxy", "started", "intact", "error", "lost", "damaged", "why")
    print(json.dumps({k: result.get(k) for k in keys}), flush=True)


# --- output -----------------------------------------------------------------------------------


def summary_table(results: dict[str, list[dict[str, Any]]]) -> str:
    head = (
        "| scenario | proxy | streams (peak open) | intact | ended by error (why) | lost | damaged "
        "| TTFT p50 / p99 ms | gap p50 / p99 ms | app / proxy CPU (cores) | load avg |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for scenario, items in results.items():
        for r in items:
            if "not_measured" in r:
                rows.append(
                    f"| {scenario} | {r['proxy']} | not measured: hot restart (see infra/envoy/README.md) |||||||||"
                )
                continue
            why = ", ".join(f"{k.split(':', 1)[1]} {v}" for k, v in r["why"].items()) or "-"
            ttft, gap = r["ttft_ms"], r["gap_ms"]
            rows.append(
                f"| {scenario} | {r['proxy']} | {r['started']} ({r['peak_active']}) | {r['intact']} "
                f"| {r['error']} ({why}) | {r['lost']} | {r['damaged']} "
                f"| {ttft.get('p50', '-')} / {ttft.get('p99', '-')} | {gap.get('p50', '-')} / {gap.get('p99', '-')} "
                f"| {r['app_cpu']['cores']} / {r['proxy_cpu']['cores']} | {r['load1_max']:.1f} |"
            )
    return head + "\n".join(rows) + "\n"


def extras(results: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for r in results.get("rolling_restart", []):
        refused = [roll["new_requests_answered_503_while_draining"] for roll in r["rolls"]]
        back = [roll["back_in_rotation_after_s"] for roll in r["rolls"]]
        lines.append(
            f"- rolling restart, {r['proxy']}: {r['http_5xx']} 5xx reached clients; new requests the draining "
            f"instances answered 503: {refused} (a proxy that retries sent them to the other instance); "
            f"a replaced instance served its first stream {back} s after it was up"
        )
    for r in results.get("proxy_reload", []):
        if "reloads" in r:
            lines.append(f"- reload, {r['proxy']}: {r['reloads']} reloads ({r['reload_how']}), {r['http_5xx']} 5xx")
    for r in results.get("faults", []):
        lines.append(f"- faults: faulted {r['faulted']}, streams that ended otherwise than expected: {r['unexpected']}")
    for r in results.get("soak", []):
        growth = {k: v for k, v in r.items() if k.endswith("_growth_pct")}
        lines.append(
            f"- soak: growth after {r['warmup_s']} s warm-up (%): {growth}; app idle after: {r['app_idle_after']}"
        )
    return "\n".join(lines) + "\n"


def plots(results: dict[str, list[dict[str, Any]]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    with_samples = [r for items in results.values() for r in items if r.get("samples")]
    if with_samples:
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for r in with_samples:
            ax.plot(
                [s["t"] for s in r["samples"]],
                [s["active"] for s in r["samples"]],
                label=f"{r['scenario']} {r['proxy']}",
            )
        ax.set(xlabel="seconds", ylabel="streams open", title="Active streams")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "active_streams.png", dpi=90)
        plt.close(fig)
        written.append("active_streams.png")
    measured = [r for items in results.values() for r in items if r.get("ttft_ms")]
    if measured:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        labels = [f"{r['scenario'][:11]}\n{r['proxy']}" for r in measured]
        for ax, key, title in ((axes[0], "ttft_ms", "TTFT (ms)"), (axes[1], "gap_ms", "inter-token gap (ms)")):
            for q, marker in (("p50", "o"), ("p95", "s"), ("p99", "^")):
                ax.scatter(range(len(measured)), [r[key].get(q, 0) for r in measured], marker=marker, label=q)
            ax.set_xticks(range(len(measured)), labels, fontsize=6, rotation=60)
            ax.set(title=title, yscale="log")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "percentiles.png", dpi=90)
        plt.close(fig)
        written.append("percentiles.png")
    for r in results.get("soak", []):
        samples = r["samples"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        t = [s["t"] for s in samples]
        for who in ("app", "proxy"):
            axes[0].plot(t, [s[who]["rss_mib"] for s in samples], label=f"{who} RSS (MiB)")
            axes[1].plot(t, [s[who]["fds"] for s in samples], label=f"{who} open fds")
        for ax in axes:
            ax.axvline(r["warmup_s"], color="grey", linestyle="--", linewidth=1)
            ax.set(xlabel="seconds")
            ax.legend(fontsize=7)
            ax.set_ylim(bottom=0)
        axes[0].set_title(f"Soak: {r['slots']} streams through nginx, RSS")
        axes[1].set_title("open file descriptors")
        fig.tight_layout()
        fig.savefig(out / "soak_rss_fds.png", dpi=90)
        plt.close(fig)
        written.append("soak_rss_fds.png")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--quick", action="store_true", help="a smaller version of everything")
    parser.add_argument(
        "--proxy", action="append", choices=sorted(PROXIES), help="only these proxies (merged into the JSON)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--summary", action="store_true", help="only rewrite summary.md and the plots")
    args = parser.parse_args(argv)
    nofile = raise_nofile()
    scale = _scale(args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    names = [] if args.summary else (args.only or list(SCENARIOS))
    meta = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "load_avg_before": os.getloadavg(),
        "rlimit_nofile": nofile,
        "scale": scale,
        "quick": args.quick,
    }
    with tempfile.TemporaryDirectory(prefix="streamkit-load-") as tmp:
        for name in names:
            began = time.monotonic()
            items = SCENARIOS[name](scale, Path(tmp), args.proxy or list(PROXIES))
            doc = {"meta": meta | {"seconds": round(time.monotonic() - began, 1)}, "results": items}
            path = args.out / f"{name}.json"
            if args.proxy and path.exists():  # a re-run of some proxies replaces only their results
                previous = json.loads(path.read_text())
                kept = [r for r in previous["results"] if r["proxy"] not in args.proxy]
                doc = {"meta": previous["meta"] | {"rerun": meta | {"proxies": args.proxy}}, "results": kept + items}
            path.write_text(json.dumps(doc, indent=1) + "\n")
    # The summary covers every scenario whose JSON is present (a partial re-run keeps the others).
    results = {}
    for name in SCENARIOS:
        path = args.out / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())["results"]
    written = plots(results, args.out)
    (args.out / "summary.md").write_text(
        f"Load runs on {os.cpu_count()} shared cores; the load average column is the highest seen "
        "during each run (other engineers' tests shared the machine).\n\n"
        + summary_table(results)
        + "\n"
        + extras(results)
        + "\nPlots: "
        + ", ".join(written)
        + "\n"
    )
    print((args.out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
