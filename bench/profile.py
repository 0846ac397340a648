"""Where a server's CPU goes: py-spy samples a running process, summarized per function.

py-spy is installed into the venv by `make bench` only (mk/bench.mk); without it (or without the
ptrace permission it needs) the benchmark runs and says the profile is missing.
"""

from __future__ import annotations

import asyncio
import collections
import re
import shutil
import sys
from pathlib import Path

RATE = 200  # samples per second: enough for a few seconds' picture, little overhead
_LINE = re.compile(r":\d+\)$")
_REPO = str(Path(__file__).resolve().parents[1]) + "/"
_PATH = re.compile(r"\s*\((?:/[^()]*(?:site-packages|lib/python3\.\d+)/|" + re.escape(_REPO) + ")")


# Frames every sample shares (process start-up, the event loop): no information, left out.
_OUTER = re.compile(
    r"runpy|gunicorn/|uvicorn_worker/|uvicorn/_compat|uvicorn/main|uvicorn/server|asyncio/|threading\.py|<module>"
)


def binary() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


async def record(pid: int, seconds: float, out: Path) -> str | None:
    """Sample `pid` for `seconds` into a raw collapsed-stack file; returns an error text or None."""
    spy = binary()
    if spy is None:
        return "py-spy is not installed (make bench installs it into the venv)"
    argv = [spy, "record", "-r", str(RATE), "-d", str(max(1, round(seconds))), "--format", "raw", "-o", str(out)]
    process = await asyncio.create_subprocess_exec(
        *argv, "-p", str(pid), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0 or not await asyncio.to_thread(out.exists):
        return f"py-spy failed ({process.returncode}): {stderr.decode(errors='replace')[-300:]}"
    return None


def summarize(raw: Path, top: int = 30) -> dict[str, object]:
    """Share of samples per function: inclusive (on the stack) and self (on top), busy threads only.

    Samples of idle thread-pool workers (parked in `concurrent/futures/thread.py`) are dropped.
    """
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    package: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "concurrent/futures/thread.py" in stack:
            continue
        samples = int(count)
        total += samples
        frames = [_PATH.sub(" (", _LINE.sub(")", frame)) for frame in stack.split(";")]
        for frame in set(frames):
            if not _OUTER.search(frame):
                inclusive[frame] += samples
        own[frames[-1]] += samples
        package[_package(frames[-1])] += samples
    if not total:
        return {"samples": 0}

    def shares(counter: collections.Counter[str]) -> list[tuple[str, float]]:
        """The top frames; of a chain of wrappers with the same count (middleware around one call) only
        the first."""
        out: list[tuple[str, float]] = []
        seen: set[int] = set()
        for frame, n in counter.most_common():
            if n not in seen:
                seen.add(n)
                out.append((frame, round(100 * n / total, 1)))
            if len(out) == top:
                break
        return out

    by_package = [(name, round(100 * n / total, 1)) for name, n in package.most_common()]
    return {
        "samples": total,
        "inclusive_pct": shares(inclusive),
        "self_pct": shares(own),
        "self_by_package": by_package,
    }


def _package(frame: str) -> str:
    """`f (sse_starlette/sse.py)` -> `sse_starlette`; the kit's own code keeps its folder (`app`)."""
    where = frame.rpartition("(")[2].rstrip(")")
    return where.split("/", 1)[0].removesuffix(".py") if where else "?"
