"""`make bench`: run every scenario on 127.0.0.1 and write bench/results/<date>.{json,md} and plots.

    .venv/bin/python -m bench.run                 # the full run (< 15 minutes on 2 cores)
    .venv/bin/python -m bench.run --smoke --out DIR --only relay,ceiling   # the tiny smoke run

This process is the load client: it pins itself to the client core and raises its open-file limit
(the memory scenario holds 10k sockets; servers inherit the raised limit).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import litellm, report, scenarios, servers
from bench.scenarios import Config
from streamkit.proxies import PROXIES

RESULTS = Path(__file__).parent / "results"
SCENARIOS = ("relay", "ceiling", "memory", "cancellation", "proxies")
# Seconds each scenario may take at most (the whole run must stay under 15 minutes on 2 cores); one
# that overruns is stopped, its servers stopped by PID, and the results say so.
SCENARIO_TIMEOUT = {"relay": 360, "ceiling": 150, "memory": 240, "cancellation": 150, "proxies": 150}
SMOKE = Config(
    relay_cap_seconds=5.0,
    repeats=1,
    relay_levels=(2,),
    relay_tokens=5,
    ramp_seconds=0.0,
    relay_rate=100.0,
    ceiling_streams=2,
    ceiling_seconds=0.5,
    relay_peers=(),
    ceiling_targets=("raw_asgi",),
    memory_levels=(20,),
    memory_peer_levels=(),
    memory_peers=(),
    memory_cycles=1,
    cycle_streams=10,
    cancel_trials=2,
    stalled_trials=1,
    proxies=(),
    with_litellm=os.environ.get("BENCH_SMOKE_LITELLM") == "1",
)


def _commit() -> str:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    head = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--", "app", "streamkit", "bench", "infra")
    return head + ("+dirty" if dirty else "")


def _versions(litellm_python: Path | None) -> dict[str, str]:
    names = ("uvicorn", "gunicorn", "starlette", "sse-starlette", "fastapi", "openai", "httpx2", "aiohttp")
    out = {"python": platform.python_version()}
    for name in names:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[name] = importlib.metadata.version(name)
    for name, proxy in PROXIES.items():
        out[name] = proxy.version()
    if litellm_python is not None:
        out["litellm"] = litellm.version(litellm_python)
    return out


def _environment() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "pinned": servers.two_cores(),
        "server_core": servers.SERVER_CORE,
        "client_core": servers.CLIENT_CORE,
        "loadavg": os.getloadavg(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    }


def _raise_nofile() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _run(cfg: Config, only: tuple[str, ...], workdir: Path, litellm_python: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in only:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        work = {
            "relay": lambda: scenarios.relay(cfg, workdir, litellm_python),
            "ceiling": lambda: scenarios.ceiling(cfg, workdir),
            "memory": lambda: scenarios.memory(cfg, workdir),
            "cancellation": lambda: scenarios.cancellation(cfg, workdir),
            "proxies": lambda: scenarios.proxies(cfg, workdir),
        }[name]
        try:
            out[name] = await asyncio.wait_for(work(), SCENARIO_TIMEOUT[name])
        except TimeoutError:
            print(f"  {name} timed out after {SCENARIO_TIMEOUT[name]} s: left out of the results", flush=True)
            out[name + "_timed_out"] = SCENARIO_TIMEOUT[name]
            continue
        out[name]["elapsed_s"] = round(time.monotonic() - started, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: proves the harness runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory (default bench/results)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--report", type=Path, help="only re-render the table and plots of this results JSON")
    args = parser.parse_args(argv)
    if args.report:
        document = json.loads(args.report.read_text())
        stem = args.report.stem
        args.report.with_suffix(".md").write_text(report.markdown(document, stem))
        report.plots(document, args.report.parent, stem)
        return 0
    only = tuple(name for name in args.only.split(",") if name)
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    cfg = SMOKE if args.smoke else Config()
    if servers.two_cores():
        os.sched_setaffinity(0, {servers.CLIENT_CORE})
    _raise_nofile()
    litellm_python = litellm.python() if cfg.with_litellm else None
    started = datetime.datetime.now(datetime.UTC)
    meta: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d"),
        "started": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "smoke": args.smoke,
        "environment_before": _environment(),
        "versions": _versions(litellm_python),
        "config": cfg.__dict__,
    }
    if cfg.with_litellm and litellm_python is None:
        meta["litellm_missing"] = f"no {litellm.VENV}/bin/python: `make bench` installs it (mk/bench.mk)"
    with tempfile.TemporaryDirectory(prefix="streamkit-bench-") as tmp:
        try:
            results = asyncio.run(_run(cfg, only, Path(tmp), litellm_python))
        except BaseException:
            for log in sorted(Path(tmp).rglob("*.log")):
                print(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
            raise
    meta["environment_after"] = _environment()
    meta["elapsed_s"] = round((datetime.datetime.now(datetime.UTC) - started).total_seconds(), 1)
    document = {"meta": meta, **results}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = meta["date"]
    (args.out / f"{stem}.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (args.out / f"{stem}.md").write_text(report.markdown(document, stem))
    report.plots(document, args.out, stem)
    print(f"wrote {args.out / stem}.json, .md and plots in {meta['elapsed_s']} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
